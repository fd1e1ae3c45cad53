//! Layer 2: the unit-file model: names, escaping, parsing, rendering, and building a
//! unit from a container spec. Pure: no I/O, no D-Bus, no clock; it never imports
//! `package`, `systemd` or anything higher, and takes plain data instead.

mod error;
pub mod escape;
mod file;
mod meta;
mod name;

pub use error::{Error, Result};
pub use file::{Section, UnitFile};
pub use meta::{KubernetesMeta, RestartPolicy, SECTION as KUBERNETES_SECTION, spec_hash};
pub use name::{NameError, UNIT_NAME_MAX, UNIT_PREFIX, UnitName};
