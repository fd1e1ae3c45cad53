//! Lifecycle hooks (`postStart`, `preStop`) with the kubelet's semantics: [`plan`] checks
//! a container's hooks (refused at admission when invalid), [`run`] runs one — `exec` in
//! the container's context (as an exec probe), `httpGet` (any answer passes, as the
//! kubelet's lifecycle handler, which does not look at the status), `sleep` in systemk —
//! and words its failure as the kubelet's event does. When they run is the pass's
//! business (`worker::hooks`). Layer 4.

pub mod plan;
pub mod run;

pub use plan::{Hook, Hooks, container_hooks};
pub use run::{Failed, Reach, message, run};
