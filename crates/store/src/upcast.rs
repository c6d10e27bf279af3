//! Schema evolution: upcasters turn an old `(type, schema version)` into the current shape.
//!
//! The store keeps every record exactly as written (the hash chain covers the original
//! bytes); upcasting happens on read, in the caller's decoder. A chain knows the current
//! schema version of every type it decodes; reading a type it does not know, or a version
//! newer than current or without an upcaster path, is a typed error.

use std::collections::HashMap;

use serde::de::DeserializeOwned;

use crate::error::StoreError;
use crate::types::RecordedEvent;

/// One step of schema evolution: `(event_type, from_version)` to `from_version + 1`
/// (possibly renaming the type).
pub trait Upcaster: Send + Sync {
    /// The type this upcaster reads.
    fn event_type(&self) -> &str;
    /// The schema version this upcaster reads; it produces `source_version() + 1`.
    fn source_version(&self) -> u32;
    /// Transforms the payload. May rename the type by returning `Some(new_type)`.
    fn upcast(
        &self,
        payload: serde_json::Value,
    ) -> Result<(Option<String>, serde_json::Value), String>;
}

/// A closure-backed [`Upcaster`].
pub struct FnUpcaster<F> {
    event_type: String,
    from_version: u32,
    f: F,
}

impl<F> FnUpcaster<F>
where
    F: Fn(serde_json::Value) -> Result<serde_json::Value, String> + Send + Sync,
{
    /// An upcaster for `(event_type, from_version)` that keeps the type name.
    pub fn new(event_type: impl Into<String>, from_version: u32, f: F) -> Self {
        FnUpcaster {
            event_type: event_type.into(),
            from_version,
            f,
        }
    }
}

impl<F> Upcaster for FnUpcaster<F>
where
    F: Fn(serde_json::Value) -> Result<serde_json::Value, String> + Send + Sync,
{
    fn event_type(&self) -> &str {
        &self.event_type
    }
    fn source_version(&self) -> u32 {
        self.from_version
    }
    fn upcast(
        &self,
        payload: serde_json::Value,
    ) -> Result<(Option<String>, serde_json::Value), String> {
        (self.f)(payload).map(|v| (None, v))
    }
}

/// A record in its current shape, after upcasting.
#[derive(Debug, Clone, PartialEq)]
pub struct UpcastRecord {
    /// Current type name.
    pub event_type: String,
    /// Current schema version.
    pub schema_version: u32,
    /// Payload in the current shape.
    pub payload: serde_json::Value,
}

/// Upcasters by `(type, from_version)` and the current version of each known type.
#[derive(Default)]
pub struct UpcasterChain {
    current: HashMap<String, u32>,
    steps: HashMap<(String, u32), Box<dyn Upcaster>>,
}

impl std::fmt::Debug for UpcasterChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpcasterChain")
            .field("current", &self.current)
            .field("steps", &self.steps.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Most upcasting steps applied to one record; a longer path means a cycle.
const STEPS_MAX: usize = 1000;

impl UpcasterChain {
    /// An empty chain (knows no types).
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares `event_type` with its current schema version.
    pub fn with_type(mut self, event_type: impl Into<String>, current_version: u32) -> Self {
        self.current.insert(event_type.into(), current_version);
        self
    }

    /// Adds an upcasting step.
    pub fn with_upcaster(mut self, upcaster: impl Upcaster + 'static) -> Self {
        self.steps.insert(
            (upcaster.event_type().to_owned(), upcaster.source_version()),
            Box::new(upcaster),
        );
        self
    }

    /// The current schema version of a type, if known.
    pub fn current_version(&self, event_type: &str) -> Option<u32> {
        self.current.get(event_type).copied()
    }

    /// Brings `(event_type, schema_version, payload)` to the current shape.
    pub fn upcast(
        &self,
        event_type: &str,
        schema_version: u32,
        payload: serde_json::Value,
    ) -> Result<UpcastRecord, StoreError> {
        let mut ty = event_type.to_owned();
        let mut version = schema_version;
        let mut payload = payload;
        for _ in 0..STEPS_MAX {
            let Some(&current) = self.current.get(&ty) else {
                // A type that only exists in old versions can still be upcast away.
                match self.steps.get(&(ty.clone(), version)) {
                    Some(step) => {
                        let (renamed, next) =
                            step.upcast(payload).map_err(|reason| StoreError::Decode {
                                event_type: ty.clone(),
                                schema_version: version,
                                reason,
                            })?;
                        payload = next;
                        version += 1;
                        if let Some(r) = renamed {
                            ty = r;
                        }
                        continue;
                    }
                    None => return Err(StoreError::UnknownEventType { event_type: ty }),
                }
            };
            if version == current {
                return Ok(UpcastRecord {
                    event_type: ty,
                    schema_version: version,
                    payload,
                });
            }
            if version > current {
                return Err(StoreError::UnknownSchemaVersion {
                    event_type: ty,
                    schema_version: version,
                });
            }
            let Some(step) = self.steps.get(&(ty.clone(), version)) else {
                return Err(StoreError::UnknownSchemaVersion {
                    event_type: ty,
                    schema_version: version,
                });
            };
            let (renamed, next) = step.upcast(payload).map_err(|reason| StoreError::Decode {
                event_type: ty.clone(),
                schema_version: version,
                reason,
            })?;
            payload = next;
            version += 1;
            if let Some(r) = renamed {
                ty = r;
            }
        }
        Err(StoreError::Decode {
            event_type: event_type.to_owned(),
            schema_version,
            reason: "upcaster chain does not terminate".into(),
        })
    }

    /// Parses a stored record's payload and upcasts it.
    pub fn upcast_record(&self, event: &RecordedEvent) -> Result<UpcastRecord, StoreError> {
        let value: serde_json::Value =
            serde_json::from_slice(&event.payload).map_err(|e| StoreError::Decode {
                event_type: event.event_type.clone(),
                schema_version: event.schema_version,
                reason: format!("payload is not JSON: {e}"),
            })?;
        self.upcast(&event.event_type, event.schema_version, value)
    }

    /// Upcasts a stored record and deserialises it into `T`.
    pub fn decode<T: DeserializeOwned>(&self, event: &RecordedEvent) -> Result<T, StoreError> {
        let rec = self.upcast_record(event)?;
        serde_json::from_value(rec.payload).map_err(|e| StoreError::Decode {
            event_type: rec.event_type,
            schema_version: rec.schema_version,
            reason: e.to_string(),
        })
    }
}
