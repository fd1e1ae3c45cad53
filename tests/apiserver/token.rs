//! TokenRequest (`serviceaccounts/<name>/token`): issues a JWT for a service account with the
//! requested audiences and expiry (bounded as the real server bounds them) and the
//! `kubernetes.io` claims of a bound pod. Signed with HS256 under a per-server random key,
//! since nothing in the tests verifies tokens against the server's keys.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::objects;
use super::request::ResourceRequest;
use super::resources;
use super::status::{ApiError, ApiResult};
use super::store::ObjectKey;
use super::{Api, base64};

/// The server's issuer and default audience (kube-apiserver's `--service-account-issuer`).
pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
/// Shortest token lifetime the real server accepts, in seconds.
const MIN_EXPIRATION: i64 = 600;
/// Default lifetime when the request names none, in seconds.
const DEFAULT_EXPIRATION: i64 = 3600;

/// HMAC-SHA256 (RFC 2104).
fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    ring::hmac::sign(&key, message).as_ref().to_vec()
}

/// POST `serviceaccounts/<name>/token`.
pub fn create_token(
    api: &Api,
    req: &ResourceRequest,
    mut request: Value,
) -> ApiResult<(StatusCode, Value)> {
    let account_name = req.name.as_deref().unwrap_or("");
    let namespace = req.namespace_or_empty();
    objects::check_type(
        req.resource,
        &mut request,
        "TokenRequest",
        "authentication.k8s.io/v1",
    )?;
    let expiration = request["spec"]["expirationSeconds"]
        .as_i64()
        .unwrap_or(DEFAULT_EXPIRATION);
    let invalid = |field: &str, why: &str| {
        ApiError::invalid(
            "authentication.k8s.io",
            "TokenRequest",
            account_name,
            field,
            why,
        )
    };
    if expiration < MIN_EXPIRATION {
        return Err(invalid(
            "spec.expirationSeconds",
            &format!(
                "Invalid value: {expiration}: may not specify a duration less than 10 minutes"
            ),
        ));
    }
    if expiration > 1 << 32 {
        return Err(invalid(
            "spec.expirationSeconds",
            &format!(
                "Invalid value: {expiration}: may not specify a duration larger than 2^32 seconds"
            ),
        ));
    }
    let audiences = match request["spec"]["audiences"].as_array() {
        Some(list) if !list.is_empty() => Value::Array(list.clone()),
        _ => json!([ISSUER]),
    };
    let state = api.store.lock();
    let account = state
        .get(&ObjectKey::new(req.resource, namespace, account_name))
        .ok_or_else(|| ApiError::not_found("", "serviceaccounts", account_name))?;
    let mut kubernetes = json!({
        "namespace": namespace,
        "serviceaccount": {"name": account_name, "uid": account["metadata"]["uid"]},
    });
    let bound = &request["spec"]["boundObjectRef"];
    if let Some(pod_name) = bound["name"].as_str().filter(|_| bound["kind"] == "Pod") {
        let pod = state
            .get(&ObjectKey::new(
                resources::core("pods"),
                namespace,
                pod_name,
            ))
            .ok_or_else(|| ApiError::not_found("", "pods", pod_name))?;
        if let Some(uid) = bound["uid"]
            .as_str()
            .filter(|uid| Some(*uid) != pod["metadata"]["uid"].as_str())
        {
            return Err(ApiError::conflict(
                "",
                "pods",
                pod_name,
                &format!(
                    "the UID in the bound object reference ({uid}) does not match the UID in record. The object might have been deleted and then recreated"
                ),
            ));
        }
        kubernetes["pod"] = json!({"name": pod_name, "uid": pod["metadata"]["uid"]});
    }
    drop(state);
    let expiration = api
        .config
        .max_token_seconds
        .map_or(expiration, |max| expiration.min(max));
    let issued_at = objects::unix_now();
    let claims = json!({
        "aud": audiences,
        "exp": issued_at + expiration,
        "iat": issued_at,
        "nbf": issued_at,
        "iss": ISSUER,
        "jti": objects::new_uid(),
        "sub": format!("system:serviceaccount:{namespace}:{account_name}"),
        "kubernetes.io": kubernetes,
    });
    let token = sign(api, &claims);
    request["metadata"] =
        json!({"name": account_name, "namespace": namespace, "creationTimestamp": null});
    request["spec"]["audiences"] = audiences;
    request["spec"]["expirationSeconds"] = json!(expiration);
    request["status"] = json!({
        "token": token,
        "expirationTimestamp": objects::now_plus(expiration),
    });
    Ok((StatusCode::CREATED, request))
}

/// A JWT of `claims` signed with the server's key.
pub fn sign(api: &Api, claims: &Value) -> String {
    let header = json!({"alg": "HS256", "kid": api.config.token_key_id});
    let signing_input = format!(
        "{}.{}",
        base64::url_safe(header.to_string().as_bytes()),
        base64::url_safe(claims.to_string().as_bytes())
    );
    let signature = base64::url_safe(&hmac_sha256(
        api.config.token_key.as_bytes(),
        signing_input.as_bytes(),
    ));
    format!("{signing_input}.{signature}")
}

/// Whether `signature` is the server's for `signing_input` (`<header>.<claims>`), compared
/// in constant time.
pub fn verify(api: &Api, signing_input: &str, signature: &[u8]) -> bool {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, api.config.token_key.as_bytes());
    ring::hmac::verify(&key, signing_input.as_bytes(), signature).is_ok()
}

/// Decodes the claims of a token this server issued (for tests).
pub fn claims(token: &str) -> Option<Value> {
    serde_json::from_slice(&base64::decode_url_safe(token.split('.').nth(1)?)?).ok()
}
