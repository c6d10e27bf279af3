//! Open311 GeoReport v2 intake (JSON format), so the civic reporting apps that speak it can
//! file cases.
//!
//! The mapping (docs/server.md has it in full):
//! - **services**: one per case kind — `complaint`, `consultation`, `suggestion`,
//!   `problem_clue` — all coming in through one online channel the operator configures
//!   (`open311.channel`, default the petty-power mini-program 小微权力监督一点通).
//! - **a request** (`POST requests.json`, form-encoded, with `api_key` = an API token of a
//!   staff user): becomes `ReportCase` issued by that user's unit and role (the domain decides
//!   whether it may), with `description` as the summary (plus `address_string`), the village
//!   from `attribute[village]` (its locality follows), `attribute[focus_area]` and
//!   `attribute[subject]` when given, and a named reporter when a name or phone came with it.
//! - **status** (`GET requests/{id}.json`): `open` while the case is open, `closed` after;
//!   `status_notes` is the stage's label. The id is the case's UUID; reading a status needs
//!   no key (the id is unguessable and was given to the reporter), listing needs ids.
//! - **errors**: the standard's list `[{"code": <status>, "description": "..."}]`.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use caseflow::domain::{CaseId, CaseKind, Command, FocusArea, Label, Level};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::api::{ApiPath, ReportRequest, ReporterInput, execute};
use crate::auth;
use crate::problem::{ApiError, ProblemType};
use crate::state::App;
use crate::views::{machine_name, unit_name};

/// One Open311 error.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Open311Error {
    /// The HTTP status.
    pub code: u16,
    /// What was wrong.
    pub description: String,
}

/// The standard's error response.
pub fn error_response(status: StatusCode, description: &str) -> Response {
    let body = vec![Open311Error {
        code: status.as_u16(),
        description: description.to_owned(),
    }];
    (status, axum::Json(body)).into_response()
}

/// An API error in the standard's format.
pub struct Open311Failure(ApiError);

impl From<ApiError> for Open311Failure {
    fn from(e: ApiError) -> Self {
        Open311Failure(e)
    }
}

impl IntoResponse for Open311Failure {
    fn into_response(self) -> Response {
        let problem = self.0.problem();
        let text = problem.detail.unwrap_or(problem.title);
        let mut response = error_response(self.0.kind.status(), &text);
        if let Some(seconds) = self.0.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

/// One service of the list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Service {
    /// The code clients post with (the case kind).
    pub service_code: String,
    /// Its name (district language).
    pub service_name: String,
    /// What it is for.
    pub description: String,
    /// Whether it has attributes (`GET services/{code}.json`).
    pub metadata: bool,
    /// `realtime`.
    #[serde(rename = "type")]
    pub service_type: String,
    /// Search words.
    pub keywords: String,
    /// The channel the report comes in through.
    pub group: String,
}

/// Which jurisdiction.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JurisdictionQuery {
    /// The jurisdiction id (optional; when given it must be the configured one).
    pub jurisdiction_id: Option<String>,
}

/// Every route of the Open311 intake.
pub fn router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(services))
        .routes(routes!(service_definition))
        .routes(routes!(post_request))
        .routes(routes!(get_request))
        .routes(routes!(get_requests))
}

fn check_jurisdiction(app: &App, given: Option<&str>) -> Result<(), Open311Failure> {
    match given {
        Some(j) if !j.is_empty() && j != app.config.open311.jurisdiction_id => Err(Open311Failure(
            ApiError::not_found(format!("unknown jurisdiction `{j}`")),
        )),
        _ => Ok(()),
    }
}

fn kind_of(code: &str) -> Option<CaseKind> {
    CaseKind::ALL.into_iter().find(|k| machine_name(k) == code)
}

/// The services: one per case kind, through the configured channel.
#[utoipa::path(get, path = "/open311/v2/services.json", tag = "open311", security(()), params(JurisdictionQuery),
    responses((status = 200, body = Vec<Service>), (status = 404, body = Vec<Open311Error>)))]
async fn services(
    State(app): State<App>,
    crate::api::ApiQuery(query): crate::api::ApiQuery<JurisdictionQuery>,
) -> Result<axum::Json<Vec<Service>>, Open311Failure> {
    check_jurisdiction(&app, query.jurisdiction_id.as_deref())?;
    let lang = app.lang;
    let channel = app.config.open311.channel;
    Ok(axum::Json(
        CaseKind::ALL
            .into_iter()
            .map(|kind| Service {
                service_code: machine_name(&kind),
                service_name: kind.label(lang).to_owned(),
                description: format!("{} ({})", kind.label(lang), channel.label(lang)),
                metadata: true,
                service_type: "realtime".to_owned(),
                keywords: machine_name(&kind).replace('_', " "),
                group: channel.label(lang).to_owned(),
            })
            .collect(),
    ))
}

