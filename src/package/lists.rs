//! apt's package lists: when they were last refreshed (so `apt-get update` runs only when
//! they are older than `--apt-lists-max-age`), and the candidate version `apt-cache policy`
//! reports. Pure except for reading the lists directory's metadata. Layer 1.

use std::path::Path;
use std::time::Duration;

use k8s_openapi::jiff::{SignedDuration, Timestamp};

/// apt's package lists (`Dir::State::lists`). apt touches each `*Release` file at every
/// `apt-get update` (it sets the mtime to the server's Last-Modified, so the change time
/// tells when the lists were last refreshed).
pub const APT_LISTS_DIR: &str = "/var/lib/apt/lists";

/// The default of `--apt-lists-max-age`: lists younger than this are not refreshed.
pub const DEFAULT_LISTS_MAX_AGE: Duration = Duration::from_secs(3600);

/// When the lists in `dir` were last refreshed: the newest change time of its `*Release`
/// files; `None` when there are none (never updated) or the directory cannot be read.
pub(crate) fn lists_refreshed_at(dir: &Path) -> Option<Timestamp> {
    use std::os::unix::fs::MetadataExt;
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().ends_with("Release"))
        .filter_map(|entry| entry.metadata().ok())
        .filter_map(|meta| Timestamp::new(meta.ctime(), 0).ok())
        .max()
}

/// Whether lists refreshed at `refreshed` are older than `max_age` at `now`.
pub(crate) fn lists_stale(refreshed: Option<Timestamp>, now: Timestamp, max_age: Duration) -> bool {
    let max_age = SignedDuration::try_from(max_age).unwrap_or(SignedDuration::MAX);
    refreshed.is_none_or(|at| now.duration_since(at) >= max_age)
}

/// The `Candidate:` line of `apt-cache policy`; `(none)` is none.
pub(crate) fn parse_candidate(stdout: &str) -> Option<String> {
    stdout
        .lines()
        .find_map(|line| line.trim().strip_prefix("Candidate:"))
        .map(str::trim)
        .filter(|version| !version.is_empty() && *version != "(none)")
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidate_read_from_apt_cache_policy() {
        let out = "uptimed:\n  Installed: (none)\n  Candidate: 1:0.4.6-3+b1\n  Version table:\n";
        assert_eq!(parse_candidate(out).as_deref(), Some("1:0.4.6-3+b1"));
        assert_eq!(parse_candidate("x:\n  Candidate: (none)\n"), None);
        assert_eq!(parse_candidate(""), None);
    }

    #[test]
    fn lists_are_stale_when_older_than_the_age_or_never_updated() {
        let now = Timestamp::new(10_000, 0).unwrap();
        let hour = Duration::from_secs(3600);
        assert!(lists_stale(None, now, hour));
        assert!(!lists_stale(
            Some(Timestamp::new(9_000, 0).unwrap()),
            now,
            hour
        ));
        assert!(lists_stale(
            Some(Timestamp::new(6_400, 0).unwrap()),
            now,
            hour
        ));
        assert!(lists_stale(Some(now), now, Duration::ZERO));
    }

    #[test]
    fn lists_age_from_the_newest_release_file() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(lists_refreshed_at(dir.path()), None);
        std::fs::write(dir.path().join("x_Packages"), "").unwrap();
        assert_eq!(lists_refreshed_at(dir.path()), None);
        std::fs::write(dir.path().join("deb.example_dists_x_InRelease"), "").unwrap();
        let at = lists_refreshed_at(dir.path()).unwrap();
        assert!(crate::clock::now().duration_since(at).as_secs() < 60);
    }
}
