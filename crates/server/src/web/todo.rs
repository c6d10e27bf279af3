//! My to-do list, and the leaders' overview of a zone and the four levels.

use std::collections::{BTreeMap, HashSet};

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use caseflow::domain::{
    Assignee, CaseId, Label, Lang, Level, NextCommand, NextContext, Organisation, ZoneId,
    next_commands,
};
use caseflow::projections::TodoItem;
use maud::{Markup, html};
use serde::Deserialize;

use super::forms::{FormContext, command_form};
use super::{Frame, frame_of, page, tr};
use crate::access;
use crate::api::mine;
use crate::auth::WebUser;
use crate::problem::ApiError;
use crate::state::App;
use crate::users::Access;
use crate::views::{assignee_name, local_time, unit_name};

/// Items per page of the workbench's list.
const PAGE: usize = 30;

/// Paging and the result of the last action.
#[derive(Debug, Deserialize)]
pub struct ListParams {
    offset: Option<usize>,
    done: Option<String>,
    error: Option<String>,
}

/// The result of the last action, as a banner.
pub fn flash(lang: Lang, done: Option<&str>, error: Option<&str>) -> Markup {
    html! {
        @if let Some(kind) = done {
            p.flash.good role="status" { (tr(lang, "已办理：", "Done: ")) (kind) }
        }
        @if let Some(e) = error {
            p.flash.bad role="alert" { (tr(lang, "未能办理：", "Not done: ")) (e) }
        }
    }
}

/// The banner the live feed shows when the list changed.
pub fn live_banner(lang: Lang, case: Option<CaseId>) -> Markup {
    let watched = case.map(|c| c.to_string()).unwrap_or_default();
    html! {
        div.live data-case=(watched) role="status" {
            (tr(lang, "有新的变动。", "Something changed. "))
            a href="" { (tr(lang, "刷新", "Reload")) }
        }
    }
}

/// The signed-in staff member's unit's list, overdue first, with a form for each command
/// they may issue on each case.
pub async fn my_list(
    user: WebUser,
    State(app): State<App>,
    headers: HeaderMap,
    Query(params): Query<ListParams>,
) -> Result<Response, ApiError> {
    let Some(actor) = user.0.access().actor().cloned() else {
        return Ok(Redirect::to("/overview").into_response());
    };
    let frame = frame_of(&app, &headers, &user, "/todo");
    let lang = frame.lang;
    let now = app.engine.now();
    let offset = params.offset.unwrap_or(0);
    let list = app
        .engine
        .todo_page(&Assignee::Unit(actor.unit.clone()), now, offset, PAGE)
        .await?;
    let mut cards = Vec::new();
    for item in &list.items {
        cards.push(item_card(&app, &user, item, &frame).await?);
    }
    let org = app.org();
    let title = format!(
        "{} · {}",
        tr(lang, "我的待办", "My to-do list"),
        unit_name(org, &actor.unit)
    );
    let body = html! {
        h1 { (title) }
        (flash(lang, params.done.as_deref(), params.error.as_deref()))
        (live_banner(lang, None))
        div.summary {
            span { (tr(lang, "共 ", "")) b { (list.counts.total) } (tr(lang, " 件", " items")) }
            span { (tr(lang, "超期 ", "overdue ")) b { (list.counts.overdue) } }
            span { (tr(lang, "截至 ", "as of ")) (local_time(app.engine.district(), now)) }
        }
        @if list.items.is_empty() {
            p.card.empty { (tr(lang, "目前没有待办事项。", "Nothing is waiting on you.")) }
        }
        @for card in &cards { (card) }
        (pager(lang, offset, list.counts.total as usize))
    };
    Ok(page(&frame, &title, body).into_response())
}

fn pager(lang: Lang, offset: usize, total: usize) -> Markup {
    html! {
        div.pager {
            @if offset > 0 {
                a href={ "/todo?offset=" (offset.saturating_sub(PAGE)) } { "← " (tr(lang, "上一页", "Previous")) }
            }
            @if offset + PAGE < total {
                a href={ "/todo?offset=" (offset + PAGE) } { (tr(lang, "下一页", "Next")) " →" }
            }
        }
    }
}