/// A value of a list attribute.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttributeValue {
    /// What to send.
    pub key: String,
    /// What to show.
    pub name: String,
}

/// An attribute of a service.
#[derive(Debug, Serialize, ToSchema)]
pub struct Attribute {
    /// Always true.
    pub variable: bool,
    /// The name to post as `attribute[code]`.
    pub code: String,
    /// `string` or `singlevaluelist`.
    pub datatype: String,
    /// Whether it must be given.
    pub required: bool,
    /// What it is.
    pub datatype_description: String,
    /// Display order.
    pub order: u32,
    /// The question to ask.
    pub description: String,
    /// The values of a list.
    pub values: Vec<AttributeValue>,
}

/// A service's definition.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceDefinition {
    /// The service.
    pub service_code: String,
    /// Its attributes.
    pub attributes: Vec<Attribute>,
}

/// The attributes of a service: the village (required), the focus area and the subject.
#[utoipa::path(get, path = "/open311/v2/services/{service_code}", tag = "open311", security(()),
    params(("service_code" = String, Path, description = "A case kind followed by `.json`, e.g. `complaint.json`"), JurisdictionQuery),
    responses((status = 200, body = ServiceDefinition), (status = 404, body = Vec<Open311Error>)))]
async fn service_definition(
    State(app): State<App>,
    ApiPath(file): ApiPath<String>,
    crate::api::ApiQuery(query): crate::api::ApiQuery<JurisdictionQuery>,
) -> Result<axum::Json<ServiceDefinition>, Open311Failure> {
    check_jurisdiction(&app, query.jurisdiction_id.as_deref())?;
    let code = json_name(&file)?;
    kind_of(code).ok_or_else(|| ApiError::not_found(format!("no service `{code}`")))?;
    let org = app.org();
    let lang = app.lang;
    let villages = org
        .units_at(Level::Village)
        .map(|v| AttributeValue {
            key: v.id.to_string(),
            name: match &v.locality {
                Some(l) => format!("{} / {}", unit_name(org, l), v.name),
                None => v.name.clone(),
            },
        })
        .collect();
    let areas = FocusArea::ALL
        .into_iter()
        .map(|a| AttributeValue {
            key: machine_name(&a),
            name: a.label(lang).to_owned(),
        })
        .collect();
    let attribute =
        |code: &str, datatype: &str, required, order, description: &str, values| Attribute {
            variable: true,
            code: code.to_owned(),
            datatype: datatype.to_owned(),
            required,
            datatype_description: String::new(),
            order,
            description: description.to_owned(),
            values,
        };
    Ok(axum::Json(ServiceDefinition {
        service_code: code.to_owned(),
        attributes: vec![
            attribute(
                "village",
                "singlevaluelist",
                true,
                1,
                "村（社区）/ village or community",
                villages,
            ),
            attribute(
                "focus_area",
                "singlevaluelist",
                false,
                2,
                "重点领域 / focus area",
                areas,
            ),
            attribute(
                "subject",
                "string",
                false,
                3,
                "反映对象 / whom the matter is about",
                Vec::new(),
            ),
        ],
    }))
}

/// `x.json` -> `x`; anything else is not a path of this API.
fn json_name(file: &str) -> Result<&str, Open311Failure> {
    file.strip_suffix(".json")
        .ok_or_else(|| Open311Failure(ApiError::not_found("only the .json format is served")))
}

/// A service request as the standard posts it (form-encoded).
#[derive(Debug, Deserialize, ToSchema)]
pub struct RequestForm {
    /// An API token of a staff user allowed to report.
    pub api_key: Option<String>,
    /// The jurisdiction.
    pub jurisdiction_id: Option<String>,
    /// The service (case kind).
    pub service_code: String,
    /// Latitude (kept out of the case; the village places it).
    pub lat: Option<String>,
    /// Longitude.
    pub long: Option<String>,
    /// A human-readable address, appended to the summary.
    pub address_string: Option<String>,
    /// The matter.
    pub description: Option<String>,
    /// The reporter's first name.
    pub first_name: Option<String>,
    /// The reporter's last name.
    pub last_name: Option<String>,
    /// The reporter's phone.
    pub phone: Option<String>,
    /// The reporter's email (not kept: the case keeps a name and a phone).
    pub email: Option<String>,
    /// The village or community id (required).
    #[serde(rename = "attribute[village]")]
    pub village: Option<String>,
    /// The focus area.
    #[serde(rename = "attribute[focus_area]")]
    pub focus_area: Option<String>,
    /// Whom the matter is about.
    #[serde(rename = "attribute[subject]")]
    pub subject: Option<String>,
}

