//! Layer 4: the reconciler: desired pods versus systemd units, restarts and status.

mod dirs;
mod error;

pub use dirs::{PodDirs, check_uid};
pub use error::{Error, Result};
