//! Over recorded cgroup files of both versions (`tests/fixtures/cgroup/`): v1 from this
//! test machine's memory and cpuacct hierarchies, v2 `cpu.stat` from the unified hierarchy
//! of a test sandbox, v2 memory files in the kernel's format (cgroup-v2.rst).

use std::fs;

use super::*;

const V1_MEMORY_STAT: &str = include_str!("../../../tests/fixtures/cgroup/v1/memory.stat");
const V1_USAGE: &str = include_str!("../../../tests/fixtures/cgroup/v1/memory.usage_in_bytes");
const V1_CPUACCT: &str = include_str!("../../../tests/fixtures/cgroup/v1/cpuacct.usage");
const V2_MEMORY_STAT: &str = include_str!("../../../tests/fixtures/cgroup/v2/memory.stat");
const V2_CURRENT: &str = include_str!("../../../tests/fixtures/cgroup/v2/memory.current");
const V2_CPU_STAT: &str = include_str!("../../../tests/fixtures/cgroup/v2/cpu.stat");

/// This machine's hybrid layout.
const HYBRID_MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs ro,size=4096k,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

/// A hierarchy mounted at `dir`.
fn mounted(dir: &Path) -> Option<CgroupMount> {
    Some(CgroupMount {
        controllers: None,
        root: "/".into(),
        mount_point: dir.to_owned(),
    })
}

#[test]
fn v2_working_set_is_current_minus_inactive_file() {
    let memory = memory_v2(V2_CURRENT, V2_MEMORY_STAT).unwrap();
    assert_eq!(
        memory,
        MemoryUsage {
            usage: 26_361_856,
            working_set: 26_361_856 - 16_384_000,
            rss: 4_833_280,
            page_faults: Some(12_345),
            major_page_faults: Some(7),
        }
    );
}

#[test]
fn v1_working_set_is_usage_minus_total_inactive_file() {
    let memory = memory_v1(V1_USAGE, V1_MEMORY_STAT).unwrap();
    assert_eq!(
        memory,
        MemoryUsage {
            usage: 19_050_496,
            working_set: 19_050_496 - 12_808_192,
            rss: 1_888_256,
            page_faults: Some(93_662),
            major_page_faults: Some(4),
        }
    );
}

#[test]
fn the_working_set_floors_at_zero() {
    let memory = memory_v2("100\n", "inactive_file 200\n").unwrap();
    assert_eq!((memory.usage, memory.working_set), (100, 0));
    assert_eq!(memory_v2("", "inactive_file 1\n"), None);
}

#[test]
fn cpu_is_core_nanoseconds() {
    assert_eq!(cpu_stat_ns(V2_CPU_STAT), Some(3_742_686_000));
    assert_eq!(number(V1_CPUACCT), Some(23_341_998_289_156));
    assert_eq!(cpu_stat_ns("user_usec 5\n"), None);
}

#[test]
fn hierarchies_are_found_in_mountinfo() {
    let cgroups = Cgroups::from_mountinfo(HYBRID_MOUNTINFO);
    let dir =
        |mount: &Option<CgroupMount>| mount.as_ref().and_then(|m| m.dir_of("/sandbox/a.slice"));
    assert_eq!(
        dir(&cgroups.unified),
        Some("/sys/fs/cgroup/unified/sandbox/a.slice".into())
    );
    assert_eq!(
        dir(&cgroups.cpuacct),
        Some("/sys/fs/cgroup/cpuacct/sandbox/a.slice".into())
    );
    assert_eq!(
        dir(&cgroups.memory),
        Some("/sys/fs/cgroup/memory/sandbox/a.slice".into())
    );
    let pure_v2 = Cgroups::from_mountinfo(
        "30 24 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n",
    );
    assert_eq!(
        dir(&pure_v2.unified),
        Some("/sys/fs/cgroup/sandbox/a.slice".into())
    );
    assert_eq!((pure_v2.cpuacct, pure_v2.memory), (None, None));
}

