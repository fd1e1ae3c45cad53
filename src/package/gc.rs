//! The choices of garbage collection, as plain functions over plain data: which packages
//! systemk may remove (its own, installed, held by no holder, unused for at least the
//! grace), whether apt's simulation of a removal touches nothing else, and which cached
//! `.deb` files go to bring the cache under its bound (least recently used first). No
//! I/O, no clock: the caller passes `now`. Layer 1.
//!
//! The rules, each a guard against removing something a pod or the host needs:
//! - only packages in systemk's record of what it installed: the admin's packages are
//!   never candidates, whatever a pod names as its image;
//! - never a package a holder (a container, running or adopted) uses;
//! - only after the package went unused for the grace; a package systemk has not seen in
//!   use since it started counts as last used when it was first seen, so a restart of
//!   systemk never removes at once;
//! - only when `apt-get -s remove` removes exactly that package: a package another
//!   installed package depends on would take that one with it, so it stays.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

/// When each package systemk installed was last seen in use (or first seen at all).
pub(crate) type LastUsed = BTreeMap<String, Timestamp>;

/// Brings `last_used` up to date at `now`: held packages are in use now, recorded ones
/// not seen before start their grace now, names no longer recorded are forgotten.
pub(crate) fn refresh_last_used(
    last_used: &mut LastUsed,
    recorded: &BTreeSet<String>,
    held: &BTreeSet<String>,
    now: Timestamp,
) {
    last_used.retain(|name, _| recorded.contains(name));
    for name in recorded {
        if held.contains(name) {
            last_used.insert(name.clone(), now);
        } else {
            last_used.entry(name.clone()).or_insert(now);
        }
    }
}

/// The packages that may be removed, by name: recorded, installed, not held, and unused
/// for at least `grace` at `now`.
pub(crate) fn candidates(
    recorded: &BTreeSet<String>,
    installed: &BTreeSet<String>,
    held: &BTreeSet<String>,
    last_used: &LastUsed,
    now: Timestamp,
    grace: Duration,
) -> Vec<String> {
    recorded
        .iter()
        .filter(|name| installed.contains(*name) && !held.contains(*name))
        .filter(|name| {
            last_used
                .get(*name)
                .is_some_and(|used| unused_for(*used, now) >= grace)
        })
        .cloned()
        .collect()
}

/// How long ago `used` was at `now` (zero when `used` is later).
fn unused_for(used: Timestamp, now: Timestamp) -> Duration {
    let micros = now.as_microsecond().saturating_sub(used.as_microsecond());
    Duration::from_micros(u64::try_from(micros).unwrap_or(0))
}

/// The packages apt's simulation (`apt-get -s remove`) would remove: its `Remv <name>
/// [<version>]` (and `Purg`) lines. Architecture qualifiers (`name:amd64`) are dropped.
pub(crate) fn simulated_removals(stdout: &str) -> BTreeSet<String> {
    stdout
        .lines()
        .filter_map(|line| {
            line.strip_prefix("Remv ")
                .or_else(|| line.strip_prefix("Purg "))
        })
        .filter_map(|rest| rest.split_whitespace().next())
        .map(|name| name.split_once(':').map_or(name, |(name, _)| name))
        .map(str::to_owned)
        .collect()
}

/// Whether removing `candidate` removes only it; else the other packages that would go
/// (packages that depend on it), which keep it.
pub(crate) fn removes_only(
    candidate: &str,
    would_remove: &BTreeSet<String>,
) -> Result<(), Vec<String>> {
    let others: Vec<String> = would_remove
        .iter()
        .filter(|name| *name != candidate)
        .cloned()
        .collect();
    if others.is_empty() && would_remove.contains(candidate) {
        Ok(())
    } else {
        Err(others)
    }
}

/// A file in the `.deb` cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CachedFile {
    /// Its file name in the cache directory.
    pub name: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// When it was last used (downloaded, or taken from the cache): its mtime.
    pub used: Timestamp,
}

