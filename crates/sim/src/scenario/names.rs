//! The domain's names as a scenario writes them: the serde (snake_case) name of a domain
//! value, and parsing a name back with an error that names the field and lists the names
//! that exist.

use caseflow::domain::Stage;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::ScenarioError;

/// The five working stages, in order (the stages a case's work happens in).
pub const WORKING_STAGES: [Stage; 5] = [
    Stage::Intake,
    Stage::Classification,
    Stage::Handling,
    Stage::Rectification,
    Stage::Review,
];

/// The snake_case name the domain serialises `value` as (`problem_clue`, `hotline`, ...).
pub fn snake_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// The domain value named `name`, if any.
pub(crate) fn parse_snake<T: DeserializeOwned>(name: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(name.to_owned())).ok()
}

/// The value of `all` named `name`, or an error for `field` listing every name of `all`.
pub fn domain_name<T: Serialize + DeserializeOwned + PartialEq + Copy>(
    field: &str,
    name: &str,
    what: &str,
    all: &[T],
) -> Result<T, ScenarioError> {
    match parse_snake::<T>(name) {
        Some(v) if all.contains(&v) => Ok(v),
        _ => Err(ScenarioError::Invalid {
            field: field.to_owned(),
            reason: format!(
                "`{name}` is not {what}; use one of {}",
                all.iter().map(snake_name).collect::<Vec<_>>().join(", ")
            ),
        }),
    }
}
