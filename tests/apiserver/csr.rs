//! certificates.k8s.io/v1 CertificateSigningRequests: create as the registry strategy and
//! `ValidateCertificateSigningRequestCreate` do (the requester's identity written into
//! `spec.username/uid/groups/extra`, whatever the body said; status cleared; request parsed
//! and its signature checked; usages, signerName, expirationSeconds validated), the
//! `approval` and `status` subresources with their update rules, and the two controllers
//! kube-controller-manager runs on them, synchronously after each write: the csrapproving
//! controller (`auto_approve_node_client_csrs`: the nodeclient / selfnodeclient recognizers
//! with their SubjectAccessReview against the grants and the stored RBAC objects) and the
//! kubelet signers.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::authn::User;
use super::handlers::{self, write_existing};
use super::objects::{self, check_type};
use super::request::ResourceRequest;
use super::request_info::Attributes;
use super::signer::{self, KUBELET_CLIENT_SIGNER, KUBELET_SERVING_SIGNER};
use super::status::{ApiError, ApiResult};
use super::store::ObjectKey;
use super::{Api, base64, rbac};

/// Every usage the API accepts (`allValidUsages`), sorted as Go's `sets.List`.
const USAGES: &[&str] = &[
    "any",
    "cert sign",
    "client auth",
    "code signing",
    "content commitment",
    "crl sign",
    "data encipherment",
    "decipher only",
    "digital signature",
    "email protection",
    "encipher only",
    "ipsec end system",
    "ipsec tunnel",
    "ipsec user",
    "key agreement",
    "key encipherment",
    "microsoft sgc",
    "netscape sgc",
    "ocsp signing",
    "s/mime",
    "server auth",
    "signing",
    "timestamping",
];
const KIND: &str = "CertificateSigningRequest";
const GROUP: &str = "certificates.k8s.io";
const PLURAL: &str = "certificatesigningrequests";

