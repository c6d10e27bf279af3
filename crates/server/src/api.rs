//! The JSON API under `/api/v1`. Every handler is annotated for the OpenAPI document
//! (utoipa) and registered through `utoipa-axum`, so a route cannot exist without its
//! documentation. Commands are authorised by the domain; queries by [`crate::access`].

use axum::extract::{FromRequest, FromRequestParts, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use caseflow::domain::{
    Assignee, CaseId, CaseState, Command, Label, Lang, Level, NextCommand, NextContext,
    ProtectedContact, ReportCase, Reporter, ReporterHandle, command_options, next_commands,
};
use caseflow::{CommandEnvelope, derived_id};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::access::{self, CaseContext};
use crate::auth::Principal;
use crate::problem::{ApiError, Problem, ProblemType};
use crate::state::App;
use crate::users::Access;
use crate::views::{
    CaseNumbers, CaseView, CommandResult, HolderView, ListHead, MeView, NextCommandView,
    TimelineView, TodoPageView, assignee_name, local_time, machine_name, redacted_case, unit_name,
};

/// The JSON body extractor whose rejections are problems.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// The query extractor whose rejections are problems.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// The path extractor whose rejections are problems (a malformed id is a path that does
/// not exist: 404).
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

impl<T: serde::Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// Most items a list page returns.
pub const PAGE_LIMIT_MAX: usize = 500;
/// Items a list page returns when the request does not say.
pub const PAGE_LIMIT_DEFAULT: usize = 50;

/// Paging, time and language of a list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Judge overdue at this time (RFC 3339); default: now.
    pub now: Option<DateTime<Utc>>,
    /// Items to skip.
    pub offset: Option<usize>,
    /// Items to return (at most 500, default 50).
    pub limit: Option<usize>,
    /// `zh-CN` or `en` labels (default: the district's language).
    pub lang: Option<String>,
}

impl ListQuery {
    fn window(&self) -> (usize, usize) {
        (
            self.offset.unwrap_or(0),
            self.limit
                .unwrap_or(PAGE_LIMIT_DEFAULT)
                .clamp(1, PAGE_LIMIT_MAX),
        )
    }
}

/// Only the language.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LangQuery {
    /// `zh-CN` or `en` labels (default: the district's language).
    pub lang: Option<String>,
}

/// The language a request asks for.
pub fn lang_of(app: &App, tag: Option<&str>) -> Lang {
    tag.and_then(Lang::parse).unwrap_or(app.lang)
}

/// Every JSON API route, with its documentation.
pub fn router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(my_todo))
        .routes(routes!(unit_todo))
        .routes(routes!(level_todo))
        .routes(routes!(zone_todo))
        .routes(routes!(department_todo))
        .routes(routes!(report_case))
        .routes(routes!(get_case))
        .routes(routes!(issue_command))
        .routes(routes!(case_next))
        .routes(routes!(case_timeline))
        .routes(routes!(case_as_of))
        .routes(routes!(case_audit))
        .routes(routes!(crate::reveal::reveal_contact))
        .routes(routes!(crate::api_audit::stats))
        .routes(routes!(crate::api_audit::verify))
        .routes(routes!(crate::api_audit::audit_range))
        .routes(routes!(crate::api_audit::export_xes))
        .routes(routes!(crate::api_audit::export_ocel))
        .routes(routes!(crate::feed::events))
}

/// Who is signed in.
#[utoipa::path(get, path = "/api/v1/me", tag = "users",
    responses((status = 200, body = MeView), (status = 401, body = Problem), (status = 429, body = Problem)))]
async fn me(principal: Principal, State(app): State<App>) -> ApiJson<MeView> {
    let user = &principal.user;
    let actor = user.access.actor();
    ApiJson(MeView {
        username: user.username.clone(),
        display_name: user.display_name.clone(),
        kind: match &user.access {
            Access::Staff { .. } => "staff",
            Access::Auditor => "auditor",
            Access::Admin => "admin",
        }
        .to_owned(),
        unit: actor.map(|a| a.unit.to_string()),
        unit_name: actor.map(|a| unit_name(app.org(), &a.unit)),
        role: actor.map(|a| a.role.to_string()),
    })
}

