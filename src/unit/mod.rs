//! Layer 2: the unit-file model: names, escaping, parsing, rendering, and building a
//! unit from a container spec. Pure: no I/O, no D-Bus, no clock; it never imports
//! `package`, `systemd` or anything higher, and takes plain data instead.

mod build;
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
mod name;
pub mod path;
mod quantity;
mod resources;
mod volumes;

pub use build::{BuildInput, build};
pub use env::NodeInfo;
pub use error::{Error, Result};
pub use exec::compose_exec_start;
pub use file::{Section, UnitFile};
pub use identity::{SystemUsers, UserDb};
pub use meta::{KubernetesMeta, RestartPolicy, SECTION as KUBERNETES_SECTION, spec_hash};
pub use name::{NameError, UNIT_NAME_MAX, UNIT_PREFIX, UnitName};
pub use quantity::{Quantity, QuantityError};
pub use volumes::{BindMount, empty_dir_path, pod_directories};
