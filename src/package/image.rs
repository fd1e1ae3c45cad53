//! Image references: the one parser from a pod's `image` string to what systemk installs.
//! Accepted: a Debian package name, `name=version`, an `https://` URL of a `.deb` with an
//! optional `@sha256:` pin, or an absolute path. Pure: no I/O. Layer 1.

use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

use super::error::Error;

/// Said by every rejection, so a user learns the accepted forms from any mistake.
const ACCEPTED: &str = "accepted: a Debian package name (`uptimed`), `name=version` \
(`uptimed=1:0.4.6-3+b1`), `https://host/path/<name>_<version>_<arch>.deb` optionally followed \
by `@sha256:<64 lowercase hex digits>`, or an absolute path to an executable (`/usr/bin/foo`)";

const DIGEST_PREFIX: &str = "@sha256:";

/// What a pod's `image` names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ImageRef {
    /// A package from the apt sources, optionally at an exact version.
    Apt {
        /// Debian package name.
        name: String,
        /// Exact version to install (`apt-get install name=version`).
        version: Option<String>,
    },
    /// A `.deb` downloaded over HTTPS.
    Https {
        /// The URL (no query, fragment or credentials).
        url: url::Url,
        /// Package name: the URL's file name cut at the first `_`.
        name: String,
        /// Pinned sha256 of the file, 64 lowercase hex digits.
        sha256: Option<String>,
    },
    /// An executable already on the host; nothing is installed.
    Path(PathBuf),
}

impl ImageRef {
    /// The Debian package this image installs; `None` for a path.
    pub fn package_name(&self) -> Option<&str> {
        match self {
            Self::Apt { name, .. } | Self::Https { name, .. } => Some(name),
            Self::Path(_) => None,
        }
    }
}

impl FromStr for ImageRef {
    type Err = Error;

    fn from_str(image: &str) -> Result<Self, Error> {
        parse(image).map_err(|why| Error::InvalidImage {
            image: image.to_owned(),
            why: format!("{why}; {ACCEPTED}"),
        })
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Apt {
                name,
                version: None,
            } => f.write_str(name),
            Self::Apt {
                name,
                version: Some(version),
            } => write!(f, "{name}={version}"),
            Self::Https {
                url, sha256: None, ..
            } => f.write_str(url.as_str()),
            Self::Https {
                url,
                sha256: Some(sha256),
                ..
            } => write!(f, "{url}{DIGEST_PREFIX}{sha256}"),
            Self::Path(path) => write!(f, "{}", path.display()),
        }
    }
}

fn parse(image: &str) -> Result<ImageRef, String> {
    if image.is_empty() {
        return Err("the image is empty".into());
    }
    if image.starts_with("https://") {
        return parse_https(image);
    }
    if let Some((scheme, _)) = image.split_once("://") {
        return Err(format!(
            "URL scheme {scheme:?} is not supported, only https"
        ));
    }
    if image.starts_with('/') {
        return parse_path(image).map(ImageRef::Path);
    }
    let (name, version) = match image.split_once('=') {
        Some((name, version)) => (name, Some(version)),
        None => (image, None),
    };
    check_package_name(name)?;
    if let Some(version) = version {
        check_version(version)?;
    }
    Ok(ImageRef::Apt {
        name: name.to_owned(),
        version: version.map(str::to_owned),
    })
}

