//! A hand-written D-Bus proxy for the parts of systemd's Manager API systemk uses. Only
//! methods and signals that exist in systemd 252 (Debian 12) appear here; generated
//! bindings track newer systemd and fail at runtime on 252. Unit properties are read in
//! one `GetAll` (see `status.rs`). Private to the `systemd` layer.

use zbus::OwnedObjectPath;

/// systemd's bus name.
pub(super) const SYSTEMD_SERVICE: &str = "org.freedesktop.systemd1";

/// One row of `ListUnitsByPatterns`: name, description, load state, active state, sub
/// state, followed unit, unit object path, job id, job type, job object path.
pub(super) type ListedUnit = (
    String,
    String,
    String,
    String,
    String,
    String,
    OwnedObjectPath,
    u32,
    String,
    OwnedObjectPath,
);

/// One change `EnableUnitFiles`/`DisableUnitFiles` made: type, file name, destination.
pub(super) type UnitFileChange = (String, String, String);

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Manager",
    default_service = "org.freedesktop.systemd1",
    default_path = "/org/freedesktop/systemd1"
)]
pub(super) trait Manager {
    /// Ask systemd to send signals to this client; without it none arrive.
    fn subscribe(&self) -> zbus::Result<()>;

    fn start_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;

    fn stop_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;

    fn restart_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;

    fn kill_unit(&self, name: &str, whom: &str, signal: i32) -> zbus::Result<()>;

    fn reset_failed_unit(&self, name: &str) -> zbus::Result<()>;

    fn load_unit(&self, name: &str) -> zbus::Result<OwnedObjectPath>;

    fn get_unit(&self, name: &str) -> zbus::Result<OwnedObjectPath>;

    fn list_units_by_patterns(
        &self,
        states: &[&str],
        patterns: &[&str],
    ) -> zbus::Result<Vec<ListedUnit>>;

    fn enable_unit_files(
        &self,
        files: &[&str],
        runtime: bool,
        force: bool,
    ) -> zbus::Result<(bool, Vec<UnitFileChange>)>;

    fn disable_unit_files(
        &self,
        files: &[&str],
        runtime: bool,
    ) -> zbus::Result<Vec<UnitFileChange>>;

    /// daemon-reload.
    fn reload(&self) -> zbus::Result<()>;

    /// systemd's version string, e.g. `252.22-1~deb12u1`.
    #[zbus(property)]
    fn version(&self) -> zbus::Result<String>;

    #[zbus(signal)]
    fn job_removed(
        &self,
        id: u32,
        job: OwnedObjectPath,
        unit: String,
        result: String,
    ) -> zbus::Result<()>;
}
