//! The auditors' side of the JSON API: statistics, verify, range audits and the streamed
//! process-mining exports.

use std::io::Write;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use tokio::sync::mpsc;
use utoipa::IntoParams;

use crate::access;
use crate::api::{ApiJson, ApiQuery, AuditFormat, audit_response};
use crate::auth::Principal;
use crate::problem::{ApiError, Problem};
use crate::state::App;

/// When the statistics are judged.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsQuery {
    /// Judge overdue at this time (RFC 3339); default: now.
    pub now: Option<DateTime<Utc>>,
}

/// The headline statistics (counts by category, channel, kind, stage, locality; time to
/// close; on-time rates per unit).
#[utoipa::path(get, path = "/api/v1/stats", tag = "audit", params(StatsQuery),
    responses((status = 200, body = Object, description = "The statistics report"), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 429, body = Problem)))]
pub async fn stats(
    principal: Principal,
    State(app): State<App>,
    ApiQuery(query): ApiQuery<StatsQuery>,
) -> Result<ApiJson<serde_json::Value>, ApiError> {
    if !access::may_read_stats(principal.access(), app.org()) {
        return Err(ApiError::forbidden());
    }
    let report = app
        .engine
        .stats(query.now.unwrap_or_else(|| app.engine.now()))
        .await?;
    Ok(ApiJson(serde_json::to_value(report).unwrap_or_default()))
}

/// Checks every hash chain and compares every read model with a rebuild. 200 with
/// `ok: true` when everything holds; 200 with `ok: false` and what is broken otherwise.
#[utoipa::path(get, path = "/api/v1/verify", tag = "audit",
    responses((status = 200, body = Object, description = "`ok`, streams and events checked, broken cases, divergent read models"),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 429, body = Problem)))]
pub async fn verify(
    principal: Principal,
    State(app): State<App>,
) -> Result<ApiJson<serde_json::Value>, ApiError> {
    if !access::may_verify(principal.access()) {
        return Err(ApiError::forbidden());
    }
    let outcome = app.engine.verify().await?;
    let mut value = serde_json::to_value(&outcome).unwrap_or_default();
    if let Some(o) = value.as_object_mut() {
        o.insert("ok".to_owned(), serde_json::Value::Bool(outcome.is_ok()));
    }
    Ok(ApiJson(value))
}

/// The range of a range audit.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RangeQuery {
    /// From (RFC 3339, inclusive).
    pub from: DateTime<Utc>,
    /// To (RFC 3339, exclusive).
    pub to: DateTime<Utc>,
    /// `json` (default) or `md`.
    pub format: Option<String>,
}

/// The audit report of everything recorded in `[from, to)` (empty when `to` is not after
/// `from`).
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(RangeQuery),
    responses((status = 200, description = "The report", content((Object = "application/json"), (String = "text/markdown"))),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem), (status = 429, body = Problem)))]
pub async fn audit_range(
    principal: Principal,
    State(app): State<App>,
    ApiQuery(query): ApiQuery<RangeQuery>,
) -> Result<Response, ApiError> {
    if !access::may_export(principal.access()) {
        return Err(ApiError::forbidden());
    }
    let report = app.engine.audit_range(query.from, query.to).await?;
    let format = AuditFormat {
        format: query.format,
    };
    audit_response(&app, &report, format.format.as_deref())
}

/// A `Write` that hands 64 KiB chunks to the response body as they are written, so an
/// export streams with backpressure instead of being built in the response's memory.
struct ChunkWriter {
    buffer: Vec<u8>,
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
}

const CHUNK: usize = 64 * 1024;

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(data);
        if self.buffer.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buffer));
        // The export runs inside `Handle::block_on` on a blocking thread, where tokio's own
        // blocking send refuses to run; a plain executor waits for room in the channel.
        futures::executor::block_on(self.tx.send(Ok(chunk))).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away")
        })
    }
}

#[derive(Clone, Copy)]
enum ExportFormat {
    Xes,
    Ocel,
}

fn stream_export(app: &App, format: ExportFormat) -> Response {
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let engine = app.engine.clone();
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let mut writer = ChunkWriter {
            buffer: Vec::with_capacity(CHUNK),
            tx: tx.clone(),
        };
        let result = runtime.block_on(async {
            match format {
                ExportFormat::Xes => engine.export_xes(&mut writer).await,
                ExportFormat::Ocel => engine.export_ocel2(&mut writer).await,
            }
        });
        let result = result
            .map_err(|e| std::io::Error::other(e.to_string()))
            .and_then(|_| writer.flush());
        if let Err(error) = result {
            tracing::warn!(%error, "export ended early");
            let _ = futures::executor::block_on(tx.send(Err(error)));
        }
    });
    // Fused: the compression layer may poll once more after the end.
    let stream = futures::StreamExt::fuse(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }));
    let (content_type, file) = match format {
        ExportFormat::Xes => ("application/xml", "caseflow.xes"),
        ExportFormat::Ocel => ("application/json", "caseflow.ocel.json"),
    };
    (
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

/// The whole log as XES (IEEE 1849), streamed.
#[utoipa::path(get, path = "/api/v1/export/xes", tag = "audit",
    responses((status = 200, description = "XES document", content_type = "application/xml", body = String),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 429, body = Problem)))]
pub async fn export_xes(
    principal: Principal,
    State(app): State<App>,
) -> Result<Response, ApiError> {
    if !access::may_export(principal.access()) {
        return Err(ApiError::forbidden());
    }
    Ok(stream_export(&app, ExportFormat::Xes))
}

/// The whole log as OCEL 2.0 JSON, streamed.
#[utoipa::path(get, path = "/api/v1/export/ocel", tag = "audit",
    responses((status = 200, description = "OCEL 2.0 JSON document", content_type = "application/json", body = Object),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 429, body = Problem)))]
pub async fn export_ocel(
    principal: Principal,
    State(app): State<App>,
) -> Result<Response, ApiError> {
    if !access::may_export(principal.access()) {
        return Err(ApiError::forbidden());
    }
    Ok(stream_export(&app, ExportFormat::Ocel))
}
