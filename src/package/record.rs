//! The record of packages systemk installed itself (images and the dependencies apt
//! pulled in with them): one package name a line in `<state dir>/packages`, replaced
//! atomically. Only these may be downgraded by a later image; every other package is the
//! host's. Names no longer installed are dropped at each write, so a package the admin
//! removed and installed again is the admin's. Layer 1; blocking file I/O.

use std::collections::BTreeSet;
use std::path::Path;

use super::error::{Error, Result};
use crate::atomic_file::{self, Durability};

/// The record is no secret: readable by all, like the rest of dpkg's state.
const RECORD_FILE_MODE: u32 = 0o644;

const HEADER: &str = "# Packages systemk installed as pod images (or their dependencies); \
managed by systemk.\n";

/// Package names in the record file; a missing file is an empty record.
pub(crate) fn load(path: &Path) -> Result<BTreeSet<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(parse(&text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeSet::new()),
        Err(e) => Err(Error::io("reading", path)(e)),
    }
}

/// Writes `packages` to `path` through a temporary file and a rename.
pub(crate) fn save(path: &Path, packages: &BTreeSet<String>) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(Error::io("creating", dir))?;
    }
    atomic_file::write(
        path,
        render(packages).as_bytes(),
        RECORD_FILE_MODE,
        Durability::Synced,
    )
    .map_err(Error::io("writing", path))
}

/// The record after an install: what it had and what is new, minus what is gone.
pub(crate) fn updated(
    recorded: &BTreeSet<String>,
    before: &BTreeSet<String>,
    after: &BTreeSet<String>,
) -> BTreeSet<String> {
    recorded
        .iter()
        .chain(after.difference(before))
        .filter(|name| after.contains(*name))
        .cloned()
        .collect()
}

fn parse(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

fn render(packages: &BTreeSet<String>) -> String {
    let mut text = HEADER.to_owned();
    for name in packages {
        text.push_str(name);
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn new_packages_are_added_and_removed_ones_dropped() {
        let recorded = set(&["old", "gone"]);
        let before = set(&["old", "host"]);
        let after = set(&["old", "host", "image", "dep"]);
        assert_eq!(
            updated(&recorded, &before, &after),
            set(&["dep", "image", "old"])
        );
    }

    #[test]
    fn round_trip_through_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/packages");
        assert_eq!(load(&path).unwrap(), BTreeSet::new());
        save(&path, &set(&["b", "a"])).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with('#') && text.ends_with("a\nb\n"), "{text}");
        assert_eq!(load(&path).unwrap(), set(&["a", "b"]));
        assert_eq!(
            std::fs::read_dir(dir.path().join("state")).unwrap().count(),
            1
        );
    }
}
