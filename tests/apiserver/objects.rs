//! What the registry does to an object before it is stored: name validation, system
//! metadata (uid, creationTimestamp, generation), the defaults and status resets of the
//! built-in strategies (pods start Pending with a QoS class, namespaces Active), and the pod
//! spec immutability rule. Pure functions over `serde_json::Value`, apart from the clock and
//! the random uid.

use std::hash::{BuildHasher, Hasher, RandomState};
use std::time::{SystemTime, UNIX_EPOCH};

use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use super::base64;
use super::resources::Resource;
use super::status::{ApiError, ApiResult};

/// Seconds since the Unix epoch (the jiff k8s-openapi re-exports is built without a clock).
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs() as i64)
}

/// Now, as metav1.Time renders it (RFC 3339, whole seconds).
pub fn now() -> String {
    now_plus(0)
}

/// Now plus `seconds`, as metav1.Time.
pub fn now_plus(seconds: i64) -> String {
    Timestamp::from_second(unix_now().saturating_add(seconds))
        .unwrap_or(Timestamp::UNIX_EPOCH)
        .to_string()
}

fn random_u64() -> u64 {
    RandomState::new().build_hasher().finish()
}

/// A random version-4 UUID.
pub fn new_uid() -> String {
    let (high, low) = (random_u64(), random_u64());
    let hex = format!("{high:016x}{low:016x}");
    format!(
        "{}-{}-4{}-a{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

/// The 5-character suffix `generateName` gets, from the real server's alphabet.
pub fn name_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut bits = random_u64();
    (0..5)
        .map(|_| {
            let ch = ALPHABET[(bits % ALPHABET.len() as u64) as usize] as char;
            bits /= ALPHABET.len() as u64;
            ch
        })
        .collect()
}

pub const SUBDOMAIN_MESSAGE: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MESSAGE: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

fn is_label(text: &str) -> bool {
    text.len() <= 63 && is_label_shaped(text)
}

/// `IsDNS1123Subdomain`: its regex puts no length limit on a dot-separated part, only
/// 253 on the whole.
pub fn is_subdomain(text: &str) -> bool {
    text.len() <= 253 && text.split('.').all(is_label_shaped)
}

fn is_label_shaped(text: &str) -> bool {
    let bytes = text.as_bytes();
    !text.is_empty()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

/// `path.IsValidPathSegmentName`'s first complaint, as RBAC objects are validated
/// (`ValidateRBACName`): so `system:node-bootstrapper` is a valid role name.
fn path_segment_problem(name: &str) -> Option<&'static str> {
    match name {
        "." => Some("may not be '.'"),
        ".." => Some("may not be '..'"),
        _ if name.contains('/') => Some("may not contain '/'"),
        _ if name.contains('%') => Some("may not contain '%'"),
        _ => None,
    }
}

/// Validates `metadata.name` as the resource's strategy does: namespaces are DNS labels,
/// RBAC objects path segments, everything else DNS subdomains.
pub fn validate_name(resource: &Resource, name: &str) -> ApiResult<()> {
    let (valid, why) = if resource.plural == "namespaces" {
        (is_label(name), LABEL_MESSAGE)
    } else if resource.group == "rbac.authorization.k8s.io" {
        let problem = path_segment_problem(name);
        (problem.is_none(), problem.unwrap_or_default())
    } else {
        (is_subdomain(name), SUBDOMAIN_MESSAGE)
    };
    if valid {
        Ok(())
    } else {
        Err(ApiError::invalid(
            resource.group,
            resource.kind,
            name,
            "metadata.name",
            &format!("Invalid value: \"{name}\": {why}"),
        ))
    }
}

/// Checks `kind`/`apiVersion` of a request body and fills them when absent.
pub fn check_type(
    resource: &Resource,
    object: &mut Value,
    kind: &str,
    api_version: &str,
) -> ApiResult<()> {
    if !object.is_object() {
        return Err(ApiError::bad_request(format!(
            "the body of the request was not a {kind} object"
        )));
    }
    if let Some(given) = object.get("apiVersion").and_then(Value::as_str)
        && given != api_version
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({given}) does not match the expected API version ({api_version})"
        )));
    }
    if let Some(given) = object.get("kind").and_then(Value::as_str)
        && given != kind
    {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({given}) does not match the expected kind ({kind}) of {}",
            resource.plural
        )));
    }
    object["apiVersion"] = json!(api_version);
    object["kind"] = json!(kind);
    if !object["metadata"].is_object() {
        object["metadata"] = json!({});
    }
    Ok(())
}

/// Pod QoS class from requests and limits, as `qos.GetPodQOS` computes it.
fn qos_class(pod: &Value) -> &'static str {
    let containers: Vec<&Value> = ["containers", "initContainers"]
        .iter()
        .filter_map(|field| pod["spec"][field].as_array())
        .flatten()
        .collect();
    let has = |container: &Value, which: &str| {
        container["resources"][which]
            .as_object()
            .is_some_and(|map| map.contains_key("cpu") || map.contains_key("memory"))
    };
    if containers
        .iter()
        .all(|c| !has(c, "requests") && !has(c, "limits"))
    {
        return "BestEffort";
    }
    let guaranteed = containers.iter().all(|c| {
        ["cpu", "memory"].iter().all(|r| {
            let limit = &c["resources"]["limits"][r];
            let request = &c["resources"]["requests"][r];
            !limit.is_null() && (request.is_null() || request == limit)
        })
    });
    if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

