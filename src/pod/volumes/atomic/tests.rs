use std::os::unix::fs::MetadataExt;

use super::*;

fn me() -> FileOwner {
    FileOwner {
        uid: nix::unistd::geteuid().as_raw(),
        gid: nix::unistd::getegid().as_raw(),
    }
}

fn payload(files: &[(&str, &str, u32)]) -> Payload {
    files
        .iter()
        .map(|(path, data, mode)| {
            let file = VolumeFile {
                data: data.as_bytes().to_vec(),
                mode: *mode,
            };
            ((*path).to_owned(), file)
        })
        .collect()
}

fn volume() -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("volume");
    (root, dir)
}

fn data_target(dir: &Path) -> String {
    let target = fs::read_link(dir.join(DATA_LINK)).unwrap();
    target.to_str().unwrap().to_owned()
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

fn assert_entries(dir: &Path, expected: &[&str]) {
    let mut expected = expected.to_vec();
    expected.sort();
    assert_eq!(entries(dir), expected);
}

fn mode_of(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn first_write_creates_data_dir_and_links() {
    let (_root, dir) = volume();
    let files = payload(&[("a", "one", 0o644), ("b", "two", 0o400), ("c", "", 0o666)]);
    assert!(write_payload(&dir, &files, me()).unwrap());
    let target = data_target(&dir);
    assert!(is_data_dir_name(&target), "{target}");
    assert_entries(&dir, &["..data", target.as_str(), "a", "b", "c"]);
    assert_eq!(fs::read_link(dir.join("a")).unwrap(), Path::new("..data/a"));
    assert_eq!(fs::read_to_string(dir.join("a")).unwrap(), "one");
    assert_eq!(fs::read_to_string(dir.join("b")).unwrap(), "two");
    assert_eq!(mode_of(&dir.join(&target).join("a")), 0o644);
    assert_eq!(mode_of(&dir.join(&target).join("b")), 0o400);
    assert_eq!(mode_of(&dir.join(&target).join("c")), 0o666);
    assert_eq!(mode_of(&dir.join(&target)), DIR_MODE);
    assert_eq!(mode_of(&dir), DIR_MODE);
}

#[test]
fn identical_write_changes_nothing() {
    let (_root, dir) = volume();
    let files = payload(&[("a", "one", 0o644), ("d/b", "two", 0o600)]);
    assert!(write_payload(&dir, &files, me()).unwrap());
    let target = data_target(&dir);
    let inode = fs::metadata(dir.join("a")).unwrap().ino();
    assert!(!write_payload(&dir, &files, me()).unwrap());
    assert_eq!(data_target(&dir), target);
    assert_eq!(fs::metadata(dir.join("a")).unwrap().ino(), inode);
    assert_entries(&dir, &["..data", target.as_str(), "a", "d"]);
}

#[test]
fn unchanged_write_repairs_links() {
    let (_root, dir) = volume();
    let files = payload(&[("a", "one", 0o644), ("b", "two", 0o644)]);
    write_payload(&dir, &files, me()).unwrap();
    fs::remove_file(dir.join("a")).unwrap();
    fs::remove_file(dir.join("b")).unwrap();
    symlink("..data/elsewhere", dir.join("b")).unwrap();
    assert!(!write_payload(&dir, &files, me()).unwrap());
    assert_eq!(fs::read_to_string(dir.join("a")).unwrap(), "one");
    assert_eq!(fs::read_link(dir.join("b")).unwrap(), Path::new("..data/b"));
}

#[test]
fn update_goes_through_the_same_path_and_keeps_the_dir() {
    let (_root, dir) = volume();
    write_payload(&dir, &payload(&[("a", "one", 0o644)]), me()).unwrap();
    let dir_inode = fs::metadata(&dir).unwrap().ino();
    let old = data_target(&dir);
    assert!(write_payload(&dir, &payload(&[("a", "uno", 0o644)]), me()).unwrap());
    assert_eq!(fs::read_to_string(dir.join("a")).unwrap(), "uno");
    assert_eq!(fs::metadata(&dir).unwrap().ino(), dir_inode);
    let new = data_target(&dir);
    assert_ne!(new, old);
    assert_entries(&dir, &["..data", new.as_str(), "a"]);
}

#[test]
fn removed_key_disappears_with_the_old_dir() {
    let (_root, dir) = volume();
    let both = payload(&[("a", "one", 0o644), ("b", "two", 0o644)]);
    write_payload(&dir, &both, me()).unwrap();
    let old = data_target(&dir);
    assert!(write_payload(&dir, &payload(&[("a", "one", 0o644)]), me()).unwrap());
    let new = data_target(&dir);
    assert_entries(&dir, &["..data", new.as_str(), "a"]);
    assert!(!dir.join(old).exists());
}

#[test]
fn mode_change_alone_is_a_change() {
    let (_root, dir) = volume();
    write_payload(&dir, &payload(&[("a", "one", 0o644)]), me()).unwrap();
    assert!(write_payload(&dir, &payload(&[("a", "one", 0o600)]), me()).unwrap());
    assert_eq!(mode_of(&dir.join("a")), 0o600);
}

#[test]
fn nested_paths_link_their_first_component() {
    let (_root, dir) = volume();
    let files = payload(&[("a/b/c", "deep", 0o644), ("a/d", "shallow", 0o644)]);
    assert!(write_payload(&dir, &files, me()).unwrap());
    let target = data_target(&dir);
    assert_entries(&dir, &["..data", target.as_str(), "a"]);
    assert_eq!(fs::read_link(dir.join("a")).unwrap(), Path::new("..data/a"));
    assert_eq!(fs::read_to_string(dir.join("a/b/c")).unwrap(), "deep");
    assert_eq!(fs::read_to_string(dir.join("a/d")).unwrap(), "shallow");
    assert_eq!(mode_of(&dir.join(&target).join("a/b")), DIR_MODE);
    assert!(!write_payload(&dir, &files, me()).unwrap());
}

#[test]
fn empty_payload_points_data_at_an_empty_dir() {
    let (_root, dir) = volume();
    assert!(write_payload(&dir, &Payload::new(), me()).unwrap());
    let target = data_target(&dir);
    assert_entries(&dir, &["..data", target.as_str()]);
    assert!(entries(&dir.join(&target)).is_empty());
    assert!(!write_payload(&dir, &Payload::new(), me()).unwrap());
}

#[test]
fn check_payload_path_follows_the_kubelet() {
    let long_name = "n".repeat(256);
    let long_path = vec!["n"; 2049].join("/");
    for bad in [
        "", "/abs", "..", "a/../b", "..data", "..a/b", "a//b", "a/", "./a", "a\0b", &long_name,
        &long_path,
    ] {
        assert!(check_payload_path(bad).is_err(), "{bad:?} passed");
    }
    for good in ["a", "a/b/c", "a..b", ".a", "a/..b", &"n".repeat(255)] {
        assert_eq!(check_payload_path(good), Ok(()), "{good:?}");
    }
}

#[test]
fn invalid_payload_writes_nothing() {
    let (_root, dir) = volume();
    let cases = [
        (
            "../escape",
            payload(&[("a", "one", 0o644), ("../escape", "x", 0o644)]),
        ),
        (
            "a/b",
            payload(&[("a", "one", 0o644), ("a/b", "two", 0o644)]),
        ),
        ("a", payload(&[("a", "one", 0o4755)])),
    ];
    for (bad, files) in cases {
        let err = write_payload(&dir, &files, me()).unwrap_err();
        assert!(matches!(err, Error::InvalidPod { .. }), "{err}");
        assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        assert!(!dir.exists());
    }
}

#[test]
fn crash_leftovers_are_removed() {
    let (_root, dir) = volume();
    let files = payload(&[("a", "one", 0o644)]);
    write_payload(&dir, &files, me()).unwrap();
    let target = data_target(&dir);
    symlink("..2020_01_01_00_00_00.000000001", dir.join(DATA_TMP_LINK)).unwrap();
    let orphan = dir.join("..2020_01_01_00_00_00.000000001");
    fs::create_dir_all(orphan.join("sub")).unwrap();
    fs::write(orphan.join("sub/file"), "old").unwrap();
    assert!(!write_payload(&dir, &files, me()).unwrap());
    assert_entries(&dir, &["..data", target.as_str(), "a"]);

    symlink("nowhere", dir.join(DATA_TMP_LINK)).unwrap();
    fs::create_dir(&orphan).unwrap();
    assert!(write_payload(&dir, &payload(&[("a", "uno", 0o644)]), me()).unwrap());
    let new = data_target(&dir);
    assert_entries(&dir, &["..data", new.as_str(), "a"]);
}

#[test]
fn foreign_entries_are_left_alone() {
    let (_root, dir) = volume();
    fs::create_dir(&dir).unwrap();
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("keep"), "keep").unwrap();
    symlink(outside.path(), dir.join(DATA_LINK)).unwrap();
    symlink(outside.path(), dir.join("other")).unwrap();
    fs::write(dir.join("notes"), "mine").unwrap();
    fs::create_dir(dir.join("..mine")).unwrap();
    assert!(write_payload(&dir, &payload(&[("a", "one", 0o644)]), me()).unwrap());
    let target = data_target(&dir);
    let expected = ["..data", target.as_str(), "..mine", "a", "notes", "other"];
    assert_entries(&dir, &expected);
    assert_eq!(entries(outside.path()), ["keep"]);

    let err = write_payload(&dir, &payload(&[("notes", "x", 0o644)]), me()).unwrap_err();
    assert!(
        matches!(&err, Error::Io { path, .. } if path == &dir.join("notes")),
        "{err}"
    );
    assert_eq!(fs::read_to_string(dir.join("notes")).unwrap(), "mine");
}

#[test]
fn dir_must_be_a_directory_not_a_symlink() {
    let (root, dir) = volume();
    let real = root.path().join("real");
    fs::create_dir(&real).unwrap();
    symlink(&real, &dir).unwrap();
    let files = payload(&[("a", "one", 0o644)]);
    assert!(matches!(
        write_payload(&dir, &files, me()),
        Err(Error::Io { .. })
    ));
    assert!(entries(&real).is_empty());

    let file = root.path().join("file");
    fs::write(&file, "").unwrap();
    assert!(matches!(
        write_payload(&file, &files, me()),
        Err(Error::Io { .. })
    ));

    let orphan = root.path().join("missing/volume");
    assert!(matches!(
        write_payload(&orphan, &files, me()),
        Err(Error::Io { .. })
    ));
}

#[test]
fn owner_applies_to_files_and_dirs() {
    if !nix::unistd::geteuid().is_root() {
        // Only root may give files away; the other tests cover the rest as any user.
        return;
    }
    let (_root, dir) = volume();
    let nobody = FileOwner {
        uid: 65534,
        gid: 65534,
    };
    let files = payload(&[("a", "one", 0o400), ("d/b", "two", 0o644)]);
    assert!(write_payload(&dir, &files, nobody).unwrap());
    let target = dir.join(data_target(&dir));
    for path in [
        &dir,
        &target,
        &target.join("a"),
        &target.join("d"),
        &target.join("d/b"),
    ] {
        let meta = fs::symlink_metadata(path).unwrap();
        assert_eq!(
            (meta.uid(), meta.gid()),
            (65534, 65534),
            "{}",
            path.display()
        );
    }
    assert!(!write_payload(&dir, &files, nobody).unwrap());
    assert!(write_payload(&dir, &files, me()).unwrap());
    let meta = fs::metadata(dir.join("a")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (me().uid, me().gid));
}

#[test]
fn open_reader_keeps_the_old_content() {
    let (_root, dir) = volume();
    write_payload(&dir, &payload(&[("a", "one", 0o644)]), me()).unwrap();
    let mut old = fs::File::open(dir.join("a")).unwrap();
    write_payload(&dir, &payload(&[("a", "uno", 0o644)]), me()).unwrap();
    let mut text = String::new();
    io::Read::read_to_string(&mut old, &mut text).unwrap();
    assert_eq!(text, "one");
    assert_eq!(fs::read_to_string(dir.join("a")).unwrap(), "uno");
}

#[test]
fn same_instant_writes_get_distinct_dirs() {
    let (_root, dir) = volume();
    fs::create_dir(&dir).unwrap();
    let first = create_data_dir(&dir, me()).unwrap();
    let second = create_data_dir(&dir, me()).unwrap();
    assert_ne!(first, second);
    assert!(is_data_dir_name(&first) && is_data_dir_name(&second));
}
