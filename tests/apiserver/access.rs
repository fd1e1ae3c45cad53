//! Authorization of requests in HTTPS mode, the part of kube-apiserver's RBAC that the
//! tests need: bootstrap token users get `system:node-bootstrapper` and discovery only;
//! approving CSRs and writing their status is for `system:masters` (admins,
//! kube-controller-manager); everyone else authenticated may do the rest (nodes are not
//! restricted by a Node authorizer here). Refusals are 403 with `ForbiddenStatusError`'s
//! message.

use axum::http::Method;

use super::authn::User;
use super::bootstrap::{BOOTSTRAPPERS, bootstrapper_allows};
use super::pki::MASTERS_GROUP;
use super::request::ResourceRequest;
use super::status::{ApiError, ApiResult};

/// The request's verb as the authorizer sees it.
pub fn verb(method: &Method, req: &ResourceRequest) -> &'static str {
    let named = req.name.is_some();
    match *method {
        Method::GET if req.flag("watch") => "watch",
        Method::GET if named => "get",
        Method::GET => "list",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if named => "delete",
        Method::DELETE => "deletecollection",
        _ => "unknown",
    }
}

/// 403 unless `user` may make the resource request `req`. A GET of `pods/exec`,
/// `pods/attach` or `pods/portforward` (the WebSocket upgrade) also needs `create`, as 1.35's compound check
/// (`AuthorizePodWebsocketUpgradeCreatePermission`, on by default) asks.
pub fn authorize_resource(user: &User, method: &Method, req: &ResourceRequest) -> ApiResult<()> {
    let verb = verb(method, req);
    authorize_verb(user, verb, req)?;
    let connect = matches!(
        req.subresource.as_deref(),
        Some("exec" | "attach" | "portforward")
    );
    if verb == "get" && req.resource.plural == "pods" && connect {
        authorize_verb(user, "create", req)?;
    }
    Ok(())
}

fn authorize_verb(user: &User, verb: &str, req: &ResourceRequest) -> ApiResult<()> {
    let resource = req.resource.plural;
    let sub = req.subresource.as_deref();
    let allowed = if user.in_group(MASTERS_GROUP) {
        true
    } else if user.in_group(BOOTSTRAPPERS) {
        bootstrapper_allows(verb, resource, sub)
    } else {
        !(resource == "certificatesigningrequests"
            && matches!(sub, Some("approval" | "status"))
            && verb != "get")
    };
    if allowed {
        return Ok(());
    }
    let shown = match sub {
        Some(sub) => format!("{resource}/{sub}"),
        None => resource.to_owned(),
    };
    let group = req.resource.group;
    let scope = match req.namespace.as_deref() {
        Some(namespace) => format!("in the namespace {namespace:?}"),
        None => "at the cluster scope".to_owned(),
    };
    let why = format!(
        "User {:?} cannot {verb} resource {shown:?} in API group {group:?} {scope}",
        user.name
    );
    Err(ApiError::forbidden_request(
        group,
        &shown,
        req.name.as_deref().unwrap_or(""),
        &why,
    ))
}
