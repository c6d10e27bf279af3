//! The to-do lists (待办): for every unit at every level, plus the zone and partner
//! department views, the cases waiting on it and what it must do by when.
//!
//! The model keeps, per case, a small card (title, stage, place, reporter handle) and the
//! obligations the who-acts table names; and, per assignee, an ordered index of those
//! obligations keyed by (due time, priority, case, action). Ordering by due time puts the
//! overdue items first for any `now` — an item is overdue exactly when its due time is
//! before `now` — so a unit's list is a walk over its index and needs no sort and no clock.

use std::cmp::Reverse;
use std::collections::BTreeMap;

use crate::fast_hash::HashMap;
use std::fmt;
use std::sync::Arc;

use caseflow_domain::{
    CaseId, CaseKind, Category, Level, Organisation, ReporterHandle, Stage, UnitId, ZoneId,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{ApplyFailure, ProjectionError};
use crate::fold::overwrite_assignee;
use crate::persist::{
    CaseDocuments, CaseJsonTable, ChangedCases, Column, DocumentPersistence, TableSpec,
};
use crate::projection::{Applied, Projection};
use caseflow_domain::{Action, Assignee, Obligation, Priority};

/// Where a case is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Place {
    /// The town or street.
    pub locality: UnitId,
    /// The village or community, when known.
    pub village: Option<UnitId>,
    /// The collaboration zone of the locality.
    pub zone: ZoneId,
}

/// What every to-do item of one case shows about the case. Never the reporter's identity:
/// only the opaque reporter handle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseCard {
    /// The case.
    pub case_id: CaseId,
    /// The case's summary, whole (tables shorten it to fit a screen; JSON and pages carry it
    /// as reported).
    pub title: String,
    /// The case's stage.
    pub stage: Stage,
    /// Complaint, consultation, suggestion or clue.
    pub kind: CaseKind,
    /// The category given at classification, once classified.
    pub category: Option<Category>,
    /// Where.
    pub place: Place,
    /// The opaque reporter handle.
    pub reporter: ReporterHandle,
}

/// One line of a to-do list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TodoItem {
    /// The case (shared by every item of the case).
    pub case: Arc<CaseCard>,
    /// Whose list the item is on (shared).
    pub assignee: Arc<Assignee>,
    /// What the assignee must do.
    pub action: Action,
    /// By when (`None`: no time limit runs for this action).
    pub due_at: Option<DateTime<Utc>>,
    /// Whether `due_at` is before the `now` the query was asked with.
    pub overdue: bool,
    /// How urgent.
    pub priority: Priority,
}

impl fmt::Display for TodoItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let due = match self.due_at {
            Some(d) => d.format("%Y-%m-%d %H:%M").to_string(),
            None => "-".to_owned(),
        };
        let place = match &self.case.place.village {
            Some(v) => format!("{}/{}", self.case.place.locality, v),
            None => self.case.place.locality.to_string(),
        };
        write!(
            f,
            "{} | {} | {} | {:?} | {} | due {} | {:?} | {} | {}",
            if self.overdue { "OVERDUE" } else { "on time" },
            self.assignee,
            self.action,
            self.case.stage,
            self.case.case_id,
            due,
            self.priority,
            place,
            self.case.title,
        )
    }
}

/// A borrowed to-do item: what [`TodoProjection::iter_for_assignee`] yields without
/// copying anything (the cheapest way to walk a long list or render a page).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TodoItemRef<'a> {
    /// The case.
    pub case: &'a Arc<CaseCard>,
    /// Whose list the item is on.
    pub assignee: &'a Arc<Assignee>,
    /// What the assignee must do.
    pub action: Action,
    /// By when.
    pub due_at: Option<DateTime<Utc>>,
    /// Whether `due_at` is before the `now` the query was asked with.
    pub overdue: bool,
    /// How urgent.
    pub priority: Priority,
}

