//! The integration test binary: every test here runs against real parts — a real systemd
//! booted for the test run by `scripts/systemd-sandbox`, real apt/dpkg, real HTTPS. They
//! need root and the Debian mirrors, change the host's dpkg database (every test purges
//! what it installed) and run one at a time. Run it with `scripts/test`, which builds this
//! binary and runs it inside the sandbox; outside the sandbox the systemd tests fail with
//! a message saying so.

mod admission;
#[path = "../apiserver/mod.rs"]
mod apiserver;
mod apt_upgrade;
mod boot_order;
mod cluster;
mod cluster_attach;
mod cluster_certs;
mod cluster_doctor;
mod cluster_exec;
mod cluster_port_forward;
mod cluster_probes;
mod cluster_rbac;
mod cluster_serving_rotation;
mod cluster_status;
mod cluster_volumes;
mod engine;
mod enter;
mod enter_streams;
mod eviction;
mod examples;
mod exec_lines;
mod harness;
mod hooks;
mod image_failures;
mod isolation;
mod kubelet_api;
mod kubelet_api_limits;
mod kubelet_api_stats;
mod kubelet_api_tokens;
mod mounts;
mod node_bootstrap;
mod package;
mod package_gc;
mod pid_file;
mod pod_fields;
mod pod_slices;
mod pods_cmd;
mod pods_slice;
mod prober;
mod probes;
mod pull_policy;
mod readiness;
mod run_dirs;
mod secrets;
mod sidecars;
mod start_backoff;
mod static_pods;
mod suite;
mod support;
mod systemd;
mod termination_messages;
mod vendor_units;
