//! Path images: an executable already on the host. Nothing is installed; the file must
//! exist and be executable, and its content hash is the image id. It, every directory
//! above it and every symlink on the way (and along the symlinks' targets) must be owned
//! by root and not writable by group or others (a root-owned sticky directory such as
//! `/tmp` is allowed: others cannot rename or remove root's entries in it), so no other
//! user can swap what a pod runs. Layer 1.

use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use ring::digest::{Context, SHA256};

use super::error::{Error, Result};
use super::manager::{Installed, PackageManager};

/// Checks and hashes path images.
#[derive(Debug, Clone, Copy, Default)]
pub struct PathImage;

impl PackageManager for PathImage {
    type Image = Path;

    async fn install(&self, path: &Path) -> Result<Installed> {
        let owned = path.to_owned();
        let digest = tokio::task::spawn_blocking(move || hash_executable(&owned))
            .await
            .map_err(|source| Error::TaskFailed {
                what: "hashing a path image",
                source,
            })??;
        Ok(Installed {
            package: None,
            version: None,
            image_id: format!("sha256:{digest}"),
            newly_installed: false,
            service_units: Vec::new(),
            added_units: Vec::new(),
            writable_dirs: Vec::new(),
        })
    }

    async fn query(&self, path: &Path) -> Result<Option<Installed>> {
        match self.install(path).await {
            Ok(installed) => Ok(Some(installed)),
            Err(Error::NotExecutable { .. }) => Ok(None),
            Err(other) => Err(other),
        }
    }
}

/// The sha256 of `path` in hex, when it is a regular file with an execute bit.
fn hash_executable(path: &Path) -> Result<String> {
    let mut symlinks = 0;
    resolve_root_owned(path, path, &mut symlinks)?;
    let not_executable = |why: String| Error::NotExecutable {
        path: PathBuf::from(path),
        why,
    };
    let mut file = std::fs::File::open(path).map_err(|e| not_executable(e.to_string()))?;
    let meta = file.metadata().map_err(|e| not_executable(e.to_string()))?;
    // What was opened, in case it appeared (in a sticky directory) after the walk.
    check_owner(path, path, &meta)?;
    check_mode(path, path, &meta)?;
    if !meta.is_file() {
        return Err(not_executable("not a regular file".into()));
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(not_executable("no execute permission".into()));
    }
    let mut hasher = Context::new(&SHA256);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf).map_err(Error::io("reading", path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finish()))
}

/// Linux's limit of symlinks followed in one lookup (`MAXSYMLINKS`).
const MAX_SYMLINKS: u32 = 40;

/// Walks `path` from `/`, checking each component (and each symlink's target the same
/// way), and returns the path with its symlinks resolved. A missing component is left
/// for the open that follows to report.
fn resolve_root_owned(image: &Path, path: &Path, symlinks: &mut u32) -> Result<PathBuf> {
    let mut current = PathBuf::from("/");
    check_owner_and_mode(image, &current)?;
    for component in path.components() {
        match component {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => continue,
            Component::ParentDir => {
                current.pop();
                continue;
            }
            Component::Normal(part) => current.push(part),
        }
        let Ok(meta) = std::fs::symlink_metadata(&current) else {
            return Ok(current);
        };
        if meta.file_type().is_symlink() {
            check_owner(image, &current, &meta)?;
            *symlinks += 1;
            if *symlinks > MAX_SYMLINKS {
                return Err(unsafe_path(image, &current, "starts a symlink loop"));
            }
            let target = std::fs::read_link(&current).map_err(Error::io("reading", &current))?;
            let parent = current.parent().unwrap_or(Path::new("/")).to_owned();
            current = resolve_root_owned(image, &parent.join(target), symlinks)?;
        } else {
            check_owner(image, &current, &meta)?;
            check_mode(image, &current, &meta)?;
        }
    }
    Ok(current)
}

fn check_owner_and_mode(image: &Path, path: &Path) -> Result<()> {
    let meta = std::fs::symlink_metadata(path).map_err(Error::io("inspecting", path))?;
    check_owner(image, path, &meta)?;
    check_mode(image, path, &meta)
}

fn check_owner(image: &Path, path: &Path, meta: &std::fs::Metadata) -> Result<()> {
    if meta.uid() != 0 {
        return Err(unsafe_path(
            image,
            path,
            &format!("is owned by uid {}, not root", meta.uid()),
        ));
    }
    Ok(())
}

