//! Kubernetes `Status` errors as the real API server sends them: the HTTP code, the machine
//! `reason` clients branch on (kube-rs and kubectl match on `code` and `reason`), and messages
//! worded like apimachinery's `k8s.io/apimachinery/pkg/api/errors`. Pure data, no I/O.

use axum::http::StatusCode;
use serde_json::{Value, json};

/// A failed request, rendered as a `Status` object with the matching HTTP code.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status code, repeated as `Status.code`.
    pub code: StatusCode,
    /// `Status.reason`, e.g. `NotFound`.
    pub reason: &'static str,
    /// Human message, worded as the real server words it.
    pub message: String,
    /// `Status.details`, when the real server fills it.
    pub details: Option<Value>,
}

/// Result of an API operation.
pub type ApiResult<T> = Result<T, ApiError>;

/// The qualified resource as messages print it: `pods`, `deployments.apps`.
pub fn qualified(group: &str, resource: &str) -> String {
    if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    }
}

fn details(group: &str, resource: &str, name: &str) -> Value {
    let mut details = json!({ "name": name, "kind": resource });
    if !group.is_empty() {
        details["group"] = json!(group);
    }
    details
}

impl ApiError {
    fn new(code: StatusCode, reason: &'static str, message: String) -> Self {
        Self {
            code,
            reason,
            message,
            details: None,
        }
    }

    /// 404 for a named object that does not exist.
    pub fn not_found(group: &str, resource: &str, name: &str) -> Self {
        let message = format!("{} \"{name}\" not found", qualified(group, resource));
        Self {
            details: Some(details(group, resource, name)),
            ..Self::new(StatusCode::NOT_FOUND, "NotFound", message)
        }
    }