/// The answer to a posted request.
#[derive(Debug, Serialize, ToSchema)]
pub struct RequestCreated {
    /// The new case's id.
    pub service_request_id: String,
    /// What happens next.
    pub service_notice: String,
    /// Unused.
    pub account_id: Option<String>,
}

fn invalid(text: impl Into<String>) -> Open311Failure {
    Open311Failure(ApiError::new(ProblemType::InvalidInput, text))
}

fn report_of(app: &App, form: RequestForm) -> Result<ReportRequest, Open311Failure> {
    let kind = kind_of(&form.service_code).ok_or_else(|| {
        Open311Failure(ApiError::not_found(format!(
            "no service `{}`",
            form.service_code
        )))
    })?;
    let description = form.description.unwrap_or_default();
    if description.trim().is_empty() {
        return Err(invalid("description is required"));
    }
    let village_id = form.village.unwrap_or_default();
    let village = app
        .org()
        .unit(&village_id.as_str().into())
        .filter(|u| u.level == Level::Village)
        .ok_or_else(|| {
            invalid(format!(
                "attribute[village] `{village_id}` is not a village of the district"
            ))
        })?;
    let locality = village
        .locality
        .clone()
        .ok_or_else(|| invalid("the village has no locality"))?;
    let focus_area = match form.focus_area.as_deref().filter(|f| !f.is_empty()) {
        None => FocusArea::LivelihoodGeneral,
        Some(f) => FocusArea::ALL
            .into_iter()
            .find(|a| machine_name(a) == f)
            .ok_or_else(|| invalid(format!("attribute[focus_area] `{f}` is not a focus area")))?,
    };
    let name = [form.last_name, form.first_name]
        .into_iter()
        .flatten()
        .filter(|n| !n.trim().is_empty())
        .collect::<Vec<_>>()
        .join("");
    let phone = form.phone.unwrap_or_default();
    let reporter = if name.is_empty() && phone.trim().is_empty() {
        ReporterInput::Anonymous
    } else {
        ReporterInput::Named { name, phone }
    };
    let summary = match form.address_string.filter(|a| !a.trim().is_empty()) {
        Some(address) => format!("{} (地址: {address})", description.trim()),
        None => description.trim().to_owned(),
    };
    Ok(ReportRequest {
        channel: app.config.open311.channel,
        kind,
        summary,
        locality: locality.to_string(),
        village: Some(village.id.to_string()),
        subject: form
            .subject
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| "未指明 (not named)".to_owned()),
        focus_area,
        reporter,
        source_department: None,
    })
}

/// Files a report. `api_key` (or a bearer token) names the staff user it is filed as;
/// an optional `Idempotency-Key` header makes a retry write once.
#[utoipa::path(post, path = "/open311/v2/requests.json", tag = "open311", security(()),
    request_body(content = RequestForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = Vec<RequestCreated>), (status = 400, body = Vec<Open311Error>),
        (status = 401, body = Vec<Open311Error>), (status = 403, body = Vec<Open311Error>),
        (status = 404, body = Vec<Open311Error>), (status = 409, body = Vec<Open311Error>),
        (status = 413, body = Vec<Open311Error>), (status = 415, body = Vec<Open311Error>),
        (status = 422, body = Vec<Open311Error>), (status = 429, body = Vec<Open311Error>),
        (status = 503, body = Vec<Open311Error>)))]
