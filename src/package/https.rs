//! https `.deb` images: streamed download over rustls into the cache while hashing,
//! verification against the pinned sha256, the control file's Package checked against the
//! URL, then `apt-get install <file>` (dependencies from the apt sources) under the same
//! serialisation and guard as apt images. Layer 1.
//!
//! Cache layout in the cache directory: `<sha256>.deb` holds verified content only (a
//! download is renamed there after it was hashed, verified and its control file read).
//! Unpinned URLs are indexed in `urls/<sha256 of the URL>`, whose content is the file's
//! sha256: an unpinned URL is downloaded once and then treated as immutable, unless its
//! pull policy is `Always`, which downloads it again. Pin a digest to control what is
//! installed. In-flight downloads are [`TempFile`]s (hidden `.tmp`
//! files), removed on every failure and on cancellation. A file's mtime is its last use
//! (set at each cache hit), by which garbage collection trims the cache.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ring::digest::{Context, SHA256, digest};
use tokio::io::AsyncWriteExt;

use super::apt::{AptGet, installed_after_apt};
use super::deb::{self, Control};
use super::dpkg;
use super::error::{Error, Result};
use super::manager::{Installed, PackageManager};
use crate::atomic_file::{self, Durability, TempFile};

/// Where verified `.deb` files are kept by default.
pub const DEFAULT_CACHE_DIR: &str = "/var/cache/systemk/debs";

/// A server that does not accept the connection within this is treated as down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// A download that receives no byte for this long is abandoned (and retried later), so a
/// stalled server cannot hold an install forever; there is no limit on the whole download.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// The largest `.deb` systemk downloads, so a server cannot fill the disk; Debian's
/// largest binary packages are a few hundred MiB.
const MAX_DEB_BYTES: u64 = 4 << 30;

/// Cached `.deb` files and URL index entries are public packages: readable by all.
const CACHE_FILE_MODE: u32 = 0o644;

/// A progress line is logged each time this many more bytes arrived.
const PROGRESS_EVERY_BYTES: u64 = 8 << 20;

/// A `.deb` to fetch over HTTPS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpsPackage {
    /// Where to download it.
    pub url: url::Url,
    /// The package name the URL's file name promises.
    pub name: String,
    /// The pinned sha256 (64 lowercase hex), if any.
    pub sha256: Option<String>,
}

/// Downloads, caches and installs `.deb` files.
#[derive(Debug, Clone)]
pub struct HttpsDeb {
    client: reqwest::Client,
    cache_dir: PathBuf,
    apt_get: Arc<AptGet>,
}

/// A verified `.deb` in the cache.
pub(crate) struct Fetched {
    path: PathBuf,
    sha256: String,
    control: Control,
}

impl Fetched {
    /// The package version in the `.deb`'s control file.
    pub(crate) fn version(&self) -> &str {
        &self.control.version
    }
}