fn check_mode(image: &Path, path: &Path, meta: &std::fs::Metadata) -> Result<()> {
    let mode = meta.mode() & 0o7777;
    // A root-owned sticky directory (`/tmp`) lets no other user rename or remove the
    // root-owned entries below it, which the walk checks next.
    let sticky_dir = meta.is_dir() && mode & 0o1000 != 0;
    if mode & 0o022 != 0 && !sticky_dir {
        return Err(unsafe_path(
            image,
            path,
            &format!("is writable by group or others (mode {mode:04o})"),
        ));
    }
    Ok(())
}

fn unsafe_path(image: &Path, offending: &Path, why: &str) -> Error {
    Error::UnsafeImagePath {
        image: image.to_owned(),
        offending: offending.to_owned(),
        why: why.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(dir: &Path, mode: u32) -> PathBuf {
        let path = dir.join("tool");
        std::fs::write(&path, "abc").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[tokio::test]
    async fn executable_file_hashed() {
        let dir = root_dir();
        let installed = PathImage.install(&file(dir.path(), 0o755)).await.unwrap();
        assert_eq!(
            installed.image_id,
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(!installed.newly_installed);
        assert_eq!(installed.package, None);
    }

    #[tokio::test]
    async fn file_without_execute_bit_rejected() {
        let dir = root_dir();
        let err = PathImage
            .install(&file(dir.path(), 0o644))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::NotExecutable { .. }), "{err}");
        assert_eq!(
            PathImage.query(&dir.path().join("tool")).await.unwrap(),
            None
        );
    }

    /// A directory only root can write, for the tests of the ownership walk.
    fn root_dir() -> tempfile::TempDir {
        let dir = tempfile::Builder::new()
            .prefix("systemk-path-image-")
            .tempdir_in(env!("CARGO_MANIFEST_DIR"))
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        dir
    }

    fn is_root() -> bool {
        nix::unistd::geteuid().is_root()
    }

    #[tokio::test]
    async fn group_or_world_writable_directory_on_the_way_refused() {
        let dir = root_dir();
        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let tool = file(&open, 0o755);
        let err = PathImage.install(&tool).await.unwrap_err();
        assert!(
            matches!(&err, Error::UnsafeImagePath { offending, .. } if *offending == open),
            "{err}"
        );
        assert_eq!(err.reason(), "ErrImagePull");
    }

    #[tokio::test]
    async fn writable_file_refused() {
        let dir = root_dir();
        let tool = file(dir.path(), 0o775);
        let err = PathImage.install(&tool).await.unwrap_err();
        assert!(
            matches!(&err, Error::UnsafeImagePath { offending, .. } if *offending == tool),
            "{err}"
        );
    }

    #[tokio::test]
    async fn sticky_directory_holds_root_owned_entries_only() {
        let dir = root_dir();
        let sticky = dir.path().join("sticky");
        std::fs::create_dir(&sticky).unwrap();
        std::fs::set_permissions(&sticky, std::fs::Permissions::from_mode(0o1777)).unwrap();
        let tool = file(&sticky, 0o755);
        PathImage.install(&tool).await.unwrap();
        nix::unistd::chown(&tool, Some(nix::unistd::Uid::from_raw(65_534)), None).unwrap();
        let err = PathImage.install(&tool).await.unwrap_err();
        assert!(
            matches!(&err, Error::UnsafeImagePath { offending, .. } if *offending == tool),
            "{err}"
        );
    }

    #[tokio::test]
    async fn symlink_into_writable_directory_refused() {
        let dir = root_dir();
        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        let tool = file(&open, 0o755);
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o757)).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink("open/tool", &link).unwrap();
        let err = PathImage.install(&link).await.unwrap_err();
        assert!(
            matches!(&err, Error::UnsafeImagePath { offending, .. } if *offending == open),
            "{err}"
        );
        let _ = tool;
    }

    #[tokio::test]
    async fn system_binaries_through_symlinks_accepted() {
        // /bin is a symlink to usr/bin on Debian 12, /bin/sh one to dash.
        if is_root() {
            PathImage.install(Path::new("/bin/sh")).await.unwrap();
        }
    }

    #[tokio::test]
    async fn directory_and_missing_file_rejected() {
        let dir = root_dir();
        assert!(matches!(
            PathImage.install(dir.path()).await,
            Err(Error::NotExecutable { .. })
        ));
        assert!(matches!(
            PathImage.install(&dir.path().join("none")).await,
            Err(Error::NotExecutable { .. })
        ));
    }
}
