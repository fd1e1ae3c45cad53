//! Which mount points lie at or below a directory, from `/proc/self/mountinfo`, so the
//! removal of a pod directory never descends into a mounted file system. Bind mounts of
//! the same file system share its device number, so `st_dev` alone cannot tell; the
//! kernel's mount table can. Layer 4; the parsing is pure and unit-tested.

use std::io;
use std::path::{Path, PathBuf};

/// The kernel's mount table of systemk's own mount namespace.
const MOUNTINFO: &str = "/proc/self/mountinfo";

/// The mount points at or below `dir` (a real path, without symlinks).
pub(super) fn mount_points_below(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let table = std::fs::read_to_string(MOUNTINFO)?;
    Ok(mount_points(&table)
        .filter(|point| point.starts_with(dir))
        .collect())
}

/// The mount point (fifth field) of every line of a mountinfo table.
fn mount_points(table: &str) -> impl Iterator<Item = PathBuf> + '_ {
    table
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape(field)))
}

/// The kernel writes space, tab, newline and backslash of a path as `\040`, `\011`,
/// `\012` and `\134`.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|_| bytes[i] == b'\\')
            .and_then(|digits| std::str::from_utf8(digits).ok())
            .and_then(|digits| u8::from_str_radix(digits, 8).ok());
        match octal {
            Some(byte) => {
                out.push(byte);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "\
22 1 0:21 / / rw,relatime - ext4 /dev/sda1 rw
30 22 0:25 / /run rw,nosuid - tmpfs tmpfs rw
41 30 0:25 /a /run/systemk/pods/u1/volume-subpaths/c/0 rw - tmpfs tmpfs rw
42 30 0:25 /b /run/systemk/pods/u1/with\\040space rw - tmpfs tmpfs rw
43 30 0:25 /c /run/systemk/pods/u10 rw - tmpfs tmpfs rw
";

    #[test]
    fn finds_mounts_below_a_directory_only() {
        let below: Vec<PathBuf> = mount_points(TABLE)
            .filter(|p| p.starts_with("/run/systemk/pods/u1"))
            .collect();
        assert_eq!(
            below,
            [
                PathBuf::from("/run/systemk/pods/u1/volume-subpaths/c/0"),
                PathBuf::from("/run/systemk/pods/u1/with space"),
            ]
        );
    }

    #[test]
    fn octal_escapes_are_decoded() {
        assert_eq!(unescape("/a\\040b\\134c\\012"), "/a b\\c\n");
        assert_eq!(unescape("/trailing\\"), "/trailing\\");
        assert_eq!(unescape("/x\\9zz"), "/x\\9zz");
    }

    #[test]
    fn this_process_has_a_mount_table() {
        assert!(!mount_points_below(Path::new("/")).unwrap().is_empty());
    }
}
