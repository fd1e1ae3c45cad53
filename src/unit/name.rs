//! Unit names: `systemk.<namespace>.<pod>.<container>.service`, validated so that
//! nothing a pod spec holds can make an invalid or colliding name. Names are
//! deterministic but not parsed back: the `[X-Kubernetes]` section is the way back.

use std::fmt;
use std::str::FromStr;

use ring::digest::{SHA256, digest};

/// Every unit systemk manages starts with this.
pub const UNIT_PREFIX: &str = "systemk.";

const SERVICE_SUFFIX: &str = ".service";

/// systemd's limit on unit names (`UNIT_NAME_MAX`, src/basic/unit-name.h).
pub const UNIT_NAME_MAX: usize = 255;

/// Longest DNS-1123 label (RFC 1123): namespaces, container and volume names.
pub const DNS_LABEL_MAX: usize = 63;
/// Longest DNS-1123 subdomain (RFC 1123): pod names.
pub const DNS_SUBDOMAIN_MAX: usize = 253;

/// Hex digits of the name hash kept when a name must be shortened: 64 bits, so a
/// collision between two shortened names of one machine is not a practical concern.
const HASH_HEX_LEN: usize = 16;

/// A name that cannot become a unit name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// A Kubernetes name that is not a valid DNS label or subdomain.
    #[error("{kind} {name:?} is not a valid Kubernetes name: {why}")]
    InvalidKubernetesName {
        /// Which name: "namespace", "pod name" or "container name".
        kind: &'static str,
        /// The offending value.
        name: String,
        /// What rule it breaks.
        why: &'static str,
    },
    /// A string that is not a valid systemd unit name.
    #[error("{name:?} is not a valid systemk unit name: {why}")]
    InvalidUnitName {
        /// The offending value.
        name: String,
        /// What rule it breaks.
        why: &'static str,
    },
}

/// A validated name of a unit systemk manages.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnitName(String);

impl UnitName {
    /// The unit name of one container of a pod.
    ///
    /// When `systemk.<namespace>.<pod>.<container>.service` would exceed systemd's 255
    /// characters, the middle is cut and a hash of the full triple is appended, which
    /// keeps the name unique; the `[X-Kubernetes]` section keeps the real names.
    pub fn for_container(namespace: &str, pod: &str, container: &str) -> Result<Self, NameError> {
        check_dns_label("namespace", namespace)?;
        check_dns_subdomain("pod name", pod)?;
        check_dns_label("container name", container)?;
        let full = format!("{UNIT_PREFIX}{namespace}.{pod}.{container}{SERVICE_SUFFIX}");
        if full.len() <= UNIT_NAME_MAX {
            return Ok(Self(full));
        }
        let hash = hex::encode(digest(
            &SHA256,
            format!("{namespace}/{pod}/{container}").as_bytes(),
        ));
        let stem = &full[..full.len() - SERVICE_SUFFIX.len()];
        let keep = UNIT_NAME_MAX - SERVICE_SUFFIX.len() - 1 - HASH_HEX_LEN;
        // Every character is ASCII (validated above), so any byte index is a char boundary.
        Ok(Self(format!(
            "{}-{}{SERVICE_SUFFIX}",
            &stem[..keep],
            &hash[..HASH_HEX_LEN]
        )))
    }

    /// What the name of every container unit of the pod `namespace`/`pod` starts with,
    /// shortened or not (a shortened name keeps its first characters). Units of other pods
    /// may start with it too (pod `web` and pod `web.v1`): it narrows, the unit's
    /// `[X-Kubernetes]` section decides. Any string is accepted (from a request path, say);
    /// one that is no Kubernetes name matches no unit.
    pub fn pod_prefix(namespace: &str, pod: &str) -> String {
        let prefix = format!("{UNIT_PREFIX}{namespace}.{pod}.");
        let kept = UNIT_NAME_MAX - SERVICE_SUFFIX.len() - 1 - HASH_HEX_LEN;
        match prefix.get(..kept) {
            Some(kept) => kept.to_owned(),
            None => prefix,
        }
    }

    /// The name as systemd knows it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UnitName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for UnitName {
    type Error = NameError;

    fn try_from(name: String) -> Result<Self, NameError> {
        let why = if !name.starts_with(UNIT_PREFIX) {
            Some("it does not start with \"systemk.\"")
        } else if !name.ends_with(SERVICE_SUFFIX) {
            Some("it does not end with \".service\"")
        } else if name
            .get(UNIT_PREFIX.len()..name.len() - SERVICE_SUFFIX.len())
            .is_none_or(|middle| !middle.contains('.'))
        {
            // A container's unit names at least `<namespace>.<pod>` (a shortened name keeps
            // that much); this keeps out systemk's own `systemk.service`.
            Some("it names no namespace and pod")
        } else if name.len() > UNIT_NAME_MAX {
            Some("it is longer than 255 characters")
        } else if !name.bytes().all(is_unit_name_byte) {
            Some("only A-Z a-z 0-9 : _ . - @ are allowed")
        } else {
            None
        };
        match why {
            Some(why) => Err(NameError::InvalidUnitName { name, why }),
            None => Ok(Self(name)),
        }
    }
}

impl FromStr for UnitName {
    type Err = NameError;

    fn from_str(name: &str) -> Result<Self, NameError> {
        Self::try_from(name.to_owned())
    }
}

/// Whether `name` is a DNS-1123 label: 1–63 of `[a-z0-9-]`, alphanumeric at both ends.
pub fn is_dns_label(name: &str) -> bool {
    name.len() <= DNS_LABEL_MAX && is_label_shaped(name)
}