fn parse_https(image: &str) -> Result<ImageRef, String> {
    let (url_text, sha256) = match image.rsplit_once('@') {
        Some((url, digest)) if digest.starts_with("sha256:") => {
            (url, Some(&digest["sha256:".len()..]))
        }
        _ => (image, None),
    };
    if let Some(digest) = sha256
        && (digest.len() != 64
            || !digest
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
    {
        return Err(format!("digest {digest:?} is not 64 lowercase hex digits"));
    }
    let url = url::Url::parse(url_text).map_err(|e| format!("not a valid URL: {e}"))?;
    if url.as_str() != url_text {
        return Err(format!(
            "URL is not in normal form, write it as {}",
            url.as_str()
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("URLs with credentials are not supported".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("URLs with a query or fragment are not supported".into());
    }
    let file = url
        .path_segments()
        .and_then(|mut s| s.next_back())
        .unwrap_or_default();
    if !file.ends_with(".deb") {
        return Err(format!("the URL's file name {file:?} does not end in .deb"));
    }
    let Some((name, _)) = file.split_once('_') else {
        return Err(format!(
            "the URL's file name {file:?} has no `_`, so it names no package"
        ));
    };
    check_package_name(name)?;
    Ok(ImageRef::Https {
        name: name.to_owned(),
        url,
        sha256: sha256.map(str::to_owned),
    })
}

fn parse_path(image: &str) -> Result<PathBuf, String> {
    if image.contains('\0') {
        return Err("the path contains a NUL byte".into());
    }
    let path = Path::new(image);
    let mut normal = PathBuf::from("/");
    for component in path.components() {
        match component {
            Component::RootDir => {}
            Component::Normal(part) => normal.push(part),
            Component::ParentDir | Component::CurDir | Component::Prefix(_) => {
                return Err("the path contains `.` or `..`".into());
            }
        }
    }
    if normal == Path::new("/") {
        return Err("the path names no file".into());
    }
    if normal.as_os_str() != path.as_os_str() {
        return Err(format!(
            "the path is not normalized, write it as {}",
            normal.display()
        ));
    }
    Ok(normal)
}

/// Debian Policy §5.6.1: at least two characters of `[a-z0-9+.-]`, starting alphanumeric.
pub(crate) fn check_package_name(name: &str) -> Result<(), String> {
    let valid = name.len() >= 2
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+.-".contains(&b));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a Debian package name (two or more of a-z 0-9 + . -, starting with a letter or digit)"
        ))
    }
}

/// Debian Policy §5.6.12: `[epoch:]upstream[-revision]`, checked the way dpkg's
/// `parseversion` does: digits-only epoch, upstream starting with a digit and made of
/// alphanumerics and `.+~-:`, revision of alphanumerics and `.+~`.
pub(crate) fn check_version(version: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("{version:?} is not a Debian version: {why}"));
    let rest = match version.split_once(':') {
        Some((epoch, rest)) => {
            if epoch.is_empty() || !epoch.bytes().all(|b| b.is_ascii_digit()) {
                return bad("the epoch before `:` must be digits");
            }
            rest
        }
        None => version,
    };
    let (upstream, revision) = match rest.rsplit_once('-') {
        Some((upstream, revision)) => (upstream, Some(revision)),
        None => (rest, None),
    };
    if !upstream.starts_with(|c: char| c.is_ascii_digit()) {
        return bad("the upstream version must start with a digit");
    }
    if !upstream
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b".+~-:".contains(&b))
    {
        return bad("the upstream version may only hold letters, digits and . + ~ - :");
    }
    if let Some(revision) = revision
        && (revision.is_empty()
            || !revision
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".+~".contains(&b)))
    {
        return bad("the revision after the last `-` must be letters, digits and . + ~");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(image: &str) -> ImageRef {
        let parsed: ImageRef = image.parse().unwrap();
        assert_eq!(parsed.to_string(), image, "round trip");
        parsed
    }

    fn rejected(image: &str) -> String {
        let err = image.parse::<ImageRef>().unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("accepted:"),
            "message must list accepted forms: {text}"
        );
        text
    }

    const SHA: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn plain_package_name() {
        assert_eq!(
            ok("uptimed"),
            ImageRef::Apt {
                name: "uptimed".into(),
                version: None
            }
        );
    }

    #[test]
    fn package_with_epoch_and_revision() {
        let image = ok("uptimed=1:0.4.6-3+b1");
        assert_eq!(
            image,
            ImageRef::Apt {
                name: "uptimed".into(),
                version: Some("1:0.4.6-3+b1".into())
            }
        );
    }

    #[test]
    fn package_names_with_symbols() {
        ok("libstdc++6");
        ok("g++");
        ok("python3.11-minimal");
        ok("0ad");
    }

    #[test]
    fn versions_dpkg_accepts() {
        ok("sl=5.02-1+b1");
        ok("foo=1.0~rc1");
        ok("foo=2:1.2.3-4-5");
        ok("foo=1.0+dfsg-1~bpo12+1");
    }

    #[test]
    fn short_or_uppercase_or_odd_names_rejected() {
        rejected("a");
        rejected("Uptimed");
        rejected("-foo");
        rejected("foo_bar");
        rejected("foo:amd64");
        rejected("foo/bar");
        rejected("./foo");
    }

    #[test]
    fn empty_image_rejected() {
        rejected("");
    }

    #[test]
    fn bad_versions_rejected() {
        assert!(rejected("foo=").contains("start with a digit"));
        assert!(rejected("foo=a1.0").contains("start with a digit"));
        assert!(rejected("x1:foo=1").contains("not a Debian package name"));
        assert!(rejected("foo=e:1.0").contains("epoch"));
        assert!(rejected("foo=1.0 beta").contains("upstream"));
        assert!(rejected("foo=1.0-").contains("revision"));
        assert!(rejected("foo=1.0-r_1").contains("revision"));
    }

    #[test]
    fn https_deb_without_pin() {
        let image = ok("https://example.com/pool/coredns_1.8_amd64.deb");
        let ImageRef::Https { name, sha256, url } = image else {
            panic!("not https")
        };
        assert_eq!(name, "coredns");
        assert_eq!(sha256, None);
        assert_eq!(url.host_str(), Some("example.com"));
    }

    #[test]
    fn https_deb_with_pin() {
        let image = ok(&format!(
            "https://example.com:8443/coredns_1.8_amd64.deb@sha256:{SHA}"
        ));
        assert!(matches!(image, ImageRef::Https { sha256: Some(s), .. } if s == SHA));
    }

    #[test]
    fn https_name_cut_at_first_underscore() {
        let image = ok("https://h.example/a/my-tool_1%3A2.0_1_all.deb");
        assert_eq!(image.package_name(), Some("my-tool"));
    }

    #[test]
    fn http_rejected() {
        assert!(rejected("http://example.com/foo_1_amd64.deb").contains("only https"));
        rejected("ftp://example.com/foo_1_amd64.deb");
    }

    #[test]
    fn url_without_underscore_rejected() {
        assert!(rejected("https://example.com/coredns.deb").contains("no `_`"));
    }

    #[test]
    fn url_not_deb_rejected() {
        assert!(rejected("https://example.com/coredns_1.8_amd64.tar").contains(".deb"));
        rejected("https://example.com/");
    }

    #[test]
    fn url_with_bad_package_name_rejected() {
        rejected("https://example.com/Core_1_amd64.deb");
    }

    #[test]
    fn malformed_digests_rejected() {
        let url = "https://example.com/foo_1_amd64.deb";
        assert!(rejected(&format!("{url}@sha256:abc")).contains("64 lowercase hex"));
        rejected(&format!("{url}@sha256:{}", SHA.to_uppercase()));
        rejected(&format!("{url}@sha256:{SHA}0"));
        rejected(&format!("{url}@sha512:{SHA}"));
    }

    #[test]
    fn url_query_fragment_credentials_rejected() {
        rejected("https://example.com/foo_1_amd64.deb?token=x");
        rejected("https://example.com/foo_1_amd64.deb#frag");
        rejected("https://user:pw@example.com/foo_1_amd64.deb");
    }

    #[test]
    fn url_not_normalized_rejected() {
        assert!(rejected("https://EXAMPLE.com/foo_1_amd64.deb").contains("normal form"));
    }

    #[test]
    fn absolute_path() {
        assert_eq!(ok("/usr/bin/foo"), ImageRef::Path("/usr/bin/foo".into()));
        assert_eq!(ok("/usr/bin/foo").package_name(), None);
    }

    #[test]
    fn paths_not_normalized_rejected() {
        rejected("/usr/bin/../sbin/foo");
        rejected("/usr/./bin/foo");
        rejected("/usr//bin/foo");
        rejected("/usr/bin/");
        rejected("/");
    }

    #[test]
    fn path_with_nul_rejected() {
        assert!(rejected("/usr/bin/fo\0o").contains("NUL"));
    }

    #[test]
    fn relative_path_rejected() {
        rejected("bin/foo");
        rejected("../foo");
    }
}