async fn item_card(
    app: &App,
    user: &WebUser,
    item: &TodoItem,
    frame: &Frame<'_>,
) -> Result<Markup, ApiError> {
    let lang = frame.lang;
    let district = app.engine.district();
    let org = &district.org;
    let card = &item.case;
    let now = app.engine.now();
    let state = app.engine.case_state(card.case_id).await?;
    let ctx = NextContext::new(&district.org, &district.calendar, &district.policies, now);
    let next = next_commands(&state, &ctx);
    let holders = app.engine.case_holders(card.case_id).await?;
    let number = app.engine.case_number(card.case_id).await?;
    let others: Vec<String> = holders
        .iter()
        .flat_map(|h| h.obligations.iter())
        .filter(|o| o.assignee != *item.assignee)
        .map(|o| assignee_name(org, &o.assignee))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let fc = FormContext {
        state: &state,
        ctx,
        district,
        lang,
        csrf: user.0.csrf(),
        return_to: frame.path,
    };
    let place = match &card.place.village {
        Some(v) => format!(
            "{} · {}",
            unit_name(org, &card.place.locality),
            unit_name(org, v)
        ),
        None => unit_name(org, &card.place.locality),
    };
    Ok(html! {
        article.card.item.overdue[item.overdue] data-case=(card.case_id) {
            div.head {
                @if item.overdue { span.badge.bad { (tr(lang, "超期", "overdue")) } }
                span.badge.stage { (card.stage.label(lang)) }
                span.badge { (item.action.label(lang)) }
                @if item.priority != caseflow::domain::Priority::Normal {
                    span.badge.warn { (item.priority.label(lang)) }
                }
            }
            p.title { a href={ "/cases/" (card.case_id) } { (card.title) } }
            p.meta {
                @if let Some(n) = number { span.number { (n) } " · " }
                span.due { (tr(lang, "期限 ", "due ")) (item.due_at.map_or_else(|| "—".to_owned(), |t| local_time(district, t))) }
                " · " (card.kind.label(lang)) " · " (place)
                @if !others.is_empty() {
                    br; (tr(lang, "同时在办：", "Also held by: ")) (others.join("、"))
                }
            }
            div.actions {
                @for n in for_this_item(mine(&user.0, &next), item.action) { (command_form(n, &fc)) }
            }
        }
    })
}

/// The commands that discharge this item's duty; all of the reader's commands when none
/// does (the case page has every command in any case).
fn for_this_item(mine: Vec<&NextCommand>, action: caseflow::domain::Action) -> Vec<&NextCommand> {
    let discharging: Vec<&NextCommand> = mine
        .iter()
        .copied()
        .filter(|n| n.discharges.contains(&action))
        .collect();
    if discharging.is_empty() {
        mine
    } else {
        discharging
    }
}

/// Open, overdue and urged items of one list.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    open: usize,
    overdue: usize,
    urged: usize,
}

impl Counts {
    fn add(&mut self, item: &TodoItem, urged: &HashSet<CaseId>) {
        self.open += 1;
        self.overdue += usize::from(item.overdue);
        self.urged += usize::from(urged.contains(&item.case.case_id));
    }
}

fn level_of(org: &Organisation, assignee: &Assignee) -> Option<Level> {
    match assignee {
        Assignee::Unit(u) => org.level_of(u),
        Assignee::Department(_) => None,
    }
}

/// The leader's overview: per unit of the zone (or of every zone, for an auditor) the open,
/// overdue and urged items, and the totals of the four levels.
pub async fn overview(
    user: WebUser,
    State(app): State<App>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let org = app.org();
    if !access::may_read_stats(user.0.access(), org) {
        return Err(ApiError::forbidden());
    }
    let zones: Vec<ZoneId> = match user.0.access() {
        Access::Staff { actor } => access::watched_zone(actor, org)
            .cloned()
            .into_iter()
            .collect(),
        _ => org.zones().map(|z| z.id.clone()).collect(),
    };
    let frame = frame_of(&app, &headers, &user, "/overview");
    let lang = frame.lang;
    let now = app.engine.now();
    let urged = app.engine.urged_cases().await?;
    let mut per_unit: BTreeMap<Assignee, Counts> = BTreeMap::new();
    let mut per_level: BTreeMap<Level, Counts> = BTreeMap::new();
    let mut zone_items = Vec::new();
    for zone in &zones {
        let items = app.engine.todo_for_zone(zone, now).await?;
        for item in &items {
            per_unit
                .entry(Assignee::clone(&item.assignee))
                .or_default()
                .add(item, &urged);
            if let Some(level) = level_of(org, &item.assignee) {
                per_level.entry(level).or_default().add(item, &urged);
            }
        }
        let shown = &items[..items.len().min(OVERVIEW_ITEMS)];
        let numbers = crate::api::numbers_of(&app, shown).await?;
        zone_items.push((zone, items.len(), shown.to_vec(), numbers));
    }
    let title = tr(lang, "总览", "Overview");
    let body = html! {
        h1 { (title) }
        p.meta { (tr(lang, "截至 ", "As of ")) (local_time(app.engine.district(), now)) }
        (levels_table(lang, &per_level))
        @for (zone, total, items, numbers) in &zone_items {
            (zone_table(&app, lang, zone, &per_unit))
            (zone_items_table(&app, lang, *total, items, numbers))
        }
    };
    Ok(page(&frame, title, body).into_response())
}

