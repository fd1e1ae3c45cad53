//! Path images: an executable already on the host. Nothing is installed; the file must
//! exist and be executable, and its content hash is the image id. Layer 1.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::error::{Error, Result};
use super::installer::{Installed, PackageManager};

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
    let not_executable = |why: String| Error::NotExecutable {
        path: PathBuf::from(path),
        why,
    };
    let mut file = std::fs::File::open(path).map_err(|e| not_executable(e.to_string()))?;
    let meta = file.metadata().map_err(|e| not_executable(e.to_string()))?;
    if !meta.is_file() {
        return Err(not_executable("not a regular file".into()));
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(not_executable("no execute permission".into()));
    }
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf).map_err(Error::io("reading", path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
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
        let dir = tempfile::tempdir().unwrap();
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
        let dir = tempfile::tempdir().unwrap();
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

    #[tokio::test]
    async fn directory_and_missing_file_rejected() {
        let dir = tempfile::tempdir().unwrap();
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
