//! The vocabulary every image backend shares: the [`PackageManager`] trait and what an
//! install reports ([`Installed`]). The backends (apt, https `.deb`, path) import it; the
//! [`Installer`](super::Installer) that routes images to them sits above them all. Layer 1;
//! plain data, no I/O.

use std::future::Future;
use std::path::PathBuf;

use super::error::Result;

/// What is on the host for an image after installing (or finding) it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    /// The Debian package; `None` for path images.
    pub package: Option<String>,
    /// The installed version of the package.
    pub version: Option<String>,
    /// `<pkg>=<version>` (apt), `sha256:<hex>` of the `.deb` (https) or of the file (path).
    pub image_id: String,
    /// systemk installed the package in this call: it was not installed before (a pinned
    /// version replacing another installed version does not count). Only then are the
    /// package's vendor units systemk's to disable.
    pub newly_installed: bool,
    /// Non-template `*.service` files from the package's file list.
    pub service_units: Vec<PathBuf>,
    /// Package-owned state directories that exist: `/var/{lib,spool,cache,log}/<x>`, `/run/<x>`,
    /// from the package's file list and the `d`/`D` lines of its tmpfiles.d files.
    pub writable_dirs: Vec<PathBuf>,
}

/// One way of getting an image onto the host.
pub trait PackageManager {
    /// The image form this manager handles.
    type Image: ?Sized;

    /// Makes the image present (installing when needed) and describes it.
    fn install(&self, image: &Self::Image) -> impl Future<Output = Result<Installed>> + Send;

    /// Describes the image if it is already present; never installs, needs no root.
    fn query(&self, image: &Self::Image) -> impl Future<Output = Result<Option<Installed>>> + Send;
}
