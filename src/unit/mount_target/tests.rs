use std::collections::HashMap;

use super::*;

/// A host file system as a table: `stat` follows the symlinks listed in `links`.
#[derive(Default)]
struct FakeHost {
    files: HashMap<&'static str, HostFile>,
    links: HashMap<&'static str, &'static str>,
}

impl FakeHost {
    fn new(entries: &[(&'static str, HostFile)]) -> Self {
        Self {
            files: entries.iter().copied().collect(),
            links: HashMap::new(),
        }
    }

    fn link(mut self, from: &'static str, to: &'static str) -> Self {
        self.links.insert(from, to);
        self
    }
}

impl HostFiles for FakeHost {
    fn stat(&self, path: &str) -> std::result::Result<HostFile, String> {
        match self.links.get(path) {
            Some(to) => self.stat(to),
            None => self.lstat(path),
        }
    }

    fn lstat(&self, path: &str) -> std::result::Result<HostFile, String> {
        if self.links.contains_key(path) {
            return Ok(HostFile::Symlink);
        }
        Ok(self.files.get(path).copied().unwrap_or(HostFile::Missing))
    }
}

const EMPTY: &str = "/state/pods/u/volumes/empty-dir/e";
const CONFIG: &str = "/state/pods/u/volumes/config-map/c";

fn host() -> FakeHost {
    use HostFile::{Directory, NonDirectory};
    FakeHost::new(&[
        (EMPTY, Directory),
        (CONFIG, Directory),
        ("/state/pods/u/volumes/config-map/c/app.conf", NonDirectory),
        ("/etc", Directory),
        ("/etc/hosts", NonDirectory),
        ("/srv/data", Directory),
        ("/srv/data/sub", Directory),
        ("/run", Directory),
        ("/tmp", Directory),
        ("/dev/null", NonDirectory),
    ])
}

fn bind(volume: &str, source: &str, target: &str) -> BindMount {
    BindMount {
        source: source.into(),
        target: target.into(),
        read_only: false,
        volume: volume.into(),
        pod_owned: source.starts_with(EMPTY),
        sub_path: None,
        private_dev: false,
    }
}

fn check(mounts: &[BindMount], home: HomeProtection, host: &FakeHost) -> Result<()> {
    check_mount_targets(mounts, home, host)
}

fn ok(mounts: &[BindMount]) {
    if let Err(err) = check(mounts, HomeProtection::Tmpfs, &host()) {
        panic!("{mounts:?} refused: {err}");
    }
}

fn refused(mounts: &[BindMount]) -> String {
    refused_on(mounts, &host())
}

fn refused_on(mounts: &[BindMount], host: &FakeHost) -> String {
    match check(mounts, HomeProtection::Tmpfs, host) {
        Ok(()) => panic!("{mounts:?} accepted"),
        Err(err) => err.to_string(),
    }
}

#[test]
fn existing_targets_of_the_same_type_are_accepted() {
    ok(&[bind("e", EMPTY, "/etc")]);
    ok(&[bind("h", "/srv/data", "/srv/data")]);
    ok(&[bind("c", &format!("{CONFIG}/app.conf"), "/etc/hosts")]);
}

#[test]
fn missing_host_targets_are_refused_with_the_path() {
    let why = refused(&[bind("e", EMPTY, "/etc/something")]);
    assert!(why.contains("/etc/something"), "{why}");
    assert!(why.contains("does not exist on the host"), "{why}");
    // The sshd mask: a file source at a missing unit file path.
    let why = refused(&[bind(
        "c",
        &format!("{CONFIG}/app.conf"),
        "/etc/systemd/system/ssh.service",
    )]);
    assert!(why.contains("/etc/systemd/system/ssh.service"), "{why}");
}

#[test]
fn types_must_fit() {
    let why = refused(&[bind("e", EMPTY, "/etc/hosts")]);
    assert!(why.contains("is a directory but"), "{why}");
    let why = refused(&[bind("c", &format!("{CONFIG}/app.conf"), "/etc")]);
    assert!(why.contains("is a file but"), "{why}");
}

#[test]
fn missing_sources_are_refused() {
    let why = refused(&[bind("h", "/srv/gone", "/etc")]);
    assert!(why.contains("/srv/gone does not exist"), "{why}");
}

#[test]
fn dangling_symlinks_are_refused_and_good_ones_followed() {
    let dangling = host().link("/etc/link", "/etc/missing");
    refused_on(&[bind("e", EMPTY, "/etc/link")], &dangling);
    let good = host().link("/etc/link", "/srv/data");
    check(
        &[bind("e", EMPTY, "/etc/link")],
        HomeProtection::Tmpfs,
        &good,
    )
    .unwrap();
}

#[test]
fn private_places_take_new_mount_points() {
    for target in [
        "/tmp/new/dir",
        "/var/tmp/x",
        "/dev/shm/x",
        "/home/u/x",
        "/root/.cache",
        "/run/user/0/x",
    ] {
        ok(&[bind("e", EMPTY, target)]);
    }
    // The places themselves are directories.
    refused(&[bind("c", &format!("{CONFIG}/app.conf"), "/home")]);
}

#[test]
fn protect_home_yes_makes_home_inaccessible() {
    for target in ["/home/u/x", "/root", "/run/user/0"] {
        let err = check(
            &[bind("e", EMPTY, target)],
            HomeProtection::Inaccessible,
            &host(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("ProtectHome=yes"), "{err}");
    }
    check(
        &[bind("e", EMPTY, "/tmp/x")],
        HomeProtection::Inaccessible,
        &host(),
    )
    .unwrap();
}

#[test]
fn kernel_interfaces_are_refused() {
    for target in [
        "/proc",
        "/proc/sys/kernel",
        "/sys/fs/cgroup",
        "/proc/1/root/etc",
    ] {
        let why = refused(&[bind("e", EMPTY, target)]);
        assert!(why.contains("kernel"), "{why}");
    }
    // /dev is the host's: only existing nodes, or below /dev/shm.
    refused(&[bind("e", EMPTY, "/dev/new")]);
    ok(&[bind("h", "/dev/null", "/dev/null")]);
}

#[test]
fn below_an_empty_dir_mount_points_are_made_in_the_volume() {
    ok(&[
        bind("e", EMPTY, "/srv/data"),
        bind(
            "c",
            &format!("{CONFIG}/app.conf"),
            "/srv/data/conf/app.conf",
        ),
    ]);
    // Nested in a private place: the emptyDir decides, not /tmp.
    ok(&[bind("e", EMPTY, "/tmp/d"), bind("c", CONFIG, "/tmp/d/c")]);
}

#[test]
fn a_symlink_planted_in_an_empty_dir_is_refused() {
    let planted = host().link(
        "/state/pods/u/volumes/empty-dir/e/conf",
        "/etc/systemd/system",
    );
    let why = refused_on(
        &[
            bind("e", EMPTY, "/srv/data"),
            bind(
                "c",
                &format!("{CONFIG}/app.conf"),
                "/srv/data/conf/ssh.service",
            ),
        ],
        &planted,
    );
    assert!(why.contains("is a symlink"), "{why}");
}

#[test]
fn below_other_volumes_targets_must_exist() {
    ok(&[bind("h", "/srv/data", "/etc"), bind("e", EMPTY, "/etc/sub")]);
    let why = refused(&[bind("h", "/srv/data", "/etc"), bind("e", EMPTY, "/etc/new")]);
    assert!(why.contains("/srv/data/new"), "{why}");
    // A hostPath mounted in /tmp is still the host's directory.
    refused(&[
        bind("h", "/srv/data", "/tmp/h"),
        bind("e", EMPTY, "/tmp/h/new"),
    ]);
}

#[test]
fn a_missing_target_in_dev_is_accepted_only_in_the_units_own_dev() {
    let file = format!("{CONFIG}/app.conf");
    let shared = bind("t", &file, "/dev/termination-log");
    assert!(refused(std::slice::from_ref(&shared)).contains("does not exist on the host"));
    ok(&[BindMount {
        private_dev: true,
        ..shared.clone()
    }]);
    // /dev itself is never a target of its own.
    let dev = BindMount {
        private_dev: true,
        target: "/dev".into(),
        ..shared
    };
    refused(&[dev]);
}