/// The human numbers of the cases of `items`.
pub async fn numbers_of(
    app: &App,
    items: &[caseflow::projections::TodoItem],
) -> Result<CaseNumbers, ApiError> {
    let ids: Vec<CaseId> = items.iter().map(|i| i.case.case_id).collect();
    Ok(app.engine.case_numbers(&ids).await?)
}

/// The human numbers of the cases on one page of a merged list.
async fn page_numbers(
    app: &App,
    items: &[caseflow::projections::TodoItem],
    window: (usize, usize),
) -> Result<CaseNumbers, ApiError> {
    let end = window.0.saturating_add(window.1).min(items.len());
    numbers_of(app, items.get(window.0..end).unwrap_or_default()).await
}

async fn unit_page(
    app: &App,
    unit: &caseflow::domain::UnitId,
    query: &ListQuery,
) -> Result<TodoPageView, ApiError> {
    let now = query.now.unwrap_or_else(|| app.engine.now());
    let window = query.window();
    let page = app
        .engine
        .todo_page(&Assignee::Unit(unit.clone()), now, window.0, window.1)
        .await?;
    let numbers = numbers_of(app, &page.items).await?;
    Ok(TodoPageView::from_page(
        ListHead {
            list: unit.to_string(),
            name: unit_name(app.org(), unit),
            now,
        },
        &page,
        &numbers,
        window,
        app.engine.district(),
        lang_of(app, query.lang.as_deref()),
    ))
}

/// The signed-in staff member's unit's list, overdue first.
#[utoipa::path(get, path = "/api/v1/todo/mine", tag = "to-do", params(ListQuery),
    responses((status = 200, body = TodoPageView), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 429, body = Problem)))]
async fn my_todo(
    principal: Principal,
    State(app): State<App>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<ApiJson<TodoPageView>, ApiError> {
    let actor = principal.access().actor().ok_or_else(ApiError::forbidden)?;
    Ok(ApiJson(unit_page(&app, &actor.unit, &query).await?))
}

/// One unit's list, overdue first.
#[utoipa::path(get, path = "/api/v1/todo/units/{unit}", tag = "to-do",
    params(("unit" = String, Path, description = "Unit id, e.g. `room-1`"), ListQuery),
    responses((status = 200, body = TodoPageView), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 429, body = Problem)))]
async fn unit_todo(
    principal: Principal,
    State(app): State<App>,
    ApiPath(unit): ApiPath<String>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<ApiJson<TodoPageView>, ApiError> {
    let unit = caseflow::domain::UnitId::from(unit);
    if app.org().unit(&unit).is_none() {
        return Err(ApiError::not_found(format!("no unit `{unit}`")));
    }
    if !access::may_read_unit_list(principal.access(), &unit, app.org()) {
        return Err(ApiError::forbidden());
    }
    Ok(ApiJson(unit_page(&app, &unit, &query).await?))
}

fn parse_level(name: &str) -> Option<Level> {
    [Level::Room, Level::Team, Level::Locality, Level::Village]
        .into_iter()
        .find(|l| l.to_string() == name)
}

/// Every item of one level (`room`, `team`, `locality`, `village`); a room leader sees
/// the level's units in the room's zone.
#[utoipa::path(get, path = "/api/v1/todo/levels/{level}", tag = "to-do",
    params(("level" = String, Path, description = "`room`, `team`, `locality` or `village`"), ListQuery),
    responses((status = 200, body = TodoPageView), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 429, body = Problem)))]
async fn level_todo(
    principal: Principal,
    State(app): State<App>,
    ApiPath(level): ApiPath<String>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<ApiJson<TodoPageView>, ApiError> {
    let level =
        parse_level(&level).ok_or_else(|| ApiError::not_found(format!("no level `{level}`")))?;
    let scope =
        access::level_scope(principal.access(), app.org()).ok_or_else(ApiError::forbidden)?;
    let now = query.now.unwrap_or_else(|| app.engine.now());
    let mut items = app.engine.todo_for_level(level, now).await?;
    if let access::LevelScope::Zone(zone) = scope {
        items.retain(|i| match i.assignee.as_ref() {
            Assignee::Unit(u) => app.org().zone_of(u) == Some(zone),
            Assignee::Department(_) => false,
        });
    }
    let lang = lang_of(&app, query.lang.as_deref());
    let numbers = page_numbers(&app, &items, query.window()).await?;
    Ok(ApiJson(TodoPageView::from_items(
        ListHead {
            list: level.to_string(),
            name: level.label(lang).to_owned(),
            now,
        },
        &items,
        &numbers,
        query.window(),
        app.engine.district(),
        lang,
    )))
}

/// Every item on the lists of one collaboration zone's units.
#[utoipa::path(get, path = "/api/v1/todo/zones/{zone}", tag = "to-do",
    params(("zone" = String, Path, description = "Zone id, e.g. `zone-1`"), ListQuery),
    responses((status = 200, body = TodoPageView), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 429, body = Problem)))]