impl HttpsDeb {
    /// Trusts the system roots plus `extra_root_certs_pem` (each a PEM bundle).
    pub(crate) fn new(
        apt_get: Arc<AptGet>,
        cache_dir: PathBuf,
        extra_root_certs_pem: &[Vec<u8>],
    ) -> Result<Self> {
        let mut roots = Vec::new();
        for pem in extra_root_certs_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|source| {
                Error::HttpsClient {
                    why: "an extra root certificate is not valid PEM".into(),
                    source,
                }
            })?;
            roots.extend(certs);
        }
        let client = reqwest::Client::builder()
            .https_only(true)
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .tls_certs_merge(roots)
            .build()
            .map_err(|source| Error::HttpsClient {
                why: "building the client".into(),
                source,
            })?;
        Ok(Self {
            client,
            cache_dir,
            apt_get,
        })
    }

    fn cached_path(&self, sha256: &str) -> PathBuf {
        self.cache_dir.join(format!("{sha256}.deb"))
    }

    fn url_index_path(&self, url: &url::Url) -> PathBuf {
        self.cache_dir
            .join("urls")
            .join(hex::encode(digest(&SHA256, url.as_str().as_bytes())))
    }

    /// The content hash this image is known to have without downloading: the pin, or what
    /// an earlier download of the unpinned URL had.
    async fn known_sha256(&self, image: &HttpsPackage) -> Option<String> {
        if let Some(pin) = &image.sha256 {
            return Some(pin.clone());
        }
        let indexed = tokio::fs::read_to_string(self.url_index_path(&image.url))
            .await
            .ok()?;
        let indexed = indexed.trim();
        (indexed.len() == 64 && indexed.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| indexed.to_owned())
    }

    /// The cached, verified `.deb` for `image`, if there is one.
    async fn cached(&self, image: &HttpsPackage) -> Result<Option<Fetched>> {
        let Some(sha256) = self.known_sha256(image).await else {
            return Ok(None);
        };
        let path = self.cached_path(&sha256);
        if !tokio::fs::try_exists(&path).await.unwrap_or(false) {
            return Ok(None);
        }
        let control = read_control(path.clone()).await?;
        check_name(image, &control)?;
        Ok(Some(Fetched {
            path,
            sha256,
            control,
        }))
    }

    /// Downloads `image` into the cache, verifying the pin and the package name.
    async fn download(&self, image: &HttpsPackage) -> Result<Fetched> {
        let url = image.url.as_str();
        tokio::fs::create_dir_all(&self.cache_dir)
            .await
            .map_err(Error::io("creating", &self.cache_dir))?;
        tracing::info!(url, "downloading");
        let mut response = self
            .client
            .get(image.url.clone())
            .send()
            .await
            .map_err(|source| Error::DownloadFailed {
                url: url.into(),
                source,
            })?;
        if !response.status().is_success() {
            return Err(Error::DownloadStatus {
                url: url.into(),
                status: response.status().as_u16(),
            });
        }
        let mut part = new_temp_file(self.cache_dir.clone(), "download").await?;
        let mut file = part
            .file_mut()
            .try_clone()
            .map(tokio::fs::File::from_std)
            .map_err(Error::io("creating", part.path()))?;
        let mut hasher = Context::new(&SHA256);
        let (mut bytes, mut next_report) = (0u64, PROGRESS_EVERY_BYTES);
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|source| Error::DownloadFailed {
                url: url.into(),
                source,
            })?
        {
            hasher.update(&chunk);
            file.write_all(&chunk)
                .await
                .map_err(Error::io("writing", part.path()))?;
            bytes += chunk.len() as u64;
            if bytes > MAX_DEB_BYTES {
                return Err(Error::DownloadTooLarge {
                    url: url.into(),
                    limit: MAX_DEB_BYTES,
                });
            }
            if bytes >= next_report {
                tracing::info!(url, bytes, total = response.content_length(), "downloading");
                next_report += PROGRESS_EVERY_BYTES;
            }
        }
        // Synced here rather than at the rename: the control file is read before.
        file.sync_all()
            .await
            .map_err(Error::io("writing", part.path()))?;
        drop(file);
        let sha256 = hex::encode(hasher.finish());
        tracing::info!(url, bytes, sha256, "downloaded");
        match &image.sha256 {
            Some(pin) if *pin != sha256 => {
                return Err(Error::DigestMismatch {
                    url: url.into(),
                    expected: pin.clone(),
                    actual: sha256,
                });
            }
            Some(_) => {}
            None => tracing::warn!(
                url,
                sha256,
                "no sha256 pinned: the download was not verified"
            ),
        }
        let control = read_control(part.path().to_owned()).await?;
        check_name(image, &control)?;
        let path = self.cached_path(&sha256);
        part.persist(&path, Durability::Unsynced)
            .map_err(Error::io("renaming into place", &path))?;
        if image.sha256.is_none() {
            self.index_url(&image.url, &sha256).await?;
        }
        Ok(Fetched {
            path,
            sha256,
            control,
        })
    }

    async fn index_url(&self, url: &url::Url, sha256: &str) -> Result<()> {
        let index = self.url_index_path(url);
        let dir = index.parent().unwrap_or(&self.cache_dir);
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(Error::io("creating", dir))?;
        let (target, content) = (index.clone(), sha256.to_owned());
        tokio::task::spawn_blocking(move || {
            atomic_file::write(
                &target,
                content.as_bytes(),
                CACHE_FILE_MODE,
                Durability::Unsynced,
            )
        })
        .await
        .map_err(|source| Error::TaskFailed {
            what: "writing a URL index entry",
            source,
        })?
        .map_err(Error::io("writing", &index))
    }
}

impl HttpsDeb {
    /// The verified `.deb` of `image`: from the cache, or downloaded. With `refresh`
    /// (pull policy `Always`) an unpinned URL is downloaded again, since its content may
    /// have changed; a pinned one never is (its content is what the pin says).
    pub(crate) async fn fetch(&self, image: &HttpsPackage, refresh: bool) -> Result<Fetched> {
        if !(refresh && image.sha256.is_none())
            && let Some(cached) = self.cached(image).await?
        {
            tracing::info!(url = image.url.as_str(), path = %cached.path.display(), "using the cached .deb");
            mark_used(cached.path.clone()).await;
            return Ok(cached);
        }
        self.download(image).await
    }