impl TodoItemRef<'_> {
    /// An owned copy (shares the case card).
    pub fn to_item(&self) -> TodoItem {
        TodoItem {
            case: Arc::clone(self.case),
            assignee: Arc::clone(self.assignee),
            action: self.action,
            due_at: self.due_at,
            overdue: self.overdue,
            priority: self.priority,
        }
    }
}

/// Counts for one assignee.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TodoCounts {
    /// Items on the list.
    pub total: u64,
    /// Items whose due time is before `now`.
    pub overdue: u64,
}

/// Index key: due time first (none last), then higher priority first, then case and action
/// for a total, deterministic order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct ItemKey {
    due: Due,
    priority: Reverse<Priority>,
    case_id: CaseId,
    action: Action,
}

/// When an item is due, ordered with "no time limit" after every time. Kept as the time
/// itself (not as nanoseconds), so walking a list converts nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Due(Option<DateTime<Utc>>);

impl Due {
    /// Whether the item is overdue at `now`.
    fn is_before(self, now: DateTime<Utc>) -> bool {
        self.0.is_some_and(|due| due < now)
    }
}

impl Ord for Due {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        use std::cmp::Ordering;
        match (self.0, other.0) {
            (Some(a), Some(b)) => a.cmp(&b),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        }
    }
}

impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// What the to-do model stores per waiting case (its persisted document): the card and the
/// duties the who-acts table names. Opaque outside the model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseEntry {
    card: Arc<CaseCard>,
    obligations: Vec<Obligation>,
}

/// The to-do read model. See the module documentation.
#[derive(Debug, Default)]
pub struct TodoProjection {
    cases: HashMap<CaseId, CaseEntry>,
    /// Keyed by a shared assignee so an item copies it with a reference count, not a string.
    index: AssigneeIndex,
    changed: ChangedCases,
}

impl PartialEq for TodoProjection {
    /// Two models are equal when they hold the same cases and obligations; the indexes are
    /// derived from those (see [`TodoProjection::check_indexes`]).
    fn eq(&self, other: &Self) -> bool {
        self.cases == other.cases
    }
}

/// The projection's name (checkpoint key, table prefix).
pub const TODO_PROJECTION: &str = "todo";

/// Where a persistent to-do model keeps each waiting case's entry.
const TODO_TABLE: CaseJsonTable = CaseJsonTable::new(
    TODO_PROJECTION,
    "todo_cases",
    &[Column::text("case_id"), Column::text("entry")],
);

impl TodoProjection {
    /// An empty model.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of cases that wait on somebody.
    pub fn case_count(&self) -> usize {
        self.cases.len()
    }

    /// The card and obligations of one case, if it waits on somebody.
    pub fn case(&self, case_id: &CaseId) -> Option<(&CaseCard, &[Obligation])> {
        self.cases
            .get(case_id)
            .map(|e| (e.card.as_ref(), e.obligations.as_slice()))
    }

    /// Every assignee with at least one item.
    pub fn assignees(&self) -> impl Iterator<Item = &Assignee> {
        self.index.keys().map(|a| a.as_ref())
    }

    /// The to-do list of one unit or department: overdue first, then by due time (items
    /// without a time limit last), higher priority first among equal due times.
    pub fn for_assignee(&self, assignee: &Assignee, now: DateTime<Utc>) -> Vec<TodoItem> {
        self.page_for_assignee(assignee, now, 0, usize::MAX)
    }

    /// The to-do list of one unit (see [`Self::for_assignee`]).
    pub fn for_unit(&self, unit: &UnitId, now: DateTime<Utc>) -> Vec<TodoItem> {
        self.for_assignee(&Assignee::Unit(unit.clone()), now)
    }

    /// One page of an assignee's list: `limit` items after skipping `offset`.
    pub fn page_for_assignee(
        &self,
        assignee: &Assignee,
        now: DateTime<Utc>,
        offset: usize,
        limit: usize,
    ) -> Vec<TodoItem> {
        let Some(index) = self.index.get(assignee) else {
            return Vec::new();
        };
        let take = limit.min(index.len().saturating_sub(offset));
        let mut items = Vec::with_capacity(take);
        items.extend(
            self.iter_for_assignee(assignee, now)
                .skip(offset)
                .take(take)
                .map(|r| r.to_item()),
        );
        items
    }