async fn zone_todo(
    principal: Principal,
    State(app): State<App>,
    ApiPath(zone): ApiPath<String>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<ApiJson<TodoPageView>, ApiError> {
    let zone = caseflow::domain::ZoneId::from(zone);
    let name = app
        .org()
        .zone(&zone)
        .map(|z| z.name.clone())
        .ok_or_else(|| ApiError::not_found(format!("no zone `{zone}`")))?;
    if !access::may_read_zone(principal.access(), &zone, app.org()) {
        return Err(ApiError::forbidden());
    }
    let now = query.now.unwrap_or_else(|| app.engine.now());
    let items = app.engine.todo_for_zone(&zone, now).await?;
    let numbers = page_numbers(&app, &items, query.window()).await?;
    Ok(ApiJson(TodoPageView::from_items(
        ListHead {
            list: zone.to_string(),
            name,
            now,
        },
        &items,
        &numbers,
        query.window(),
        app.engine.district(),
        lang_of(&app, query.lang.as_deref()),
    )))
}

/// One partner department's list (the rectifications it answers for).
#[utoipa::path(get, path = "/api/v1/todo/departments/{department}", tag = "to-do",
    params(("department" = String, Path, description = "Department id, e.g. `dept-finance`"), ListQuery),
    responses((status = 200, body = TodoPageView), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 429, body = Problem)))]
async fn department_todo(
    principal: Principal,
    State(app): State<App>,
    ApiPath(department): ApiPath<String>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<ApiJson<TodoPageView>, ApiError> {
    let department = caseflow::domain::DepartmentId::from(department);
    if app.org().department(&department).is_none() {
        return Err(ApiError::not_found(format!("no department `{department}`")));
    }
    if !access::may_read_department(principal.access(), &department, app.org()) {
        return Err(ApiError::forbidden());
    }
    let now = query.now.unwrap_or_else(|| app.engine.now());
    let items = app.engine.todo_for_department(&department, now).await?;
    let numbers = page_numbers(&app, &items, query.window()).await?;
    Ok(ApiJson(TodoPageView::from_items(
        ListHead {
            list: department.to_string(),
            name: assignee_name(app.org(), &Assignee::Department(department.clone())),
            now,
        },
        &items,
        &numbers,
        query.window(),
        app.engine.district(),
        lang_of(&app, query.lang.as_deref()),
    )))
}

/// The `Idempotency-Key` header: the command id.
pub fn idempotency_key(headers: &HeaderMap) -> Result<Uuid, ApiError> {
    let value = headers
        .get("idempotency-key")
        .ok_or_else(|| ApiError::bare(ProblemType::IdempotencyKeyMissing))?;
    value
        .to_str()
        .ok()
        .and_then(|v| Uuid::parse_str(v.trim().trim_matches('"')).ok())
        .ok_or_else(|| {
            ApiError::new(
                ProblemType::IdempotencyKeyMissing,
                "the Idempotency-Key header must hold a UUID",
            )
        })
}

/// Who reported a case.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ReporterInput {
    /// No name given.
    Anonymous,
    /// A named reporter: the contact is kept protected and shown only through the reporter
    /// reveal path.
    Named {
        /// The reporter's name.
        name: String,
        /// The reporter's phone.
        phone: String,
    },
}

/// A new case, as an intake desk registers it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportRequest {
    /// How it came in (e.g. `hotline`, `petition_window`).
    #[schema(value_type = String, example = "hotline")]
    pub channel: caseflow::domain::Channel,
    /// `complaint`, `consultation`, `suggestion` or `problem_clue`.
    #[schema(value_type = String, example = "complaint")]
    pub kind: caseflow::domain::CaseKind,
    /// The matter in a sentence or two.
    pub summary: String,
    /// The town or street (locality unit id).
    pub locality: String,
    /// The village or community, if known.
    pub village: Option<String>,
    /// The person or unit the matter is about.
    pub subject: String,
    /// The focus area, e.g. `living_environment`.
    #[schema(value_type = String, example = "living_environment")]
    pub focus_area: caseflow::domain::FocusArea,
    /// Who reported it.
    pub reporter: ReporterInput,
    /// The transferring department (channel `department_transfer` only).
    pub source_department: Option<String>,
}

