//! Reading a `.deb`'s control file by streaming: the `ar` archive, its `control.tar`
//! (plain, gzip, xz or zstd) and the `control` paragraph, without reading members into
//! memory. Only `Package` and `Version` are needed, so a 30-line deb822 reader is used
//! rather than another crate. Blocking I/O: call under `spawn_blocking`. Layer 1.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use super::error::{Error, Result};
use super::image::{check_package_name, check_version};

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
pub(crate) fn read_control(path: &Path) -> Result<Control> {
    let invalid = |why: String| Error::InvalidDeb {
        path: path.to_owned(),
        why,
    };
    let file = File::open(path).map_err(Error::io("opening", path))?;
    let mut archive = ar::Archive::new(BufReader::new(file));
    let mut first = true;
    while let Some(entry) = archive.next_entry() {
        let mut entry = entry.map_err(|e| invalid(format!("not an ar archive: {e}")))?;
        let name = String::from_utf8_lossy(entry.header().identifier())
            .trim_end_matches('/')
            .to_owned();
        if std::mem::take(&mut first) {
            let mut magic = String::new();
            let read = (&mut entry).take(16).read_to_string(&mut magic);
            if name != "debian-binary" || read.is_err() || !magic.starts_with("2.") {
                return Err(invalid(
                    "it does not start with a debian-binary 2.x member".into(),
                ));
            }
            continue;
        }
        let text = match name.as_str() {
            "control.tar" => control_from_tar(entry),
            "control.tar.gz" => control_from_tar(flate2::read::GzDecoder::new(entry)),
            "control.tar.xz" => control_from_tar(liblzma::read::XzDecoder::new(entry)),
            "control.tar.zst" => {
                let decoder = zstd::Decoder::new(entry)
                    .map_err(|e| invalid(format!("control.tar.zst: {e}")))?;
                control_from_tar(decoder)
            }
            _ => continue,
        };
        let text = text.map_err(|e| invalid(format!("{name}: {e}")))?;
        return parse_control(&text).map_err(invalid);
    }
    Err(invalid("it has no control.tar member".into()))
}

fn control_from_tar(reader: impl Read) -> std::io::Result<String> {
    let mut tar = tar::Archive::new(reader);
    for entry in tar.entries()? {
        let entry = entry?;
        let is_control = matches!(entry.path()?.to_str(), Some("./control" | "control"));
        if is_control {
            let mut text = String::new();
            entry.take(CONTROL_MAX_BYTES).read_to_string(&mut text)?;
            return Ok(text);
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::NotFound,
        "no control file",
    ))
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
    use super::*;

    /// A minimal `.deb` (debian-binary, control.tar.<ext>, empty data.tar) in memory.
    pub(crate) fn build_deb(control: &str, ext: &str) -> Vec<u8> {
        let mut tar = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(control.len() as u64);
        header.set_mode(0o644);
        tar.append_data(&mut header, "./control", control.as_bytes())
            .unwrap();
        let tar = tar.into_inner().unwrap();
        let compressed = match ext {
            "" => tar,
            ".gz" => {
                let mut out = Vec::new();
                flate2::read::GzEncoder::new(&tar[..], flate2::Compression::fast())
                    .read_to_end(&mut out)
                    .unwrap();
                out
            }
            ".xz" => {
                let mut out = Vec::new();
                liblzma::read::XzEncoder::new(&tar[..], 1)
                    .read_to_end(&mut out)
                    .unwrap();
                out
            }
            ".zst" => zstd::encode_all(&tar[..], 1).unwrap(),
            other => panic!("unknown compression {other}"),
        };
        let mut ar = ar::Builder::new(Vec::new());
        let mut add = |name: &str, data: &[u8]| {
            ar.append(
                &ar::Header::new(name.as_bytes().to_vec(), data.len() as u64),
                data,
            )
            .unwrap();
        };
        add("debian-binary", b"2.0\n");
        add(&format!("control.tar{ext}"), &compressed);
        add("data.tar", &[0u8; 1024]);
        ar.into_inner().unwrap()
    }

    const CONTROL: &str = "Package: hello-sk\nVersion: 1:1.0-1\nArchitecture: all\n\
        Description: test\n multi-line\n .\n more\nMaintainer: t <t@example.com>\n";

    fn read(bytes: &[u8]) -> Result<Control> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.deb");
        std::fs::write(&path, bytes).unwrap();
        read_control(&path)
    }

    fn expected() -> Control {
        Control {
            package: "hello-sk".into(),
            version: "1:1.0-1".into(),
        }
    }

    #[test]
    fn control_in_plain_tar() {
        assert_eq!(read(&build_deb(CONTROL, "")).unwrap(), expected());
    }

    #[test]
    fn control_in_gzip_tar() {
        assert_eq!(read(&build_deb(CONTROL, ".gz")).unwrap(), expected());
    }

    #[test]
    fn control_in_xz_tar() {
        assert_eq!(read(&build_deb(CONTROL, ".xz")).unwrap(), expected());
    }

    #[test]
    fn control_in_zstd_tar() {
        assert_eq!(read(&build_deb(CONTROL, ".zst")).unwrap(), expected());
    }

    #[test]
    fn not_an_ar_archive() {
        assert!(matches!(
            read(b"<html>not found</html>"),
            Err(Error::InvalidDeb { .. })
        ));
    }

    #[test]
    fn missing_version_field() {
        let err = read(&build_deb("Package: foo\n", ".gz")).unwrap_err();
        assert!(err.to_string().contains("no Version"), "{err}");
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
