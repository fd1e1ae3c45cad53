use std::path::{Path, PathBuf};

use super::*;

const STATUS: &str = "Name:\tsleep\nUmask:\t0022\nUid:\t1234\t1234\t1234\t1234\n\
Gid:\t2345\t2345\t2345\t2345\nGroups:\t3456 4567 \nNoNewPrivs:\t1\nSeccomp:\t2\n\
Seccomp_filters:\t3\nCapBnd:\t00000000a80425fb\n";

#[test]
fn status_gives_real_ids_groups_and_confinement() {
    let status = parse_status(STATUS).unwrap();
    assert_eq!(
        status,
        ProcStatus {
            credentials: Credentials {
                uid: 1234,
                gid: 2345,
                groups: vec![3456, 4567],
            },
            no_new_privs: true,
            seccomp_mode: 2,
            seccomp_filters: 3,
        }
    );
}

#[test]
fn status_without_ids_is_unreadable() {
    assert_eq!(parse_status("Name:\tx\nGid:\t1 1 1 1\n"), None);
}

#[test]
fn start_time_counts_fields_after_the_command_name() {
    let stat = "42 (a) b) c) S 1 42 42 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 987654 0";
    assert_eq!(start_time(stat), Some(987654));
    assert_eq!(start_time("42 (x"), None);
}

#[test]
fn unit_membership_is_on_the_unified_or_systemd_hierarchy() {
    let memberships = cgroup_memberships(
        "12:cpu,cpuacct:/\n1:name=systemd:/sandbox/systemk.slice/a.service\n\
         0::/sandbox/systemk.slice/a.service\n",
    );
    assert!(in_unit(&memberships, "/systemk.slice/a.service"));
    assert!(!in_unit(&memberships, "/systemk.slice/b.service"));
    assert!(!in_unit(&memberships, "a.service"));
    let v1 = cgroup_memberships("1:name=systemd:/systemk.slice/a.service\n");
    assert!(in_unit(&v1, "/systemk.slice/a.service"));
}

#[test]
fn cgroup_procs_only_of_mounted_hierarchies() {
    let root = tempfile::tempdir().unwrap();
    let unified = root.path().join("unified/s/a");
    std::fs::create_dir_all(&unified).unwrap();
    std::fs::write(unified.join("cgroup.procs"), "").unwrap();
    let memberships = cgroup_memberships("3:net_cls:/s/a\n0::/s/a\n");
    assert_eq!(
        cgroup_procs(root.path(), &memberships),
        vec![root.path().join("unified/s/a/cgroup.procs")]
    );
    assert_eq!(
        cgroup_procs(Path::new("/nonexistent"), &memberships),
        Vec::<PathBuf>::new()
    );
}

#[test]
fn environment_keeps_bytes_and_splits_at_the_first_equals() {
    let environ = b"A=1\0B=x=y\0NOEQUALS\0C=\xff\0";
    let pairs = environment(environ);
    assert_eq!(pairs.len(), 3);
    assert_eq!(pairs[1], ("B".into(), "x=y".into()));
    assert_eq!(pairs[2].1.as_encoded_bytes(), b"\xff");
}
