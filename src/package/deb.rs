//! Reading a `.deb`'s control fields. `dpkg-deb --ctrl-tarfile` (dpkg is a runtime
//! dependency anyway) checks the `ar` archive and its `debian-binary` version and
//! decompresses the control member (gzip, xz, zstd or none), writing it as a plain tar
//! to stdout without touching the disk; systemk reads at most [`CONTROL_TAR_MAX_BYTES`]
//! of it and takes the `control` file from it.
//!
//! Not `dpkg-deb --field` or `--info`: they extract the control member into a temporary
//! directory and then open `control` there, following a symlink — a hostile `.deb` whose
//! `control` is a symlink made dpkg-deb read a host file (or block on a FIFO) and quote
//! it in its error message, which reaches the pod status. Here `control` must be one
//! regular file: a symlink, hard link or second `control` entry (which dpkg would
//! extract over the first) is refused. Only `Package` and `Version` are needed, so a
//! 30-line deb822 reader is used. Layer 1.

use std::io::Read;
use std::path::Path;

use super::error::{Error, Result};
use super::image::{check_package_name, check_version};
use super::process;

/// The program that reads `.deb` archives.
const DPKG_DEB: &str = "dpkg-deb";

/// The largest (decompressed) control archive read: 32 MiB. Control archives are a few
/// KiB; the largest part is `md5sums`, about 5 MiB for the largest packages seen.
const CONTROL_TAR_MAX_BYTES: usize = 32 << 20;

/// A control file larger than this is not a control file.
const CONTROL_MAX_BYTES: u64 = 1 << 20;

/// The fields of a binary package's control file systemk uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Control {
    /// `Package:`.
    pub package: String,
    /// `Version:`.
    pub version: String,
}

/// The control fields of the `.deb` at `path`.
pub(crate) async fn read_control(path: &Path) -> Result<Control> {
    let invalid = |why: String| Error::InvalidDeb {
        path: path.to_owned(),
        why,
    };
    let text = path
        .to_str()
        .ok_or_else(|| invalid("path is not UTF-8".into()))?;
    // A relative path starting with `-` would be read as an option.
    let arg = if path.is_absolute() {
        text.to_owned()
    } else {
        format!("./{text}")
    };
    let out =
        process::run_capped(DPKG_DEB, &["--ctrl-tarfile", &arg], CONTROL_TAR_MAX_BYTES).await?;
    if out.overflowed {
        return Err(invalid(format!(
            "its control archive is larger than {CONTROL_TAR_MAX_BYTES} bytes"
        )));
    }
    if !out.status.success() {
        return Err(invalid(format!(
            "dpkg-deb --ctrl-tarfile failed: {}",
            out.stderr
        )));
    }
    let control = control_from_tar(&out.stdout).map_err(invalid)?;
    parse_control(&control).map_err(invalid)
}

/// The text of the one regular file `control` (or `./control`) in a tar archive.
fn control_from_tar(tar: &[u8]) -> Result<String, String> {
    let bad = |e: std::io::Error| format!("its control archive is not a valid tar: {e}");
    let mut archive = tar::Archive::new(tar);
    let mut control = None;
    for entry in archive.entries().map_err(bad)? {
        let entry = entry.map_err(bad)?;
        let path = entry.path().map_err(bad)?;
        if !matches!(path.to_str(), Some("./control" | "control")) {
            continue;
        }
        if control.is_some() {
            return Err("its control archive has more than one control file".into());
        }
        if !entry.header().entry_type().is_file() {
            return Err("its control file is not a regular file (a link?)".into());
        }
        if entry.size() > CONTROL_MAX_BYTES {
            return Err(format!(
                "its control file is larger than {CONTROL_MAX_BYTES} bytes"
            ));
        }
        let mut text = String::new();
        entry
            .take(CONTROL_MAX_BYTES)
            .read_to_string(&mut text)
            .map_err(|e| format!("its control file cannot be read as text: {e}"))?;
        control = Some(text);
    }
    control.ok_or_else(|| "its control archive has no control file".to_owned())
}

/// Reads `Package` and `Version` from a deb822 paragraph. Field names are
/// case-insensitive; continuation lines (leading space or tab) belong to the field before
/// and are irrelevant for these two single-line fields.
fn parse_control(text: &str) -> Result<Control, String> {
    let (mut package, mut version) = (None, None);
    for line in text.lines() {
        if line.trim().is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) || line.starts_with('#') {
            continue;
        }
        let Some((field, value)) = line.split_once(':') else {
            return Err(format!("control line {line:?} is not `Field: value`"));
        };
        let value = value.trim().to_owned();
        if field.eq_ignore_ascii_case("Package") {
            package = Some(value);
        } else if field.eq_ignore_ascii_case("Version") {
            version = Some(value);
        }
    }
    let package = package.ok_or("the control file has no Package field")?;
    let version = version.ok_or("the control file has no Version field")?;
    check_package_name(&package)?;
    check_version(&version)?;
    Ok(Control { package, version })
}

#[cfg(test)]
pub(crate) mod tests {
    use std::process::Command;

    use super::*;