    /// Walks an assignee's list in order (see [`Self::for_assignee`]) without copying.
    /// The iterator knows its length, so collecting it allocates once.
    pub fn iter_for_assignee<'a>(
        &'a self,
        assignee: &Assignee,
        now: DateTime<Utc>,
    ) -> impl ExactSizeIterator<Item = TodoItemRef<'a>> + 'a {
        let (assignee, items) = match self.index.get_key_value(assignee) {
            Some((assignee, index)) => (Some(assignee), index.iter()),
            None => (None, EMPTY_LIST.iter()),
        };
        ListIter {
            assignee,
            items,
            now,
        }
    }

    /// How many items an assignee has, and how many are overdue at `now`.
    pub fn counts_for(&self, assignee: &Assignee, now: DateTime<Utc>) -> TodoCounts {
        let Some(index) = self.index.get(assignee) else {
            return TodoCounts::default();
        };
        TodoCounts {
            total: index.len() as u64,
            overdue: index.keys().take_while(|k| k.due.is_before(now)).count() as u64,
        }
    }

    /// Counts for every assignee with at least one item.
    pub fn counts(&self, now: DateTime<Utc>) -> BTreeMap<Assignee, TodoCounts> {
        self.index
            .keys()
            .map(|a| (Assignee::clone(a), self.counts_for(a, now)))
            .collect()
    }

    /// Every item of every unit of one level, in list order (overdue first, then due time).
    pub fn for_level(&self, org: &Organisation, level: Level, now: DateTime<Utc>) -> Vec<TodoItem> {
        let assignees = org
            .units_at(level)
            .map(|u| Assignee::Unit(u.id.clone()))
            .collect::<Vec<_>>();
        self.merged(&assignees, now)
    }

    /// The zone view: every item of the rooms, teams, localities and villages of a zone.
    pub fn for_zone(&self, org: &Organisation, zone: &ZoneId, now: DateTime<Utc>) -> Vec<TodoItem> {
        let assignees = org
            .units()
            .filter(|u| &u.zone == zone)
            .map(|u| Assignee::Unit(u.id.clone()))
            .collect::<Vec<_>>();
        self.merged(&assignees, now)
    }

    /// The partner-department view: every item on the lists of departments.
    pub fn for_departments(&self, now: DateTime<Utc>) -> Vec<TodoItem> {
        let assignees = self
            .index
            .keys()
            .filter(|a| matches!(a.as_ref(), Assignee::Department(_)))
            .map(|a| Assignee::clone(a))
            .collect::<Vec<_>>();
        self.merged(&assignees, now)
    }

    fn merged(&self, assignees: &[Assignee], now: DateTime<Utc>) -> Vec<TodoItem> {
        let mut keyed: Vec<(ItemKey, &Arc<Assignee>, &Arc<CaseCard>)> = Vec::new();
        for assignee in assignees {
            if let Some((assignee, index)) = self.index.get_key_value(assignee) {
                keyed.extend(index.iter().map(|(k, c)| (*k, assignee, c)));
            }
        }
        keyed.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)));
        keyed
            .into_iter()
            .map(|(key, assignee, card)| make_item(assignee, &key, card, now))
            .collect()
    }

    /// Checks that the per-assignee indexes hold exactly the cases' obligations (a test
    /// aid; the model maintains this itself).
    pub fn check_indexes(&self) -> Result<(), String> {
        let mut expected: HashMap<&Assignee, usize> = HashMap::default();
        for (case_id, entry) in &self.cases {
            for ob in &entry.obligations {
                *expected.entry(&ob.assignee).or_default() += 1;
                let key = key_of(*case_id, ob);
                let found = self.index.get(&ob.assignee).and_then(|i| i.get(&key));
                match found {
                    Some(card) if Arc::ptr_eq(card, &entry.card) => {}
                    _ => return Err(format!("{case_id}: {ob:?} missing from its index")),
                }
            }
        }
        for (assignee, index) in &self.index {
            if expected.get(assignee.as_ref()).copied().unwrap_or(0) != index.len()
                || index.is_empty()
            {
                return Err(format!("index of {assignee} holds stale items"));
            }
        }
        Ok(())
    }

    fn remove_case(&mut self, case_id: &CaseId) -> Option<CaseEntry> {
        let entry = self.cases.remove(case_id)?;
        unindex(&mut self.index, *case_id, &entry.obligations);
        Some(entry)
    }

    fn insert_case(&mut self, case_id: CaseId, entry: CaseEntry) {
        index_entry(&mut self.index, case_id, &entry);
        self.cases.insert(case_id, entry);
    }

    fn mark_changed(&mut self, case_id: CaseId) {
        self.changed.mark(case_id);
    }
}