/// The cached files to delete, least recently used first, until the rest fit in
/// `max_bytes`; files used within `recent` of `now` are kept even over the bound (an
/// install may be about to read them).
pub(crate) fn cache_to_trim(
    files: &[CachedFile],
    max_bytes: u64,
    now: Timestamp,
    recent: Duration,
) -> Vec<String> {
    let mut by_age: Vec<&CachedFile> = files.iter().collect();
    by_age.sort_by(|a, b| a.used.cmp(&b.used).then_with(|| a.name.cmp(&b.name)));
    let mut total: u64 = files.iter().map(|f| f.bytes).sum();
    let mut trim = Vec::new();
    for file in by_age {
        if total <= max_bytes {
            break;
        }
        if unused_for(file.used, now) < recent {
            // Sorted by age: every later file is more recent still.
            break;
        }
        total = total.saturating_sub(file.bytes);
        trim.push(file.name.clone());
    }
    trim
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + secs).unwrap()
    }

    const GRACE: Duration = Duration::from_secs(600);

    #[test]
    fn only_recorded_unheld_packages_past_the_grace_are_candidates() {
        let _clock = crate::clock::pin(at(0));
        let recorded = set(&["image", "dep", "held", "gone"]);
        let installed = set(&["image", "dep", "held", "admin"]);
        let held = set(&["held"]);
        let mut last_used = LastUsed::new();
        refresh_last_used(&mut last_used, &recorded, &held, crate::clock::now());
        // First seen now: the grace starts, nothing goes.
        let none = candidates(&recorded, &installed, &held, &last_used, at(1), GRACE);
        assert!(none.is_empty(), "{none:?}");
        let _clock = crate::clock::pin(at(600));
        let now = crate::clock::now();
        assert_eq!(
            candidates(&recorded, &installed, &held, &last_used, now, GRACE),
            ["dep", "image"],
            "not the held one, not the admin's, not one no longer installed"
        );
    }

    #[test]
    fn a_package_in_use_restarts_its_grace() {
        let recorded = set(&["image"]);
        let installed = recorded.clone();
        let mut last_used = LastUsed::new();
        refresh_last_used(&mut last_used, &recorded, &set(&["image"]), at(500));
        refresh_last_used(&mut last_used, &recorded, &set(&[]), at(1000));
        assert_eq!(last_used["image"], at(500), "released: its last use stays");
        let none = set(&[]);
        assert!(candidates(&recorded, &installed, &none, &last_used, at(1099), GRACE).is_empty());
        assert_eq!(
            candidates(&recorded, &installed, &none, &last_used, at(1100), GRACE),
            ["image"]
        );
    }

    #[test]
    fn names_no_longer_recorded_are_forgotten() {
        let mut last_used = LastUsed::new();
        refresh_last_used(&mut last_used, &set(&["a", "b"]), &set(&[]), at(0));
        refresh_last_used(&mut last_used, &set(&["a"]), &set(&[]), at(5));
        assert_eq!(last_used.keys().collect::<Vec<_>>(), ["a"]);
        assert_eq!(last_used["a"], at(0));
    }

    #[test]
    fn simulation_lines_name_the_removed_packages() {
        let out = "Reading package lists...\nThe following packages will be REMOVED:\n  \
                   libfoo1 foo\nRemv foo [1.0-1]\nRemv libfoo1:amd64 [1.0-1]\nPurg bar [2]\n";
        assert_eq!(simulated_removals(out), set(&["bar", "foo", "libfoo1"]));
        assert!(simulated_removals("0 upgraded, 0 newly installed\n").is_empty());
    }

    #[test]
    fn a_removal_taking_dependents_along_is_refused() {
        assert_eq!(removes_only("lib", &set(&["lib"])), Ok(()));
        assert_eq!(
            removes_only("lib", &set(&["lib", "app"])),
            Err(vec!["app".to_owned()])
        );
        // apt removing nothing (not installed meanwhile) is no removal either.
        assert_eq!(removes_only("lib", &set(&[])), Err(vec![]));
    }

    fn file(name: &str, bytes: u64, used: i64) -> CachedFile {
        CachedFile {
            name: name.into(),
            bytes,
            used: at(used),
        }
    }

    #[test]
    fn the_cache_is_trimmed_least_recently_used_first() {
        let files = [
            file("new", 40, 900),
            file("old", 30, 100),
            file("mid", 50, 500),
        ];
        assert_eq!(
            cache_to_trim(&files, 100, at(10_000), GRACE),
            ["old"],
            "120 → 90 bytes"
        );
        assert_eq!(cache_to_trim(&files, 40, at(10_000), GRACE), ["old", "mid"]);
        assert!(cache_to_trim(&files, 120, at(10_000), GRACE).is_empty());
        assert_eq!(cache_to_trim(&files, 0, at(10_000), GRACE).len(), 3);
    }

    #[test]
    fn recently_used_files_stay_over_the_bound() {
        let files = [file("old", 30, 100), file("fresh", 40, 950)];
        assert_eq!(cache_to_trim(&files, 0, at(1000), GRACE), ["old"]);
    }
}