    /// A `.deb` built by `dpkg-deb --build` with `control` and `compression` (none, gzip,
    /// xz, zstd). `--nocheck`, so broken control files can be built too.
    pub(crate) fn build_deb(control: &str, compression: &str) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("DEBIAN")).unwrap();
        std::fs::write(root.join("DEBIAN/control"), control).unwrap();
        let deb = dir.path().join("x.deb");
        let out = Command::new("dpkg-deb")
            .args([
                "--root-owner-group",
                "--nocheck",
                "-Z",
                compression,
                "--build",
            ])
            .arg(&root)
            .arg(&deb)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::read(deb).unwrap()
    }

    /// An `ar` archive of `members`, written by hand so hostile `.deb`s can be built.
    fn ar(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = b"!<arch>\n".to_vec();
        for (name, data) in members {
            let header = format!(
                "{name:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
                0,
                0,
                0,
                "100644",
                data.len()
            );
            out.extend_from_slice(header.as_bytes());
            out.extend_from_slice(data);
            if data.len() % 2 == 1 {
                out.push(b'\n');
            }
        }
        out
    }

    /// A plain tar with `entries` (name, type, data).
    fn tar(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, kind, data) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(*kind);
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            if *kind == tar::EntryType::Symlink {
                header.set_link_name("/etc/shadow").unwrap();
            }
            builder.append_data(&mut header, name, *data).unwrap();
        }
        builder.into_inner().unwrap()
    }

    /// A `.deb` whose uncompressed control archive is `control_tar`.
    fn hostile_deb(control_tar: &[u8]) -> Vec<u8> {
        ar(&[
            ("debian-binary", b"2.0\n"),
            ("control.tar", control_tar),
            ("data.tar", &tar(&[])),
        ])
    }

    const CONTROL: &str = "Package: hello-sk\nVersion: 1:1.0-1\nArchitecture: all\n\
        Description: test\n multi-line\n .\n more\nMaintainer: t <t@example.com>\n";

    async fn read(bytes: &[u8]) -> Result<Control> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.deb");
        std::fs::write(&path, bytes).unwrap();
        read_control(&path).await
    }

    fn expected() -> Control {
        Control {
            package: "hello-sk".into(),
            version: "1:1.0-1".into(),
        }
    }

    async fn refused(bytes: &[u8], why: &str) {
        let err = read(bytes).await.unwrap_err();
        assert!(matches!(err, Error::InvalidDeb { .. }), "{err}");
        assert!(err.to_string().contains(why), "{err}");
    }

    #[tokio::test]
    async fn control_in_plain_tar() {
        assert_eq!(read(&build_deb(CONTROL, "none")).await.unwrap(), expected());
    }

    #[tokio::test]
    async fn control_in_gzip_tar() {
        assert_eq!(read(&build_deb(CONTROL, "gzip")).await.unwrap(), expected());
    }

    #[tokio::test]
    async fn control_in_xz_tar() {
        assert_eq!(read(&build_deb(CONTROL, "xz")).await.unwrap(), expected());
    }

    #[tokio::test]
    async fn control_in_zstd_tar() {
        assert_eq!(read(&build_deb(CONTROL, "zstd")).await.unwrap(), expected());
    }

    #[tokio::test]
    async fn hand_built_deb_is_read() {
        let control = tar(&[("./control", tar::EntryType::Regular, CONTROL.as_bytes())]);
        assert_eq!(read(&hostile_deb(&control)).await.unwrap(), expected());
    }

    #[tokio::test]
    async fn not_an_ar_archive() {
        refused(
            b"<html>this page is not found, and neither is the package</html>\n",
            "not a Debian format archive",
        )
        .await;
    }

    #[tokio::test]
    async fn truncated_deb_is_refused() {
        let deb = build_deb(CONTROL, "gzip");
        refused(&deb[..100], "dpkg-deb --ctrl-tarfile failed").await;
    }

    #[tokio::test]
    async fn wrong_format_version_is_refused() {
        let control = tar(&[("./control", tar::EntryType::Regular, CONTROL.as_bytes())]);
        let deb = ar(&[("debian-binary", b"3.0\n"), ("control.tar", &control)]);
        refused(&deb, "dpkg-deb --ctrl-tarfile failed").await;
    }

    #[tokio::test]
    async fn missing_version_field() {
        refused(&build_deb("Package: foo\n", "gzip"), "no Version").await;
    }

    #[tokio::test]
    async fn control_symlink_to_a_host_file_is_refused() {
        let control = tar(&[("./control", tar::EntryType::Symlink, b"")]);
        refused(&hostile_deb(&control), "not a regular file").await;
    }

    #[tokio::test]
    async fn second_control_file_is_refused() {
        // dpkg would extract the second over the first: its Package is what installs.
        let control = tar(&[
            ("./control", tar::EntryType::Regular, CONTROL.as_bytes()),
            (
                "./control",
                tar::EntryType::Regular,
                b"Package: other\nVersion: 1\n",
            ),
        ]);
        refused(&hostile_deb(&control), "more than one control file").await;
    }

    #[tokio::test]
    async fn archive_without_control_file_is_refused() {
        let control = tar(&[("./md5sums", tar::EntryType::Regular, b"")]);
        refused(&hostile_deb(&control), "no control file").await;
    }

    #[tokio::test]
    async fn garbage_control_archive_is_refused() {
        refused(&hostile_deb(&[7u8; 1536]), "not a valid tar").await;
    }

    #[tokio::test]
    async fn oversized_control_file_is_refused() {
        let big = format!("Package: foo\nVersion: 1\nX: {}\n", "a".repeat(2 << 20));
        let control = tar(&[("./control", tar::EntryType::Regular, big.as_bytes())]);
        refused(&hostile_deb(&control), "larger than").await;
    }

    #[test]
    fn field_names_case_insensitive_and_continuations_skipped() {
        let text = "package: foo\nDescription: x\n Version: 9\nversion: 2.0\n";
        assert_eq!(
            parse_control(text).unwrap(),
            Control {
                package: "foo".into(),
                version: "2.0".into()
            }
        );
    }

    #[test]
    fn invalid_package_name_in_control() {
        assert!(parse_control("Package: Foo\nVersion: 1\n").is_err());
    }
}
