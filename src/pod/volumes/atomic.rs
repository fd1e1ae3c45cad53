//! The kubelet's atomic writer (`pkg/volume/util/atomic_writer.go`): the files of a
//! configMap, secret, projected or downwardAPI volume live in a timestamped hidden directory
//! `<dir>/..<UTC time>.<nanoseconds>` that the symlink `<dir>/..data` points at; each top-level
//! name of the payload is a symlink `<dir>/<name>` → `..data/<name>`. An update writes a new
//! timestamped directory and swaps `..data` with one `rename`, so a reader inside the
//! container sees either the whole old payload or the whole new one. `<dir>` itself is never
//! replaced: the units bind it read-only, and a new inode would not reach them.
//!
//! Only entries this scheme creates are ever touched: `..data`, `..data_tmp`, timestamped
//! directories, and symlinks pointing at `..data/<their name>`. Blocking code of the pod layer
//! (layer 4); callers run it in `spawn_blocking`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use k8s_openapi::jiff::tz::TimeZone;

use crate::pod::{Error, Result};

/// One file of a volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeFile {
    /// The file's contents.
    pub data: Vec<u8>,
    /// The file's permission bits, e.g. `0o644`; at most `0o777`.
    pub mode: u32,
}

/// A volume's files by relative path (`a`, `dir/b`).
pub type Payload = BTreeMap<String, VolumeFile>;

/// Who owns a volume's files and directories.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileOwner {
    /// The owning user.
    pub uid: u32,
    /// The owning group.
    pub gid: u32,
}

/// The symlink readers go through: it names the current timestamped directory.
const DATA_LINK: &str = "..data";
/// The new `..data` before the rename makes it current.
const DATA_TMP_LINK: &str = "..data_tmp";
/// Mode of the volume directory and of every directory of the payload (the kubelet's).
const DIR_MODE: u32 = 0o755;
/// The largest file mode a payload may ask for: no setuid, setgid or sticky bits, as the
/// API's `defaultMode`/`mode` validation allows.
const MAX_FILE_MODE: u32 = 0o777;
/// The kubelet's `maxPathLength`, in bytes.
const MAX_PATH_BYTES: usize = 4096;
/// The kubelet's `maxFileNameLength`, in bytes.
const MAX_NAME_BYTES: usize = 255;
/// How many names to try when timestamped directories of the same nanosecond exist.
const MAX_NAME_ATTEMPTS: u64 = 100;

/// Tells apart timestamped directories made in the same nanosecond by this process.
static DATA_DIR_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Checks one payload path as the kubelet's validatePath does; the message says why.
pub fn check_payload_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if path.contains('\0') {
        return Err("must not contain a NUL byte".to_owned());
    }
    if path.len() > MAX_PATH_BYTES {
        return Err(format!("must be at most {MAX_PATH_BYTES} bytes"));
    }
    if path.starts_with('/') {
        return Err("must be a relative path".to_owned());
    }
    for element in path.split('/') {
        match element {
            "" => return Err("must not contain an empty path element".to_owned()),
            ".." => return Err("must not contain '..'".to_owned()),
            "." => return Err("must not contain '.'".to_owned()),
            _ if element.len() > MAX_NAME_BYTES => {
                return Err(format!(
                    "path elements must be at most {MAX_NAME_BYTES} bytes"
                ));
            }
            _ => {}
        }
    }
    if path.starts_with("..") {
        return Err("must not start with '..' (reserved for the volume's own entries)".to_owned());
    }
    Ok(())
}

