use std::path::{Path, PathBuf};

use super::*;

const RUN_DIR: &str = "/var/lib/systemk/pods/u1/run/web";

fn private_run(vendor: &str, package_dirs: &[&str], privileged: bool) -> UnitFile {
    let mut unit = UnitFile::parse(&format!("[Service]\n{vendor}")).unwrap();
    let dirs: Vec<PathBuf> = package_dirs.iter().map(PathBuf::from).collect();
    apply_private_run(&mut unit, Path::new(RUN_DIR), &dirs, privileged).unwrap();
    unit
}

#[test]
fn the_container_gets_its_own_run_with_the_hosts_sockets_read_only() {
    let unit = private_run("", &[], false);
    assert_eq!(
        unit.get_all(SERVICE, "BindPaths"),
        [format!("{RUN_DIR}:/run")]
    );
    assert_eq!(
        unit.get_all(SERVICE, "BindReadOnlyPaths"),
        [
            "-/run/systemd/notify",
            "-/run/systemd/journal/socket",
            "-/run/systemd/journal/stdout",
            "-/run/systemd/journal/dev-log",
            "-/run/systemd/resolve",
            "-/run/systemd/userdb",
        ]
    );
    // The sockets' mount points lie in a read-only tmpfs, never in the container's files.
    assert_eq!(
        unit.get_all(SERVICE, "TemporaryFileSystem"),
        [
            "/run/systemd/system:ro,mode=0755",
            "/run/systemd:ro,mode=0755"
        ]
    );
    assert_eq!(
        run_dir_path(Path::new("/p"), "web"),
        Path::new("/p/run/web")
    );
}

#[test]
fn only_privileged_containers_get_the_system_bus_and_systemds_socket() {
    let bus = |unit: &UnitFile| {
        let binds = unit.get_all(SERVICE, "BindReadOnlyPaths");
        let bus = binds.contains(&"-/run/dbus/system_bus_socket");
        assert_eq!(bus, binds.contains(&"-/run/systemd/private"));
        bus
    };
    assert!(!bus(&private_run("", &[], false)));
    let privileged = private_run("", &[], true);
    assert!(bus(&privileged));
    assert!(
        privileged
            .get_all(SERVICE, "TemporaryFileSystem")
            .contains(&"/run/dbus:ro,mode=0755")
    );
}

/// Attack: a `+` line gets the unit's binds but not `PrivateTmp=`/`ProtectHome=`, so
/// systemd would make the mount points of volumes below /tmp or /root on the host.
#[test]
fn systemk_adds_no_unsandboxed_line() {
    let unit = private_run("ExecStartPre=/bin/mkdir -p /run/x\n", &[], false);
    assert_eq!(
        unit.get_all(SERVICE, "ExecStartPre"),
        ["/bin/mkdir -p /run/x"]
    );
}

#[test]
fn pid_files_in_run_are_read_from_the_containers_run() {
    let pid = |vendor: &str, dirs: &[&str]| {
        private_run(vendor, dirs, false)
            .get(SERVICE, "PIDFile")
            .map(str::to_owned)
    };
    assert_eq!(
        pid("PIDFile=/run/nginx.pid\n", &[]).unwrap(),
        format!("{RUN_DIR}/nginx.pid")
    );
    assert_eq!(
        pid("PIDFile=/var/run/apache2/apache2.pid\n", &[]).unwrap(),
        format!("{RUN_DIR}/apache2/apache2.pid")
    );
    // In the host's directories (RuntimeDirectory=, the package's own): the host's file.
    assert_eq!(
        pid("RuntimeDirectory=redis\nPIDFile=/run/redis/r.pid\n", &[]).unwrap(),
        "/run/redis/r.pid"
    );
    assert_eq!(
        pid("PIDFile=/run/uptimed/u.pid\n", &["/run/uptimed"]).unwrap(),
        "/run/uptimed/u.pid"
    );
    assert_eq!(pid("PIDFile=/srv/x.pid\n", &[]).unwrap(), "/srv/x.pid");
}

#[test]
fn the_packages_run_dirs_are_the_hosts_and_mandatory() {
    let unit = private_run("", &["/run/uptimed", "/var/lib/uptimed"], false);
    assert_eq!(
        unit.get_all(SERVICE, "BindPaths"),
        ["/run/uptimed".to_owned(), format!("{RUN_DIR}:/run")]
    );
}

/// Attack: a target in /run that could be missing (an optional bind) or that is not a
/// mount point itself (a parent of a deeper target) would leave a directory the
/// container could replace with a symlink, which systemd follows at the next command's
/// set-up and creates on the host.
#[test]
fn no_mount_target_in_run_can_be_replaced_by_the_container() {
    let unit = private_run(
        "BindPaths=-/srv/a:/run/a /srv/b:/var/run/secrets/kubernetes.io/token\n\
         BindReadOnlyPaths=-/srv/c:/run/c\nTemporaryFileSystem=/run/t/deep\n\
         RuntimeDirectory=own nested/dir\n",
        &[],
        false,
    );
    assert_eq!(
        unit.get_all(SERVICE, "BindPaths"),
        [
            "/srv/a:/run/a".to_owned(),
            "/srv/b:/var/run/secrets/kubernetes.io/token".to_owned(),
            format!("{RUN_DIR}:/run"),
        ]
    );
    assert_eq!(
        unit.get_all(SERVICE, "BindReadOnlyPaths")[0],
        "/srv/c:/run/c"
    );
    let tmpfs = unit.get_all(SERVICE, "TemporaryFileSystem");
    for top in ["/run/secrets", "/run/systemd", "/run/t"] {
        assert!(
            tmpfs.contains(&format!("{top}:ro,mode=0755").as_str()),
            "{top}"
        );
    }
}

/// Attack: a vendor `ReadWritePaths=/run/x` would follow a symlink the container planted
/// at `/run/x` and make the host directory it names writable.
#[test]
fn path_directives_below_run_are_dropped() {
    let unit = private_run(
        "ReadWritePaths=/var/lib/x /run/x\nReadWritePaths=-/var/run/y\n\
         InaccessiblePaths=-/run/systemk /etc/k\nReadOnlyPaths=/run\n",
        &[],
        false,
    );
    assert_eq!(unit.get_all(SERVICE, "ReadWritePaths"), ["/var/lib/x"]);
    assert_eq!(unit.get_all(SERVICE, "InaccessiblePaths"), ["/etc/k"]);
    assert!(unit.get_all(SERVICE, "ReadOnlyPaths").is_empty());
}

#[test]
fn a_run_dir_that_could_not_be_bound_safely_is_refused() {
    for bad in ["/run", "/var/run/", "/", "rel/run"] {
        let mut unit = UnitFile::new();
        assert!(
            apply_private_run(&mut unit, Path::new(bad), &[], false).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn under_run_reads_every_spelling() {
    assert_eq!(under_run("/run").as_deref(), Some(""));
    assert_eq!(under_run("/var/run/a//b/").as_deref(), Some("a/b"));
    assert_eq!(under_run("%t/a").as_deref(), Some("a"));
    assert_eq!(under_run("/./run/./a").as_deref(), Some("a"));
    assert_eq!(under_run("/runner"), None);
    assert_eq!(under_run("/var/lib/run"), None);
}