/// Items of a zone the overview lists by name (overdue first); the rest are counted.
const OVERVIEW_ITEMS: usize = 50;

/// The zone's open items, overdue first: which case, whose it is, what to do, by when.
fn zone_items_table(
    app: &App,
    lang: Lang,
    total: usize,
    items: &[TodoItem],
    numbers: &crate::views::CaseNumbers,
) -> Markup {
    let district = app.engine.district();
    html! {
        h3 { (tr(lang, "在办事项", "Open items")) }
        @if items.is_empty() {
            p.empty { (tr(lang, "目前没有在办事项。", "Nothing is open.")) }
        } @else {
            div.scroll { table.items {
                thead { tr {
                    th { (tr(lang, "编号", "Number")) }
                    th { (tr(lang, "事项", "Matter")) }
                    th { (tr(lang, "办理单位", "Held by")) }
                    th { (tr(lang, "待办", "To do")) }
                    th { (tr(lang, "期限", "Due")) }
                } }
                tbody { @for item in items {
                    tr.overdue[item.overdue] data-case=(item.case.case_id) {
                        td.number { (numbers.get(&item.case.case_id).map(ToString::to_string).unwrap_or_default()) }
                        td { a href={ "/cases/" (item.case.case_id) } { (item.case.title) } }
                        td { (assignee_name(app.org(), &item.assignee)) }
                        td { (item.action.label(lang)) }
                        td.due {
                            (item.due_at.map_or_else(|| "—".to_owned(), |t| local_time(district, t)))
                            @if item.overdue { " " span.badge.bad { (tr(lang, "超期", "overdue")) } }
                        }
                    }
                } }
            } }
            @if total > items.len() {
                p.meta { (tr(lang, "另有 ", "and ")) (total - items.len()) (tr(lang, " 项未列出。", " more.")) }
            }
        }
    }
}

fn counts_cells(c: Counts) -> Markup {
    html! {
        td.num { (c.open) }
        td.num { @if c.overdue > 0 { span.badge.bad { (c.overdue) } } @else { "0" } }
        td.num { (c.urged) }
    }
}

fn count_headers(lang: Lang) -> Markup {
    html! {
        th.num { (tr(lang, "在办", "Open")) }
        th.num { (tr(lang, "超期", "Overdue")) }
        th.num { (tr(lang, "已督办", "Urged")) }
    }
}

fn levels_table(lang: Lang, per_level: &BTreeMap<Level, Counts>) -> Markup {
    html! {
        h2 { (tr(lang, "室组地村四级", "The four levels")) }
        div.scroll { table {
            thead { tr { th { (tr(lang, "层级", "Level")) } (count_headers(lang)) } }
            tbody {
                @for level in [Level::Room, Level::Team, Level::Locality, Level::Village] {
                    tr { td { (level.label(lang)) } (counts_cells(per_level.get(&level).copied().unwrap_or_default())) }
                }
            }
        } }
    }
}

fn zone_table(
    app: &App,
    lang: Lang,
    zone: &ZoneId,
    per_unit: &BTreeMap<Assignee, Counts>,
) -> Markup {
    let org = app.org();
    let Some(z) = org.zone(zone) else {
        return html! {};
    };
    let units: Vec<&caseflow::domain::UnitId> = z
        .rooms
        .iter()
        .chain(&z.teams)
        .chain(&z.localities)
        .collect();
    let villages = |locality: &caseflow::domain::UnitId| {
        org.villages_of(locality)
            .fold(Counts::default(), |mut acc, v| {
                if let Some(c) = per_unit.get(&Assignee::Unit(v.id.clone())) {
                    acc.open += c.open;
                    acc.overdue += c.overdue;
                    acc.urged += c.urged;
                }
                acc
            })
    };
    html! {
        h2 { (z.name) }
        div.scroll { table {
            thead { tr { th { (tr(lang, "单位", "Unit")) } th { (tr(lang, "层级", "Level")) } (count_headers(lang)) } }
            tbody {
                @for unit in units {
                    @let level = org.level_of(unit);
                    tr {
                        td { (unit_name(org, unit)) }
                        td { (level.map(|l| l.label(lang)).unwrap_or_default()) }
                        (counts_cells(per_unit.get(&Assignee::Unit(unit.clone())).copied().unwrap_or_default()))
                    }
                    @if level == Some(Level::Locality) {
                        tr {
                            td { "　" (tr(lang, "所辖村（社区）", "its villages")) }
                            td { (Level::Village.label(lang)) }
                            (counts_cells(villages(unit)))
                        }
                    }
                }
            }
        } }
    }
}