/// Whether `name` is a DNS-1123 subdomain as Kubernetes defines it
/// (`IsDNS1123Subdomain`): at most 253 characters of dot-separated parts shaped like
/// labels. Unlike RFC 1123, Kubernetes puts no 63-character limit on each part, so a
/// long Deployment's pod names are valid.
pub fn is_dns_subdomain(name: &str) -> bool {
    name.len() <= DNS_SUBDOMAIN_MAX && name.split('.').all(is_label_shaped)
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, of any length.
fn is_label_shaped(part: &str) -> bool {
    let bytes = part.as_bytes();
    bytes
        .iter()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
}

fn is_unit_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'.' | b'-' | b'@')
}

pub(super) fn check_dns_label(kind: &'static str, name: &str) -> Result<(), NameError> {
    let invalid = |why| {
        Err(NameError::InvalidKubernetesName {
            kind,
            name: name.to_owned(),
            why,
        })
    };
    if name.is_empty() {
        return invalid("it is empty");
    }
    if name.len() > DNS_LABEL_MAX {
        return invalid("it is longer than 63 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return invalid("only lowercase letters, digits and '-' are allowed");
    }
    if name.starts_with('-') || name.ends_with('-') {
        return invalid("it must start and end with a letter or digit");
    }
    Ok(())
}

fn check_dns_subdomain(kind: &'static str, name: &str) -> Result<(), NameError> {
    if name.len() > DNS_SUBDOMAIN_MAX {
        return Err(NameError::InvalidKubernetesName {
            kind,
            name: name.to_owned(),
            why: "it is longer than 253 characters",
        });
    }
    if !name.split('.').all(is_label_shaped) {
        return Err(NameError::InvalidKubernetesName {
            kind,
            name: name.to_owned(),
            why: "it must be dot-separated parts of lowercase letters, digits and '-', \
                  each starting and ending with a letter or digit",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_plain() {
        let name = UnitName::for_container("default", "web.v1", "nginx").unwrap();
        assert_eq!(name.as_str(), "systemk.default.web.v1.nginx.service");
    }

    #[test]
    fn long_names_fit_and_stay_unique() {
        let pod_a = format!("{}.{}.{}.a", "p".repeat(63), "q".repeat(63), "r".repeat(63));
        let pod_b = format!("{}.{}.{}.b", "p".repeat(63), "q".repeat(63), "r".repeat(63));
        let ns = "n".repeat(63);
        let a = UnitName::for_container(&ns, &pod_a, "c").unwrap();
        let b = UnitName::for_container(&ns, &pod_b, "c").unwrap();
        assert_eq!(a.as_str().len(), UNIT_NAME_MAX);
        assert_ne!(a, b);
        assert!(a.as_str().ends_with(".service"));
        assert_eq!(a.as_str().parse::<UnitName>().unwrap(), a);
        assert!(a.as_str().starts_with(&UnitName::pod_prefix(&ns, &pod_a)));
    }

    #[test]
    fn a_pods_units_start_with_its_prefix_and_strangers_match_nothing() {
        let web = UnitName::for_container("default", "web", "nginx").unwrap();
        assert!(
            web.as_str()
                .starts_with(&UnitName::pod_prefix("default", "web"))
        );
        assert!(
            !web.as_str()
                .starts_with(&UnitName::pod_prefix("default", "we"))
        );
        assert!(
            !web.as_str()
                .starts_with(&UnitName::pod_prefix("other", "web"))
        );
        // From a request path: no panic on any length or character, and nothing matches.
        for pod in [
            "ü".repeat(200),
            "../../etc".to_owned(),
            "x".repeat(5000),
            String::new(),
        ] {
            let prefix = UnitName::pod_prefix("default", &pod);
            assert!(!web.as_str().starts_with(&prefix), "{prefix}");
        }
    }

    #[test]
    fn pod_names_are_subdomains_without_a_part_limit() {
        let long_pod = "p".repeat(200);
        let name = UnitName::for_container("default", &long_pod, "c").unwrap();
        assert!(name.as_str().len() <= UNIT_NAME_MAX);
        assert!(UnitName::for_container("default", &"p".repeat(254), "c").is_err());
        assert!(UnitName::for_container("default", "web..v1", "c").is_err());
        assert!(UnitName::for_container("default", "web.-v1", "c").is_err());
    }

    #[test]
    fn names_that_could_inject_are_refused() {
        for (ns, pod, container) in [
            ("default", "web\nExecStart=/bin/sh", "c"),
            ("default", "web", "c/../x"),
            ("Default", "web", "c"),
            ("", "web", "c"),
            ("default", "web..x", "c"),
            ("default", "-web", "c"),
            ("default", "web", "c@x"),
        ] {
            assert!(
                UnitName::for_container(ns, pod, container).is_err(),
                "{ns}/{pod}/{container}"
            );
        }
    }

    #[test]
    fn parsing_checks_prefix_suffix_and_bytes() {
        assert!("systemk.a.b.c.service".parse::<UnitName>().is_ok());
        assert!("ssh.service".parse::<UnitName>().is_err());
        assert!("systemk.a.b.c.socket".parse::<UnitName>().is_err());
        assert!("systemk.service".parse::<UnitName>().is_err());
        assert!("systemk.agent.service".parse::<UnitName>().is_err());
        assert!("systemk.a b.c.service".parse::<UnitName>().is_err());
    }
}
