//! TokenReview (`POST /apis/authentication.k8s.io/v1/tokenreviews`), the call a kubelet
//! with `--authentication-token-webhook` makes to learn who a bearer token belongs to.
//! Validates the service account tokens this server issues (`token`) as kube-apiserver's
//! service account authenticator does: signature, issuer, expiry, audiences (the review's,
//! else the server's own), the service account (and bound pod) still existing with the UID
//! in the token. Answers with the real shape: the user with the service account groups and
//! `authentication.kubernetes.io/*` extras, or `authenticated` left out and `error` set.
//! The review is not stored. `issue` signs tokens directly for tests (expired ones too).

use std::sync::atomic::Ordering;

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::objects::{self, check_type};
use super::resources::{self, Resource};
use super::status::{ApiError, ApiResult};
use super::store::ObjectKey;
use super::token::{ISSUER, sign, verify};
use super::{Api, base64};

/// What the bearer token authenticator prefixes every failure with.
const INVALID: &str = "invalid bearer token";

/// POST of a TokenReview: 201 with `status` filled.
pub fn review(api: &Api, resource: &Resource, mut review: Value) -> ApiResult<(StatusCode, Value)> {
    check_type(
        resource,
        &mut review,
        resource.kind,
        &resource.api_version(),
    )?;
    api.token_reviews.fetch_add(1, Ordering::Relaxed);
    let token = review["spec"]["token"].as_str().unwrap_or("").to_owned();
    if token.is_empty() {
        return Err(ApiError::bad_request(
            "token is required for TokenReview in authentication",
        ));
    }
    let audiences: Vec<String> = match review["spec"]["audiences"].as_array() {
        Some(list) if !list.is_empty() => list
            .iter()
            .filter_map(|a| a.as_str().map(str::to_owned))
            .collect(),
        _ => vec![ISSUER.to_owned()],
    };
    review["metadata"] = json!({"creationTimestamp": null});
    review["status"] = match authenticate(api, &token, &audiences) {
        Ok((user, token_audiences)) => json!({
            "authenticated": true,
            "user": user,
            "audiences": token_audiences,
        }),
        Err(why) => json!({
            "user": {},
            "error": why.map_or_else(|| INVALID.to_owned(), |why| format!("[{INVALID}, {why}]")),
        }),
    };
    Ok((StatusCode::CREATED, review))
}

/// The user a token names and the audiences it is good for among `audiences`; `Err(None)`
/// for a token that is not this server's, `Err(Some(why))` for one that is but fails.
pub fn authenticate(
    api: &Api,
    token: &str,
    audiences: &[String],
) -> Result<(Value, Vec<String>), Option<String>> {
    let Some((signed, sig)) = token.rsplit_once('.') else {
        return Err(None);
    };
    let Some((header, claims)) = signed.split_once('.') else {
        return Err(None);
    };
    let decode = |part: &str| -> Option<Value> {
        serde_json::from_slice(&base64::decode_url_safe(part)?).ok()
    };
    let (Some(header), Some(claims)) = (decode(header), decode(claims)) else {
        return Err(None);
    };
    if claims["iss"] != ISSUER {
        return Err(None);
    }
    let given = base64::decode_url_safe(sig).unwrap_or_default();
    if header["alg"] != "HS256"
        || header["kid"] != api.config.token_key_id.as_str()
        || !verify(api, signed, &given)
    {
        return Err(Some(
            "square/go-jose: error in cryptographic primitive".to_owned(),
        ));
    }
    let now = objects::unix_now();
    if claims["exp"].as_i64().is_none_or(|exp| exp <= now) {
        return Err(Some("service account token has expired".to_owned()));
    }
    if claims["nbf"].as_i64().is_some_and(|nbf| nbf > now) {
        return Err(Some("service account token is not valid yet".to_owned()));
    }
    let token_audiences: Vec<String> = match &claims["aud"] {
        Value::String(one) => vec![one.clone()],
        Value::Array(list) => list
            .iter()
            .filter_map(|a| a.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    let shared: Vec<String> = audiences
        .iter()
        .filter(|a| token_audiences.contains(a))
        .cloned()
        .collect();
    if shared.is_empty() {
        return Err(Some(format!(
            "token audiences {token_audiences:?} is invalid for the target audiences {audiences:?}"
        )));
    }
    let kubernetes = &claims["kubernetes.io"];
    let namespace = kubernetes["namespace"].as_str().unwrap_or("");
    let account = kubernetes["serviceaccount"]["name"].as_str().unwrap_or("");
    let account_uid = kubernetes["serviceaccount"]["uid"].as_str().unwrap_or("");
    let state = api.store.lock();
    let stored_uid = |plural: &str, name: &str| {
        state
            .get(&ObjectKey::new(resources::core(plural), namespace, name))
            .and_then(|object| object["metadata"]["uid"].as_str().map(str::to_owned))
    };
    match stored_uid("serviceaccounts", account) {
        Some(uid) if uid == account_uid => {}
        Some(uid) => {
            return Err(Some(format!(
                "service account UID ({account_uid}) does not match claim ({uid})"
            )));
        }
        None => {
            return Err(Some(format!(
                "service account {namespace}/{account} has been deleted"
            )));
        }
    }
    let mut extra = json!({});
    if let Some(jti) = claims["jti"].as_str() {
        extra["authentication.kubernetes.io/credential-id"] = json!([format!("JTI={jti}")]);
    }
    if let Some(pod) = kubernetes["pod"]["name"].as_str() {
        let pod_uid = kubernetes["pod"]["uid"].as_str().unwrap_or("");
        if stored_uid("pods", pod).as_deref() != Some(pod_uid) {
            return Err(Some(format!(
                "pod {namespace}/{pod} has been deleted or recreated"
            )));
        }
        extra["authentication.kubernetes.io/pod-name"] = json!([pod]);
        extra["authentication.kubernetes.io/pod-uid"] = json!([pod_uid]);
    }
    let user = json!({
        "username": format!("system:serviceaccount:{namespace}:{account}"),
        "uid": account_uid,
        "groups": [
            "system:serviceaccounts",
            format!("system:serviceaccounts:{namespace}"),
            "system:authenticated",
        ],
        "extra": extra,
    });
    Ok((user, shared))
}

/// A token for service account `namespace/account` (which must exist) with `audiences`
/// (the server's own when empty), expiring `lifetime` seconds from now (negative: already
/// expired), signed as TokenRequest signs.
pub fn issue(
    api: &Api,
    namespace: &str,
    account: &str,
    audiences: &[&str],
    lifetime: i64,
) -> Option<String> {
    let uid = api.store.lock().get(&ObjectKey::new(
        resources::core("serviceaccounts"),
        namespace,
        account,
    ))?["metadata"]["uid"]
        .clone();
    let audiences = if audiences.is_empty() {
        json!([ISSUER])
    } else {
        json!(audiences)
    };
    let now = objects::unix_now();
    let claims = json!({
        "aud": audiences,
        "exp": now + lifetime,
        "iat": now.min(now + lifetime),
        "nbf": now.min(now + lifetime),
        "iss": ISSUER,
        "jti": objects::new_uid(),
        "sub": format!("system:serviceaccount:{namespace}:{account}"),
        "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": account, "uid": uid}},
    });
    Some(sign(api, &claims))
}