    /// 404 for a path the server does not serve.
    pub fn no_route() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource".into(),
        )
    }

    /// 403 for a request an admission plugin refuses.
    pub fn forbidden(group: &str, resource: &str, name: &str, why: &str) -> Self {
        let message = format!(
            "{} \"{name}\" is forbidden: {why}",
            qualified(group, resource)
        );
        Self {
            details: Some(details(group, resource, name)),
            ..Self::new(StatusCode::FORBIDDEN, "Forbidden", message)
        }
    }

    /// 401 for a request no authenticator accepted.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "Unauthorized".into(),
        )
    }

    /// 403 from the authorization filter (`ForbiddenStatusError`): `why` is the
    /// `User "x" cannot …` text; `resource` may carry `/<subresource>`.
    pub fn forbidden_request(group: &str, resource: &str, name: &str, why: &str) -> Self {
        let message = match (resource.is_empty(), name.is_empty()) {
            (true, _) => format!("forbidden: {why}"),
            (false, true) => format!("{} is forbidden: {why}", qualified(group, resource)),
            (false, false) => format!(
                "{} \"{name}\" is forbidden: {why}",
                qualified(group, resource)
            ),
        };
        Self {
            details: Some(details(group, resource, name)),
            ..Self::new(StatusCode::FORBIDDEN, "Forbidden", message)
        }
    }

    /// 409 for a create of a name already taken.
    pub fn already_exists(group: &str, resource: &str, name: &str) -> Self {
        let message = format!("{} \"{name}\" already exists", qualified(group, resource));
        Self {
            details: Some(details(group, resource, name)),
            ..Self::new(StatusCode::CONFLICT, "AlreadyExists", message)
        }
    }

    /// 409 for a write whose resourceVersion is stale.
    pub fn conflict(group: &str, resource: &str, name: &str, why: &str) -> Self {
        let message = format!(
            "Operation cannot be fulfilled on {} \"{name}\": {why}",
            qualified(group, resource)
        );
        Self {
            details: Some(details(group, resource, name)),
            ..Self::new(StatusCode::CONFLICT, "Conflict", message)
        }
    }

    /// 409 for a failed uid / resourceVersion precondition.
    pub fn precondition_failed(
        group: &str,
        resource: &str,
        name: &str,
        field: &str,
        wanted: &str,
        actual: &str,
    ) -> Self {
        let why = format!(
            "Precondition failed: {field} in precondition: {wanted}, {field} in object meta: {actual}"
        );
        Self::conflict(group, resource, name, &why)
    }

    /// 422 with one field cause, as validation failures read.
    pub fn invalid(group: &str, kind: &str, name: &str, field: &str, cause: &str) -> Self {
        let kind_qualified = qualified(group, kind);
        let message = format!("{kind_qualified} \"{name}\" is invalid: {field}: {cause}");
        let mut details = json!({
            "name": name,
            "kind": kind,
            "causes": [{ "reason": "FieldValueInvalid", "message": cause, "field": field }],
        });
        if !group.is_empty() {
            details["group"] = json!(group);
        }
        Self {
            details: Some(details),
            ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", message)
        }
    }

    /// 422 with one cause per field error, as `NewInvalid` builds it: `errors` are (field,
    /// error body) pairs; several are joined as Go prints an aggregate.
    pub fn invalid_fields(
        group: &str,
        kind: &str,
        name: &str,
        errors: &[(String, String)],
    ) -> Self {
        let printed: Vec<String> = errors
            .iter()
            .map(|(field, body)| format!("{field}: {body}"))
            .collect();
        let joined = match printed.as_slice() {
            [one] => one.clone(),
            many => format!("[{}]", many.join(", ")),
        };
        let message = format!("{} {name:?} is invalid: {joined}", qualified(group, kind));
        let causes: Vec<Value> = errors
            .iter()
            .map(|(field, body)| json!({"reason": "FieldValueInvalid", "message": body, "field": field}))
            .collect();
        let mut details = json!({"name": name, "kind": kind, "causes": causes});
        if !group.is_empty() {
            details["group"] = json!(group);
        }
        Self {
            details: Some(details),
            ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", message)
        }
    }

    /// An error that is not a `Status` in the server (a Go `error` from a proxied request):
    /// `ErrorToAPIStatus` renders it with the code, no reason, and the error text.
    pub fn unknown(code: StatusCode, message: impl Into<String>) -> Self {
        Self::new(code, "", message.into())
    }

    /// `NewInternalError`: 500 `Internal error occurred: <why>`, with the cause.
    pub fn internal_error(why: &str) -> Self {
        Self {
            details: Some(json!({"causes": [{"message": why}]})),
            ..Self::internal(format!("Internal error occurred: {why}"))
        }
    }

    /// `NewGenericServerResponse` for a proxied answer with status `code` (not 400 or 500)
    /// from a backend, about `resource` `name`; `body` is what the backend said.
    pub fn server_response(code: StatusCode, resource: &str, name: &str, body: &str) -> Self {
        let (reason, message) = match code.as_u16() {
            409 => ("Conflict", "the server reported a conflict".to_string()),
            404 => ("NotFound", "the server could not find the requested resource".to_string()),
            401 => (
                "Unauthorized",
                "the server has asked for the client to provide credentials".to_string(),
            ),
            403 => ("Forbidden", body.to_string()),
            405 => (
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource".to_string(),
            ),
            422 => (
                "Invalid",
                "the server rejected our request due to an error in our request".to_string(),
            ),
            503 => (
                "ServiceUnavailable",
                "the server is currently unable to handle the request".to_string(),
            ),
            504 => (
                "Timeout",
                "the server was unable to return a response in the time allotted, but may still be processing the request".to_string(),
            ),
            429 => (
                "TooManyRequests",
                "the server has received too many requests and has asked us to try again later".to_string(),
            ),
            500.. => (
                "InternalError",
                format!("an error on the server ({body:?}) has prevented the request from succeeding"),
            ),
            other => (
                "",
                format!("the server responded with the status code {other} but did not return more information"),
            ),
        };
        // The verb is empty in the proxy's checker, hence the double space.
        let message = format!("{message} ( {resource} {name})");
        let mut details = json!({"name": name, "kind": resource});
        if !body.is_empty() {
            details["causes"] = json!([{"reason": "UnexpectedServerResponse", "message": body}]);
        }
        Self {
            details: Some(details),
            ..Self::new(code, reason, message)
        }
    }

    /// 400 for a malformed request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", message.into())
    }

    /// 410 for a resourceVersion older than the retained history.
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(StatusCode::GONE, "Expired", message.into())
    }

    /// 504 for a resourceVersion newer than anything stored.
    pub fn too_large(wanted: u64, current: u64) -> Self {
        let mut error = Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            "Timeout",
            format!("Too large resource version: {wanted}, current: {current}"),
        );
        error.details = Some(
            json!({"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}], "retryAfterSeconds": 1}),
        );
        error
    }

    /// 405 for a verb the resource does not support.
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource".into(),
        )
    }

    /// 415 for a patch content type the server does not know.
    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {content_type:?})"
            ),
        )
    }

    /// 415 for a create/update body in a format the server does not decode.
    pub fn unsupported_body(content_type: &str, why: &str) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml ({content_type}: {why})"
            ),
        )
    }

    /// 500, for the few cases the real storage layer reports as internal errors.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            message.into(),
        )
    }

    /// The `Status` object.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code.as_u16(),
        });
        if self.reason.is_empty()
            && let Some(map) = status.as_object_mut()
        {
            // StatusReasonUnknown is "", which the real server omits.
            map.remove("reason");
        }
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        status
    }
}
