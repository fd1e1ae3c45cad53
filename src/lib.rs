//! systemk: a virtual kubelet that runs Kubernetes pods as systemd services.
//!
//! Layout, lowest layer first; a module only ever uses the ones above it in this list:
//!
//! - [`backoff`]: the one retry schedule every layer uses.
//! - [`clock`]: the wall clock, read in one place (tests pin it).
//! - [`atomic_file`]: replacing a file atomically (temporary file with its final mode,
//!   then a rename), for every layer that keeps files.
//! - [`error_chain`]: an error and its causes on one line, each printed once.
//! - [`claims`]: first claim wins, decided again only where a change reaches (pods of
//!   two sources, manifest files claiming one namespace/name).
//! - [`package`]: image reference → installed Debian package and its vendor units.
//! - [`mod@unit`]: the unit-file model: names, escaping, parsing, rendering, building from a
//!   pod.
//! - [`systemd`]: the D-Bus client that loads, starts, stops and watches units.
//! - [`pod`]: the reconciler that keeps units equal to the desired pods and reports status.
//! - [`sources`]: where desired pods come from (static manifests, the Kubernetes API), and
//!   what the cluster is told back (node, lease, pod status, events).
//! - [`server`]: the kubelet HTTPS API (`kubectl logs`, `/pods`, `/healthz`), with client
//!   certificates and SubjectAccessReview.
//! - [`config`]: the command line's settings and `/etc/default/systemk`.
//! - [`cli`]: what each command wires together.
// Denied, not forbidden: entering a running container (`systemd/enter/child.rs`,
// `seccomp.rs`, `pidfd.rs`) needs `pre_exec` and raw syscalls nix does not wrap; only those files
// allow it.
#![deny(unsafe_code)]
#![deny(missing_docs)]

pub mod atomic_file;
pub mod backoff;
pub mod claims;
pub mod cli;
pub mod clock;
pub mod config;
pub mod error_chain;
pub mod package;
pub mod pod;
pub mod server;
pub mod sources;
pub mod systemd;
pub mod unit;