/// Makes `dir` hold exactly `payload`, atomically for readers; Ok(true) when something changed.
///
/// `dir`'s parent must exist; `dir` is created (mode 0755, owned by `owner`) if missing and
/// must not be a symlink. Files get exactly their mode and `owner`; directories 0755 and
/// `owner`. Leftovers of an interrupted write are removed. Calls for one `dir` must not
/// overlap: each removes the timestamped directories that are not current.
pub fn write_payload(dir: &Path, payload: &Payload, owner: FileOwner) -> Result<bool> {
    check_payload(payload)?;
    ensure_dir(dir, owner)?;
    let unchanged =
        current_data_dir(dir)?.filter(|name| holds_payload(&dir.join(name), payload, owner));
    let (current, changed) = match unchanged {
        Some(name) => (name, false),
        None => {
            let name = write_data_dir(dir, payload, owner)?;
            swap_data_link(dir, &name)?;
            (name, true)
        }
    };
    update_visible_links(dir, payload)?;
    remove_leftovers(dir, &current)?;
    Ok(changed)
}

/// Checks every path and mode before anything is written.
fn check_payload(payload: &Payload) -> Result<()> {
    let invalid = |path: &str, reason: String| Error::InvalidPod {
        why: format!("volume file {path:?} {reason}"),
    };
    for (path, file) in payload {
        check_payload_path(path).map_err(|reason| invalid(path, reason))?;
        if file.mode > MAX_FILE_MODE {
            return Err(invalid(
                path,
                format!("has mode {:#o}, more than {MAX_FILE_MODE:#o}", file.mode),
            ));
        }
        // A file cannot also be a directory of another file (`a` and `a/b`).
        for (end, _) in path.match_indices('/') {
            let parent = &path[..end];
            if payload.contains_key(parent) {
                return Err(invalid(
                    path,
                    format!("is inside {parent:?}, which is a file of the volume too"),
                ));
            }
        }
    }
    Ok(())
}

/// The directories a payload's files need, relative, e.g. `a` and `a/b` for `a/b/c`.
fn payload_dirs(payload: &Payload) -> BTreeSet<&str> {
    payload
        .keys()
        .flat_map(|path| path.match_indices('/').map(|(end, _)| &path[..end]))
        .collect()
}

/// The user-visible names: the first component of each payload path.
fn top_level_names(payload: &Payload) -> BTreeSet<&str> {
    payload
        .keys()
        .map(|path| path.split('/').next().unwrap_or(path))
        .collect()
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> Error {
    move |source| Error::Io {
        path: path.to_owned(),
        source,
    }
}

/// Creates `dir` (not its parents) or checks that it is a directory, without following a
/// symlink at `dir`.
fn ensure_dir(dir: &Path, owner: FileOwner) -> Result<()> {
    match fs::symlink_metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(Error::Io {
            path: dir.to_owned(),
            source: io::Error::new(
                io::ErrorKind::NotADirectory,
                "the volume's path exists and is not a directory",
            ),
        }),
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            create_owned_dir(dir, owner).map_err(io_at(dir))
        }
        Err(source) => Err(Error::Io {
            path: dir.to_owned(),
            source,
        }),
    }
}

/// Creates one directory with mode 0755 whatever the umask, owned by `owner`.
fn create_owned_dir(path: &Path, owner: FileOwner) -> io::Result<()> {
    DirBuilder::new().mode(DIR_MODE).create(path)?;
    std::os::unix::fs::lchown(path, Some(owner.uid), Some(owner.gid))?;
    fs::set_permissions(path, fs::Permissions::from_mode(DIR_MODE))
}

/// The timestamped directory `..data` names, if it is one of ours. A `..data` that names
/// anything else is never followed: the next write replaces it.
fn current_data_dir(dir: &Path) -> Result<Option<String>> {
    let link = dir.join(DATA_LINK);
    match fs::read_link(&link) {
        Ok(target) => Ok(target
            .to_str()
            .filter(|name| is_data_dir_name(name))
            .map(str::to_owned)),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Io { path: link, source }),
    }
}

