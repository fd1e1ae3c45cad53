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
    /// The `*.service` files (templates included) of the packages searched for the
    /// image's vendor unit: the image package and its same-source dependencies, or, when
    /// those ship none, its other direct dependencies.
    pub service_units: Vec<VendorUnit>,
    /// The services, sockets, timers and path units of every package this install added
    /// to the host (the image package and the dependencies apt pulled in with it), which
    /// their postinst enabled: systemk disables them, so what it installed runs only as pods
    /// (postgresql-common's `postgresql.service` would start every cluster at boot).
    pub added_units: Vec<String>,
    /// Package-owned state directories that exist: `/var/{lib,spool,cache,log}/<x>`, `/run/<x>`,
    /// from the file lists and the `d`/`D` lines of the tmpfiles.d files of the image
    /// package and of the searched packages whose units were found.
    pub writable_dirs: Vec<PathBuf>,
}

/// A service unit file of one of the searched packages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VendorUnit {
    /// The package that ships it.
    pub package: String,
    /// Its file, e.g. `/lib/systemd/system/nginx.service`.
    pub path: PathBuf,
    /// Every `ExecStart=` runs `true`: an umbrella unit, no daemon.
    pub only_runs_true: bool,
    /// For a template: the instances its condition paths show exist (full unit names).
    pub instances: Vec<String>,
}

impl VendorUnit {
    /// The unit's file name, e.g. `postgresql@.service`.
    pub fn name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Whether it is a template (`name@.service`).
    pub fn is_template(&self) -> bool {
        self.name().ends_with("@.service")
    }
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
