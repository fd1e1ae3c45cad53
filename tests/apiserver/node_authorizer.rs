//! The Node authorizer, as k3s runs it (`--authorization-mode=Node,RBAC`): what a kubelet may
//! do without any RBAC binding. From kubernetes `plugin/pkg/auth/authorizer/node/node_authorizer.go`
//! (`Authorize` and its helpers), with the `AuthorizeNodeWithSelectors` feature on (beta and
//! on by default since 1.32, the k3s releases systemk targets), the static rules of
//! `plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go` `NodeRules`, and the node
//! identity of `pkg/auth/nodeidentifier/default.go`. Used to record, per request, whether
//! the Node authorizer alone allows it; `k3s/rbac.yaml` must cover the rest.
//!
//! Behaviours relied on:
//! - a node is a user named `system:node:<name>` in group `system:nodes`; anyone else gets
//!   no opinion;
//! - secrets and configmaps: get/list/watch of one named object (the name may come from a
//!   `metadata.name` field selector) in a namespace, only when a pod bound to the node
//!   references it (the authorizer's graph: volumes, projected sources, env, envFrom,
//!   imagePullSecrets); never a subresource;
//! - serviceaccounts: only `create` of the `token` subresource of a named account a pod
//!   bound to the node runs as;
//! - leases: get/create/update/patch/delete in `kube-node-lease`, named after the node
//!   (create is not checked by name: NodeRestriction does that);
//! - nodes: create/update/patch of any Node (NodeRestriction limits them to its own);
//!   get/list/watch only of its own name; update/patch of `status`;
//! - pods: get of a pod bound to the node; list/watch with `spec.nodeName=<node>`, or of one
//!   bound pod by name; create and delete (mirror pods; NodeRestriction limits them);
//!   update/patch of `status`; create of `eviction`;
//! - everything else: the static node rules (TokenReviews, SubjectAccessReviews, services,
//!   core/v1 events — not events.k8s.io —, CSRs, endpoints, volumes, runtimeclasses).
//!
//! NodeRestriction (`plugin/pkg/admission/noderestriction/admission.go`) then limits writes
//! to the node's own objects; it never allows anything the authorizers refused, so it does
//! not change what `k3s/rbac.yaml` must grant.

use serde_json::{Value, json};

use super::request_info::Attributes;
use super::{Api, rbac, resources};

/// The node authorizer's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed.
    Allow,
    /// No opinion (RBAC decides), with the authorizer's reason.
    NoOpinion(String),
}

/// The node name of a node identity (`NodeIdentity`), if the user is one.
fn node_name(attributes: &Attributes) -> Option<&str> {
    let name = attributes.user.strip_prefix("system:node:")?;
    attributes
        .groups
        .iter()
        .any(|g| g == "system:nodes")
        .then_some(name)
}

/// The decision for `attributes`, `None` when the user is not a node.
pub fn authorize(api: &Api, attributes: &Attributes) -> Option<Decision> {
    let node = node_name(attributes)?;
    let no = |why: &str| Decision::NoOpinion(why.to_owned());
    let graph = |kind: Reference| {
        if attributes.name.is_empty() {
            return no("No Object name found");
        }
        if related(api, node, kind, &attributes.namespace, &attributes.name) {
            Decision::Allow
        } else {
            no("no relationship found between node and this object")
        }
    };
    let (group, resource, sub, verb) = (
        attributes.api_group.as_str(),
        attributes.resource.as_str(),
        attributes.subresource.as_str(),
        attributes.verb.as_str(),
    );
    Some(match (group, resource) {
        ("", "secrets" | "configmaps") => {
            if !matches!(verb, "get" | "list" | "watch") || !sub.is_empty() {
                no("can only read resources of this type")
            } else if attributes.namespace.is_empty() {
                no("can only read namespaced object of this type")
            } else if resource == "secrets" {
                graph(Reference::Secret)
            } else {
                graph(Reference::ConfigMap)
            }
        }
        ("", "serviceaccounts") => {
            if verb != "create" || attributes.name.is_empty() || sub != "token" {
                no("can only create tokens for individual service accounts")
            } else {
                graph(Reference::ServiceAccount)
            }
        }
        ("coordination.k8s.io", "leases") => {
            if !matches!(verb, "get" | "create" | "update" | "patch" | "delete") {
                no("can only get, create, update, patch, or delete a node lease")
            } else if attributes.namespace != "kube-node-lease" {
                no("can only access leases in the kube-node-lease system namespace")
            } else if verb != "create" && attributes.name != node {
                no("can only access node lease with the same name as the requesting node")
            } else {
                Decision::Allow
            }
        }
        ("", "nodes") => match (sub, verb) {
            ("", "create" | "update" | "patch") | ("status", "update" | "patch") => Decision::Allow,
            ("", "get" | "list" | "watch") if attributes.name == node => Decision::Allow,
            _ => no("node can only read its own Node object"),
        },
        ("", "pods") => match (sub, verb) {
            ("", "get") => graph(Reference::Pod),
            ("", "list" | "watch") if attributes.field_requires("spec.nodeName") == Some(node) => {
                Decision::Allow
            }
            ("", "list" | "watch") if !attributes.name.is_empty() => graph(Reference::Pod),
            ("", "create" | "delete") | ("status", "update" | "patch") | ("eviction", "create") => {
                Decision::Allow
            }
            _ => no("can only list/watch pods with spec.nodeName field selector"),
        },
        _ => {
            let allowed = static_rules()
                .iter()
                .any(|rule| rbac::rule_allows(rule, attributes));
            if allowed { Decision::Allow } else { no("") }
        }
    })
}

