//! `stdin: true`: the container's standard input is a FIFO that systemd holds open, so
//! `kubectl attach -i` can write to it. A companion socket unit `<stem>.socket` (the
//! container unit's name with `.socket` for `.service`) listens on
//! `<runtime>/stdin/<container unit>` (`ListenFIFO=`, root only), and the service reads it
//! (`StandardInput=socket`). systemd opens the FIFO read-write, so the container never
//! sees end of input while it runs, across systemk restarts too, as a container runtime
//! keeps stdin open with `stdinOnce: false`.
//!
//! The socket must never start the container itself (systemk alone starts containers):
//! it `BindsTo=` its service, so it stops (and removes the FIFO) when the service stops,
//! and while the service is active (running, or exited and kept by `RemainAfterExit=`)
//! systemd does not watch it. Checked on systemd 252: a container that exits without
//! reading what was written is not started again; the fd handed over is blocking.
//! Pure. Layer 2.

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Container;

use super::error::{Error, Result};
use super::file::UnitFile;
use super::name::UnitName;
use super::path;

/// The directory of the FIFOs below systemk's runtime directory.
pub const STDIN_DIR: &str = "stdin";

/// Whether `container` asks for a standard input.
pub fn wants_stdin(container: &Container) -> bool {
    container.stdin == Some(true)
}

/// The name of the socket unit that holds the standard input of the unit `name`.
pub fn stdin_socket_name(name: &UnitName) -> String {
    let stem = name
        .as_str()
        .strip_suffix(".service")
        .unwrap_or(name.as_str());
    format!("{stem}.socket")
}

/// Where the FIFO of the unit `name` lives, below `stdin_dir` (`<runtime>/stdin`).
pub fn stdin_fifo_path(stdin_dir: &Path, name: &UnitName) -> PathBuf {
    stdin_dir.join(name.as_str())
}

/// Makes the container unit `name` read its standard input from its socket.
pub(super) fn apply_stdin(unit: &mut UnitFile, name: &UnitName) -> Result<()> {
    let socket = stdin_socket_name(name);
    // The FIFO exists before the container starts, and a start pulls the socket in.
    unit.add("Unit", "Requires", socket.as_str())?;
    unit.add("Unit", "After", socket)?;
    // StandardInput=socket needs exactly one socket: a vendor's own (`Sockets=`) goes.
    unit.remove("Service", "Sockets");
    unit.add("Service", "StandardInput", "socket")
}

/// The socket unit holding the standard input of the container unit `name`, its FIFO in
/// `stdin_dir`.
pub fn stdin_socket(name: &UnitName, stdin_dir: &Path) -> Result<UnitFile> {
    let fifo = stdin_fifo_path(stdin_dir, name);
    let fifo = fifo.to_str().ok_or_else(|| Error::Unsupported {
        what: format!(
            "runtime directory {} that is not UTF-8",
            stdin_dir.display()
        ),
    })?;
    let fifo = path::absolute("standard input FIFO", fifo)?;
    let mut unit = UnitFile::new();
    unit.add(
        "Unit",
        "Description",
        format!("systemk standard input of {name}"),
    )?;
    // Stopped with its container, so it never starts the container on data left unread.
    unit.add("Unit", "BindsTo", name.as_str())?;
    unit.add("Socket", "ListenFIFO", path::directive(&fifo))?;
    unit.add("Socket", "SocketMode", "0600")?;
    unit.add("Socket", "DirectoryMode", "0700")?;
    unit.add("Socket", "RemoveOnStop", "yes")?;
    Ok(unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name() -> UnitName {
        UnitName::for_container("default", "web", "app").unwrap()
    }

    #[test]
    fn the_socket_and_fifo_are_named_after_the_container_unit() {
        assert_eq!(stdin_socket_name(&name()), "systemk.default.web.app.socket");
        assert_eq!(
            stdin_fifo_path(Path::new("/run/systemk/stdin"), &name()),
            Path::new("/run/systemk/stdin/systemk.default.web.app.service")
        );
        let long = UnitName::for_container("ns", &"p".repeat(253), "c").unwrap();
        let socket = stdin_socket_name(&long);
        assert!(
            socket.len() <= 255 && socket.ends_with(".socket"),
            "{socket}"
        );
    }

    #[test]
    fn the_socket_is_a_root_only_fifo_bound_to_its_container() {
        let unit = stdin_socket(&name(), Path::new("/run/sk%/stdin")).unwrap();
        assert_eq!(
            unit.render(),
            "[Unit]\nDescription=systemk standard input of systemk.default.web.app.service\n\
             BindsTo=systemk.default.web.app.service\n\n[Socket]\n\
             ListenFIFO=/run/sk%%/stdin/systemk.default.web.app.service\nSocketMode=0600\n\
             DirectoryMode=0700\nRemoveOnStop=yes\n"
        );
        assert!(stdin_socket(&name(), Path::new("/run/with space")).is_err());
    }

    #[test]
    fn the_service_reads_the_socket_after_starting_it() {
        let mut unit = UnitFile::parse("[Service]\nSockets=vendor.socket\n").unwrap();
        apply_stdin(&mut unit, &name()).unwrap();
        assert_eq!(unit.get("Service", "Sockets"), None);
        assert_eq!(
            unit.get("Unit", "Requires"),
            Some("systemk.default.web.app.socket")
        );
        assert_eq!(
            unit.get("Unit", "After"),
            Some("systemk.default.web.app.socket")
        );
        assert_eq!(unit.get("Service", "StandardInput"), Some("socket"));
    }
}
