//! Layer 5: sources of desired pods (static manifests; the Kubernetes API).
