//! The resource table: every group/version/resource the test API server serves, with the
//! facts discovery publishes (kind, scope, verbs, short names, subresources) and the extra
//! field-selector labels the real server registers for it. Pure data.

/// A subresource published in discovery as `<resource>/<name>`.
pub struct Subresource {
    /// Path segment after the object name: `status`, `binding`, `token`.
    pub name: &'static str,
    /// Kind accepted and returned, e.g. `TokenRequest`.
    pub kind: &'static str,
    /// Group of that kind when it differs from the parent's (TokenRequest lives in authentication.k8s.io/v1).
    pub group_version: Option<(&'static str, &'static str)>,
    /// Verbs discovery lists.
    pub verbs: &'static [&'static str],
}

/// One served resource.
pub struct Resource {
    /// API group, empty for the core group.
    pub group: &'static str,
    /// API version.
    pub version: &'static str,
    /// Plural resource name, the URL segment.
    pub plural: &'static str,
    /// Lowercase singular name.
    pub singular: &'static str,
    /// Kind of the objects.
    pub kind: &'static str,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// Short names kubectl accepts.
    pub short_names: &'static [&'static str],
    /// Categories (`all`).
    pub categories: &'static [&'static str],
    /// Subresources served.
    pub subresources: &'static [Subresource],
    /// Field-selector labels beyond `metadata.name` / `metadata.namespace`.
    pub field_labels: &'static [&'static str],
    /// Verbs discovery lists for the resource itself.
    pub verbs: &'static [&'static str],
}

/// Verbs of every stored resource: deletecollection is not served, so it is not published.
pub const VERBS: &[&str] = &[
    "create", "delete", "get", "list", "patch", "update", "watch",
];
const STATUS: Subresource = Subresource {
    name: "status",
    kind: "",
    group_version: None,
    verbs: &["get", "patch", "update"],
};

impl Resource {
    /// `apiVersion` of the objects: `v1`, `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Whether `/status` is served (and so main-resource writes leave `.status` alone).
    pub fn has_status(&self) -> bool {
        self.subresources.iter().any(|sub| sub.name == "status")
    }

    /// Where objects of this resource are stored: events.k8s.io/v1 events share core/v1's.
    pub fn storage_id(&self) -> String {
        if self.group == "events.k8s.io" {
            return "v1/events".to_string();
        }
        format!("{}/{}", self.api_version(), self.plural)
    }

    /// The subresource served under `name`.
    pub fn subresource(&self, name: &str) -> Option<&Subresource> {
        self.subresources.iter().find(|sub| sub.name == name)
    }
}

