//! RBAC evaluation, as kube-apiserver's RBAC authorizer does it
//! (`plugin/pkg/auth/authorizer/rbac/rbac.go` `RuleAllows`, `pkg/registry/rbac/validation/rule.go`
//! `VisitRulesFor`/`appliesTo`, `pkg/apis/rbac/v1/evaluation_helpers.go`), over roles and
//! bindings given as JSON values (parsed from a manifest such as `k3s/rbac.yaml`, or the
//! stored objects) plus the few built-in ClusterRoles bindings refer to. Pure.
//!
//! Matching: a rule allows when its verbs contain the verb or `*`; its apiGroups the group
//! or `*`; its resources `*`, the combined `resource/subresource`, or `*/subresource`; and
//! its resourceNames are empty or contain the name (so a rule with resourceNames never
//! allows a create, list or watch without a name). A ClusterRoleBinding applies in every
//! namespace; a RoleBinding only to requests in its own namespace. Subjects: a User by name,
//! a Group by membership, a ServiceAccount as `system:serviceaccount:<ns>:<name>`.

use serde_json::{Value, json};

use super::request_info::Attributes;
use super::{Api, resources};

/// One permission as one binding grants it, named for reports:
/// `RoleBinding/<ns>/<binding> -> Role/<ns>/<role>#<rule index>: <verb> <group>/<resource>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuleId(pub String);

impl std::fmt::Display for RuleId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Roles and bindings to evaluate against.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    objects: Vec<Value>,
}

/// The built-in ClusterRoles kube-apiserver creates that the node bootstrap bindings refer to
/// (`plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go` `ClusterRoles`).
fn built_in_roles() -> Vec<Value> {
    let csr = |verbs: &[&str], resource: &str| json!({"apiGroups": ["certificates.k8s.io"], "resources": [resource], "verbs": verbs});
    vec![
        json!({"kind": "ClusterRole", "metadata": {"name": "system:node-bootstrapper"},
            "rules": [csr(&["create", "get", "list", "watch"], "certificatesigningrequests")]}),
        json!({"kind": "ClusterRole",
            "metadata": {"name": "system:certificates.k8s.io:certificatesigningrequests:nodeclient"},
            "rules": [csr(&["create"], "certificatesigningrequests/nodeclient")]}),
        json!({"kind": "ClusterRole",
            "metadata": {"name": "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient"},
            "rules": [csr(&["create"], "certificatesigningrequests/selfnodeclient")]}),
    ]
}

impl Policy {
    /// A policy of `objects` (Roles, ClusterRoles, RoleBindings, ClusterRoleBindings; others
    /// are ignored) plus the built-in ClusterRoles they may bind.
    pub fn new(objects: Vec<Value>) -> Self {
        let mut all = objects;
        all.extend(built_in_roles());
        Self { objects: all }
    }

    /// Every permission each given binding grants (through a given or a built-in role): one
    /// per verb, API group, resource and resource name of each rule, for coverage reports.
    pub fn own_rules(&self) -> Vec<RuleId> {
        let built_in = built_in_roles().len();
        self.objects[..self.objects.len() - built_in]
            .iter()
            .filter_map(|binding| Some((binding, self.bound_role(binding)?)))
            .flat_map(|(binding, role)| {
                let rules = role["rules"].as_array().into_iter().flatten().enumerate();
                rules.flat_map(move |(index, rule)| {
                    permissions(rule)
                        .map(move |permission| rule_id(binding, role, index, &permission))
                })
            })
            .collect()
    }

    /// Every permission (as `own_rules` names them) that allows `attributes`, through a
    /// binding that applies to its user.
    pub fn rules_allowing(&self, attributes: &Attributes) -> Vec<RuleId> {
        let mut found = Vec::new();
        for binding in &self.objects {
            let namespace = binding["metadata"]["namespace"].as_str().unwrap_or("");
            let applies = match binding["kind"].as_str() {
                Some("ClusterRoleBinding") => true,
                Some("RoleBinding") => namespace == attributes.namespace,
                _ => false,
            };
            if !applies || !subjects_include(&binding["subjects"], attributes) {
                continue;
            }
            let Some(role) = self.bound_role(binding) else {
                continue;
            };
            for (index, rule) in role["rules"].as_array().into_iter().flatten().enumerate() {
                if !rule_allows(rule, attributes) {
                    continue;
                }
                let used = permissions(rule).find(|p| permission_allows(p, attributes));
                if let Some(permission) = used {
                    found.push(rule_id(binding, role, index, &permission));
                }
            }
        }
        found
    }