fn usages(csr: &Value) -> Vec<&str> {
    csr["spec"]["usages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

/// `validateCertificateSigningRequest`'s spec rules: `(field, message)` pairs.
fn validate_spec(csr: &Value) -> Vec<(String, String)> {
    let spec = &csr["spec"];
    let mut errors = Vec::new();
    let request = spec["request"].as_str().unwrap_or("");
    if let Err(why) = signer::parse(request) {
        errors.push((
            "spec.request".to_owned(),
            format!("Invalid value: []byte{{...}}: {why}"),
        ));
    }
    let usages = usages(csr);
    if usages.is_empty() {
        errors.push((
            "spec.usages".to_owned(),
            "Required value: usages must be provided".to_owned(),
        ));
    }
    let quoted: Vec<String> = USAGES.iter().map(|u| format!("{u:?}")).collect();
    for (i, usage) in usages.iter().enumerate() {
        if !USAGES.contains(usage) {
            errors.push((
                format!("spec.usages[{i}]"),
                format!(
                    "Unsupported value: {usage:?}: supported values: {}",
                    quoted.join(", ")
                ),
            ));
        }
        if usages[..i].contains(usage) {
            errors.push((
                format!("spec.usages[{i}]"),
                format!("Duplicate value: {usage:?}"),
            ));
        }
    }
    let signer_name = spec["signerName"].as_str().unwrap_or("");
    if signer_name.is_empty() {
        errors.push((
            "spec.signerName".to_owned(),
            "Required value: signerName must be provided".to_owned(),
        ));
    } else if signer_name == "kubernetes.io/legacy-unknown" {
        errors.push((
            "spec.signerName".to_owned(),
            format!(
                "Invalid value: {signer_name:?}: the legacy signerName is not allowed via this API version"
            ),
        ));
    } else {
        match signer_name.split_once('/') {
            Some((domain, path))
                if !path.contains('/')
                    && domain.contains('.')
                    && domain.split('.').all(objects::is_subdomain)
                    && path.split('.').all(objects::is_subdomain) => {}
            _ => errors.push((
                "spec.signerName".to_owned(),
                format!(
                    "Invalid value: {signer_name:?}: must be a fully qualified domain and path of the form 'example.com/signer-name'"
                ),
            )),
        }
    }
    if let Some(seconds) = spec["expirationSeconds"].as_i64()
        && seconds < 600
    {
        errors.push((
            "spec.expirationSeconds".to_owned(),
            format!("Invalid value: {seconds}: may not specify a duration less than 600 seconds (10 minutes)"),
        ));
    }
    errors.extend(validate_conditions(csr));
    errors
}

/// `validateConditions`: type and status required, Approved/Denied/Failed only True, not
/// both Approved and Denied, no duplicate types.
fn validate_conditions(csr: &Value) -> Vec<(String, String)> {
    let mut errors = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    let conditions = csr["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for (i, condition) in conditions.iter().enumerate() {
        let path = format!("status.conditions[{i}]");
        let kind = condition["type"].as_str().unwrap_or("");
        let status = condition["status"].as_str().unwrap_or("");
        if kind.is_empty() {
            errors.push((format!("{path}.type"), "Required value".to_owned()));
        }
        let only_true = matches!(kind, "Approved" | "Denied" | "Failed");
        if status.is_empty() {
            errors.push((format!("{path}.status"), "Required value".to_owned()));
        } else if only_true && status != "True" {
            errors.push((
                format!("{path}.status"),
                format!("Unsupported value: {status:?}: supported values: \"True\""),
            ));
        } else if !matches!(status, "True" | "False" | "Unknown") {
            errors.push((
                format!("{path}.status"),
                format!("Unsupported value: {status:?}: supported values: \"False\", \"True\", \"Unknown\""),
            ));
        }
        let other = match kind {
            "Approved" => "Denied",
            "Denied" => "Approved",
            _ => "",
        };
        if !other.is_empty() && seen.contains(&other) {
            errors.push((
                format!("{path}.type"),
                format!(
                    "Invalid value: {kind:?}: Approved and Denied conditions are mutually exclusive"
                ),
            ));
        }
        if seen.contains(&kind) {
            errors.push((format!("{path}.type"), format!("Duplicate value: {kind:?}")));
        }
        seen.push(kind);
    }
    errors
}

fn invalid(name: &str, errors: &[(String, String)]) -> ApiError {
    ApiError::invalid_fields(GROUP, KIND, name, errors)
}

/// POST of a CSR by `user` (`None` in plain-HTTP mode: no identity is recorded).
pub fn create(
    api: &Api,
    req: &ResourceRequest,
    mut csr: Value,
    user: Option<&User>,
) -> ApiResult<(StatusCode, Value)> {
    check_type(req.resource, &mut csr, KIND, &req.resource.api_version())?;
    let spec = &mut csr["spec"];
    if let Some(map) = spec.as_object_mut() {
        for field in ["username", "uid", "groups", "extra"] {
            map.remove(field);
        }
    }
    if let Some(user) = user {
        spec["username"] = json!(user.name);
        if !user.uid.is_empty() {
            spec["uid"] = json!(user.uid);
        }
        spec["groups"] = json!(user.groups);
        if user.extra.as_object().is_some_and(|m| !m.is_empty()) {
            spec["extra"] = user.extra.clone();
        }
    }
    csr["status"] = json!({});
    let name = csr["metadata"]["name"].as_str().unwrap_or("").to_owned();
    let errors = validate_spec(&csr);
    if !errors.is_empty() {
        return Err(invalid(&name, &errors));
    }
    let (code, created) = handlers::create(api, req, csr)?;
    let name = created["metadata"]["name"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    run_controllers(api, &name);
    let current = handlers::get(api, &named(req, &name, None)).unwrap_or(created);
    Ok((code, current))
}

/// A request for CSR `name`'s `subresource`.
fn named(req: &ResourceRequest, name: &str, subresource: Option<&str>) -> ResourceRequest {
    ResourceRequest {
        resource: req.resource,
        namespace: None,
        name: Some(name.to_owned()),
        subresource: subresource.map(str::to_owned),
        query: Default::default(),
    }
}

fn conditions_of<'a>(csr: &'a Value, kind: &str) -> Vec<&'a Value> {
    csr["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["type"] == kind)
        .collect()
}

/// `populateConditionTimestamps` and the v1 default status `True`.
fn populate_conditions(new: &mut Value, old: &Value) {
    let now = objects::now();
    let Some(conditions) = new["status"]["conditions"].as_array_mut() else {
        return;
    };
    for condition in conditions {
        if condition["status"].as_str().is_none_or(str::is_empty) {
            condition["status"] = json!("True");
        }
        if condition["lastUpdateTime"]
            .as_str()
            .is_none_or(str::is_empty)
        {
            condition["lastUpdateTime"] = json!(now);
        }
        if condition["lastTransitionTime"]
            .as_str()
            .is_none_or(str::is_empty)
        {
            let kept = conditions_of(old, condition["type"].as_str().unwrap_or(""))
                .into_iter()
                .find(|c| c["status"] == condition["status"])
                .and_then(|c| c["lastTransitionTime"].as_str().map(str::to_owned));
            condition["lastTransitionTime"] = json!(kept.unwrap_or_else(|| now.clone()));
        }
    }
}

/// PUT of `approval` (`approval: true`) or `status`: the new conditions (and, for status,
/// the certificate) over the stored CSR, with `validateCertificateSigningRequestUpdate`'s
/// rules; then the controllers run.
pub fn update_status(
    api: &Api,
    req: &ResourceRequest,
    body: Value,
    approval: bool,
) -> ApiResult<Value> {
    let name = req.name.clone().ok_or_else(ApiError::method_not_allowed)?;
    let mut state = api.store.lock();
    let key = ObjectKey::new(req.resource, "", &name);
    let old = state
        .get(&key)
        .cloned()
        .ok_or_else(|| ApiError::not_found(GROUP, PLURAL, &name))?;
    let mut new = old.clone();
    new["metadata"]["resourceVersion"] = body["metadata"]["resourceVersion"].clone();
    new["metadata"]["uid"] = body["metadata"]["uid"].clone();
    new["status"]["conditions"] = body["status"]["conditions"].clone();
    if !approval && !body["status"]["certificate"].is_null() {
        new["status"]["certificate"] = body["status"]["certificate"].clone();
    }
    populate_conditions(&mut new, &old);
    let mut errors = validate_conditions(&new);
    for kind in ["Approved", "Denied", "Failed"] {
        if conditions_of(&new, kind).len() < conditions_of(&old, kind).len() {
            errors.push((
                "status.conditions".to_owned(),
                format!("Forbidden: updates may not remove a condition of type {kind:?}"),
            ));
        }
    }
    if !approval {
        for kind in ["Approved", "Denied"] {
            let (before, after) = (conditions_of(&old, kind), conditions_of(&new, kind));
            if after.len() > before.len() {
                errors.push((
                    "status.conditions".to_owned(),
                    format!("Forbidden: updates may not add a condition of type {kind:?}"),
                ));
            } else if after.len() == before.len() && after != before {
                errors.push((
                    "status.conditions".to_owned(),
                    format!("Forbidden: updates may not modify a condition of type {kind:?}"),
                ));
            }
        }
    }
    let old_cert = old["status"]["certificate"].as_str().unwrap_or("");
    let new_cert = new["status"]["certificate"].as_str().unwrap_or("");
    if old_cert != new_cert && !old_cert.is_empty() {
        errors.push((
            "status.certificate".to_owned(),
            "Forbidden: updates may not modify existing certificate content".to_owned(),
        ));
    }
    if !errors.is_empty() {
        return Err(invalid(&name, &errors));
    }
    let status_request = named(req, &name, Some("status"));
    write_existing(&mut state, &status_request, key, old, new)?;
    drop(state);
    run_controllers(api, &name);
    handlers::get(api, &named(req, &name, None))
}

/// Stores `csr` (already the full object) as a status write, as a controller's
/// `UpdateStatus`/`UpdateApproval` would.
fn controller_write(api: &Api, csr: Value) {
    let name = csr["metadata"]["name"].as_str().unwrap_or("").to_owned();
    let resource = super::resources::find(GROUP, "v1", PLURAL).expect("CSRs are served");
    let request = ResourceRequest {
        resource,
        namespace: None,
        name: Some(name.clone()),
        subresource: Some("status".to_owned()),
        query: Default::default(),
    };
    let mut state = api.store.lock();
    let key = ObjectKey::new(resource, "", &name);
    if let Some(old) = state.get(&key).cloned() {
        // The CSR changed in between: a real controller's write would conflict and retry.
        let _ = write_existing(&mut state, &request, key, old, csr);
    }
}

/// The csrapproving controller, then the kubelet signers, on CSR `name`.
pub fn run_controllers(api: &Api, name: &str) {
    let resource = super::resources::find(GROUP, "v1", PLURAL).expect("CSRs are served");
    let key = ObjectKey::new(resource, "", name);
    let Some(csr) = api.store.lock().get(&key).cloned() else {
        return;
    };
    if api.config.auto_approve_node_client_csrs
        && let Some(approved) = auto_approve(api, &csr)
    {
        controller_write(api, approved);
    }
    let Some(csr) = api.store.lock().get(&key).cloned() else {
        return;
    };
    if let Some(signed) = sign(api, &csr) {
        controller_write(api, signed);
    }
}

/// `sarApprover.handle`: an unapproved, unsigned kubelet client CSR whose requester may
/// `create certificatesigningrequests/selfnodeclient` (CN is the requester) or
/// `…/nodeclient` gets the Approved condition.
fn auto_approve(api: &Api, csr: &Value) -> Option<Value> {
    if !csr["status"]["certificate"].is_null()
        || !conditions_of(csr, "Approved").is_empty()
        || !conditions_of(csr, "Denied").is_empty()
        || csr["spec"]["signerName"] != KUBELET_CLIENT_SIGNER
    {
        return None;
    }
    let request = signer::parse(csr["spec"]["request"].as_str()?).ok()?;
    if signer::kubelet_client_problem(&request, &usages(csr)).is_some() {
        return None;
    }
    let username = csr["spec"]["username"].as_str().unwrap_or("");
    let groups: Vec<&str> = csr["spec"]["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let recognizers = [
        (
            "selfnodeclient",
            username == request.common_name,
            "Auto approving self kubelet client certificate after SubjectAccessReview.",
        ),
        (
            "nodeclient",
            true,
            "Auto approving kubelet client certificate after SubjectAccessReview.",
        ),
    ];
    for (subresource, recognized, message) in recognizers {
        if recognized {
            super::audit::approver_check(api, username, &groups, subresource);
        }
        let attributes = json!({"group": GROUP, "verb": "create", "resource": PLURAL, "subresource": subresource});
        let granted = || {
            api.grants
                .allowing(username, &groups, &attributes)
                .is_some()
        };
        if recognized && (granted() || stored_rbac_allows(api, username, &groups, subresource)) {
            let mut approved = csr.clone();
            let now = objects::now();
            let condition = json!({"type": "Approved", "status": "True", "reason": "AutoApproved", "message": message, "lastUpdateTime": now, "lastTransitionTime": now});
            match approved["status"]["conditions"].as_array_mut() {
                Some(list) => list.push(condition),
                None => approved["status"]["conditions"] = json!([condition]),
            }
            return Some(approved);
        }
    }
    None
}

/// Whether the stored Roles and bindings (e.g. `k3s/rbac.yaml` applied) let `username` in
/// `groups` create CSRs of `subresource`, as RBAC answers the approver's review.
fn stored_rbac_allows(api: &Api, username: &str, groups: &[&str], subresource: &str) -> bool {
    let attributes = Attributes {
        user: username.to_owned(),
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        verb: "create".to_owned(),
        api_group: GROUP.to_owned(),
        resource: PLURAL.to_owned(),
        subresource: subresource.to_owned(),
        ..Attributes::default()
    };
    !rbac::stored(api).rules_allowing(&attributes).is_empty()
}

/// `signer.handle` for the two kubelet signers: an approved CSR (not failed, not signed)
/// gets its certificate, or a Failed condition when it does not meet the signer's rules.
fn sign(api: &Api, csr: &Value) -> Option<Value> {
    let signer_name = csr["spec"]["signerName"].as_str()?;
    if conditions_of(csr, "Approved").is_empty()
        || !conditions_of(csr, "Failed").is_empty()
        || !csr["status"]["certificate"].is_null()
        || ![KUBELET_CLIENT_SIGNER, KUBELET_SERVING_SIGNER].contains(&signer_name)
    {
        return None;
    }
    let request = signer::parse(csr["spec"]["request"].as_str()?).ok()?;
    let usages = usages(csr);
    let problem = if signer_name == KUBELET_CLIENT_SIGNER {
        signer::kubelet_client_problem(&request, &usages)
    } else {
        signer::kubelet_serving_problem(&request, &usages)
    };
    let mut signed = csr.clone();
    if let Some(why) = problem {
        let now = objects::now();
        let condition = json!({"type": "Failed", "status": "True", "reason": "SignerValidationFailure", "message": why, "lastUpdateTime": now, "lastTransitionTime": now});
        if let Some(list) = signed["status"]["conditions"].as_array_mut() {
            list.push(condition);
        }
        return Some(signed);
    }
    let ttl = signer::ttl(
        api.config.cluster_signing_duration,
        csr["spec"]["expirationSeconds"].as_i64(),
    );
    let pem = signer::sign(&api.client_ca, &request, &usages, ttl).ok()?;
    signed["status"]["certificate"] = json!(base64::standard(pem.as_bytes()));
    Some(signed)
}