/// The per-assignee indexes of the to-do model.
type AssigneeIndex = HashMap<Arc<Assignee>, BTreeMap<ItemKey, Arc<CaseCard>>>;

/// Takes a case's obligations out of the assignees' indexes (an emptied index goes too).
fn unindex(index: &mut AssigneeIndex, case_id: CaseId, obligations: &[Obligation]) {
    for ob in obligations {
        if let Some(list) = index.get_mut(&ob.assignee) {
            list.remove(&key_of(case_id, ob));
            if list.is_empty() {
                index.remove(&ob.assignee);
            }
        }
    }
}

/// Puts every obligation of a case's entry on its assignee's index.
fn index_entry(index: &mut AssigneeIndex, case_id: CaseId, entry: &CaseEntry) {
    for ob in &entry.obligations {
        let key = key_of(case_id, ob);
        let card = Arc::clone(&entry.card);
        match index.get_mut(&ob.assignee) {
            Some(list) => {
                list.insert(key, card);
            }
            None => {
                index.insert(Arc::new(ob.assignee.clone()), BTreeMap::from([(key, card)]));
            }
        }
    }
}

/// Makes `into` equal to `from`, reusing the string buffers `into` already holds (a
/// derived `clone_from` would allocate every assignee again).
fn overwrite_obligations(into: &mut Vec<Obligation>, from: &[Obligation]) {
    into.truncate(from.len());
    let reused = into.len();
    for (old, new) in into.iter_mut().zip(from) {
        overwrite_obligation(old, new);
    }
    into.extend_from_slice(&from[reused..]);
}

fn overwrite_obligation(old: &mut Obligation, new: &Obligation) {
    // Destructured, so that a field added to `Obligation` fails to compile here rather
    // than going uncopied.
    let Obligation {
        assignee,
        action,
        due_at,
        deadline,
        priority,
    } = new;
    overwrite_assignee(&mut old.assignee, assignee);
    old.action = *action;
    old.due_at = *due_at;
    old.deadline = *deadline;
    old.priority = *priority;
}

/// The list of an assignee with no items.
static EMPTY_LIST: BTreeMap<ItemKey, Arc<CaseCard>> = BTreeMap::new();

/// Walks one assignee's index in list order (see [`TodoProjection::iter_for_assignee`]).
struct ListIter<'a> {
    /// `None` only for an assignee without items, whose `items` are empty.
    assignee: Option<&'a Arc<Assignee>>,
    items: std::collections::btree_map::Iter<'a, ItemKey, Arc<CaseCard>>,
    now: DateTime<Utc>,
}

impl<'a> Iterator for ListIter<'a> {
    type Item = TodoItemRef<'a>;

    fn next(&mut self) -> Option<TodoItemRef<'a>> {
        let (key, card) = self.items.next()?;
        Some(make_ref(self.assignee?, key, card, self.now))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.items.size_hint()
    }
}

impl ExactSizeIterator for ListIter<'_> {}

fn key_of(case_id: CaseId, ob: &Obligation) -> ItemKey {
    ItemKey {
        due: Due(ob.due_at),
        priority: Reverse(ob.priority),
        case_id,
        action: ob.action,
    }
}

