//! Tables (comfy-table) and JSON for the CLI's outputs.

use caseflow::audit::{AuditReport, CaseSnapshot, human_duration};
use caseflow::domain::{Assignee, Calendar, CaseId, Label, Lang, Level, UnitId};
use caseflow::projections::{Place, StatsReport};
use caseflow::{Engine, ListOwner, TodoList};
use chrono::{DateTime, FixedOffset, Utc};
use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use serde::Serialize;
use serde_json::json;

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED);
    t.set_header(header.iter().copied());
    t
}

fn local(t: &DateTime<Utc>, offset: FixedOffset) -> String {
    t.with_timezone(&offset)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

fn name_of<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// The words of the to-do table that are not domain labels.
struct TodoWords {
    header: [&'static str; 9],
    holder: &'static str,
    overdue: &'static str,
    title: &'static str,
    items: &'static str,
    nothing: &'static str,
    more: &'static str,
}

fn todo_words(lang: Lang) -> TodoWords {
    match lang {
        Lang::ZhCn => TodoWords {
            header: [
                "截止时间",
                "",
                "待办事项",
                "案件",
                "阶段",
                "事由",
                "地点",
                "紧急程度",
                "同时在办",
            ],
            holder: "承办单位",
            overdue: "已逾期",
            title: "待办清单",
            items: "项待办，逾期",
            nothing: "目前没有待办事项。",
            more: "另有 {n} 项（`caseflow todo` 不加 --limit 可查看全部）",
        },
        Lang::En => TodoWords {
            header: [
                "due",
                "",
                "action",
                "case",
                "stage",
                "title",
                "place",
                "priority",
                "also held by",
            ],
            holder: "on the list of",
            overdue: "OVERDUE",
            title: "To-do list of",
            items: "item(s), overdue:",
            nothing: "Nothing waits on this list.",
            more: "… and {n} more (run `caseflow todo` without --limit for the full list)",
        },
    }
}

/// How people name a list's owner: the unit's or department's name, a zone's name, a level.
pub fn owner_name(engine: &Engine, owner: &ListOwner, lang: Lang) -> String {
    let org = &engine.district().org;
    match owner {
        ListOwner::Unit(u) => org
            .unit(u)
            .map_or_else(|| u.to_string(), |x| x.name.clone()),
        ListOwner::Department(d) => org
            .department(d)
            .map_or_else(|| d.to_string(), |x| x.name.clone()),
        ListOwner::Zone(z) => org
            .zone(z)
            .map_or_else(|| z.to_string(), |x| x.name.clone()),
        ListOwner::Level(l) => level_plural(*l, lang).to_owned(),
    }
}

/// Every unit of a level, as a list's heading names them.
fn level_plural(level: Level, lang: Lang) -> &'static str {
    match (level, lang) {
        (Level::Room, Lang::ZhCn) => "各纪检监察室",
        (Level::Team, Lang::ZhCn) => "各派出纪检监察组",
        (Level::Locality, Lang::ZhCn) => "各镇街纪（工）委",
        (Level::Village, Lang::ZhCn) => "各村（社区）信息员",
        (Level::Room, Lang::En) => "every room",
        (Level::Team, Lang::En) => "every team",
        (Level::Locality, Lang::En) => "every locality",
        (Level::Village, Lang::En) => "every village officer",
    }
}

/// The name of an assignee (a unit's or department's name; its id if the district lacks it).
fn assignee_name(engine: &Engine, assignee: &Assignee) -> String {
    let org = &engine.district().org;
    match assignee {
        Assignee::Unit(u) => org
            .unit(u)
            .map_or_else(|| u.to_string(), |x| x.name.clone()),
        Assignee::Department(d) => org
            .department(d)
            .map_or_else(|| d.to_string(), |x| x.name.clone()),
    }
}

/// Where a case is, by name: its village or community, else its town or street.
fn place_name(engine: &Engine, place: &Place) -> String {
    let org = &engine.district().org;
    let name = |u: &UnitId| {
        org.unit(u)
            .map_or_else(|| u.to_string(), |x| x.name.clone())
    };
    match &place.village {
        Some(v) => name(v),
        None => name(&place.locality),
    }
}

/// A to-do list as a table that fits the terminal (at most `limit` rows): labels in the
/// district's language, names instead of ids, times in district time with their offset.
pub fn todo_table(engine: &Engine, list: &TodoList, lang: Lang, limit: usize) -> String {
    let calendar = &engine.district().calendar;
    let words = todo_words(lang);
    let heading = format!(
        "{} {} · {} · {} {} {}",
        words.title,
        owner_name(engine, &list.owner, lang),
        district_time(calendar, list.now),
        list.items.len(),
        words.items,
        list.overdue()
    );
    if list.items.is_empty() {
        return format!("{heading}\n{}", words.nothing);
    }
    // A zone's or a level's list gathers several units' items: say whose each one is.
    let many_owners = matches!(list.owner, ListOwner::Zone(_) | ListOwner::Level(_));
    let mut header = words.header.to_vec();
    if many_owners {
        header.insert(2, words.holder);
    }
    let mut t = table(&header);
    t.set_content_arrangement(ContentArrangement::Dynamic);
    for item in list.items.iter().take(limit) {
        let others: Vec<String> = list
            .others(item)
            .into_iter()
            .map(|a| assignee_name(engine, a))
            .collect();
        let mut row = vec![
            item.due_at
                .map_or_else(|| "-".to_owned(), |d| short_time(calendar, d)),
            if item.overdue { words.overdue } else { "" }.to_owned(),
            item.action.label(lang).to_owned(),
            list.number(item)
                .map_or_else(|| short_case_id(&item.case.case_id), |n| n.to_string()),
            item.case.stage.label(lang).to_owned(),
            item.case.title.clone(),
            place_name(engine, &item.case.place),
            item.priority.label(lang).to_owned(),
            others.join("、"),
        ];
        if many_owners {
            row.insert(2, assignee_name(engine, &item.assignee));
        }
        t.add_row(row);
    }
    let more = if list.items.len() > limit {
        format!(
            "\n{}",
            words
                .more
                .replace("{n}", &(list.items.len() - limit).to_string())
        )
    } else {
        String::new()
    };
    format!("{heading}\n{t}{more}")
}

/// The last eight hex digits of a case id (the random end of a UUIDv7; its start is the
/// time, shared by cases reported together): enough to tell the rows of a list apart. The
/// JSON output carries the whole id.
fn short_case_id(id: &CaseId) -> String {
    let text = id.to_string();
    text[text.len().saturating_sub(8)..].to_owned()
}

/// A time in district time with its offset, e.g. `2026-05-31 09:00 +08:00`.
pub fn district_time(calendar: &Calendar, t: DateTime<Utc>) -> String {
    calendar
        .to_local(t)
        .format("%Y-%m-%d %H:%M %:z")
        .to_string()
}

/// A time in district time without the offset (for table cells under a heading that shows it).
fn short_time(calendar: &Calendar, t: DateTime<Utc>) -> String {
    calendar.to_local(t).format("%Y-%m-%d %H:%M").to_string()
}

/// A to-do list as JSON: every value whole (the full title, ids, machine names, and the
/// labels in the requested language beside them).
pub fn todo_json(engine: &Engine, list: &TodoList, lang: Lang) -> String {
    let calendar = &engine.district().calendar;
    let rows: Vec<_> = list
        .items
        .iter()
        .map(|i| {
            json!({
                "case_id": i.case.case_id,
                "case_number": list.number(i).map(|n| n.to_string()),
                "title": i.case.title,
                "stage": i.case.stage,
                "stage_label": i.case.stage.label(lang),
                "kind": i.case.kind,
                "category": i.case.category,
                "locality": i.case.place.locality,
                "village": i.case.place.village,
                "zone": i.case.place.zone,
                "place": place_name(engine, &i.case.place),
                "reporter_handle": i.case.reporter,
                "assignee": i.assignee,
                "assignee_name": assignee_name(engine, &i.assignee),
                "action": i.action,
                "action_label": i.action.label(lang),
                "due_at": i.due_at.map(|d| calendar.to_local(d)),
                "overdue": i.overdue,
                "priority": i.priority,
                "also_held_by": list.others(i),
            })
        })
        .collect();
    serde_json::to_string_pretty(&json!({
        "list": list.owner,
        "name": owner_name(engine, &list.owner, lang),
        "now": calendar.to_local(list.now),
        "language": lang.tag(),
        "total": list.items.len(),
        "overdue": list.overdue(),
        "items": rows,
    }))
    .unwrap_or_default()
}

/// A phrase in the requested language.
fn say_in(lang: Lang, zh: &'static str, en: &'static str) -> &'static str {
    match lang {
        Lang::ZhCn => zh,
        Lang::En => en,
    }
}

