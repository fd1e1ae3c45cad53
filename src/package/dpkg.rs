//! dpkg-query verbs: the installed version of a package and its file list, and dpkg's
//! own version comparison. Read-only and root-free; never changes the dpkg database.
//! Layer 1.

use std::path::PathBuf;

use super::error::{Error, Result};
use super::process;

const DPKG_QUERY: &str = "dpkg-query";
const DPKG: &str = "dpkg";

/// Whether Debian version `a` is newer than `b`, by `dpkg --compare-versions` (exit 0
/// true, 1 false, else an invalid version).
pub(crate) async fn is_newer(a: &str, b: &str) -> Result<bool> {
    let out = process::run(DPKG, &["--compare-versions", a, "gt", b], &[]).await?;
    match out.status.code() {
        Some(0) => Ok(true),
        Some(1) => Ok(false),
        _ => Err(Error::QueryFailed {
            package: format!("{a} > {b}"),
            program: DPKG,
            stderr: out.stderr,
        }),
    }
}

/// The installed version of `package`, `None` when it is not installed (unknown to dpkg,
/// removed, or only its config files left).
pub(crate) async fn installed_version(package: &str) -> Result<Option<String>> {
    let out = process::run(
        DPKG_QUERY,
        &["--show", "--showformat=${Status}\t${Version}\n", package],
        &[],
    )
    .await?;
    match out.status.code() {
        Some(0) => Ok(parse_status(&out.stdout)),
        // dpkg-query exits 1 when no package matches.
        Some(1) => Ok(None),
        _ => Err(Error::QueryFailed {
            package: package.to_owned(),
            program: DPKG_QUERY,
            stderr: out.stderr,
        }),
    }
}

/// Every installed package's name.
pub(crate) async fn installed_packages() -> Result<std::collections::BTreeSet<String>> {
    let out = process::run(
        DPKG_QUERY,
        &["--show", "--showformat=${db:Status-Status}\t${Package}\n"],
        &[],
    )
    .await?;
    if !out.status.success() {
        return Err(Error::QueryFailed {
            package: "*".to_owned(),
            program: DPKG_QUERY,
            stderr: out.stderr,
        });
    }
    Ok(out
        .stdout
        .lines()
        .filter_map(|line| line.strip_prefix("installed\t"))
        .map(str::to_owned)
        .collect())
}

/// Every installed package's source and dependencies, for the vendor-unit search.
pub(crate) async fn package_graph() -> Result<super::depends::PackageGraph> {
    let format = format!("--showformat={}", super::depends::GRAPH_FORMAT);
    let out = process::run(DPKG_QUERY, &["--show", &format], &[]).await?;
    if !out.status.success() {
        return Err(Error::QueryFailed {
            package: "*".to_owned(),
            program: DPKG_QUERY,
            stderr: out.stderr,
        });
    }
    Ok(super::depends::PackageGraph::parse(&out.stdout))
}

/// The files and directories `package` owns, as `dpkg-query --listfiles` prints them.
pub(crate) async fn file_list(package: &str) -> Result<Vec<PathBuf>> {
    let out = process::run(DPKG_QUERY, &["--listfiles", package], &[]).await?;
    if !out.status.success() {
        return Err(Error::QueryFailed {
            package: package.to_owned(),
            program: DPKG_QUERY,
            stderr: out.stderr,
        });
    }
    Ok(parse_file_list(&out.stdout))
}

/// `<Status>\t<Version>` → the version when the status says the package is installed.
fn parse_status(stdout: &str) -> Option<String> {
    let line = stdout.lines().next()?;
    let (status, version) = line.split_once('\t')?;
    let installed = status.split_whitespace().nth(2) == Some("installed");
    (installed && !version.is_empty()).then(|| version.to_owned())
}

/// Keeps the path lines; drops `/.` and diversion notes such as
/// `diverted by foo to: /usr/bin/bar.real`, which do not start with `/`.
fn parse_file_list(stdout: &str) -> Vec<PathBuf> {
    stdout
        .lines()
        .filter(|line| line.starts_with('/') && *line != "/.")
        .map(PathBuf::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dpkg_compares_epochs_and_revisions() {
        assert!(is_newer("1:0.1", "2.0").await.unwrap());
        assert!(is_newer("1.0-2", "1.0-1").await.unwrap());
        assert!(!is_newer("1.0~rc1", "1.0").await.unwrap());
        assert!(!is_newer("1.0", "1.0").await.unwrap());
    }

    #[test]
    fn installed_package_gives_version() {
        assert_eq!(
            parse_status("install ok installed\t1:0.4.6-3+b1\n"),
            Some("1:0.4.6-3+b1".into())
        );
    }

    #[test]
    fn removed_package_with_config_files_is_not_installed() {
        assert_eq!(
            parse_status("deinstall ok config-files\t1:0.4.6-3+b1\n"),
            None
        );
    }

    #[test]
    fn unknown_package_is_not_installed() {
        assert_eq!(parse_status("unknown ok not-installed\t\n"), None);
        assert_eq!(parse_status(""), None);
    }

    #[test]
    fn file_list_skips_root_and_diversions() {
        let out = "/.\n/usr\n/usr/bin/foo\npackage diverts others to: /usr/bin/foo.real\n";
        assert_eq!(
            parse_file_list(out),
            vec![PathBuf::from("/usr"), PathBuf::from("/usr/bin/foo")]
        );
    }
}
