//! What a pod's environment needs of a Service: the data the Service lookup
//! (`pod::objects`, filled by `sources::kube::services`) hands to the environment
//! (`pod::env::services`). Its own file so neither of those depends on the other. Layer 4:
//! pure data.

/// The namespace and name of the Service every pod gets, whatever `enableServiceLinks`.
pub(crate) const MASTER_SERVICE: (&str, &str) = ("default", "kubernetes");

/// What the environment needs of a Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceLink {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// `spec.clusterIP`: empty or `None` for a Service without one.
    pub cluster_ip: String,
    /// `spec.ports`, in order.
    pub ports: Vec<ServiceLinkPort>,
}

/// One port of a Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceLinkPort {
    /// Its name; empty for the one unnamed port a Service may have.
    pub name: String,
    /// The port number.
    pub port: i32,
    /// `TCP`, `UDP` or `SCTP`; empty means `TCP`.
    pub protocol: String,
}

impl ServiceLink {
    /// Whether a pod in `namespace` gets this Service's variables.
    pub fn is_for(&self, namespace: &str, enable_links: bool) -> bool {
        (self.namespace.as_str(), self.name.as_str()) == MASTER_SERVICE
            || (enable_links && self.namespace == namespace)
    }
}