/// `label value, label value, ...` of a count map, with the values' labels.
fn counts<K: Label>(map: &std::collections::BTreeMap<K, u64>, lang: Lang) -> String {
    map.iter()
        .map(|(k, v)| format!("{} {v}", k.label(lang)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The headline statistics as tables, in the district's language and time.
pub fn stats_tables(engine: &Engine, r: &StatsReport, lang: Lang) -> String {
    let w = |zh, en| say_in(lang, zh, en).to_owned();
    let pct = |x: Option<f64>| x.map_or_else(|| "-".to_owned(), |v| format!("{:.1}%", v * 100.0));
    let mut head = table(&[
        say_in(lang, "概况", "headline"),
        say_in(lang, "数值", "value"),
    ]);
    head.set_content_arrangement(ContentArrangement::Dynamic);
    let rect = &r.rectifications;
    let sat = &r.satisfaction;
    head.add_row(vec![w("案件", "cases"), r.cases.to_string()]);
    head.add_row(vec![w("在办案件", "open cases"), r.open_cases.to_string()]);
    head.add_row(vec![
        w("处理处分人数", "people disciplined"),
        r.people_disciplined.to_string(),
    ]);
    head.add_row(vec![
        w(
            "整改 下达 / 完成 / 逾期完成 / 逾期未完成",
            "rectifications ordered / completed / late / overdue",
        ),
        format!(
            "{} / {} / {} / {}",
            rect.ordered, rect.completed, rect.completed_late, rect.overdue
        ),
    ]);
    head.add_row(vec![
        w("回访 到位 / 未到位", "follow-up visits held / failed"),
        format!(
            "{} / {}",
            r.follow_up_visits.held, r.follow_up_visits.failed
        ),
    ]);
    head.add_row(vec![
        w(
            "满意度（满意 / 基本满意 / 不满意）",
            "satisfaction (satisfied / basically / unsatisfied)",
        ),
        format!(
            "{} ({} / {} / {})",
            pct(sat.rate),
            sat.satisfied,
            sat.basically_satisfied,
            sat.unsatisfied
        ),
    ]);
    let calendar = &engine.district().calendar;
    let mut out = format!(
        "{} {}\n{head}\n",
        say_in(lang, "统计时间", "Statistics at"),
        district_time(calendar, r.now)
    );
    out.push_str(&format!("{}\n", by_dimension(engine, r, lang)));
    out.push_str(&format!("{}\n", close_times(r, lang)));
    out.push_str(&on_time_table(engine, r, lang).to_string());
    out
}

fn by_dimension(engine: &Engine, r: &StatsReport, lang: Lang) -> Table {
    let w = |zh, en| say_in(lang, zh, en).to_owned();
    let mut by = table(&[say_in(lang, "维度", "by"), say_in(lang, "分布", "counts")]);
    by.set_content_arrangement(ContentArrangement::Dynamic);
    let org = &engine.district().org;
    let localities = r
        .by_locality
        .iter()
        .map(|(k, v)| {
            format!(
                "{} {v}",
                org.unit(k).map_or(k.as_str(), |u| u.name.as_str())
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    by.add_row(vec![
        w("群众诉求清单（类别）", "demand list (category)"),
        counts(&r.by_category, lang),
    ]);
    by.add_row(vec![w("阶段", "stage"), counts(&r.by_stage, lang)]);
    by.add_row(vec![w("类型", "kind"), counts(&r.by_kind, lang)]);
    by.add_row(vec![w("渠道", "channel"), counts(&r.by_channel, lang)]);
    by.add_row(vec![
        w("重点领域", "focus area"),
        counts(&r.by_focus_area, lang),
    ]);
    by.add_row(vec![w("镇街", "locality"), localities]);
    by.add_row(vec![
        w("线索处置方式", "clues by disposition"),
        counts(&r.clues_by_disposition, lang),
    ]);
    by
}

fn close_times(r: &StatsReport, lang: Lang) -> Table {
    let mut close = table(&[
        say_in(lang, "办结用时", "time to close"),
        say_in(lang, "办结数", "closed"),
        say_in(lang, "中位数", "median"),
        "p90",
    ]);
    let rows = r
        .time_to_close_by_kind
        .iter()
        .map(|(k, c)| (k.label(lang), c))
        .chain(
            r.time_to_close_by_level
                .iter()
                .map(|(l, c)| (l.label(lang), c)),
        );
    for (name, c) in rows {
        close.add_row(vec![
            name.to_owned(),
            c.count.to_string(),
            human_duration(c.median.num_seconds()),
            human_duration(c.p90.num_seconds()),
        ]);
    }
    close
}

fn on_time_table(engine: &Engine, r: &StatsReport, lang: Lang) -> Table {
    let pct = |x: Option<f64>| x.map_or_else(|| "-".to_owned(), |v| format!("{:.1}%", v * 100.0));
    let mut on_time: Vec<_> = r.on_time.iter().filter(|o| o.rate.is_some()).collect();
    on_time.sort_by(|a, b| {
        a.rate
            .partial_cmp(&b.rate)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let mut ot = table(&[
        say_in(lang, "按期办结率（最低 10 个）", "on-time rate (lowest 10)"),
        say_in(lang, "按期", "met"),
        say_in(lang, "超期", "missed"),
        say_in(lang, "在办逾期", "open overdue"),
        say_in(lang, "按期率", "rate"),
    ]);
    for o in on_time.iter().take(10) {
        ot.add_row(vec![
            assignee_name(engine, &o.assignee),
            o.met.to_string(),
            o.missed.to_string(),
            o.open_overdue.to_string(),
            pct(o.rate),
        ]);
    }
    ot
}

/// A case's state and timeline as JSON.
pub fn case_json(snapshot: &CaseSnapshot, report: &AuditReport) -> String {
    let events: Vec<_> = report
        .cases
        .first()
        .map(|c| {
            c.events
                .iter()
                .filter(|e| e.version <= snapshot.version)
                .collect()
        })
        .unwrap_or_default();
    let number = report.cases.first().and_then(|c| c.number);
    let mut value = json!({
        "case_id": snapshot.case_id,
        "case_number": number.map(|n| n.to_string()),
        "version": snapshot.version,
        "latest_version": snapshot.latest_version,
        "stage": snapshot.state.stage(),
        "state": public_state(snapshot),
        "timeline": events,
    });
    if let Some(fault) = report.cases.first().and_then(|c| c.chain_broken.as_ref()) {
        value["chain_broken"] = json!(fault);
    }
    serde_json::to_string_pretty(&value).unwrap_or_default()
}

/// The case state without the reporter's protected contact (only its opaque handle).
fn public_state(snapshot: &CaseSnapshot) -> serde_json::Value {
    let mut value = serde_json::to_value(&snapshot.state).unwrap_or_default();
    if let Some(case) = value.get_mut("case").and_then(|c| c.as_object_mut()) {
        case.remove("reporter");
    }
    value
}

/// A case's state and timeline as tables.
pub fn case_tables(snapshot: &CaseSnapshot, report: &AuditReport, offset: FixedOffset) -> String {
    let mut out = String::new();
    let state = &snapshot.state;
    let number = report.cases.first().and_then(|c| c.number);
    let title = match number {
        Some(n) => format!("{n} ({})", snapshot.case_id),
        None => snapshot.case_id.to_string(),
    };
    let mut head = table(&["case", &title]);
    if let Some(fault) = report.cases.first().and_then(|c| c.chain_broken.as_ref()) {
        head.add_row(vec![
            "hash chain".to_owned(),
            format!(
                "BROKEN {fault}: records were changed after they were written (run caseflow verify)"
            ),
        ]);
    }
    head.add_row(vec![
        "version".to_owned(),
        format!("{} of {}", snapshot.version, snapshot.latest_version),
    ]);
    head.add_row(vec!["stage".to_owned(), state.stage().to_string()]);
    if let Some(c) = state.case() {
        head.add_row(vec!["title".to_owned(), c.summary.clone()]);
        head.add_row(vec![
            "kind / channel".to_owned(),
            format!("{} / {}", name_of(&c.kind), name_of(&c.channel)),
        ]);
        head.add_row(vec!["focus area".to_owned(), name_of(&c.focus_area)]);
        head.add_row(vec![
            "place".to_owned(),
            format!(
                "{}{} ({})",
                c.locality,
                c.village
                    .as_ref()
                    .map(|v| format!("/{v}"))
                    .unwrap_or_default(),
                c.zone
            ),
        ]);
        head.add_row(vec![
            "reporter".to_owned(),
            format!("handle {}", c.reporter_handle),
        ]);
        if let Some(lead) = c.lead_unit() {
            head.add_row(vec!["lead unit".to_owned(), lead.to_string()]);
        }
        for d in c.deadlines.values() {
            head.add_row(vec![
                format!("deadline {}", name_of(&d.kind)),
                format!(
                    "due {}{}",
                    local(&d.due_at, offset),
                    if d.urged.is_some() { " (urged)" } else { "" }
                ),
            ]);
        }
        if let Some(o) = &c.outcome {
            head.add_row(vec!["outcome".to_owned(), name_of(o)]);
        }
    }
    out.push_str(&format!("{head}\n"));
    let mut events = table(&["v", "when", "who", "what", "stage"]);
    if let Some(case) = report.cases.first() {
        for e in case.events.iter().filter(|e| e.version <= snapshot.version) {
            let stage = if e.stage_before == e.stage_after {
                e.stage_after.to_string()
            } else {
                format!("{} → {}", e.stage_before, e.stage_after)
            };
            events.add_row(vec![
                e.version.to_string(),
                local(&e.at, offset),
                e.actor.clone(),
                e.event_type.clone(),
                stage,
            ]);
        }
    }
    out.push_str(&format!("{events}"));
    out
}
