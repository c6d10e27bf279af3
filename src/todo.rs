//! To-do lists as people ask for them: of a unit, a partner department, a collaboration zone
//! or a whole level, each item with the other units that hold the same case.

use std::collections::BTreeMap;

use caseflow_domain::{Assignee, CaseId, CaseNumber, DepartmentId, Level, UnitId, ZoneId};
use caseflow_projections::TodoItem;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::engine::Engine;
use crate::error::EngineError;

/// Whose to-do list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "scope", content = "id", rename_all = "snake_case")]
pub enum ListOwner {
    /// One room, team, locality or village officer.
    Unit(UnitId),
    /// One partner department (its rectifications and their deadlines).
    Department(DepartmentId),
    /// Every unit of a collaboration zone (the room leaders' overview).
    Zone(ZoneId),
    /// Every unit of one of the four levels.
    Level(Level),
}

impl std::fmt::Display for ListOwner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListOwner::Unit(u) => write!(f, "unit {u}"),
            ListOwner::Department(d) => write!(f, "department {d}"),
            ListOwner::Zone(z) => write!(f, "zone {z}"),
            ListOwner::Level(l) => write!(f, "level {l}"),
        }
    }
}

/// A to-do list at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TodoList {
    /// Whose list.
    pub owner: ListOwner,
    /// The time overdue items were judged at.
    pub now: DateTime<Utc>,
    /// The items: overdue first, then by due time, higher priority first.
    pub items: Vec<TodoItem>,
    /// For each case on the list, every assignee that holds it (on any list), so an item can
    /// say who else must act on the same case.
    pub holders: BTreeMap<CaseId, Vec<Assignee>>,
    /// The human number of each case on the list.
    pub numbers: BTreeMap<CaseId, CaseNumber>,
}

impl TodoList {
    /// The assignees other than the item's own that hold its case.
    pub fn others(&self, item: &TodoItem) -> Vec<&Assignee> {
        self.holders
            .get(&item.case.case_id)
            .into_iter()
            .flatten()
            .filter(|a| **a != *item.assignee)
            .collect()
    }

    /// The human number of an item's case (`2026-0042`).
    pub fn number(&self, item: &TodoItem) -> Option<CaseNumber> {
        self.numbers.get(&item.case.case_id).copied()
    }

    /// How many items are overdue.
    pub fn overdue(&self) -> usize {
        self.items.iter().filter(|i| i.overdue).count()
    }
}

impl Engine {
    /// The to-do list of a unit, department, zone or level at `now` (read-your-writes: the
    /// read models catch up first). An owner the district does not have is a caller error.
    pub async fn todo_list(
        &self,
        owner: ListOwner,
        now: DateTime<Utc>,
    ) -> Result<TodoList, EngineError> {
        self.check_owner(&owner)?;
        self.refresh().await?;
        let org = &self.district().org;
        let read = self.inner.read.lock().await;
        let todo = read.todo.read()?;
        let items = match &owner {
            ListOwner::Unit(u) => todo.for_unit(u, now),
            ListOwner::Department(d) => todo.for_assignee(&Assignee::Department(d.clone()), now),
            ListOwner::Zone(z) => todo.for_zone(org, z, now),
            ListOwner::Level(l) => todo.for_level(org, *l, now),
        };
        let numbers_model = read.numbers.read()?;
        let numbers = items
            .iter()
            .filter_map(|i| Some((i.case.case_id, numbers_model.number(&i.case.case_id)?)))
            .collect();
        let mut holders: BTreeMap<CaseId, Vec<Assignee>> = BTreeMap::new();
        for item in &items {
            holders.entry(item.case.case_id).or_insert_with(|| {
                let obligations = todo.case(&item.case.case_id).map(|(_, o)| o).unwrap_or(&[]);
                obligations.iter().fold(Vec::new(), |mut all, o| {
                    if !all.contains(&o.assignee) {
                        all.push(o.assignee.clone());
                    }
                    all
                })
            });
        }
        Ok(TodoList {
            owner,
            now,
            items,
            holders,
            numbers,
        })
    }

    fn check_owner(&self, owner: &ListOwner) -> Result<(), EngineError> {
        let org = &self.district().org;
        let known = match owner {
            ListOwner::Unit(u) => org.unit(u).is_some(),
            ListOwner::Department(d) => org.department(d).is_some(),
            ListOwner::Zone(z) => org.zone(z).is_some(),
            ListOwner::Level(_) => true,
        };
        if known {
            return Ok(());
        }
        let mut asked = owner.to_string();
        if let Some(kind) = other_kind_of(org, owner) {
            asked.push_str(&format!(
                " ({} is a {kind}: ask for the {kind}'s list)",
                id_of(owner)
            ));
        }
        Err(EngineError::UnknownListOwner(asked))
    }
}

/// What else an unknown owner's id names, so a `--unit dept-finance` learns it is a department.
fn other_kind_of(org: &caseflow_domain::Organisation, owner: &ListOwner) -> Option<&'static str> {
    let id = id_of(owner);
    let kinds = [
        ("unit", org.unit(&UnitId::new(id)).is_some()),
        (
            "department",
            org.department(&DepartmentId::new(id)).is_some(),
        ),
        ("zone", org.zone(&ZoneId::new(id)).is_some()),
    ];
    kinds
        .into_iter()
        .find(|(_, found)| *found)
        .map(|(kind, _)| kind)
}

fn id_of(owner: &ListOwner) -> &str {
    match owner {
        ListOwner::Unit(u) => u.as_str(),
        ListOwner::Department(d) => d.as_str(),
        ListOwner::Zone(z) => z.as_str(),
        ListOwner::Level(_) => "",
    }
}