fn default_field(object: &mut Value, field: &str, value: Value) {
    if object.get(field).is_none_or(Value::is_null) {
        object[field] = value;
    }
}

/// Pod defaults the real server applies (a subset: those clients read back).
fn default_pod(pod: &mut Value) {
    let spec = &mut pod["spec"];
    default_field(spec, "restartPolicy", json!("Always"));
    default_field(spec, "terminationGracePeriodSeconds", json!(30));
    default_field(spec, "dnsPolicy", json!("ClusterFirst"));
    default_field(spec, "schedulerName", json!("default-scheduler"));
    for field in ["containers", "initContainers"] {
        for container in spec[field].as_array_mut().into_iter().flatten() {
            // SetDefaults_Container: the tag ParseImageName finds (errors ignored) is
            // `latest` → Always, else IfNotPresent. `nginx` is Always; `nginx=1.22.1-9`, an
            // https URL or a path is no image reference at all, so IfNotPresent.
            let image = container["image"].as_str().unwrap_or("");
            default_field(
                container,
                "imagePullPolicy",
                json!(systemk::package::PullPolicy::default_for(image).as_str()),
            );
            default_field(
                container,
                "terminationMessagePath",
                json!("/dev/termination-log"),
            );
            default_field(container, "terminationMessagePolicy", json!("File"));
        }
    }
}

/// Sets the system metadata and strategy defaults of an object being created.
pub fn prepare_create(resource: &Resource, object: &mut Value) {
    let metadata = &mut object["metadata"];
    metadata["uid"] = json!(new_uid());
    metadata["creationTimestamp"] = json!(now());
    if let Some(map) = metadata.as_object_mut() {
        map.remove("deletionTimestamp");
        map.remove("deletionGracePeriodSeconds");
        map.remove("generation");
    }
    if object.get("spec").is_some() {
        object["metadata"]["generation"] = json!(1);
    }
    match resource.plural {
        "pods" => {
            default_pod(object);
            object["status"] = json!({ "phase": "Pending", "qosClass": qos_class(object) });
        }
        "namespaces" => {
            object["spec"] = json!({ "finalizers": ["kubernetes"] });
            object["status"] = json!({ "phase": "Active" });
        }
        "deployments" | "replicasets" => object["status"] = json!({}),
        "secrets" => fold_string_data(object),
        _ => {}
    }
}

/// Secrets store `stringData` base64-encoded in `data` and default to type Opaque.
pub fn fold_string_data(secret: &mut Value) {
    if let Some(Value::Object(strings)) = secret
        .as_object_mut()
        .and_then(|map| map.remove("stringData"))
    {
        for (key, value) in strings {
            let encoded = base64::standard(value.as_str().unwrap_or("").as_bytes());
            secret["data"][key] = json!(encoded);
        }
    }
    default_field(secret, "type", json!("Opaque"));
}

/// Pod spec fields an update may change (`ValidatePodUpdate`), besides container images.
const MUTABLE_POD_SPEC_FIELDS: &[&str] = &[
    "activeDeadlineSeconds",
    "tolerations",
    "terminationGracePeriodSeconds",
];

/// Rejects pod updates that change more than the real server allows.
pub fn validate_pod_update(old: &Value, new: &Value) -> ApiResult<()> {
    let strip = |pod: &Value| {
        let mut spec = pod["spec"].clone();
        if let Some(map) = spec.as_object_mut() {
            for field in MUTABLE_POD_SPEC_FIELDS {
                map.remove(*field);
            }
        }
        for field in ["containers", "initContainers"] {
            for container in spec[field].as_array_mut().into_iter().flatten() {
                if let Some(map) = container.as_object_mut() {
                    map.remove("image");
                }
            }
        }
        spec
    };
    if strip(old) == strip(new) {
        return Ok(());
    }
    let name = new["metadata"]["name"].as_str().unwrap_or("");
    Err(ApiError::invalid(
        "",
        "Pod",
        name,
        "spec",
        "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
    ))
}

#[cfg(test)]
mod pull_policy_tests {
    use super::*;

    fn defaulted(image: &str) -> Value {
        let mut pod = json!({ "spec": { "containers": [{ "name": "c", "image": image }],
            "initContainers": [{ "name": "i", "image": image, "imagePullPolicy": "Never" }] } });
        default_pod(&mut pod);
        json!([
            pod["spec"]["containers"][0]["imagePullPolicy"],
            pod["spec"]["initContainers"][0]["imagePullPolicy"]
        ])
    }

    /// As `SetDefaults_Container`: `latest` (no tag, valid reference) is Always; a pin,
    /// which is no valid image reference, an https URL and a path are IfNotPresent; a given
    /// policy stays.
    #[test]
    fn image_pull_policy_defaults_as_kube_apiserver() {
        assert_eq!(defaulted("nginx"), json!(["Always", "Never"]));
        assert_eq!(defaulted("nginx:latest"), json!(["Always", "Never"]));
        assert_eq!(defaulted("nginx:1.25"), json!(["IfNotPresent", "Never"]));
        assert_eq!(
            defaulted("nginx=1.22.1-9"),
            json!(["IfNotPresent", "Never"])
        );
        assert_eq!(
            defaulted("https://a.example/x_1_all.deb"),
            json!(["IfNotPresent", "Never"])
        );
        assert_eq!(
            defaulted("/usr/bin/sleep"),
            json!(["IfNotPresent", "Never"])
        );
    }
}
