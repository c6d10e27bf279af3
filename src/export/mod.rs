//! Process-mining export: XES (IEEE 1849) and OCEL 2.0 JSON.
//!
//! The writers here are independent of the domain: they take a small neutral model
//! ([`XesLog`], [`OcelLog`]) that the engine fills from the event store (see
//! `Engine::export_xes` and `Engine::export_ocel2`). That split keeps the file formats testable
//! on their own and keeps the domain mapping in one place.

pub mod build;
pub mod ocel;
pub mod xes;

use chrono::{DateTime, FixedOffset, SecondsFormat};
use serde::Serialize;

pub use build::ExportSummary;
pub use ocel::{OcelEvent, OcelLog, OcelObject, write_ocel2};
pub use xes::{XesEvent, XesLog, XesTrace, write_xes};

/// A typed attribute value, shared by both formats.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum AttrValue {
    /// Free text.
    String(String),
    /// A point in time; written with its UTC offset.
    Date(DateTime<FixedOffset>),
    /// A whole number.
    Int(i64),
    /// A truth value.
    Bool(bool),
}

impl AttrValue {
    /// The XES element name / OCEL type name of this value.
    pub fn xes_tag(&self) -> &'static str {
        match self {
            AttrValue::String(_) => "string",
            AttrValue::Date(_) => "date",
            AttrValue::Int(_) => "int",
            AttrValue::Bool(_) => "boolean",
        }
    }

    /// The OCEL 2.0 attribute type name.
    pub fn ocel_type(&self) -> &'static str {
        match self {
            AttrValue::String(_) => "string",
            AttrValue::Date(_) => "time",
            AttrValue::Int(_) => "integer",
            AttrValue::Bool(_) => "boolean",
        }
    }

    /// The value as text, as both formats write it.
    pub fn to_text(&self) -> String {
        match self {
            AttrValue::String(s) => s.clone(),
            AttrValue::Date(d) => format_time(d),
            AttrValue::Int(i) => i.to_string(),
            AttrValue::Bool(b) => b.to_string(),
        }
    }
}

impl From<&str> for AttrValue {
    fn from(value: &str) -> Self {
        AttrValue::String(value.to_owned())
    }
}

impl From<String> for AttrValue {
    fn from(value: String) -> Self {
        AttrValue::String(value)
    }
}

/// `xs:dateTime` with milliseconds and an explicit offset (`2025-03-03T09:00:00.000+08:00`),
/// which XES requires and OCEL 2.0 accepts.
pub fn format_time(time: &DateTime<FixedOffset>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, false)
}