/// Whether `name` is a timestamped directory name of this scheme (or the kubelet's):
/// `..YYYY_MM_DD_HH_MM_SS.` followed by digits, letters or `_`.
fn is_data_dir_name(name: &str) -> bool {
    const SHAPE: &[u8] = b"dddd_dd_dd_dd_dd_dd.";
    let Some(rest) = name.strip_prefix("..") else {
        return false;
    };
    let bytes = rest.as_bytes();
    bytes.len() > SHAPE.len()
        && SHAPE.iter().zip(bytes).all(|(shape, byte)| match shape {
            b'd' => byte.is_ascii_digit(),
            _ => shape == byte,
        })
        && bytes[SHAPE.len()..]
            .iter()
            .all(|byte| byte.is_ascii_alphanumeric() || *byte == b'_')
}

/// Whether `data_dir` holds exactly the payload: the same files and directories, the same
/// bytes, modes and owner. Anything unreadable counts as different: it is rewritten.
fn holds_payload(data_dir: &Path, payload: &Payload, owner: FileOwner) -> bool {
    compare_tree(data_dir, payload, owner).unwrap_or(false)
}

fn compare_tree(data_dir: &Path, payload: &Payload, owner: FileOwner) -> io::Result<bool> {
    let owned_by = |meta: &fs::Metadata| meta.uid() == owner.uid && meta.gid() == owner.gid;
    let dir_ok = |meta: &fs::Metadata| {
        meta.is_dir() && owned_by(meta) && meta.permissions().mode() & 0o7777 == DIR_MODE
    };
    if !dir_ok(&fs::symlink_metadata(data_dir)?) {
        return Ok(false);
    }
    let expected_dirs = payload_dirs(payload);
    let (mut files, mut dirs) = (0, 0);
    let mut pending = vec![(data_dir.to_owned(), String::new())];
    while let Some((path, relative)) = pending.pop() {
        for entry in fs::read_dir(&path)? {
            let entry = entry?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                return Ok(false);
            };
            let relative = if relative.is_empty() {
                name
            } else {
                format!("{relative}/{name}")
            };
            let meta = entry.metadata()?;
            if meta.is_dir() {
                if !expected_dirs.contains(relative.as_str()) || !dir_ok(&meta) {
                    return Ok(false);
                }
                dirs += 1;
                pending.push((entry.path(), relative));
                continue;
            }
            let Some(file) = payload.get(&relative) else {
                return Ok(false);
            };
            let same = meta.is_file()
                && owned_by(&meta)
                && meta.permissions().mode() & 0o7777 == file.mode
                && meta.len() == file.data.len() as u64
                && fs::read(entry.path())? == file.data;
            if !same {
                return Ok(false);
            }
            files += 1;
        }
    }
    Ok(files == payload.len() && dirs == expected_dirs.len())
}

/// Writes the payload into a new timestamped directory and returns its name. On failure
/// the partial directory is removed.
fn write_data_dir(dir: &Path, payload: &Payload, owner: FileOwner) -> Result<String> {
    let name = create_data_dir(dir, owner)?;
    let data_dir = dir.join(&name);
    let written = write_files(&data_dir, payload, owner);
    if written.is_err() {
        // Best effort: a leftover is removed by the next write anyway.
        let _ = fs::remove_dir_all(&data_dir);
    }
    written.map(|()| name)
}

/// Creates a new, unique timestamped directory, e.g. `..2026_11_28_18_40_00.123456789_0`.
fn create_data_dir(dir: &Path, owner: FileOwner) -> Result<String> {
    let stamp = utc_stamp();
    let mut last_error = None;
    for _ in 0..MAX_NAME_ATTEMPTS {
        let count = DATA_DIR_COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("..{stamp}_{count}");
        let path = dir.join(&name);
        match create_owned_dir(&path, owner) {
            Ok(()) => return Ok(name),
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => last_error = Some(err),
            Err(source) => return Err(Error::Io { path, source }),
        }
    }
    Err(Error::Io {
        path: dir.join(format!("..{stamp}")),
        source: last_error.unwrap_or_else(|| io::Error::from(io::ErrorKind::AlreadyExists)),
    })
}