/// Every served resource, in discovery order.
pub static RESOURCES: &[Resource] = &[
    Resource {
        group: "",
        version: "v1",
        plural: "namespaces",
        singular: "namespace",
        kind: "Namespace",
        namespaced: false,
        short_names: &["ns"],
        categories: &[],
        subresources: &[STATUS],
        field_labels: &["status.phase"],
        verbs: VERBS,
    },
    Resource {
        group: "",
        version: "v1",
        plural: "pods",
        singular: "pod",
        kind: "Pod",
        namespaced: true,
        short_names: &["po"],
        categories: &["all"],
        subresources: &[
            STATUS,
            Subresource {
                name: "binding",
                kind: "Binding",
                group_version: None,
                verbs: &["create"],
            },
            // Proxied to the node's kubelet (`pod_logs`).
            Subresource {
                name: "log",
                kind: "Pod",
                group_version: None,
                verbs: &["get"],
            },
            // Passed through to the node's kubelet (`pod_exec`, `pod_portforward`).
            Subresource {
                name: "exec",
                kind: "PodExecOptions",
                group_version: None,
                verbs: &["create", "get"],
            },
            Subresource {
                name: "attach",
                kind: "PodAttachOptions",
                group_version: None,
                verbs: &["create", "get"],
            },
            Subresource {
                name: "portforward",
                kind: "PodPortForwardOptions",
                group_version: None,
                verbs: &["create", "get"],
            },
        ],
        field_labels: &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
        verbs: VERBS,
    },
    Resource {
        group: "",
        version: "v1",
        plural: "nodes",
        singular: "node",
        kind: "Node",
        namespaced: false,
        short_names: &["no"],
        categories: &[],
        subresources: &[STATUS],
        field_labels: &["spec.unschedulable"],
        verbs: VERBS,
    },
    Resource {
        group: "",
        version: "v1",
        plural: "configmaps",
        singular: "configmap",
        kind: "ConfigMap",
        namespaced: true,
        short_names: &["cm"],
        categories: &[],
        subresources: &[],
        field_labels: &[],
        verbs: VERBS,
    },
    // Stored as given: no cluster IP is allocated, so tests set `spec.clusterIP`.
    Resource {
        group: "",
        version: "v1",
        plural: "services",
        singular: "service",
        kind: "Service",
        namespaced: true,
        short_names: &["svc"],
        categories: &["all"],
        subresources: &[STATUS],
        field_labels: &["spec.clusterIP", "spec.type"],
        verbs: VERBS,
    },
    Resource {
        group: "",
        version: "v1",
        plural: "secrets",
        singular: "secret",
        kind: "Secret",
        namespaced: true,
        short_names: &[],
        categories: &[],
        subresources: &[],
        field_labels: &["type"],
        verbs: VERBS,
    },
    Resource {
        group: "",
        version: "v1",
        plural: "serviceaccounts",
        singular: "serviceaccount",
        kind: "ServiceAccount",
        namespaced: true,
        short_names: &["sa"],
        categories: &[],
        subresources: &[Subresource {
            name: "token",
            kind: "TokenRequest",
            group_version: Some(("authentication.k8s.io", "v1")),
            verbs: &["create"],
        }],
        field_labels: &[],
        verbs: VERBS,
    },
    Resource {
        group: "",
        version: "v1",
        plural: "events",
        singular: "event",
        kind: "Event",
        namespaced: true,
        short_names: &["ev"],
        categories: &[],
        subresources: &[],
        field_labels: &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        verbs: VERBS,
    },
    Resource {
        group: "coordination.k8s.io",
        version: "v1",
        plural: "leases",
        singular: "lease",
        kind: "Lease",
        namespaced: true,
        short_names: &[],
        categories: &[],
        subresources: &[],
        field_labels: &[],
        verbs: VERBS,
    },
    Resource {
        group: "events.k8s.io",
        version: "v1",
        plural: "events",
        singular: "event",
        kind: "Event",
        namespaced: true,
        short_names: &["ev"],
        categories: &[],
        subresources: &[],
        field_labels: &[
            "regarding.kind",
            "regarding.namespace",
            "regarding.name",
            "regarding.uid",
            "regarding.apiVersion",
            "regarding.resourceVersion",
            "regarding.fieldPath",
            "reason",
            "reportingController",
            "type",
        ],
        verbs: VERBS,
    },
    Resource {
        group: "apps",
        version: "v1",
        plural: "deployments",
        singular: "deployment",
        kind: "Deployment",
        namespaced: true,
        short_names: &["deploy"],
        categories: &["all"],
        subresources: &[STATUS],
        field_labels: &[],
        verbs: VERBS,
    },
    Resource {
        group: "apps",
        version: "v1",
        plural: "replicasets",
        singular: "replicaset",
        kind: "ReplicaSet",
        namespaced: true,
        short_names: &["rs"],
        categories: &["all"],
        subresources: &[STATUS],
        field_labels: &[],
        verbs: VERBS,
    },
    // RBAC objects are stored, not enforced on requests: served so the examples that grant
    // a ServiceAccount API access (prometheus) and `k3s/rbac.yaml` can be applied. Only the
    // CSR approver's SubjectAccessReviews read them (`csr`).
    Resource {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        plural: "clusterroles",
        singular: "clusterrole",
        kind: "ClusterRole",
        namespaced: false,
        short_names: &[],
        categories: &[],
        subresources: &[],
        field_labels: &[],
        verbs: VERBS,
    },
    Resource {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        plural: "clusterrolebindings",
        singular: "clusterrolebinding",
        kind: "ClusterRoleBinding",
        namespaced: false,
        short_names: &[],
        categories: &[],
        subresources: &[],
        field_labels: &[],
        verbs: VERBS,
    },
    Resource {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        plural: "roles",
        singular: "role",
        kind: "Role",
        namespaced: true,
        short_names: &[],
        categories: &[],
        subresources: &[],
        field_labels: &[],
        verbs: VERBS,
    },
    Resource {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        plural: "rolebindings",
        singular: "rolebinding",
        kind: "RoleBinding",
        namespaced: true,
        short_names: &[],
        categories: &[],
        subresources: &[],
        field_labels: &[],
        verbs: VERBS,
    },
    // Validated on create, approved and signed synchronously (`csr`, `signer`).
    Resource {
        group: "certificates.k8s.io",
        version: "v1",
        plural: "certificatesigningrequests",
        singular: "certificatesigningrequest",
        kind: "CertificateSigningRequest",
        namespaced: false,
        short_names: &["csr"],
        categories: &[],
        subresources: &[
            Subresource {
                name: "approval",
                kind: "",
                group_version: None,
                verbs: &["get", "patch", "update"],
            },
            STATUS,
        ],
        field_labels: &["spec.signerName"],
        verbs: VERBS,
    },
    // Answered, never stored (`token_review`).
    Resource {
        group: "authentication.k8s.io",
        version: "v1",
        plural: "tokenreviews",
        singular: "tokenreview",
        kind: "TokenReview",
        namespaced: false,
        short_names: &[],
        categories: &[],
        subresources: &[],
        field_labels: &[],
        verbs: &["create"],
    },
    // Answered, never stored (`authorization`).
    Resource {
        group: "authorization.k8s.io",
        version: "v1",
        plural: "subjectaccessreviews",
        singular: "subjectaccessreview",
        kind: "SubjectAccessReview",
        namespaced: false,
        short_names: &[],
        categories: &[],
        subresources: &[],
        field_labels: &[],
        verbs: &["create"],
    },
];

/// The resource served at `group/version/plural`.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static Resource> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// A core/v1 resource the server itself writes (namespaces, serviceaccounts).
pub fn core(plural: &str) -> &'static Resource {
    find("", "v1", plural).expect("core resource is in the table")
}

/// Served group/versions in discovery order, core first.
pub fn group_versions() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&str, &str)> = Vec::new();
    for resource in RESOURCES {
        if !out.contains(&(resource.group, resource.version)) {
            out.push((resource.group, resource.version));
        }
    }
    out
}