impl ReportRequest {
    /// The domain command for a report whose command id is `command_id`. The case id and
    /// the reporter handle are derived from the command id, so a retried report names the
    /// same case and the ledger turns it into a replay.
    pub fn into_command(self, command_id: Uuid) -> ReportCase {
        let key = command_id.to_string();
        ReportCase {
            case_id: CaseId::new(derived_id("caseflow.server.report.case.v1", &[&key])),
            channel: self.channel,
            kind: self.kind,
            summary: self.summary,
            locality: self.locality.into(),
            village: self.village.filter(|v| !v.is_empty()).map(Into::into),
            subject: self.subject,
            focus_area: self.focus_area,
            reporter: match self.reporter {
                ReporterInput::Anonymous => Reporter::Anonymous,
                ReporterInput::Named { name, phone } => {
                    Reporter::Named(ProtectedContact::new(name, phone))
                }
            },
            reporter_handle: ReporterHandle(derived_id(
                "caseflow.server.report.reporter.v1",
                &[&key],
            )),
            source_department: self
                .source_department
                .filter(|d| !d.is_empty())
                .map(Into::into),
        }
    }
}

/// Executes a command for a staff member (auditors and admins issue none) and records it
/// in the metrics.
pub async fn execute(
    app: &App,
    principal: &Principal,
    command_id: Uuid,
    command: Command,
) -> Result<CommandResult, ApiError> {
    let actor = principal.access().actor().cloned().ok_or_else(|| {
        metrics::counter!("caseflow_commands_total", "command" => command.name(), "outcome" => "forbidden").increment(1);
        ApiError::forbidden()
    })?;
    let name = command.name();
    let span = tracing::info_span!("command", %command_id, command = name, case_id = %command.case_id(), actor = %actor);
    let started = std::time::Instant::now();
    let envelope = CommandEnvelope::new(command_id, actor, app.engine.now(), command);
    let result = tracing::Instrument::instrument(app.engine.execute(envelope), span).await;
    let outcome = match &result {
        Ok(o) if o.replayed => "replayed",
        Ok(_) => "written",
        Err(e) if e.is_caller_error() => "rejected",
        Err(e) if e.is_retryable() => "retry",
        Err(_) => "failed",
    };
    metrics::counter!("caseflow_commands_total", "command" => name, "outcome" => outcome)
        .increment(1);
    metrics::histogram!("caseflow_command_duration_seconds", "command" => name)
        .record(started.elapsed().as_secs_f64());
    if let Err(error) = &result {
        tracing::info!(%command_id, command = name, outcome, %error, "command not executed");
    }
    let outcome = result?;
    metrics::histogram!("caseflow_store_append_events").record(outcome.events.len() as f64);
    tracing::info!(%command_id, command = name, replayed = outcome.replayed, version = outcome.last_version, "command executed");
    let stage = app
        .engine
        .case_state(outcome.case_id)
        .await
        .map(|s| s.stage().as_str().to_owned())
        .unwrap_or_default();
    Ok(CommandResult {
        command_id: command_id.to_string(),
        case_id: outcome.case_id.to_string(),
        replayed: outcome.replayed,
        version: outcome.last_version,
        events: outcome
            .events
            .iter()
            .map(|e| e.event_type().to_owned())
            .collect(),
        stage,
    })
}

/// Registers a new case (`ReportCase`). The `Idempotency-Key` is the command id; the case
/// id is derived from it, so a retry writes nothing and returns the same case.
#[utoipa::path(post, path = "/api/v1/cases", tag = "cases", request_body = ReportRequest,
    params(("Idempotency-Key" = String, Header, description = "A UUID per intent (the command id)")),
    responses((status = 201, body = CommandResult), (status = 200, description = "A replay of an earlier request with the same key", body = CommandResult),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 409, body = Problem), (status = 413, body = Problem), (status = 415, body = Problem),
        (status = 422, body = Problem), (status = 429, body = Problem), (status = 503, body = Problem)))]
