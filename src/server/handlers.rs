//! The kubelet API's request handling: the authentication (client certificate, then
//! bearer token) and authorization every request passes first (with one log line per request: method, path, user, status),
//! and the endpoints. Errors are answered as a Kubernetes `Status` object. Layer 6.

use std::sync::Arc;

use axum::extract::{Path, Request, State as Shared};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum_server::tls::TlsInfo;

use super::State;
use super::auth::{Attributes, User, user_from_cert};
use super::conn::Connection;
use super::error::Error;
use super::logs::{LogOptions, journalctl_args, stream_log};
use super::token::{Bearer, MAX_TOKEN_BYTES, Outcome, bearer};
use crate::pod::{self, check_uid};
use crate::unit::UnitName;

/// How a request's caller was identified, for the request log.
#[derive(Debug, Clone, Copy)]
enum Via {
    /// Nobody.
    None,
    /// A verified client certificate.
    X509,
    /// A bearer token the API server vouched for.
    Token,
}

/// What a request shows of its caller, read before anything is awaited (the request's
/// body is not `Sync`, so the request is not held across the review).
struct Credentials {
    /// The user of a verified client certificate.
    cert_user: Option<User>,
    /// The first `Authorization` header, as Go's `Header.Get` reads it; one that is not
    /// visible ASCII holds no token.
    authorization: Option<String>,
    /// The request's connection, to keep alive once a token authenticates.
    connection: Option<Arc<Connection>>,
}

impl Credentials {
    fn of(request: &Request) -> Self {
        Self {
            cert_user: request
                .extensions()
                .get::<Arc<TlsInfo>>()
                .and_then(|tls| tls.peer_certificates.first())
                .and_then(|der| user_from_cert(der)),
            authorization: request
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned),
            connection: request.extensions().get::<Arc<Connection>>().cloned(),
        }
    }
}

impl Via {
    fn as_str(self) -> &'static str {
        match self {
            Via::None => "none",
            Via::X509 => "x509",
            Via::Token => "token",
        }
    }
}

/// The caller, as the kubelet's union authenticator finds it: a verified client
/// certificate first, then a bearer token when tokens are reviewed. Never reads a token
/// from anywhere but the `Authorization` header (not the query string).
async fn caller(state: &State, credentials: Credentials) -> (Option<User>, Via) {
    if let Some(user) = credentials.cert_user {
        return (Some(user), Via::X509);
    }
    let Some(tokens) = &state.tokens else {
        return (None, Via::None);
    };
    let connection = credentials.connection;
    let token = match bearer(credentials.authorization.as_deref()) {
        Bearer::Token(token) => token,
        Bearer::Absent => return (None, Via::None),
        Bearer::TooLong => {
            tracing::info!(
                max = MAX_TOKEN_BYTES,
                "kubelet API: a bearer token over the size bound, refused without review"
            );
            return (None, Via::None);
        }
    };
    match tokens.authenticate(token).await {
        Ok(Outcome::User(user)) => {
            if let Some(connection) = connection {
                connection.token_authenticated();
            }
            (Some(user), Via::Token)
        }
        Ok(Outcome::Rejected(error)) => {
            tracing::info!(
                error = error.as_deref().unwrap_or("-"),
                "kubelet API: bearer token rejected by TokenReview"
            );
            (None, Via::None)
        }
        // As the kubelet: a token that cannot be reviewed authenticates nobody (401).
        Err(err) => {
            tracing::warn!(error = %crate::error_chain::Chain(&err), "kubelet API: cannot review a bearer token");
            (None, Via::None)
        }
    }
}

/// Lets a request through only when its client certificate or bearer token names a user
/// who may do what it asks; logs every request.
pub async fn authenticate(
    Shared(state): Shared<Arc<State>>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().as_str().to_owned();
    let path = request.uri().path().to_owned();
    let (user, via) = caller(&state, Credentials::of(&request)).await;
    let response = match (&user, Attributes::of(&method, &path)) {
        // Nobody: no second request, the connection closes after this answer.
        (None, _) => {
            let mut response = status(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized");
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            response
        }
        (Some(_), None) => status(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            &format!("method {method} is not served"),
        ),
        (Some(user), Some(attributes)) => match decide(&state, user, attributes, &path).await {
            Ok((_, decision)) if decision.allowed => next.run(request).await,
            Ok((attributes, decision)) => {
                let mut message = format!(
                    "Forbidden (user={}, verb={}, resource=nodes, subresource={})",
                    user.name, attributes.verb, attributes.subresource
                );
                if let Some(reason) = decision.reason {
                    message.push_str(": ");
                    message.push_str(&reason);
                }
                status(StatusCode::FORBIDDEN, "Forbidden", &message)
            }
            Err(err) => error_response(&err),
        },
    };
    let user = user.as_ref().map_or("-", |user| user.name.as_str());
    tracing::info!(
        method,
        path,
        user,
        authn = via.as_str(),
        status = response.status().as_u16(),
        "kubelet API request"
    );
    response
}

/// The decision on `attributes`, then on what the path also requires; the first refusal
/// with what it refused.
async fn decide(
    state: &State,
    user: &User,
    attributes: Attributes,
    path: &str,
) -> Result<(Attributes, super::auth::Decision), Error> {
    let decision = state.authorizer.decide(user, &attributes).await?;
    match attributes.also_required(path) {
        Some(extra) if decision.allowed => {
            let decision = state.authorizer.decide(user, &extra).await?;
            Ok((extra, decision))
        }
        _ => Ok((attributes, decision)),
    }
}

/// `GET /healthz`.
pub async fn healthz() -> &'static str {
    "ok"
}

