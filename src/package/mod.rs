//! Layer 1: image reference → installed Debian package and its vendor units
//! (apt, https `.deb`, plain path). Knows nothing of units, systemd or pods.
//!
//! [`ImageRef`] parses a pod's image; [`Installer`] installs or queries it and reports
//! [`Installed`] (with the service units of the image package and of the packages it
//! pulls in from the same source), as the container's [`PullPolicy`] asks, keeping which
//! [`Holder`] uses which package version; [`select_vendor_unit`] picks the unit a
//! container runs. [`Installer::collect_garbage`] removes the packages systemk installed
//! that no holder uses any more and bounds the `.deb` cache ([`GcSettings`]).
//!
//! Inside, imports point one way: `manager` (the [`PackageManager`] trait, [`Installed`])
//! at the bottom, the backends (`apt`, `https`, `path`) and their helpers above it, and
//! `installer`, which routes an image to a backend, on top.

mod apt;
mod collect;
mod deb;
mod depends;
mod dpkg;
mod error;
mod gc;
mod guard;
mod holders;
mod https;
mod image;
mod installed;
mod installer;
mod instances;
mod lists;
mod lock;
mod manager;
mod path;
mod policy;
mod process;
mod pull;
mod record;
mod remove;
mod unit_choice;
mod unit_scan;
mod vendor;

pub use apt::{Apt, AptPackage};
pub use collect::{GcReport, GcSettings};
pub use error::{Error, Result, STDERR_TAIL_BYTES, STDOUT_TAIL_BYTES};
pub use guard::POLICY_RC_D;
pub use holders::Holder;
pub use https::{DEFAULT_CACHE_DIR, HttpsDeb, HttpsPackage};
pub use image::ImageRef;
pub use installer::{Installer, InstallerConfig};
pub use lists::{APT_LISTS_DIR, DEFAULT_LISTS_MAX_AGE};
pub use manager::{Installed, PackageManager, VendorUnit};
pub use path::PathImage;
pub use policy::ImagePolicy;
pub use pull::PullPolicy;
pub use unit_choice::{SelectedUnit, VENDOR_UNIT_ANNOTATION_PREFIX, select_vendor_unit};
