//! The node's image policy: which image sources pods may use (apt, https hosts) and
//! whether https images must carry a `@sha256:` pin. Pure: decides on an [`ImageRef`]
//! alone, no I/O. Layer 1; the node options that fill it live in `config`.

use super::error::{Error, Result};
use super::image::ImageRef;

/// Where images may come from on this node. The default allows every source, as
/// systemk always did; unpinned https images then only earn a warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImagePolicy {
    /// Pods may name packages from the apt sources (`--image-apt`).
    pub allow_apt: bool,
    /// Hosts https images may come from, lowercase, IPv6 without brackets; `None` allows
    /// every host, an empty list none (`--image-https-hosts`).
    pub https_hosts: Option<Vec<String>>,
    /// https images must carry a `@sha256:` pin (`--image-require-sha256`).
    pub require_sha256: bool,
}

impl Default for ImagePolicy {
    fn default() -> Self {
        Self {
            allow_apt: true,
            https_hosts: None,
            require_sha256: false,
        }
    }
}

impl ImagePolicy {
    /// Parses `--image-https-hosts`: `*` is any host, an empty value no host, else a
    /// comma-separated list of host names or IP addresses (compared case-insensitively).
    pub fn parse_https_hosts(value: &str) -> Option<Vec<String>> {
        if value.trim() == "*" {
            return None;
        }
        Some(
            value
                .split(',')
                .map(|host| normal_host(host.trim()))
                .filter(|host| !host.is_empty())
                .collect(),
        )
    }

    /// Refuses `image` when the node does not allow where it comes from; the error names
    /// the node option that refused it.
    pub fn check(&self, image: &ImageRef) -> Result<()> {
        let refuse = |option: &'static str, why: String| {
            Err(Error::ImageRefused {
                image: image.to_string(),
                option,
                why,
            })
        };
        match image {
            ImageRef::Apt { .. } if !self.allow_apt => refuse(
                "--image-apt=false (SYSTEMK_IMAGE_APT)",
                "packages from the apt sources are not allowed on this node".into(),
            ),
            ImageRef::Https { url, sha256, .. } => {
                if let Some(hosts) = &self.https_hosts {
                    let host = normal_host(url.host_str().unwrap_or_default());
                    if !hosts.contains(&host) {
                        let allowed = if hosts.is_empty() {
                            "none".to_owned()
                        } else {
                            hosts.join(", ")
                        };
                        return refuse(
                            "--image-https-hosts (SYSTEMK_IMAGE_HTTPS_HOSTS)",
                            format!("host {host:?} is not allowed (allowed: {allowed})"),
                        );
                    }
                }
                if self.require_sha256 && sha256.is_none() {
                    return refuse(
                        "--image-require-sha256 (SYSTEMK_IMAGE_REQUIRE_SHA256)",
                        "https images must end in @sha256:<64 hex digits>".into(),
                    );
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// A warning for an image this policy allows but that is not verified: an https
    /// image without a `@sha256:` pin (for a Warning event).
    pub fn warning(&self, image: &ImageRef) -> Option<String> {
        match image {
            ImageRef::Https { sha256: None, .. } => Some(format!(
                "image \"{image}\" has no @sha256: pin: its download is not verified"
            )),
            _ => None,
        }
    }
}

/// Lowercase, IPv6 brackets removed: the form hosts are compared in.
fn normal_host(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn image(text: &str) -> ImageRef {
        text.parse().unwrap()
    }

    fn refused_by(policy: &ImagePolicy, text: &str) -> String {
        let err = policy.check(&image(text)).unwrap_err();
        assert_eq!(err.reason(), "ErrImagePull");
        assert!(!err.is_transient());
        err.to_string()
    }

    #[test]
    fn default_allows_everything_and_warns_when_unpinned() {
        let policy = ImagePolicy::default();
        for text in ["uptimed", "/bin/sh", "https://a.example/foo_1_all.deb"] {
            policy.check(&image(text)).unwrap();
        }
        assert!(
            policy
                .warning(&image("https://a.example/foo_1_all.deb"))
                .is_some()
        );
        let pinned = format!("https://a.example/foo_1_all.deb@sha256:{SHA}");
        assert_eq!(policy.warning(&image(&pinned)), None);
        assert_eq!(policy.warning(&image("uptimed")), None);
    }

    #[test]
    fn apt_refused_when_off() {
        let policy = ImagePolicy {
            allow_apt: false,
            ..ImagePolicy::default()
        };
        assert!(refused_by(&policy, "uptimed=1.0").contains("--image-apt=false"));
        policy.check(&image("/bin/sh")).unwrap();
        policy
            .check(&image("https://a.example/foo_1_all.deb"))
            .unwrap();
    }

    #[test]
    fn https_hosts_match_exactly_and_case_insensitively() {
        let policy = ImagePolicy {
            https_hosts: ImagePolicy::parse_https_hosts("A.example, 127.0.0.1,[::1]"),
            ..ImagePolicy::default()
        };
        policy
            .check(&image("https://a.example/foo_1_all.deb"))
            .unwrap();
        policy
            .check(&image("https://127.0.0.1:8443/foo_1_all.deb"))
            .unwrap();
        policy.check(&image("https://[::1]/foo_1_all.deb")).unwrap();
        let text = refused_by(&policy, "https://b.a.example/foo_1_all.deb");
        assert!(text.contains("--image-https-hosts"), "{text}");
        assert!(text.contains("\"b.a.example\""), "{text}");
        refused_by(&policy, "https://a.example.evil/foo_1_all.deb");
    }

    #[test]
    fn https_hosts_star_is_any_and_empty_is_none() {
        assert_eq!(ImagePolicy::parse_https_hosts("*"), None);
        let none = ImagePolicy {
            https_hosts: ImagePolicy::parse_https_hosts(""),
            ..ImagePolicy::default()
        };
        assert!(refused_by(&none, "https://a.example/foo_1_all.deb").contains("allowed: none"));
    }

    #[test]
    fn unpinned_refused_when_pin_required() {
        let policy = ImagePolicy {
            require_sha256: true,
            ..ImagePolicy::default()
        };
        assert!(
            refused_by(&policy, "https://a.example/foo_1_all.deb")
                .contains("--image-require-sha256")
        );
        policy
            .check(&image(&format!(
                "https://a.example/foo_1_all.deb@sha256:{SHA}"
            )))
            .unwrap();
        policy.check(&image("uptimed")).unwrap();
    }
}
