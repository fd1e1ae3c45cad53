//! What runs around a create besides storage, done synchronously because there are no
//! controllers: the ServiceAccount admission plugin on pods (default account, existence
//! check, the projected `kube-api-access-*` token volume mounted into every container, mirror
//! pods left alone), and what the serviceaccount and root-ca-cert-publisher controllers put
//! into every new namespace (`default` ServiceAccount, `kube-root-ca.crt` ConfigMap).

use serde_json::{Value, json};

use super::objects;
use super::resources;
use super::status::{ApiError, ApiResult};
use super::store::{ObjectKey, State};

/// Where the token volume is mounted in every container.
const TOKEN_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// Annotation marking a mirror pod (a static pod's API copy).
const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";
/// Token lifetime the admission plugin requests, in seconds (1 h plus 7 s of jitter room).
const TOKEN_EXPIRATION: i64 = 3607;

/// Creates the objects controllers put into every new namespace.
pub fn populate_namespace(state: &mut State, namespace: &str, root_ca_pem: &str) {
    let accounts = resources::core("serviceaccounts");
    let mut account = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": namespace}});
    objects::prepare_create(accounts, &mut account);
    state.put(ObjectKey::new(accounts, namespace, "default"), account);

    let config_maps = resources::core("configmaps");
    let mut root_ca = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "kube-root-ca.crt", "namespace": namespace, "annotations": {"kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."}},
        "data": {"ca.crt": root_ca_pem},
    });
    objects::prepare_create(config_maps, &mut root_ca);
    state.put(
        ObjectKey::new(config_maps, namespace, "kube-root-ca.crt"),
        root_ca,
    );
}

fn forbidden(pod: &Value, why: &str) -> ApiError {
    let name = pod["metadata"]["name"].as_str().unwrap_or("");
    ApiError::forbidden("", "pods", name, why)
}

/// Runs the ServiceAccount admission plugin on a pod being created.
pub fn admit_pod(state: &State, namespace: &str, pod: &mut Value) -> ApiResult<()> {
    let mirror = pod["metadata"]["annotations"]
        .get(MIRROR_ANNOTATION)
        .is_some();
    let account_name = pod["spec"]["serviceAccountName"]
        .as_str()
        .filter(|n| !n.is_empty())
        .map(str::to_string);
    if mirror {
        return match account_name {
            Some(_) => Err(forbidden(
                pod,
                "a mirror pod may not reference service accounts",
            )),
            None => Ok(()),
        };
    }
    let account_name = account_name.unwrap_or_else(|| "default".to_string());
    pod["spec"]["serviceAccountName"] = json!(account_name);
    pod["spec"]["serviceAccount"] = json!(account_name);
    let key = ObjectKey::new(resources::core("serviceaccounts"), namespace, &account_name);
    let Some(account) = state.get(&key) else {
        let why = format!(
            "error looking up service account {namespace}/{account_name}: serviceaccount \"{account_name}\" not found"
        );
        return Err(forbidden(pod, &why));
    };
    let automount = pod["spec"]["automountServiceAccountToken"]
        .as_bool()
        .or(account["automountServiceAccountToken"].as_bool())
        .unwrap_or(true);
    let containers = || ["initContainers", "containers"].into_iter();
    let already_mounted = containers().any(|field| {
        pod["spec"][field]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| {
                c["volumeMounts"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|m| m["mountPath"] == TOKEN_MOUNT_PATH)
            })
    });
    if !automount || already_mounted {
        return Ok(());
    }
    let volume_name = format!("kube-api-access-{}", objects::name_suffix());
    let volume = json!({"name": volume_name, "projected": {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
    ]}});
    match pod["spec"]["volumes"].as_array_mut() {
        Some(volumes) => volumes.push(volume),
        None => pod["spec"]["volumes"] = json!([volume]),
    }
    let mount = json!({"name": volume_name, "readOnly": true, "mountPath": TOKEN_MOUNT_PATH});
    for field in containers() {
        for container in pod["spec"][field].as_array_mut().into_iter().flatten() {
            match container["volumeMounts"].as_array_mut() {
                Some(mounts) => mounts.push(mount.clone()),
                None => container["volumeMounts"] = json!([mount.clone()]),
            }
        }
    }
    Ok(())
}
