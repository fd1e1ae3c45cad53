//! SubjectAccessReview (`POST /apis/authorization.k8s.io/v1/subjectaccessreviews`), the call a
//! kubelet makes to ask whether an authenticated caller may reach its API. Validated as
//! `ValidateSubjectAccessReview` does, then decided like kube-apiserver's authorizer chain:
//! members of `system:masters` may do anything, everyone else only what a grant given to the
//! server allows (standing in for RBAC bindings). It only answers reviews: the server's own
//! requests stay unauthorized.

use std::sync::Mutex;

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::objects::check_type;
use super::pki::MASTERS_GROUP;
use super::resources::Resource;
use super::status::{ApiError, ApiResult};

/// What one user may do: `verb` on `resource`/`subresource` in any API group and namespace.
/// `*` matches any verb or resource, as in an RBAC rule.
#[derive(Debug, Clone)]
pub struct Grant {
    /// A user name, or a group name when `group` is set.
    user: String,
    group: bool,
    verb: String,
    resource: String,
    subresource: String,
}

/// The grants given to the server.
#[derive(Default)]
pub struct Grants(Mutex<Vec<Grant>>);

impl Grants {
    /// Lets `user` do `verb` on `resource`/`subresource` (empty subresource: the resource itself).
    pub fn add(&self, user: &str, verb: &str, resource: &str, subresource: &str) {
        self.push(user, false, verb, resource, subresource);
    }

    /// Lets every member of `group` do `verb` on `resource`/`subresource`.
    pub fn add_group(&self, group: &str, verb: &str, resource: &str, subresource: &str) {
        self.push(group, true, verb, resource, subresource);
    }

    fn push(&self, subject: &str, group: bool, verb: &str, resource: &str, subresource: &str) {
        let grant = Grant {
            user: subject.to_string(),
            group,
            verb: verb.to_string(),
            resource: resource.to_string(),
            subresource: subresource.to_string(),
        };
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(grant);
    }

    /// The grant that allows `attributes` for `user` in `groups`, if any.
    pub fn allowing(&self, user: &str, groups: &[&str], attributes: &Value) -> Option<Grant> {
        let text = |key: &str| attributes[key].as_str().unwrap_or("").to_string();
        let (verb, resource, subresource) = (text("verb"), text("resource"), text("subresource"));
        let matches = |granted: &str, wanted: &str| granted == "*" || granted == wanted;
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|grant| {
                (if grant.group {
                    groups.contains(&grant.user.as_str())
                } else {
                    grant.user == user
                }) && matches(&grant.verb, &verb)
                    && matches(&grant.resource, &resource)
                    && grant.subresource == subresource
            })
            .cloned()
    }
}

/// The `Invalid value` body of a field error, as apimachinery prints a string value.
fn invalid_value(value: &str, detail: &str) -> String {
    format!("Invalid value: {value:?}: {detail}")
}

/// `ValidateSubjectAccessReview`: the field errors, in the real order.
fn validate(review: &Value) -> Vec<(String, String)> {
    let spec = &review["spec"];
    let resource = spec.get("resourceAttributes").filter(|v| !v.is_null());
    let non_resource = spec.get("nonResourceAttributes").filter(|v| !v.is_null());
    let mut errors = Vec::new();
    match (resource, non_resource) {
        (Some(_), Some(given)) => errors.push((
            "spec.nonResourceAttributes".to_string(),
            format!(
                "Invalid value: {}: cannot be specified in combination with resourceAttributes",
                go_struct(given)
            ),
        )),
        (None, None) => errors.push((
            "spec.resourceAttributes".to_string(),
            invalid_value(
                "null",
                "exactly one of nonResourceAttributes or resourceAttributes must be specified",
            ),
        )),
        _ => {}
    }
    let user = spec["user"].as_str().unwrap_or("");
    let no_groups = spec["groups"].as_array().is_none_or(Vec::is_empty);
    if user.is_empty() && no_groups {
        errors.push((
            "spec.user".to_string(),
            invalid_value(user, "at least one of user or group must be specified"),
        ));
    }
    let metadata_empty = review["metadata"].as_object().is_none_or(|m| {
        m.keys()
            .all(|k| k == "managedFields" || k == "creationTimestamp")
    });
    if !metadata_empty {
        errors.push((
            "metadata".to_string(),
            "Invalid value: ObjectMeta: must be empty".to_string(),
        ));
    }
    errors
}

/// A Go `%#v`-like rendering of the non-resource attributes, for the error message.
fn go_struct(attributes: &Value) -> String {
    format!(
        "authorization.NonResourceAttributes{{Path:{:?}, Verb:{:?}}}",
        attributes["path"].as_str().unwrap_or(""),
        attributes["verb"].as_str().unwrap_or("")
    )
}

/// POST of a SubjectAccessReview: 201 with `status` filled; the review is not stored.
pub fn review(
    grants: &Grants,
    resource: &Resource,
    mut review: Value,
) -> ApiResult<(StatusCode, Value)> {
    check_type(
        resource,
        &mut review,
        resource.kind,
        &resource.api_version(),
    )?;
    let errors = validate(&review);
    if !errors.is_empty() {
        return Err(ApiError::invalid_fields(
            resource.group,
            resource.kind,
            "",
            &errors,
        ));
    }
    let spec = &review["spec"];
    let user = spec["user"].as_str().unwrap_or("");
    let groups: Vec<&str> = spec["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let masters = groups.contains(&MASTERS_GROUP);
    let mut status = json!({"allowed": false});
    if masters {
        // The privileged-groups authorizer allows without a reason.
        status["allowed"] = json!(true);
    } else if let Some(grant) = spec
        .get("resourceAttributes")
        .and_then(|attributes| grants.allowing(user, &groups, attributes))
    {
        status["allowed"] = json!(true);
        status["reason"] = json!(format!(
            "RBAC: allowed by test API server grant of {} on {}{} to {} {:?}",
            grant.verb,
            grant.resource,
            if grant.subresource.is_empty() {
                String::new()
            } else {
                format!("/{}", grant.subresource)
            },
            if grant.group { "Group" } else { "User" },
            grant.user
        ));
    }
    // A denial by RBAC carries no reason: no authorizer in the chain has an opinion.
    review["status"] = status;
    Ok((StatusCode::CREATED, review))
}