async fn post_request(
    State(app): State<App>,
    headers: HeaderMap,
    form: Result<axum::Form<RequestForm>, axum::extract::rejection::FormRejection>,
) -> Result<axum::Json<Vec<RequestCreated>>, Open311Failure> {
    let axum::Form(form) = form.map_err(|e| {
        let kind = if e.status() == StatusCode::UNSUPPORTED_MEDIA_TYPE {
            ProblemType::UnsupportedMediaType
        } else {
            ProblemType::BadRequest
        };
        Open311Failure(ApiError::new(kind, e.body_text()))
    })?;
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let key = form
        .api_key
        .clone()
        .filter(|k| !k.is_empty())
        .or(bearer)
        .ok_or_else(ApiError::unauthenticated)?;
    let principal = auth::token_principal(&app, &key).await?;
    check_jurisdiction(&app, form.jurisdiction_id.as_deref())?;
    let command_id = match headers.get("idempotency-key") {
        Some(_) => crate::api::idempotency_key(&headers)?,
        None => Uuid::new_v4(),
    };
    let report = report_of(&app, form)?;
    let command = Command::ReportCase(report.into_command(command_id));
    let result = execute(&app, &principal, command_id, command).await?;
    Ok(axum::Json(vec![RequestCreated {
        service_request_id: result.case_id,
        service_notice: "已登记，将按规定时限受理 (registered; the intake decision follows within the time limit)".to_owned(),
        account_id: None,
    }]))
}

/// A request's status.
#[derive(Debug, Serialize, ToSchema)]
pub struct RequestStatus {
    /// The case id.
    pub service_request_id: String,
    /// `open` or `closed`.
    pub status: String,
    /// The stage, to read.
    pub status_notes: String,
    /// The service (case kind).
    pub service_code: String,
    /// Its name.
    pub service_name: String,
    /// When it was reported.
    pub requested_datetime: DateTime<Utc>,
    /// When it last changed.
    pub updated_datetime: DateTime<Utc>,
    /// The agency handling it (the lead unit once routed).
    pub agency_responsible: Option<String>,
}

async fn status_of(app: &App, id: &str) -> Result<Option<RequestStatus>, ApiError> {
    let Ok(uuid) = Uuid::parse_str(id) else {
        return Ok(None);
    };
    let state = match app.engine.case_state(CaseId::new(uuid)).await {
        Ok(s) => s,
        Err(caseflow::EngineError::CaseNotFound(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let Some(case) = state.case() else {
        return Ok(None);
    };
    let lang = app.lang;
    Ok(Some(RequestStatus {
        service_request_id: case.id.to_string(),
        status: if case.stage.is_open() {
            "open"
        } else {
            "closed"
        }
        .to_owned(),
        status_notes: case.stage.label(lang).to_owned(),
        service_code: machine_name(&case.kind),
        service_name: case.kind.label(lang).to_owned(),
        requested_datetime: case.reported_at,
        updated_datetime: case.last_event_at,
        agency_responsible: case.lead_unit().map(|u| unit_name(app.org(), u)),
    }))
}

/// One request's status (`{id}.json`).
#[utoipa::path(get, path = "/open311/v2/requests/{request}", tag = "open311", security(()),
    params(("request" = String, Path, description = "The service request id followed by `.json`"), JurisdictionQuery),
    responses((status = 200, body = Vec<RequestStatus>), (status = 404, body = Vec<Open311Error>)))]
async fn get_request(
    State(app): State<App>,
    ApiPath(file): ApiPath<String>,
    crate::api::ApiQuery(query): crate::api::ApiQuery<JurisdictionQuery>,
) -> Result<axum::Json<Vec<RequestStatus>>, Open311Failure> {
    check_jurisdiction(&app, query.jurisdiction_id.as_deref())?;
    let id = json_name(&file)?;
    let status = status_of(&app, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no service request `{id}`")))?;
    Ok(axum::Json(vec![status]))
}

/// Which requests.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RequestsQuery {
    /// Comma-separated request ids (required: this server does not list requests).
    pub service_request_id: Option<String>,
    /// The jurisdiction.
    pub jurisdiction_id: Option<String>,
}

/// The statuses of the requests named by `service_request_id` (unknown ids are left out).
#[utoipa::path(get, path = "/open311/v2/requests.json", tag = "open311", security(()), params(RequestsQuery),
    responses((status = 200, body = Vec<RequestStatus>), (status = 400, body = Vec<Open311Error>), (status = 404, body = Vec<Open311Error>)))]
async fn get_requests(
    State(app): State<App>,
    crate::api::ApiQuery(query): crate::api::ApiQuery<RequestsQuery>,
) -> Result<axum::Json<Vec<RequestStatus>>, Open311Failure> {
    check_jurisdiction(&app, query.jurisdiction_id.as_deref())?;
    let ids = query.service_request_id.unwrap_or_default();
    if ids.trim().is_empty() {
        return Err(Open311Failure(ApiError::new(
            ProblemType::BadRequest,
            "service_request_id is required",
        )));
    }
    let mut found = Vec::new();
    for id in ids
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .take(100)
    {
        found.extend(status_of(&app, id).await?);
    }
    Ok(axum::Json(found))
}