/// Any path the kubelet API does not serve.
pub async fn not_found(request: Request) -> Response {
    status(
        StatusCode::NOT_FOUND,
        "NotFound",
        &format!("{} is not served by systemk", request.uri().path()),
    )
}

/// `GET /pods`: the pods this node runs with their status now, as a `PodList`.
pub async fn pods(Shared(state): Shared<Arc<State>>) -> Response {
    match list_pods(&state).await {
        Ok(pods) => {
            let list = serde_json::json!({
                "kind": "PodList",
                "apiVersion": "v1",
                "metadata": {},
                "items": pods,
            });
            (
                [(header::CONTENT_TYPE, "application/json")],
                list.to_string(),
            )
                .into_response()
        }
        Err(err) => error_response(&err),
    }
}

pub(super) async fn list_pods(
    state: &State,
) -> Result<Vec<k8s_openapi::api::core::v1::Pod>, Error> {
    let units = managed_units(state).await?;
    let dirs = state.dirs.clone();
    let now = crate::clock::now();
    tokio::task::spawn_blocking(move || pod::live_pods(&dirs, units, now))
        .await
        .map_err(|err| Error::Local {
            action: "read the pods' state",
            message: err.to_string(),
        })?
        .map_err(|err| Error::Local {
            action: "read the pods' state",
            message: err.to_string(),
        })
}

/// `GET /containerLogs/{namespace}/{pod}/{container}`.
pub async fn container_logs(
    Shared(state): Shared<Arc<State>>,
    Path((namespace, pod, container)): Path<(String, String, String)>,
    request: Request,
) -> Response {
    let query = request.uri().query().unwrap_or_default();
    match logs(&state, &namespace, &pod, &container, query).await {
        Ok(body) => ([(header::CONTENT_TYPE, "text/plain")], body).into_response(),
        Err(err) => error_response(&err),
    }
}

async fn logs(
    state: &State,
    namespace: &str,
    pod: &str,
    container: &str,
    query: &str,
) -> Result<axum::body::Body, Error> {
    let mut options = LogOptions::from_query(query)?;
    // Validates the three names before anything else sees them.
    UnitName::for_container(namespace, pod, container)
        .map_err(|err| Error::BadRequest(err.to_string()))?;
    let units = state
        .systemd
        .pod_units(&state.unit_dir, namespace, pod)
        .await
        .map_err(|err| Error::Local {
            action: "list the pod's units",
            message: err.to_string(),
        })?;
    let unit = units
        .iter()
        .find(|unit| unit.meta.container == container)
        .ok_or_else(|| {
            Error::NotFound(format!(
                "container {container:?} of pod {namespace}/{pod} does not run on this node"
            ))
        })?;
    check_uid(&unit.meta.pod_uid).map_err(|err| Error::Local {
        action: "find the pod's UID",
        message: err.to_string(),
    })?;
    let follow_permit =
        if options.follow {
            let max = state.limits.max_follow_streams;
            Some(state.follow_streams.clone().try_acquire_owned().map_err(|_| {
            Error::TooManyRequests(format!(
                "this node already streams {max} followed logs, its most; try again later"
            ))
        })?)
        } else {
            None
        };
    let mut since_us = options.since_us(crate::clock::now());
    let mut until_us = None;
    if options.previous {
        let run = previous(state, &unit.meta.pod_uid, pod, container).await?;
        since_us = since_us.max(Some(run.started_at.as_microsecond()));
        until_us = Some(run.finished_at.as_microsecond());
        // That run ended: there is nothing to follow.
        options.follow = false;
    }
    let args = journalctl_args(
        unit.status.name.as_str(),
        &unit.meta.pod_uid,
        &options,
        since_us,
        until_us,
    );
    stream_log(args, &options, since_us, &state.limits, follow_permit)
}

/// The container's previous run, from its restart record (kept across restarts of
/// systemk); the kubelet's error when there is none.
async fn previous(
    state: &State,
    pod_uid: &str,
    pod: &str,
    container: &str,
) -> Result<crate::pod::restart::Exit, Error> {
    let (dirs, uid, name) = (state.dirs.clone(), pod_uid.to_owned(), container.to_owned());
    let run = tokio::task::spawn_blocking(move || crate::pod::previous_run(&dirs, &uid, &name))
        .await
        .map_err(|err| Error::Local {
            action: "read the container's restart record",
            message: err.to_string(),
        })?;
    run.ok_or_else(|| {
        Error::BadRequest(format!(
            "previous terminated container {container:?} in pod {pod:?} not found"
        ))
    })
}

/// The units of the pods systemk runs, with what their `[X-Kubernetes]` sections say.
pub(super) async fn managed_units(
    state: &State,
) -> Result<Vec<crate::systemd::ManagedUnit>, Error> {
    state
        .systemd
        .list_managed(&state.unit_dir)
        .await
        .map_err(|err| Error::Local {
            action: "list the pods' units",
            message: err.to_string(),
        })
}

pub(super) fn error_response(err: &Error) -> Response {
    if err.status().is_server_error() {
        tracing::warn!(error = %crate::error_chain::Chain(err), "kubelet API request failed");
    }
    let mut response = status(err.status(), err.reason(), &crate::error_chain::chain(err));
    if err.status() == StatusCode::TOO_MANY_REQUESTS {
        // As the API server answers 429: when to try again, in seconds.
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

/// A Kubernetes `Status` object as the body of an error.
fn status(code: StatusCode, reason: &str, message: &str) -> Response {
    let body = serde_json::json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code.as_u16(),
    });
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}