async fn report_case(
    principal: Principal,
    State(app): State<App>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<ReportRequest>,
) -> Result<(StatusCode, ApiJson<CommandResult>), ApiError> {
    let command_id = idempotency_key(&headers)?;
    let command = Command::ReportCase(request.into_command(command_id));
    let result = execute(&app, &principal, command_id, command).await?;
    let status = if result.replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, ApiJson(result)))
}

/// Everything a case page needs, loaded once and checked against the query rules.
pub struct LoadedCase {
    /// The case now.
    pub state: CaseState,
    /// Who it waits on.
    pub holders: Vec<caseflow::domain::Obligation>,
    /// Its timeline.
    pub timeline: caseflow::projections::CaseTimeline,
    /// Its next commands (for everyone).
    pub next: Vec<NextCommand>,
    /// Its human number (`2026-0042`).
    pub number: Option<caseflow::domain::CaseNumber>,
}

/// Loads a case for `access`: 404 when it does not exist, 403 when the reader may not see it.
pub async fn load_case(
    app: &App,
    access: &Access,
    case_id: CaseId,
    now: DateTime<Utc>,
) -> Result<LoadedCase, ApiError> {
    let state = app.engine.case_state(case_id).await?;
    let holders = app
        .engine
        .case_holders(case_id)
        .await?
        .map(|h| h.obligations)
        .unwrap_or_default();
    let timeline = app.engine.timeline(case_id, now).await?;
    let district = app.engine.district();
    let ctx = NextContext::new(&district.org, &district.calendar, &district.policies, now);
    let next = next_commands(&state, &ctx);
    let assignees: Vec<Assignee> = holders.iter().map(|o| o.assignee.clone()).collect();
    let actors: Vec<String> = timeline
        .entries
        .iter()
        .map(|e| e.actor.to_string())
        .collect();
    let context = CaseContext {
        state: &state,
        holders: &assignees,
        history_actors: &actors,
        next: &next,
    };
    if !access::may_read_case(access, &context, &district.org) {
        return Err(ApiError::forbidden());
    }
    let number = app.engine.case_number(case_id).await?;
    Ok(LoadedCase {
        state,
        holders,
        timeline,
        next,
        number,
    })
}

/// The commands of `next` the principal may issue.
pub fn mine<'a>(principal: &Principal, next: &'a [NextCommand]) -> Vec<&'a NextCommand> {
    match principal.access().actor() {
        Some(actor) => next.iter().filter(|n| n.may_issue(actor)).collect(),
        None => Vec::new(),
    }
}

fn case_view(app: &App, principal: &Principal, loaded: &LoadedCase, lang: Lang) -> CaseView {
    let district = app.engine.district();
    let org = &district.org;
    let case = loaded.state.case();
    CaseView {
        case_id: case.map(|c| c.id.to_string()).unwrap_or_default(),
        case_number: loaded.number.map(|n| n.to_string()),
        version: loaded.state.version(),
        stage: loaded.state.stage().as_str().to_owned(),
        stage_label: loaded.state.stage().label(lang).to_owned(),
        kind_label: case
            .map(|c| c.kind.label(lang).to_owned())
            .unwrap_or_default(),
        locality_name: case
            .map(|c| unit_name(org, &c.locality))
            .unwrap_or_default(),
        village_name: case
            .and_then(|c| c.village.as_ref())
            .map(|v| unit_name(org, v)),
        lead_unit_name: case.and_then(|c| c.lead_unit()).map(|u| unit_name(org, u)),
        reporter_handle: case
            .map(|c| c.reporter_handle.to_string())
            .unwrap_or_default(),
        reporter_named: case.is_some_and(|c| !matches!(c.reporter, Reporter::Anonymous)),
        case: redacted_case(&loaded.state),
        holders: loaded
            .holders
            .iter()
            .map(|o| HolderView {
                assignee: o.assignee.to_string(),
                name: assignee_name(org, &o.assignee),
                action: machine_name(&o.action),
                action_label: o.action.label(lang).to_owned(),
                due_at: o.due_at,
                due_local: o.due_at.map(|t| local_time(district, t)),
            })
            .collect(),
        next_commands: mine(principal, &loaded.next)
            .into_iter()
            .map(|n| NextCommandView::of(n, lang))
            .collect(),
    }
}