/// The current UTC time as `YYYY_MM_DD_HH_MM_SS.NNNNNNNNN`, the kubelet's layout plus
/// nanoseconds.
fn utc_stamp() -> String {
    let now = crate::clock::now();
    let time = TimeZone::UTC.to_datetime(now);
    format!(
        "{:04}_{:02}_{:02}_{:02}_{:02}_{:02}.{:09}",
        time.year(),
        time.month(),
        time.day(),
        time.hour(),
        time.minute(),
        time.second(),
        now.subsec_nanosecond()
    )
}

fn write_files(data_dir: &Path, payload: &Payload, owner: FileOwner) -> Result<()> {
    // Sorted, so a directory comes before the directories inside it.
    for relative in payload_dirs(payload) {
        let path = data_dir.join(relative);
        create_owned_dir(&path, owner).map_err(io_at(&path))?;
    }
    for (relative, file) in payload {
        let path = data_dir.join(relative);
        write_file(&path, file, owner).map_err(io_at(&path))?;
    }
    Ok(())
}

/// Writes one new file, then gives it its owner and then its exact mode (after `chown`,
/// which may clear mode bits; explicitly, so the umask does not apply).
fn write_file(path: &Path, file: &VolumeFile, owner: FileOwner) -> io::Result<()> {
    let mut handle = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    handle.write_all(&file.data)?;
    std::os::unix::fs::fchown(&handle, Some(owner.uid), Some(owner.gid))?;
    handle.set_permissions(fs::Permissions::from_mode(file.mode))
}

/// Points `..data` at `name` in one `rename`, replacing a `..data_tmp` left by a crash.
fn swap_data_link(dir: &Path, name: &str) -> Result<()> {
    let tmp = dir.join(DATA_TMP_LINK);
    remove_link(&tmp)?;
    symlink(name, &tmp).map_err(io_at(&tmp))?;
    let link = dir.join(DATA_LINK);
    fs::rename(&tmp, &link).map_err(io_at(&link))
}

/// Removes a symlink (or file) if it exists.
fn remove_link(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => Err(Error::Io {
            path: path.to_owned(),
            source: err,
        }),
        _ => Ok(()),
    }
}

/// The target of the user-visible symlink called `name`.
fn visible_target(name: &str) -> PathBuf {
    Path::new(DATA_LINK).join(name)
}

/// Creates or repairs the symlink of each top-level name and removes those of names the
/// payload no longer has. Entries that are not such symlinks are left alone; one in the way
/// of a payload name is an error.
fn update_visible_links(dir: &Path, payload: &Payload) -> Result<()> {
    let names = top_level_names(payload);
    for name in &names {
        let path = dir.join(name);
        let target = visible_target(name);
        match fs::read_link(&path) {
            Ok(current) if current == target => continue,
            Ok(_) => remove_link(&path)?,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) if err.kind() == io::ErrorKind::InvalidInput => {
                return Err(Error::Io {
                    path,
                    source: io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        "a file of the volume is in the way of this entry, which is not a symlink",
                    ),
                });
            }
            Err(source) => return Err(Error::Io { path, source }),
        }
        symlink(&target, &path).map_err(io_at(&path))?;
    }
    for entry in fs::read_dir(dir).map_err(io_at(dir))? {
        let entry = entry.map_err(io_at(dir))?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if name.starts_with("..") || names.contains(name.as_str()) {
            continue;
        }
        let path = entry.path();
        if fs::read_link(&path).is_ok_and(|current| current == visible_target(&name)) {
            remove_link(&path)?;
        }
    }
    Ok(())
}

/// Removes `..data_tmp` and every timestamped directory but `current`: the old payload and
/// what an interrupted write left.
fn remove_leftovers(dir: &Path, current: &str) -> Result<()> {
    for entry in fs::read_dir(dir).map_err(io_at(dir))? {
        let entry = entry.map_err(io_at(dir))?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let path = entry.path();
        if name == DATA_TMP_LINK {
            remove_link(&path)?;
        } else if name != current
            && is_data_dir_name(&name)
            && entry.file_type().is_ok_and(|kind| kind.is_dir())
        {
            fs::remove_dir_all(&path).map_err(io_at(&path))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
