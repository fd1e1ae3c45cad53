//! Label and field selectors with the real server's grammar: labels take `=`, `==`, `!=`,
//! `in (…)`, `notin (…)`, `key` and `!key`; fields take `=`, `==`, `!=` over the labels each
//! resource registers, and an unknown field label is a 400 as in kube-apiserver. Pure functions.

use serde_json::Value;

use super::resources::Resource;
use super::status::ApiError;

#[derive(Debug, Clone, PartialEq)]
enum LabelOp {
    Equals(String),
    NotEquals(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    DoesNotExist,
}

/// A parsed label selector; empty matches everything.
#[derive(Debug, Clone, Default)]
pub struct LabelSelector(Vec<(String, LabelOp)>);

/// Splits at commas that are not inside `( … )`.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (index, ch) in text.char_indices() {
        match ch {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&text[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
        .into_iter()
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .collect()
}

fn parse_set(text: &str) -> Option<Vec<String>> {
    let inner = text.trim().strip_prefix('(')?.strip_suffix(')')?;
    Some(
        inner
            .split(',')
            .map(|value| value.trim().to_string())
            .collect(),
    )
}

impl LabelSelector {
    /// Parses `labelSelector`; the error is the 400 the real server returns.
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        let bad = |part: &str| {
            ApiError::bad_request(format!(
                "unable to parse requirement: found '{part}', expected: identifier"
            ))
        };
        let mut requirements = Vec::new();
        for part in split_top_level(text) {
            let requirement = if let Some(key) = part.strip_prefix('!') {
                (key.trim().to_string(), LabelOp::DoesNotExist)
            } else if let Some((key, value)) = part.split_once("!=") {
                (
                    key.trim().to_string(),
                    LabelOp::NotEquals(value.trim().to_string()),
                )
            } else if let Some((key, value)) = part.split_once("==") {
                (
                    key.trim().to_string(),
                    LabelOp::Equals(value.trim().to_string()),
                )
            } else if let Some((key, value)) = part.split_once('=') {
                (
                    key.trim().to_string(),
                    LabelOp::Equals(value.trim().to_string()),
                )
            } else if let Some((key, set)) = part.split_once(" notin ") {
                (
                    key.trim().to_string(),
                    LabelOp::NotIn(parse_set(set).ok_or_else(|| bad(part))?),
                )
            } else if let Some((key, set)) = part.split_once(" in ") {
                (
                    key.trim().to_string(),
                    LabelOp::In(parse_set(set).ok_or_else(|| bad(part))?),
                )
            } else {
                (part.to_string(), LabelOp::Exists)
            };
            if requirement.0.is_empty() || requirement.0.contains([' ', '(', ')']) {
                return Err(bad(part));
            }
            requirements.push(requirement);
        }
        Ok(Self(requirements))
    }

    /// Whether `object`'s labels satisfy every requirement.
    pub fn matches(&self, object: &Value) -> bool {
        let labels = &object["metadata"]["labels"];
        self.0.iter().all(|(key, op)| {
            let value = labels.get(key).and_then(Value::as_str);
            match op {
                LabelOp::Equals(wanted) => value == Some(wanted.as_str()),
                LabelOp::NotEquals(unwanted) => value != Some(unwanted.as_str()),
                LabelOp::In(set) => value.is_some_and(|v| set.iter().any(|s| s == v)),
                LabelOp::NotIn(set) => value.is_none_or(|v| !set.iter().any(|s| s == v)),
                LabelOp::Exists => value.is_some(),
                LabelOp::DoesNotExist => value.is_none(),
            }
        })
    }
}

/// A parsed field selector over one resource's field labels.
#[derive(Debug, Clone, Default)]
pub struct FieldSelector(Vec<(String, bool, String)>);

impl FieldSelector {
    /// Parses `fieldSelector`, rejecting labels `resource` does not register.
    pub fn parse(text: &str, resource: &Resource) -> Result<Self, ApiError> {
        let mut requirements = Vec::new();
        for part in split_top_level(text) {
            let (field, equal, value) = if let Some((field, value)) = part.split_once("!=") {
                (field, false, value)
            } else if let Some((field, value)) = part.split_once("==") {
                (field, true, value)
            } else if let Some((field, value)) = part.split_once('=') {
                (field, true, value)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid selector: '{text}'; can't understand '{part}'"
                )));
            };
            let field = field.trim();
            let known = ["metadata.name", "metadata.namespace"].contains(&field)
                || resource.field_labels.contains(&field);
            if !known {
                return Err(ApiError::bad_request(format!(
                    "Unable to find {{\"{}\" \"{}\" \"{}\"}} that match label selector \"\", field selector \"{text}\": field label not supported: {field}",
                    resource.group, resource.version, resource.plural
                )));
            }
            requirements.push((field.to_string(), equal, value.trim().to_string()));
        }
        Ok(Self(requirements))
    }

    /// Whether `object` satisfies every requirement; a missing field reads as "".
    pub fn matches(&self, object: &Value) -> bool {
        self.0
            .iter()
            .all(|(field, equal, wanted)| (field_value(object, field) == *wanted) == *equal)
    }
}

/// The string a field label selects on, as the registry's `GetAttrs` computes it.
fn field_value(object: &Value, field: &str) -> String {
    let path = if field == "source" {
        "source.component"
    } else {
        field
    };
    let mut value = object;
    for segment in path.split('.') {
        value = &value[segment];
    }
    match value {
        Value::String(text) => text.clone(),
        Value::Bool(flag) => flag.to_string(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}
