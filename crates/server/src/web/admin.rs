//! The audit page (verify) and the simulation page (a shipped scenario run through the
//! simulator, with its charts).

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use caseflow::domain::Lang;
use caseflow_sim::district::DistrictChoice;
use maud::{Markup, html};
use serde::Deserialize;

use super::{frame_of, page, raw, tr};
use crate::access;
use crate::auth::WebUser;
use crate::problem::{ApiError, ProblemType};
use crate::state::App;

/// Whether to run the check now.
#[derive(Debug, Deserialize)]
pub struct AuditParams {
    verify: Option<String>,
}

/// The audit page: the integrity check on demand, and the exports.
pub async fn audit(
    user: WebUser,
    State(app): State<App>,
    headers: HeaderMap,
    Query(params): Query<AuditParams>,
) -> Result<Response, ApiError> {
    if !access::may_verify(user.0.access()) {
        return Err(ApiError::forbidden());
    }
    let frame = frame_of(&app, &headers, &user, "/audit");
    let lang = frame.lang;
    let outcome = match params.verify {
        Some(_) => Some(app.engine.verify().await?),
        None => None,
    };
    let title = tr(lang, "审计", "Audit");
    let body = html! {
        h1 { (title) }
        section.card {
            h2 { (tr(lang, "完整性校验", "Integrity check")) }
            p { (tr(lang, "逐条校验每个案件的哈希链，并用日志重建全部读模型与当前读模型比对。",
                "Walks every case's hash chain and rebuilds every read model from the log to compare with the live one.")) }
            form method="get" action="/audit" {
                input type="hidden" name="verify" value="1";
                button.primary type="submit" { (tr(lang, "运行校验", "Run the check")) }
            }
            @if let Some(o) = &outcome { (verify_result(lang, o)) }
        }
        @if access::may_export(user.0.access()) {
            section.card {
                h2 { (tr(lang, "导出（过程挖掘）", "Exports (process mining)")) }
                ul {
                    li { a href="/api/v1/export/xes" { "XES (IEEE 1849)" } }
                    li { a href="/api/v1/export/ocel" { "OCEL 2.0 JSON" } }
                }
                p.meta { (tr(lang, "导出只含反映人的匿名代号，不含联系方式。", "Exports carry only the reporter's opaque handle, never a contact.")) }
            }
        }
    };
    Ok(page(&frame, title, body).into_response())
}

fn verify_result(lang: Lang, o: &caseflow::audit::VerifyOutcome) -> Markup {
    html! {
        @if o.is_ok() {
            p.flash.good role="status" { (tr(lang, "全部通过：", "All holds: ")) (o.streams_checked) (tr(lang, " 个案件，", " cases, ")) (o.events_checked) (tr(lang, " 条事件。", " events.")) }
        } @else {
            p.flash.bad role="alert" { (tr(lang, "发现问题", "Something is broken")) }
            @if !o.broken_cases.is_empty() {
                h2 { (tr(lang, "哈希链断裂", "Broken hash chains")) }
                ul { @for b in &o.broken_cases { li { code { (b.stream_id) } " v" (b.version) "：" (b.fault) } } }
            }
            @if !o.divergent_read_models.is_empty() {
                h2 { (tr(lang, "读模型与重建不一致", "Read models that differ from a rebuild")) }
                ul { @for d in &o.divergent_read_models { li { (d.name) "：" (d.detail) } } }
            }
            @for e in &o.errors { p { (e) } }
        }
    }
}

/// The scenarios shipped with Caseflow, by name.
pub const SCENARIOS: &[(&str, &str)] = &[
    (
        "district-year",
        include_str!("../../../../examples/scenarios/district-year.toml"),
    ),
    (
        "online-doubled",
        include_str!("../../../../examples/scenarios/online-doubled.toml"),
    ),
    (
        "cross-inspection-all",
        include_str!("../../../../examples/scenarios/cross-inspection-all.toml"),
    ),
    (
        "four-zones",
        include_str!("../../../../examples/scenarios/four-zones.toml"),
    ),
    (
        "mmc",
        include_str!("../../../../examples/scenarios/mmc.toml"),
    ),
];

/// Which scenario, with which seed.
#[derive(Debug, Deserialize)]
pub struct SimulationParams {
    scenario: Option<String>,
    seed: Option<u64>,
}

