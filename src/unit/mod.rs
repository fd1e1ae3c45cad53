//! Layer 2: the unit-file model: names, escaping, parsing, rendering, and building a
//! unit from a container spec. Pure: no I/O, no D-Bus, no clock; it never imports
//! `package`, `systemd` or anything higher, and takes plain data instead. The one
//! exception is [`SystemUsers`], the host's user database behind the [`UserDb`] trait.
//!
//! Where each design decision is explained:
//!
//! - `file.rs`: how unit files are parsed (systemd 252's rules) and why rendering can
//!   never produce a line the builder did not mean.
//! - `escape.rs`: quoting of `ExecStart=` words and `Environment=` assignments so every
//!   byte of a pod string reaches the process; only NUL is refused.
//! - `exec.rs`: `command`/`args` versus the vendor `ExecStart=`; `exec/vendor_lines.rs`:
//!   how systemd splits `Exec*=` lines at `;` and reads prefixes, and which prefixes on
//!   vendor lines (`-` `:` kept; `+` `!` `!!` `@` refused) and why.
//! - `confinement.rs`, `capabilities.rs`, `seccomp.rs`: the securityContext in its
//!   Kubernetes meaning (capabilities, seccomp, privileged, …) and the node's secrets
//!   kept out of unprivileged pods' reach.
//! - `hardening.rs`: the sandbox (`ProtectSystem=strict`, `PIDFile=` directories
//!   writable, `NoNewPrivileges=` from `allowPrivilegeEscalation`).
//! - `run_dir.rs`: each container's own `/run`, with the host's notify, journal and
//!   resolver sockets bound in, and why no mount target there can be steered.
//! - `build.rs`: which vendor directives are kept and which systemk owns (restarts,
//!   start limit, `RemainAfterExit=yes`, stop timeout, logging).
//! - `identity.rs`, `env.rs`, `volumes.rs`, `path.rs`, `resources.rs`: the mappings of
//!   the pod spec's security context, environment, volumes and resources.
//! - `mount_target.rs`: which mount targets a unit may have without systemd creating
//!   them on the host.
//! - `termination_log.rs`: the termination-message file bound at
//!   `terminationMessagePath`, and where that path may lie.
//! - `meta.rs`: the `[X-Kubernetes]` section and what `SpecHash` fingerprints.
//! - `slice.rs`: `systemk.slice`, the pods' cgroup whose limits keep reserved resources
//!   for the host; `pod_slice.rs`: the QoS slices and each pod's slice below it, with
//!   the kubelet's pod cgroup limits (`pod_slice/limits.rs`).
//! - `specifiers.rs`: why a vendor unit's `%i`, `%n`, … are expanded for its own name
//!   (a template's instance) before it runs under systemk's name.

mod build;
mod capabilities;
mod confinement;
mod env;
mod error;
pub mod escape;
mod exec;
mod file;
#[cfg(test)]
mod golden;
mod hardening;
mod identity;
#[cfg(test)]
mod injection;
mod meta;
mod mount_target;
mod name;
pub mod path;
mod pid_file;
mod pod_order;
mod pod_slice;
mod quantity;
mod resources;
mod run_dir;
mod seccomp;
mod slice;
mod specifiers;
mod stdin;
mod termination_log;
mod volumes;

pub use build::{BuildInput, build};
pub use confinement::{
    HOST_CONTROL_SOCKETS, NodeSecurity, check_host_path_source, check_spec_confinement,
};
pub use env::{NodeInfo, env_file, env_file_path};
pub use error::{Error, Result};
pub use exec::{check_vendor_exec_lines, compose_exec_start};
pub use file::{Section, UnitFile};
pub use identity::{SystemUsers, UserDb, unit_identity};
pub use meta::{
    KubernetesMeta, RestartPolicy, SECTION as KUBERNETES_SECTION, earlier_spec_hashes, spec_hash,
};
pub use mount_target::{HomeProtection, HostFile, HostFiles, check_mount_targets};
pub use name::{
    DNS_LABEL_MAX, DNS_SUBDOMAIN_MAX, NameError, UNIT_NAME_MAX, UNIT_PREFIX, UnitName,
    is_dns_label, is_dns_subdomain,
};
pub use pod_slice::{
    PodSliceLimits, QosTier, SliceName, best_effort_slice_unit, burstable_slice_unit,
    pod_cpu_request_millis, pod_slice_limits, pod_slice_unit,
};
pub use quantity::{Quantity, QuantityError};
pub use run_dir::run_dir_path;
pub use slice::{SLICE, SliceLimits, slice_unit};
pub use specifiers::expand_name_specifiers;
pub use stdin::{STDIN_DIR, stdin_fifo_path, stdin_socket, stdin_socket_name, wants_stdin};
pub use termination_log::{
    DEFAULT_TERMINATION_MESSAGE_PATH, TERMINATION_MOUNT, container_mounts, termination_file_path,
    termination_message_path, termination_mount,
};
pub use volumes::{
    ApiVolumeKind, BindMount, SUBPATHS_DIR, SubPath, api_volume_path, bind_mounts, check_mount,
    check_volume, empty_dir_path, legacy_secret_volume_path, subpath_staging_path,
};
