//! The instances of a template unit that exist on this host, as the template documents
//! them: a condition path with `%I` or `%i` (`AssertPathExists=/etc/postgresql/%I/
//! postgresql.conf`) is matched against the file system, one or two directory levels for
//! `%I` (which turns `-` into `/`: `15/main` is `postgresql@15-main.service`), one for
//! `%i`. Only listed in the error that asks a pod to name an instance. Blocking file
//! reads; run it off the async threads. Layer 1.

use std::path::{Path, PathBuf};

use super::unit_choice::check_instance;

/// Most instances listed: the error message stays short.
const MAX_INSTANCES: usize = 32;

/// The existing instances of `template` (e.g. `postgresql@.service`) that the condition
/// `paths` (from `unit_scan::instance_paths`) show, as sorted unit names.
pub(crate) fn existing_instances(template: &str, paths: &[String]) -> Vec<String> {
    let Some(prefix) = template.strip_suffix("@.service") else {
        return Vec::new();
    };
    let mut found: Vec<String> = paths
        .iter()
        .flat_map(|path| matches(path))
        .filter(|instance| check_instance(instance).is_ok())
        .map(|instance| format!("{prefix}@{instance}.service"))
        .collect();
    found.sort();
    found.dedup();
    found.truncate(MAX_INSTANCES);
    found
}

/// Instances for one condition path: `<dir>/%I/<rest>` or `<dir>/%i/<rest>`, the
/// specifier a whole path component and nowhere else.
fn matches(pattern: &str) -> Vec<String> {
    let (escaped, at) = match (pattern.find("%I"), pattern.find("%i")) {
        (Some(at), None) => (true, at),
        (None, Some(at)) => (false, at),
        _ => return Vec::new(),
    };
    let (dir, rest) = (&pattern[..at], &pattern[at + 2..]);
    if !dir.starts_with('/') || !dir.ends_with('/') || dir.contains('%') || rest.contains('%') {
        return Vec::new();
    }
    if !(rest.is_empty() || rest.starts_with('/')) {
        return Vec::new();
    }
    let rest = rest.trim_start_matches('/');
    let exists = |parts: &[&str]| {
        let mut path = PathBuf::from(dir);
        path.extend(parts);
        if !rest.is_empty() {
            path.push(rest);
        }
        path.exists()
    };
    let mut found = Vec::new();
    for first in subdirs(Path::new(dir)) {
        if exists(&[&first]) {
            found.push(first.clone());
        }
        // %I: one `-` is one `/`; a name holding `-` itself would need `\x2d`.
        if !escaped || first.contains('-') {
            continue;
        }
        for second in subdirs(&Path::new(dir).join(&first)) {
            if !second.contains('-') && exists(&[&first, &second]) {
                found.push(format!("{first}-{second}"));
            }
        }
    }
    found
}

/// The names of the directories in `dir` (not following symlinks), UTF-8 only.
fn subdirs(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .take(MAX_INSTANCES * 4)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgresql_clusters_are_found_two_levels_down() {
        let root = tempfile::tempdir().unwrap();
        let base = root.path().join("postgresql");
        for cluster in ["15/main", "15/other", "16/main", "16/bro-ken", "17/empty"] {
            std::fs::create_dir_all(base.join(cluster)).unwrap();
        }
        for cluster in ["15/main", "15/other", "16/main", "16/bro-ken"] {
            std::fs::write(base.join(cluster).join("postgresql.conf"), "").unwrap();
        }
        let pattern = format!("{}/%I/postgresql.conf", base.display());
        assert_eq!(
            existing_instances("postgresql@.service", &[pattern]),
            [
                "postgresql@15-main.service",
                "postgresql@15-other.service",
                "postgresql@16-main.service"
            ]
        );
    }

    #[test]
    fn lowercase_i_is_one_level() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("a/b")).unwrap();
        std::fs::create_dir_all(root.path().join("c")).unwrap();
        let pattern = format!("{}/%i", root.path().display());
        assert_eq!(
            existing_instances("x@.service", &[pattern]),
            ["x@a.service", "x@c.service"]
        );
    }

    #[test]
    fn other_shapes_are_not_guessed() {
        for pattern in ["/etc/%i.conf", "relative/%I", "/etc/%I/%i", "/etc/x%I/y"] {
            assert!(matches(pattern).is_empty(), "{pattern}");
        }
        assert!(existing_instances("plain.service", &["/etc/%i".into()]).is_empty());
    }
}