/// `NodeRules`: what every node may do where the authorizer has no special case.
fn static_rules() -> Vec<Value> {
    let rule = |groups: &[&str], resources: &[&str], verbs: &[&str]| json!({"apiGroups": groups, "resources": resources, "verbs": verbs});
    let read = ["get", "list", "watch"];
    vec![
        rule(&["authentication.k8s.io"], &["tokenreviews"], &["create"]),
        rule(
            &["authorization.k8s.io"],
            &["subjectaccessreviews", "localsubjectaccessreviews"],
            &["create"],
        ),
        rule(&[""], &["services"], &read),
        rule(&[""], &["events"], &["create", "update", "patch"]),
        rule(
            &[""],
            &["persistentvolumeclaims", "persistentvolumes"],
            &["get"],
        ),
        rule(&[""], &["endpoints"], &["get"]),
        rule(
            &["certificates.k8s.io"],
            &["certificatesigningrequests"],
            &["create", "get", "list", "watch"],
        ),
        rule(&["storage.k8s.io"], &["volumeattachments"], &["get"]),
        rule(&["storage.k8s.io"], &["csidrivers"], &read),
        rule(&["node.k8s.io"], &["runtimeclasses"], &read),
    ]
}

/// What the graph links to a node through its pods.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Reference {
    Pod,
    Secret,
    ConfigMap,
    ServiceAccount,
}

/// Whether a pod bound to `node` is, or refers to, `namespace/name` of `kind`.
fn related(api: &Api, node: &str, kind: Reference, namespace: &str, name: &str) -> bool {
    let pods = api
        .store
        .lock()
        .list(resources::core("pods"), Some(namespace));
    pods.iter()
        .map(|(_, pod)| pod)
        .filter(|pod| pod["spec"]["nodeName"] == node)
        .any(|pod| match kind {
            Reference::Pod => pod["metadata"]["name"] == name,
            Reference::ServiceAccount => {
                let account = pod["spec"]["serviceAccountName"]
                    .as_str()
                    .unwrap_or("default");
                account == name
            }
            Reference::Secret | Reference::ConfigMap => references(pod, kind).any(|n| n == name),
        })
}