fn make_item(
    assignee: &Arc<Assignee>,
    key: &ItemKey,
    card: &Arc<CaseCard>,
    now: DateTime<Utc>,
) -> TodoItem {
    make_ref(assignee, key, card, now).to_item()
}

fn make_ref<'a>(
    assignee: &'a Arc<Assignee>,
    key: &ItemKey,
    card: &'a Arc<CaseCard>,
    now: DateTime<Utc>,
) -> TodoItemRef<'a> {
    TodoItemRef {
        case: card,
        assignee,
        action: key.action,
        due_at: key.due.0,
        overdue: key.due.is_before(now),
        priority: key.priority.0,
    }
}

impl Projection for TodoProjection {
    fn name(&self) -> &'static str {
        TODO_PROJECTION
    }

    fn apply(&mut self, applied: &Applied<'_>) -> Result<(), ApplyFailure> {
        let case_id = applied.case_id;
        if applied.obligations.is_empty() {
            if self.remove_case(&case_id).is_some() {
                self.mark_changed(case_id);
            }
            return Ok(());
        }
        let Some(case) = applied.state.case() else {
            return Err(ApplyFailure::Invariant(
                "an open case without reported facts".to_owned(),
            ));
        };
        let Some(entry) = self.cases.get_mut(&case_id) else {
            let card = Arc::new(card_of(applied)?);
            let obligations = applied.obligations.to_vec();
            self.insert_case(case_id, CaseEntry { card, obligations });
            self.mark_changed(case_id);
            return Ok(());
        };
        // Title, place, kind and reporter are fixed when the case is reported; only the
        // stage and category move.
        let card_moves = entry.card.stage != case.stage || entry.card.category != case.category();
        if !card_moves && entry.obligations.as_slice() == applied.obligations {
            return Ok(());
        }
        // Moved in place. Once the index no longer shares the card, a new stage or category
        // is written into it without copying its strings; the obligations are overwritten
        // field by field, so their strings reuse the buffers they had.
        unindex(&mut self.index, case_id, &entry.obligations);
        if card_moves {
            let card = Arc::make_mut(&mut entry.card);
            card.stage = case.stage;
            card.category = case.category();
        }
        overwrite_obligations(&mut entry.obligations, applied.obligations);
        index_entry(&mut self.index, case_id, entry);
        self.mark_changed(case_id);
        Ok(())
    }

    fn reset(&mut self) {
        self.reset_documents();
    }

    fn tables(&self) -> &'static [TableSpec] {
        &[TODO_TABLE.spec]
    }

    fn documents(&mut self) -> Option<&mut dyn DocumentPersistence> {
        Some(self)
    }
}

impl CaseDocuments for TodoProjection {
    type Document = CaseEntry;

    fn table(&self) -> &CaseJsonTable {
        &TODO_TABLE
    }

    fn changes(&mut self) -> &mut ChangedCases {
        &mut self.changed
    }

    fn document(&self, case_id: &CaseId) -> Option<&CaseEntry> {
        self.cases.get(case_id)
    }

    fn clear_documents(&mut self) {
        self.cases.clear();
        self.index.clear();
    }

    fn restore(&mut self, case_id: CaseId, entry: CaseEntry) -> Result<(), ProjectionError> {
        if entry.card.case_id != case_id {
            return Err(TODO_TABLE.corrupt_row(format!(
                "row {case_id} holds the entry of case {}",
                entry.card.case_id
            )));
        }
        self.insert_case(case_id, entry);
        Ok(())
    }
}

fn card_of(applied: &Applied<'_>) -> Result<CaseCard, ApplyFailure> {
    let facts = applied
        .state
        .case()
        .ok_or_else(|| ApplyFailure::Invariant("an open case without reported facts".to_owned()))?;
    Ok(CaseCard {
        case_id: applied.case_id,
        title: facts.summary.clone(),
        stage: facts.stage,
        kind: facts.kind,
        category: facts.category(),
        place: Place {
            locality: facts.locality.clone(),
            village: facts.village.clone(),
            zone: facts.zone.clone(),
        },
        reporter: facts.reporter_handle,
    })
}