/// A case now, with who holds it and the commands the reader may issue.
#[utoipa::path(get, path = "/api/v1/cases/{case_id}", tag = "cases",
    params(("case_id" = Uuid, Path, description = "The case"), LangQuery),
    responses((status = 200, body = CaseView), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 429, body = Problem)))]
async fn get_case(
    principal: Principal,
    State(app): State<App>,
    ApiPath(case_id): ApiPath<Uuid>,
    ApiQuery(query): ApiQuery<LangQuery>,
) -> Result<ApiJson<CaseView>, ApiError> {
    let now = app.engine.now();
    let loaded = load_case(&app, principal.access(), CaseId::new(case_id), now).await?;
    Ok(ApiJson(case_view(
        &app,
        &principal,
        &loaded,
        lang_of(&app, query.lang.as_deref()),
    )))
}

/// Issues any command on an existing case. The body is the domain's command as JSON,
/// tagged by `type` (e.g. `{"type":"AcceptCase","case_id":"..."}`; the drafts in a case's
/// `next_commands` are ready-made bodies). The domain decides whether the signed-in user's
/// unit and role may issue it now.
#[utoipa::path(post, path = "/api/v1/cases/{case_id}/commands", tag = "cases",
    params(("case_id" = Uuid, Path, description = "The case"),
        ("Idempotency-Key" = String, Header, description = "A UUID per intent (the command id)")),
    request_body(content = Object, description = "A domain command, tagged by `type`; its `case_id` must be the path's"),
    responses((status = 200, body = CommandResult), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 413, body = Problem), (status = 415, body = Problem), (status = 422, body = Problem),
        (status = 429, body = Problem), (status = 503, body = Problem)))]
async fn issue_command(
    principal: Principal,
    State(app): State<App>,
    ApiPath(case_id): ApiPath<Uuid>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<ApiJson<CommandResult>, ApiError> {
    let command_id = idempotency_key(&headers)?;
    let command: Command = serde_json::from_value(body)
        .map_err(|e| ApiError::new(ProblemType::InvalidInput, format!("not a command: {e}")))?;
    if matches!(command, Command::ReportCase(_)) {
        return Err(ApiError::new(
            ProblemType::InvalidInput,
            "a new case is reported with POST /api/v1/cases",
        ));
    }
    if command.case_id().as_uuid() != case_id {
        return Err(ApiError::new(
            ProblemType::InvalidInput,
            "the command's case_id is not the case of the path",
        ));
    }
    // The case must exist (404 before the domain's refusal).
    app.engine.case_state(CaseId::new(case_id)).await?;
    Ok(ApiJson(
        execute(&app, &principal, command_id, command).await?,
    ))
}

/// The commands the reader may issue on a case now, each with the legal values of its
/// constrained fields.
#[utoipa::path(get, path = "/api/v1/cases/{case_id}/next", tag = "cases",
    params(("case_id" = Uuid, Path, description = "The case"), LangQuery),
    responses((status = 200, body = Vec<Object>, description = "Each next command with `options`"),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 429, body = Problem)))]
async fn case_next(
    principal: Principal,
    State(app): State<App>,
    ApiPath(case_id): ApiPath<Uuid>,
    ApiQuery(query): ApiQuery<LangQuery>,
) -> Result<ApiJson<Vec<serde_json::Value>>, ApiError> {
    let now = app.engine.now();
    let loaded = load_case(&app, principal.access(), CaseId::new(case_id), now).await?;
    let district = app.engine.district();
    let ctx = NextContext::new(&district.org, &district.calendar, &district.policies, now);
    let lang = lang_of(&app, query.lang.as_deref());
    let listed = mine(&principal, &loaded.next)
        .into_iter()
        .map(|n| {
            let options = command_options(&loaded.state, n.kind, &ctx);
            let mut value = serde_json::to_value(NextCommandView::of(n, lang)).unwrap_or_default();
            if let Some(o) = value.as_object_mut() {
                o.insert(
                    "options".to_owned(),
                    serde_json::to_value(options).unwrap_or_default(),
                );
            }
            value
        })
        .collect();
    Ok(ApiJson(listed))
}

/// A case's timeline: every event with its actor, time and stage, and time per stage.
#[utoipa::path(get, path = "/api/v1/cases/{case_id}/timeline", tag = "cases",
    params(("case_id" = Uuid, Path, description = "The case"), LangQuery),
    responses((status = 200, body = TimelineView), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 429, body = Problem)))]
