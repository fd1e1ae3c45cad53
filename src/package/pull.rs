//! `imagePullPolicy` for Debian package images: the three policies, the default the
//! Kubernetes API server (and the kubelet, for static pods) gives a container that names
//! none, and what each policy means for each kind of image. Pure: no I/O. Layer 1.
//!
//! The default is Kubernetes' own rule (`SetDefaults_Container`,
//! pkg/apis/core/v1/defaults.go): the image is parsed as a container image reference,
//! errors ignored; a tag `latest` (which a valid reference without tag or digest gets) is
//! `Always`, anything else `IfNotPresent`. For systemk's images that means: an apt name
//! without a version (`nginx`) is `Always`; `nginx=1.22.1-9` is no valid reference (`=`),
//! so `IfNotPresent`; https URLs and paths are no valid references either, so
//! `IfNotPresent`. systemk applies the same rule to static pods, so a manifest behaves the
//! same whether it reaches systemk from a file or through the API server.

use std::fmt;
use std::str::FromStr;

use super::error::Error;

/// When an image is fetched (`spec.containers[].imagePullPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PullPolicy {
    /// Fetch the newest each time the container is prepared: apt installs the newest
    /// candidate (a no-op when it is installed, or for a pinned version that is); an
    /// unpinned https URL is downloaded again.
    Always,
    /// Install only when the package (at the pinned version) is not installed.
    IfNotPresent,
    /// Never install: an absent package is `ErrImageNeverPull`.
    Never,
}

impl PullPolicy {
    /// The Kubernetes spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Always => "Always",
            Self::IfNotPresent => "IfNotPresent",
            Self::Never => "Never",
        }
    }

    /// The policy Kubernetes gives a container of `image` that names none.
    pub fn default_for(image: &str) -> Self {
        if reference_tag(image).as_deref() == Some("latest") {
            Self::Always
        } else {
            Self::IfNotPresent
        }
    }

    /// The container's policy: `given` when set, else [`Self::default_for`] `image`.
    pub fn of_container(given: Option<&str>, image: &str) -> Result<Self, Error> {
        match given.filter(|text| !text.is_empty()) {
            Some(text) => text.parse(),
            None => Ok(Self::default_for(image)),
        }
    }
}

impl fmt::Display for PullPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PullPolicy {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        match text {
            "Always" => Ok(Self::Always),
            "IfNotPresent" => Ok(Self::IfNotPresent),
            "Never" => Ok(Self::Never),
            _ => Err(Error::InvalidPullPolicy {
                value: text.to_owned(),
            }),
        }
    }
}

/// The tag Kubernetes' `parsers.ParseImageName` finds in `image`: `latest` for a valid
/// reference with neither tag nor digest, the tag when there is one, empty with a digest
/// only, `None` when `image` is no valid reference (the defaulting then sees no tag).
/// Follows the grammar of distribution/reference: lowercase path components separated by
/// `/`, an optional registry host first, `:tag`, `@algorithm:hex`.
fn reference_tag(image: &str) -> Option<String> {
    let (named, digest) = match image.split_once('@') {
        Some((named, digest)) => (named, Some(digest)),
        None => (image, None),
    };
    if let Some(digest) = digest {
        let (algorithm, hex) = digest.split_once(':')?;
        let algorithm_ok = !algorithm.is_empty()
            && algorithm
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_+.".contains(&b));
        if !algorithm_ok || hex.len() < 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
    }
    let last_slash = named.rfind('/').map_or(0, |at| at + 1);
    let (name, tag) = match named[last_slash..].rfind(':') {
        Some(at) => (
            &named[..last_slash + at],
            Some(&named[last_slash + at + 1..]),
        ),
        None => (named, None),
    };
    if let Some(tag) = tag {
        let valid = tag.len() <= 128
            && tag
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
            && tag
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
        if !valid {
            return None;
        }
    }
    if !valid_name(name) {
        return None;
    }
    Some(match (tag, digest) {
        (Some(tag), _) => tag.to_owned(),
        (None, Some(_)) => String::new(),
        (None, None) => "latest".to_owned(),
    })
}

/// A repository name: an optional host (with a `.` or `:`, or `localhost`) and lowercase
/// path components, at most 255 characters.
fn valid_name(name: &str) -> bool {
    if name.is_empty() || name.len() > 255 {
        return false;
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    if parts.len() > 1 && (parts[0].contains(['.', ':']) || parts[0] == "localhost") {
        let host = parts.remove(0);
        let (host_name, port) = match host.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host, None),
        };
        let host_ok = !host_name.is_empty()
            && host_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.".contains(&b));
        let port_ok = port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        if !host_ok || !port_ok {
            return false;
        }
    }
    // A bare 64-hex name is an image ID, which ParseNormalizedNamed refuses.
    if name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
        return false;
    }
    parts.iter().all(|part| valid_component(part))
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn valid_component(part: &str) -> bool {
    let bytes = part.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let separator = &part[start..i];
        let ok = matches!(separator, "." | "_" | "__") || separator.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unversioned_apt_names_default_to_always() {
        for image in [
            "nginx",
            "uptimed",
            "python3.11",
            "openssh-server",
            "nginx:latest",
        ] {
            assert_eq!(
                PullPolicy::default_for(image),
                PullPolicy::Always,
                "{image}"
            );
        }
    }

    #[test]
    fn pinned_urls_paths_and_non_references_default_to_if_not_present() {
        for image in [
            "nginx=1.22.1-9",
            "uptimed=1:0.4.6-3+b1",
            "libstdc++6",
            "https://a.example/foo_1_all.deb",
            "/usr/bin/sleep",
            "nginx:1.25",
            "docker.io/library/nginx@sha256:0123456789abcdef0123456789abcdef",
            "Nginx",
        ] {
            assert_eq!(
                PullPolicy::default_for(image),
                PullPolicy::IfNotPresent,
                "{image}"
            );
        }
    }

    #[test]
    fn references_follow_the_grammar() {
        assert_eq!(reference_tag("a/b/c").as_deref(), Some("latest"));
        assert_eq!(reference_tag("localhost:5000/a:1").as_deref(), Some("1"));
        assert_eq!(reference_tag("a--b__c").as_deref(), Some("latest"));
        assert_eq!(reference_tag("a___b"), None);
        assert_eq!(reference_tag("a:"), None);
        assert_eq!(reference_tag("-a"), None);
        assert_eq!(reference_tag(&"a".repeat(256)), None);
    }

    #[test]
    fn given_policy_wins_and_unknown_is_refused() {
        assert_eq!(
            PullPolicy::of_container(Some("Never"), "nginx").unwrap(),
            PullPolicy::Never
        );
        assert_eq!(
            PullPolicy::of_container(None, "nginx=1").unwrap(),
            PullPolicy::IfNotPresent
        );
        assert_eq!(
            PullPolicy::of_container(Some(""), "nginx").unwrap(),
            PullPolicy::Always
        );
        let err = PullPolicy::of_container(Some("always"), "nginx").unwrap_err();
        assert!(err.to_string().contains("\"always\""), "{err}");
        assert!(!err.is_transient());
    }
}