    /// The role a (Cluster)RoleBinding refers to; `None` for other objects.
    fn bound_role(&self, binding: &Value) -> Option<&Value> {
        if !matches!(
            binding["kind"].as_str(),
            Some("ClusterRoleBinding" | "RoleBinding")
        ) {
            return None;
        }
        let namespace = binding["metadata"]["namespace"].as_str().unwrap_or("");
        self.role(&binding["roleRef"], namespace)
    }

    fn role(&self, role_ref: &Value, binding_namespace: &str) -> Option<&Value> {
        let kind = role_ref["kind"].as_str()?;
        let name = role_ref["name"].as_str()?;
        self.objects.iter().find(|o| {
            o["kind"] == kind
                && o["metadata"]["name"] == name
                && (kind == "ClusterRole"
                    || o["metadata"]["namespace"].as_str() == Some(binding_namespace))
        })
    }
}

/// The Roles, ClusterRoles and their bindings stored in `api`, as a policy.
pub fn stored(api: &Api) -> Policy {
    let state = api.store.lock();
    let objects = [
        "clusterroles",
        "clusterrolebindings",
        "roles",
        "rolebindings",
    ]
    .into_iter()
    .filter_map(|plural| resources::find("rbac.authorization.k8s.io", "v1", plural))
    .flat_map(|resource| state.list(resource, None))
    .map(|(_, object)| object)
    .collect();
    Policy::new(objects)
}

fn name_of(object: &Value) -> String {
    let kind = object["kind"].as_str().unwrap_or("");
    let name = object["metadata"]["name"].as_str().unwrap_or("");
    match object["metadata"]["namespace"].as_str() {
        Some(namespace) => format!("{kind}/{namespace}/{name}"),
        None => format!("{kind}/{name}"),
    }
}

/// One verb on one resource of one API group, for one resource name ("" for any).
#[derive(Debug, Clone)]
struct Permission {
    verb: String,
    group: String,
    resource: String,
    name: String,
}

/// The permissions a rule grants, one per verb × group × resource × resource name.
fn permissions(rule: &Value) -> impl Iterator<Item = Permission> + '_ {
    let names: Vec<String> = strings(&rule["resourceNames"]).map(str::to_owned).collect();
    let names = if names.is_empty() {
        vec![String::new()]
    } else {
        names
    };
    strings(&rule["verbs"]).flat_map(move |verb| {
        let names = names.clone();
        strings(&rule["apiGroups"]).flat_map(move |group| {
            let names = names.clone();
            strings(&rule["resources"]).flat_map(move |resource| {
                names.clone().into_iter().map(move |name| Permission {
                    verb: verb.to_owned(),
                    group: group.to_owned(),
                    resource: resource.to_owned(),
                    name,
                })
            })
        })
    })
}

fn permission_allows(permission: &Permission, attributes: &Attributes) -> bool {
    let rule = json!({
        "verbs": [permission.verb],
        "apiGroups": [permission.group],
        "resources": [permission.resource],
        "resourceNames": if permission.name.is_empty() { json!([]) } else { json!([permission.name]) },
    });
    rule_allows(&rule, attributes)
}

/// `<binding> -> <role>#<rule index>: <verb> <group>/<resource>[ <name>]`.
fn rule_id(binding: &Value, role: &Value, index: usize, permission: &Permission) -> RuleId {
    let group = if permission.group.is_empty() {
        "core"
    } else {
        &permission.group
    };
    let mut id = format!(
        "{} -> {}#{index}: {} {group}/{}",
        name_of(binding),
        name_of(role),
        permission.verb,
        permission.resource
    );
    if !permission.name.is_empty() {
        id = format!("{id} {}", permission.name);
    }
    RuleId(id)
}

/// `appliesTo`: whether one of `subjects` is the request's user.
fn subjects_include(subjects: &Value, attributes: &Attributes) -> bool {
    subjects.as_array().into_iter().flatten().any(|subject| {
        let name = subject["name"].as_str().unwrap_or("");
        match subject["kind"].as_str() {
            Some("User") => attributes.user == name,
            Some("Group") => attributes.groups.iter().any(|g| g == name),
            Some("ServiceAccount") => {
                let namespace = subject["namespace"].as_str().unwrap_or("");
                attributes.user == format!("system:serviceaccount:{namespace}:{name}")
            }
            _ => false,
        }
    })
}

fn strings(value: &Value) -> impl Iterator<Item = &str> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