    /// Installs a fetched `.deb` unless that version is installed.
    pub(crate) async fn install_fetched(
        &self,
        image: &HttpsPackage,
        fetched: Fetched,
    ) -> Result<Installed> {
        let name = image.name.as_str();
        let image_id = format!("sha256:{}", fetched.sha256);
        let _serial = self.apt_get.serialize().await;
        let before = dpkg::installed_version(name).await?;
        if before.as_deref() == Some(fetched.control.version.as_str()) {
            tracing::info!(
                package = name,
                version = fetched.control.version,
                "already installed"
            );
            return Installed::of_package(name, fetched.control.version, image_id, false).await;
        }
        let target = fetched.path.to_str().ok_or_else(|| Error::InvalidDeb {
            path: fetched.path.clone(),
            why: "path is not UTF-8".into(),
        })?;
        self.apt_get.install_refreshing(name, target, false).await?;
        let version = installed_after_apt(name).await?;
        tracing::info!(package = name, version, "installed");
        Installed::of_package(name, version, image_id, before.is_none()).await
    }
}

impl PackageManager for HttpsDeb {
    type Image = HttpsPackage;

    async fn install(&self, image: &HttpsPackage) -> Result<Installed> {
        let fetched = self.fetch(image, false).await?;
        self.install_fetched(image, fetched).await
    }

    async fn query(&self, image: &HttpsPackage) -> Result<Option<Installed>> {
        let Some(fetched) = self.cached(image).await? else {
            return Ok(None);
        };
        let name = image.name.as_str();
        if dpkg::installed_version(name).await?.as_deref() != Some(fetched.control.version.as_str())
        {
            return Ok(None);
        }
        let image_id = format!("sha256:{}", fetched.sha256);
        Installed::of_package(name, fetched.control.version, image_id, false)
            .await
            .map(Some)
    }
}

/// Sets the cached file's mtime to now: the cache is trimmed least recently used first,
/// by mtime (atime is often not kept: `noatime`, `relatime`). A failure only makes the
/// file look older.
async fn mark_used(path: PathBuf) {
    let touched = tokio::task::spawn_blocking(move || {
        std::fs::File::options()
            .write(true)
            .open(&path)
            .and_then(|file| file.set_modified(std::time::SystemTime::now()))
    })
    .await;
    if let Ok(Err(error)) = touched {
        tracing::debug!(%error, "cannot mark a cached .deb as used");
    }
}

fn check_name(image: &HttpsPackage, control: &Control) -> Result<()> {
    if control.package == image.name {
        return Ok(());
    }
    Err(Error::PackageNameMismatch {
        url: image.url.to_string(),
        expected: image.name.clone(),
        found: control.package.clone(),
    })
}

/// A new temporary file in `dir` (blocking file creation, so off the runtime).
async fn new_temp_file(dir: PathBuf, name: &'static str) -> Result<TempFile> {
    let created = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || TempFile::new_in(&dir, name, CACHE_FILE_MODE)
    })
    .await
    .map_err(|source| Error::TaskFailed {
        what: "creating a temporary file",
        source,
    })?;
    created.map_err(Error::io("creating a temporary file in", &dir))
}

async fn read_control(path: PathBuf) -> Result<Control> {
    deb::read_control(&path).await
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::package::guard::POLICY_RC_D;

    fn https_deb(cache: &Path) -> HttpsDeb {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let apt_get = Arc::new(AptGet::new(
            PathBuf::from(POLICY_RC_D),
            None,
            PathBuf::from(crate::package::APT_LISTS_DIR),
            crate::package::DEFAULT_LISTS_MAX_AGE,
        ));
        HttpsDeb::new(apt_get, cache.to_owned(), &[]).unwrap()
    }

    fn package(sha256: Option<&str>) -> HttpsPackage {
        HttpsPackage {
            url: url::Url::parse("https://example.com/foo_1_all.deb").unwrap(),
            name: "foo".into(),
            sha256: sha256.map(str::to_owned),
        }
    }

    #[tokio::test]
    async fn pinned_image_known_by_its_pin() {
        let dir = tempfile::tempdir().unwrap();
        let pin = "a".repeat(64);
        assert_eq!(
            https_deb(dir.path())
                .known_sha256(&package(Some(&pin)))
                .await,
            Some(pin)
        );
    }

    #[tokio::test]
    async fn unpinned_image_known_after_indexing_its_url() {
        let dir = tempfile::tempdir().unwrap();
        let https = https_deb(dir.path());
        assert_eq!(https.known_sha256(&package(None)).await, None);
        let sha = "b".repeat(64);
        https.index_url(&package(None).url, &sha).await.unwrap();
        assert_eq!(https.known_sha256(&package(None)).await, Some(sha));
    }

    #[tokio::test]
    async fn cached_file_with_another_package_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let sha = "c".repeat(64);
        let deb = crate::package::deb::tests::build_deb("Package: bar\nVersion: 1\n", "gzip");
        std::fs::write(dir.path().join(format!("{sha}.deb")), deb).unwrap();
        let err = https_deb(dir.path())
            .cached(&package(Some(&sha)))
            .await
            .err()
            .unwrap();
        assert!(matches!(err, Error::PackageNameMismatch { .. }), "{err}");
    }
}