/// The simulation page: pick a shipped scenario and a seed; the run's figures and charts.
pub async fn simulation(
    user: WebUser,
    State(app): State<App>,
    headers: HeaderMap,
    Query(params): Query<SimulationParams>,
) -> Result<Response, ApiError> {
    if matches!(user.0.access(), crate::users::Access::Admin) {
        return Err(ApiError::forbidden());
    }
    let frame = frame_of(&app, &headers, &user, "/simulation");
    let lang = frame.lang;
    let chosen = params.scenario.as_deref().unwrap_or(SCENARIOS[0].0);
    let report = match params.scenario.as_deref() {
        Some(name) => Some(run(&app, name, params.seed).await?),
        None => None,
    };
    let title = tr(lang, "工作流仿真", "Workflow simulation");
    let body = html! {
        h1 { (title) }
        section.card {
            p { (tr(lang, "用随附的情景驱动仿真模型（同一种子，结果可复现），查看积压、等待、超时和人员负荷。",
                "Runs a shipped scenario through the simulator (same seed, same result) and shows backlog, waits, breaches and staff load.")) }
            form method="get" action="/simulation" {
                label { (tr(lang, "情景", "Scenario")) select name="scenario" {
                    @for (name, _) in SCENARIOS { option value=(name) selected[*name == chosen] { (name) } }
                } }
                label { (tr(lang, "随机种子（留空用情景自带）", "Seed (empty: the scenario's)")) input type="number" name="seed" min="0" value=[params.seed]; }
                button.primary type="submit" { (tr(lang, "运行", "Run")) }
            }
        }
        @if let Some(html) = report { section.card.charts { (raw(html)) } }
    };
    Ok(page(&frame, title, body).into_response())
}

async fn run(app: &App, name: &str, seed: Option<u64>) -> Result<String, ApiError> {
    let text = SCENARIOS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
        .ok_or_else(|| ApiError::not_found(format!("no scenario `{name}`")))?;
    let scenario = caseflow_sim::Scenario::from_toml_str(text).map_err(|e| {
        tracing::error!(scenario = name, error = %e, "a shipped scenario does not load");
        ApiError::new(ProblemType::Internal, "the simulation failed; see the log")
    })?;
    let _permit = app.simulations.try_acquire().map_err(|_| {
        ApiError::new(
            ProblemType::Unavailable,
            "another simulation is running; try again in a moment",
        )
        .retry_after(5)
    })?;
    let seed = seed.unwrap_or(scenario.simulation.seed);
    // A scenario that names a district file runs on the served district (its file, or the
    // built-in sample) instead: the shipped scenarios name theirs relative to a checkout,
    // which a deployed server does not have. One that generates its district keeps it.
    let district = match &app.config.district {
        _ if scenario.simulation.district.is_none() => DistrictChoice::Scenario,
        Some(path) => DistrictChoice::File(path.clone()),
        None => DistrictChoice::Text {
            name: "the built-in sample district".to_owned(),
            text: caseflow::SAMPLE_DISTRICT_TOML.to_owned(),
        },
    };
    let failed = |e: &dyn std::fmt::Display| {
        tracing::error!(scenario = name, error = %e, "simulation failed");
        ApiError::new(ProblemType::Internal, "the simulation failed; see the log")
    };
    let summary = tokio::task::spawn_blocking(move || {
        let district = caseflow_sim::district::build(&scenario, &district)?;
        let options = caseflow_sim::RunOptions {
            record_steps: false,
            digest: true,
        };
        let mut sim = caseflow_sim::Simulation::on_district(&scenario, district, seed, options);
        sim.run_to_end()?;
        Ok::<_, caseflow_sim::SimError>(caseflow_sim::finish_summary(&sim, seed))
    })
    .await
    .map_err(|e| failed(&e))?
    .map_err(|e| failed(&e))?;
    Ok(body_of(&caseflow_sim::report::html(&summary)))
}

/// The body of the simulator's self-contained report (its charts are inline SVG).
fn body_of(document: &str) -> String {
    let start = document.find("<body>").map_or(0, |i| i + "<body>".len());
    let end = document.rfind("</body>").unwrap_or(document.len());
    document.get(start..end).unwrap_or_default().to_owned()
}