#[test]
fn a_narrowed_mount_maps_paths_below_its_root() {
    let cgroups = Cgroups::from_mountinfo(
        "41 31 0:38 /outer /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n\
         33 31 0:30 /elsewhere /mnt/cpu\\040acct rw - cgroup cgroup rw,cpu,cpuacct\n",
    );
    let unified = cgroups.unified.unwrap();
    assert_eq!(
        unified.dir_of("/outer/sandbox"),
        Some("/sys/fs/cgroup/unified/sandbox".into())
    );
    assert_eq!(unified.dir_of("/outerx/sandbox"), None);
    let cpuacct = cgroups.cpuacct.unwrap();
    assert_eq!(cpuacct.mount_point, Path::new("/mnt/cpu acct"));
    assert_eq!(
        cpuacct.dir_of("/outer/sandbox"),
        None,
        "outside the mount's root"
    );
}

/// A cgroup tree in a temporary directory with the recorded files of one version.
fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let unit = dir.path().join("systemk.slice/a.service");
    fs::create_dir_all(&unit).unwrap();
    for (name, text) in files {
        fs::write(unit.join(name), text).unwrap();
    }
    dir
}

#[test]
fn a_v2_unit_reads_cpu_and_memory() {
    let dir = tree(&[
        ("cpu.stat", V2_CPU_STAT),
        ("memory.current", V2_CURRENT),
        ("memory.stat", V2_MEMORY_STAT),
    ]);
    let cgroups = Cgroups {
        unified: mounted(dir.path()),
        ..Cgroups::default()
    };
    let usage = cgroups.usage("/systemk.slice/a.service");
    assert_eq!(usage.cpu_ns, Some(3_742_686_000));
    assert_eq!(usage.memory.unwrap().working_set, 26_361_856 - 16_384_000);
}

#[test]
fn a_v1_unit_reads_cpuacct_and_memory() {
    let dir = tree(&[
        ("cpuacct.usage", V1_CPUACCT),
        ("memory.usage_in_bytes", V1_USAGE),
        ("memory.stat", V1_MEMORY_STAT),
    ]);
    let cgroups = Cgroups {
        cpuacct: mounted(dir.path()),
        memory: mounted(dir.path()),
        ..Cgroups::default()
    };
    let usage = cgroups.usage("/systemk.slice/a.service");
    assert_eq!(usage.cpu_ns, Some(23_341_998_289_156));
    assert_eq!(usage.memory.unwrap().rss, 1_888_256);
}

#[test]
fn without_a_memory_controller_the_processes_resident_sets_stand_in() {
    let own = fs::read_to_string("/proc/self/status").unwrap();
    let dir = tree(&[
        ("cpu.stat", V2_CPU_STAT),
        ("cgroup.procs", &format!("{}\n", std::process::id())),
    ]);
    let cgroups = Cgroups {
        unified: mounted(dir.path()),
        ..Cgroups::default()
    };
    let memory = cgroups.usage("/systemk.slice").memory.unwrap();
    assert!(
        memory.working_set >= vm_rss(&own).unwrap() / 2,
        "{memory:?}"
    );
    assert_eq!(memory.page_faults, None);
    assert_eq!(cgroups.usage("/systemk.slice/gone.service").memory, None);
}

#[test]
fn attack_a_path_climbing_out_of_systemds_tree_reads_nothing() {
    let dir = tree(&[("cpu.stat", V2_CPU_STAT)]);
    let inner = dir.path().join("systemk.slice");
    let cgroups = Cgroups {
        unified: mounted(&inner),
        ..Cgroups::default()
    };
    for path in [
        "/../systemk.slice/a.service",
        "a.service",
        "/a.service/../..",
        "",
    ] {
        assert_eq!(cgroups.usage(path), CgroupUsage::default(), "{path:?}");
    }
    assert_eq!(cgroups.usage("/a.service").cpu_ns, Some(3_742_686_000));
}

#[test]
fn resident_set_is_bytes() {
    let status = "Name:\tsleep\nVmRSS:\t    1024 kB\nThreads:\t1\n";
    assert_eq!(vm_rss(status), Some(1024 * 1024));
    assert_eq!(vm_rss("Name:\tx\n"), None);
}