/// The secret or configMap names a pod refers to (`VisitPodSecretNames`,
/// `VisitPodConfigmapNames` for the sources systemk serves).
fn references(pod: &Value, kind: Reference) -> impl Iterator<Item = &str> {
    let secret = kind == Reference::Secret;
    let spec = &pod["spec"];
    let containers = ["initContainers", "containers", "ephemeralContainers"]
        .into_iter()
        .flat_map(move |list| spec[list].as_array().into_iter().flatten());
    let (key_ref, env_from, volume, projected) = if secret {
        ("secretKeyRef", "secretRef", "secret", "secret")
    } else {
        ("configMapKeyRef", "configMapRef", "configMap", "configMap")
    };
    let env = containers.clone().flat_map(move |c| {
        let values = c["env"]
            .as_array()
            .into_iter()
            .flatten()
            .map(move |e| &e["valueFrom"][key_ref]["name"]);
        let sources = c["envFrom"]
            .as_array()
            .into_iter()
            .flatten()
            .map(move |e| &e[env_from]["name"]);
        values.chain(sources)
    });
    let volumes = spec["volumes"].as_array().into_iter().flatten();
    let direct = volumes.clone().map(move |v| {
        if secret {
            &v[volume]["secretName"]
        } else {
            &v[volume]["name"]
        }
    });
    let projections = volumes.flat_map(move |v| {
        v["projected"]["sources"]
            .as_array()
            .into_iter()
            .flatten()
            .map(move |s| &s[projected]["name"])
    });
    let pull = spec["imagePullSecrets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(move |_| secret)
        .map(|s| &s["name"]);
    env.chain(direct)
        .chain(projections)
        .chain(pull)
        .filter_map(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::TestApiServer;
    use crate::apiserver::server::create_internal;

    fn node(verb: &str, resource: &str, sub: &str, namespace: &str, name: &str) -> Attributes {
        Attributes {
            user: "system:node:n1".into(),
            groups: vec!["system:nodes".into(), "system:authenticated".into()],
            verb: verb.into(),
            resource: resource.into(),
            subresource: sub.into(),
            namespace: namespace.into(),
            name: name.into(),
            ..Attributes::default()
        }
    }

    fn pod(name: &str, node: &str) -> Value {
        json!({
            "metadata": {"name": name, "namespace": "default"},
            "spec": {
                "nodeName": node,
                "serviceAccountName": "app",
                "imagePullSecrets": [{"name": "pull"}],
                "containers": [{"name": "c", "image": "i",
                    "env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "env-secret", "key": "k"}}}],
                    "envFrom": [{"configMapRef": {"name": "env-map"}}]}],
                "volumes": [
                    {"name": "s", "secret": {"secretName": "vol-secret"}},
                    {"name": "p", "projected": {"sources": [{"configMap": {"name": "projected-map"}}]}},
                ],
            },
        })
    }

    #[tokio::test]
    async fn secrets_configmaps_and_tokens_only_through_the_nodes_pods() {
        let (server, _) = TestApiServer::start().await;
        let api = &server.api;
        let pods = resources::core("pods");
        let app = json!({"metadata": {"name": "app", "namespace": "default"}});
        create_internal(api, resources::core("serviceaccounts"), "default", app);
        create_internal(api, pods, "default", pod("mine", "n1"));
        create_internal(api, pods, "default", pod("theirs", "n2"));
        let decide = |a: Attributes| authorize(api, &a).unwrap();
        for name in ["pull", "env-secret", "vol-secret"] {
            assert_eq!(
                decide(node("get", "secrets", "", "default", name)),
                Decision::Allow
            );
            assert_eq!(
                decide(node("watch", "secrets", "", "default", name)),
                Decision::Allow
            );
        }
        for name in ["env-map", "projected-map"] {
            assert_eq!(
                decide(node("list", "configmaps", "", "default", name)),
                Decision::Allow
            );
        }
        let refused = [
            node("get", "secrets", "", "default", "other"),
            node("list", "secrets", "", "default", ""),
            node("get", "secrets", "", "kube-system", "pull"),
            node("update", "secrets", "", "default", "pull"),
            node("get", "configmaps", "", "default", "vol-secret"),
            node("create", "serviceaccounts", "token", "default", "default"),
            node("get", "serviceaccounts", "", "default", "app"),
            node("get", "pods", "", "default", "theirs"),
            node("list", "pods", "", "", ""),
            node("get", "nodes", "", "", "n2"),
            node("update", "leases", "", "kube-node-lease", "n2"),
            node("create", "events", "", "default", ""),
        ];
        for mut attributes in refused {
            if attributes.resource == "leases" {
                attributes.api_group = "coordination.k8s.io".into();
            }
            if attributes.resource == "events" {
                attributes.api_group = "events.k8s.io".into();
            }
            assert!(
                matches!(decide(attributes.clone()), Decision::NoOpinion(_)),
                "{attributes}"
            );
        }
        assert_eq!(
            decide(node("create", "serviceaccounts", "token", "default", "app")),
            Decision::Allow
        );
        assert_eq!(
            decide(node("get", "pods", "", "default", "mine")),
            Decision::Allow
        );
        let mut watch = node("watch", "pods", "", "", "");
        watch.field_selector = "spec.nodeName=n1".into();
        assert_eq!(decide(watch), Decision::Allow);
        assert_eq!(
            decide(node("create", "events", "", "default", "")),
            Decision::Allow
        );
        assert_eq!(
            decide(node("patch", "nodes", "status", "", "n1")),
            Decision::Allow
        );
    }

    #[tokio::test]
    async fn only_node_identities_are_judged() {
        let (server, _) = TestApiServer::start().await;
        let mut stranger = node("get", "nodes", "", "", "n1");
        stranger.groups = vec!["system:authenticated".into()];
        assert_eq!(authorize(&server.api, &stranger), None);
        stranger.user = "alice".into();
        stranger.groups = vec!["system:nodes".into()];
        assert_eq!(authorize(&server.api, &stranger), None);
    }
}