/// `RuleAllows` for a resource request.
pub fn rule_allows(rule: &Value, attributes: &Attributes) -> bool {
    let combined = attributes.combined_resource();
    let verb = strings(&rule["verbs"]).any(|v| v == "*" || v == attributes.verb);
    let group = strings(&rule["apiGroups"]).any(|g| g == "*" || g == attributes.api_group);
    let resource = strings(&rule["resources"]).any(|r| {
        r == "*"
            || r == combined
            || (!attributes.subresource.is_empty()
                && r.strip_prefix("*/") == Some(attributes.subresource.as_str()))
    });
    let mut names = strings(&rule["resourceNames"]).peekable();
    let name = names.peek().is_none() || names.any(|n| n == attributes.name);
    verb && group && resource && name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attributes(
        verb: &str,
        resource: &str,
        sub: &str,
        namespace: &str,
        name: &str,
    ) -> Attributes {
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

    #[test]
    fn rules_match_verbs_groups_subresources_and_names() {
        let rule = json!({"apiGroups": [""], "resources": ["configmaps"],
            "resourceNames": ["extension-apiserver-authentication"], "verbs": ["get"]});
        let get = attributes(
            "get",
            "configmaps",
            "",
            "kube-system",
            "extension-apiserver-authentication",
        );
        assert!(rule_allows(&rule, &get));
        assert!(!rule_allows(
            &rule,
            &attributes("get", "configmaps", "", "kube-system", "other")
        ));
        assert!(!rule_allows(
            &rule,
            &attributes("list", "configmaps", "", "kube-system", "")
        ));
        let status = json!({"apiGroups": [""], "resources": ["pods/status"], "verbs": ["patch"]});
        assert!(rule_allows(
            &status,
            &attributes("patch", "pods", "status", "ns", "p")
        ));
        assert!(!rule_allows(
            &status,
            &attributes("patch", "pods", "", "ns", "p")
        ));
        let any_status = json!({"apiGroups": ["*"], "resources": ["*/status"], "verbs": ["*"]});
        assert!(rule_allows(
            &any_status,
            &attributes("update", "nodes", "status", "", "n1")
        ));
        let mut events = attributes("create", "events", "", "ns", "");
        events.api_group = "events.k8s.io".into();
        let core_events = json!({"apiGroups": [""], "resources": ["events"], "verbs": ["create"]});
        assert!(!rule_allows(&core_events, &events));
    }

    #[test]
    fn bindings_apply_by_subject_and_namespace() {
        let policy = Policy::new(vec![
            json!({"kind": "Role", "metadata": {"name": "r", "namespace": "kube-system"},
                "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]}),
            json!({"kind": "RoleBinding", "metadata": {"name": "b", "namespace": "kube-system"},
                "roleRef": {"kind": "Role", "name": "r"},
                "subjects": [{"kind": "Group", "name": "system:nodes"}]}),
            json!({"kind": "ClusterRoleBinding", "metadata": {"name": "c"},
                "roleRef": {"kind": "ClusterRole", "name": "system:node-bootstrapper"},
                "subjects": [{"kind": "User", "name": "system:bootstrap:abcdef"}]}),
        ]);
        let get = attributes("get", "configmaps", "", "kube-system", "x");
        let role = "RoleBinding/kube-system/b -> Role/kube-system/r#0: get core/configmaps";
        assert_eq!(policy.rules_allowing(&get), [RuleId(role.into())]);
        assert!(
            policy
                .rules_allowing(&attributes("get", "configmaps", "", "default", "x"))
                .is_empty()
        );
        let bootstrapper = "ClusterRoleBinding/c -> ClusterRole/system:node-bootstrapper#0: ";
        let csrs = "certificates.k8s.io/certificatesigningrequests";
        let mut csr = attributes("create", "certificatesigningrequests", "", "", "");
        csr.api_group = "certificates.k8s.io".into();
        assert!(policy.rules_allowing(&csr).is_empty());
        csr.user = "system:bootstrap:abcdef".into();
        assert_eq!(
            policy.rules_allowing(&csr),
            [RuleId(format!("{bootstrapper}create {csrs}"))]
        );
        let own: Vec<String> = policy.own_rules().into_iter().map(|r| r.0).collect();
        assert_eq!(
            own,
            [
                role.to_owned(),
                format!("{bootstrapper}create {csrs}"),
                format!("{bootstrapper}get {csrs}"),
                format!("{bootstrapper}list {csrs}"),
                format!("{bootstrapper}watch {csrs}"),
            ]
        );
    }
}