async fn case_timeline(
    principal: Principal,
    State(app): State<App>,
    ApiPath(case_id): ApiPath<Uuid>,
    ApiQuery(query): ApiQuery<LangQuery>,
) -> Result<ApiJson<TimelineView>, ApiError> {
    let now = app.engine.now();
    let loaded = load_case(&app, principal.access(), CaseId::new(case_id), now).await?;
    Ok(ApiJson(TimelineView::of(
        &loaded.timeline,
        app.engine.district(),
        lang_of(&app, query.lang.as_deref()),
    )))
}

/// Which point of a case's history.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AsOfQuery {
    /// After this many events.
    pub version: Option<u64>,
    /// As the store had recorded it at this time (RFC 3339).
    pub time: Option<DateTime<Utc>>,
}

/// A case as it stood after `version` events, or as recorded at `time`.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct AsOfView {
    /// The case.
    pub case_id: String,
    /// Events applied.
    pub version: u64,
    /// The case's latest version.
    pub latest_version: u64,
    /// The stage then.
    pub stage: String,
    /// The record then, without the reporter's contact (null before the case existed).
    #[schema(value_type = Object)]
    pub case: serde_json::Value,
}

/// A case at a version or time of its history (exactly one of `version` and `time`).
#[utoipa::path(get, path = "/api/v1/cases/{case_id}/as-of", tag = "cases",
    params(("case_id" = Uuid, Path, description = "The case"), AsOfQuery),
    responses((status = 200, body = AsOfView), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 429, body = Problem)))]
async fn case_as_of(
    principal: Principal,
    State(app): State<App>,
    ApiPath(case_id): ApiPath<Uuid>,
    ApiQuery(query): ApiQuery<AsOfQuery>,
) -> Result<ApiJson<AsOfView>, ApiError> {
    let case_id = CaseId::new(case_id);
    load_case(&app, principal.access(), case_id, app.engine.now()).await?;
    let snapshot = match (query.version, query.time) {
        (Some(v), None) => app.engine.state_as_of_version(case_id, v).await?,
        (None, Some(t)) => app.engine.state_as_of_time(case_id, t).await?,
        _ => {
            return Err(ApiError::new(
                ProblemType::BadRequest,
                "give exactly one of `version` and `time`",
            ));
        }
    };
    Ok(ApiJson(AsOfView {
        case_id: case_id.to_string(),
        version: snapshot.version,
        latest_version: snapshot.latest_version,
        stage: snapshot.state.stage().as_str().to_owned(),
        case: redacted_case(&snapshot.state),
    }))
}

/// The audit report's format.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditFormat {
    /// `json` (default) or `md`.
    pub format: Option<String>,
}

/// Renders an audit report as JSON or Markdown.
pub fn audit_response(
    app: &App,
    report: &caseflow::audit::AuditReport,
    format: Option<&str>,
) -> Result<Response, ApiError> {
    match format.unwrap_or("json") {
        "json" => Ok((
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            report.to_json(),
        )
            .into_response()),
        "md" => Ok((
            [(
                axum::http::header::CONTENT_TYPE,
                "text/markdown; charset=utf-8",
            )],
            report.to_markdown(app.engine.district().calendar.utc_offset()),
        )
            .into_response()),
        other => Err(ApiError::new(
            ProblemType::BadRequest,
            format!("unknown format `{other}` (json or md)"),
        )),
    }
}

/// The audit report of one case: who did what and when, hashes, and stays per stage.
#[utoipa::path(get, path = "/api/v1/cases/{case_id}/audit", tag = "audit",
    params(("case_id" = Uuid, Path, description = "The case"), AuditFormat),
    responses((status = 200, description = "The report (JSON object, or Markdown with format=md)", content((Object = "application/json"), (String = "text/markdown"))),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 429, body = Problem)))]
async fn case_audit(
    principal: Principal,
    State(app): State<App>,
    ApiPath(case_id): ApiPath<Uuid>,
    ApiQuery(query): ApiQuery<AuditFormat>,
) -> Result<Response, ApiError> {
    let case_id = CaseId::new(case_id);
    let now = app.engine.now();
    load_case(&app, principal.access(), case_id, now).await?;
    let report = app.engine.audit_case(case_id, now).await?;
    audit_response(&app, &report, query.format.as_deref())
}
