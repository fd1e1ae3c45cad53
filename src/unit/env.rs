//! The container's environment as `Environment=` words: first what the node provides
//! (`HOSTNAME` — pods share the host's network and name — and the node's IPs as
//! `SYSTEMK_NODE_INTERNAL_IP` / `SYSTEMK_NODE_EXTERNAL_IP`), then the container's plain
//! `env` values in order, so a pod can override the node's. Each is one quoted word
//! written by `escape::environment`. The pod layer (`pod::env`) resolves `valueFrom`,
//! `envFrom` and `$(VAR)` references before a container gets here; any still present is
//! refused rather than written half-resolved.
//!
//! Vendor `Environment=` lines stay before these, so pod values win over them; a vendor
//! `EnvironmentFile=` is applied by systemd after all `Environment=` lines and wins.
//!
//! Layer 2: pure.

use k8s_openapi::api::core::v1::Container;

use super::error::{Error, Result};
use super::escape::environment;

/// What the node tells its containers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeInfo {
    /// The node's host name (`HOSTNAME`).
    pub hostname: String,
    /// The node's internal IP (`SYSTEMK_NODE_INTERNAL_IP`).
    pub internal_ip: String,
    /// The node's external IP (`SYSTEMK_NODE_EXTERNAL_IP`), empty when it has none.
    pub external_ip: String,
}

/// The `Environment=` values for a container, in order.
pub fn environment_words(container: &Container, node: &NodeInfo) -> Result<Vec<String>> {
    if container.env_from.as_ref().is_some_and(|e| !e.is_empty()) {
        return Err(Error::Unsupported {
            what: format!("envFrom in container {}", container.name),
        });
    }
    let mut words = vec![
        environment("HOSTNAME", &node.hostname)?,
        environment("SYSTEMK_NODE_INTERNAL_IP", &node.internal_ip)?,
        environment("SYSTEMK_NODE_EXTERNAL_IP", &node.external_ip)?,
    ];
    for var in container.env.iter().flatten() {
        if var.value_from.is_some() {
            return Err(Error::Unsupported {
                what: format!(
                    "env {} with valueFrom in container {}",
                    var.name, container.name
                ),
            });
        }
        words.push(environment(
            &var.name,
            var.value.as_deref().unwrap_or_default(),
        )?);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{EnvFromSource, EnvVar, EnvVarSource};

    use super::super::escape::reference::unescape_environment;
    use super::*;

    fn node() -> NodeInfo {
        NodeInfo {
            hostname: "node-1".into(),
            internal_ip: "10.0.0.5".into(),
            external_ip: String::new(),
        }
    }

    fn var(name: &str, value: Option<&str>) -> EnvVar {
        EnvVar {
            name: name.into(),
            value: value.map(Into::into),
            value_from: None,
        }
    }

    #[test]
    fn node_values_then_pod_values_in_order() {
        let container = Container {
            env: Some(vec![
                var("B", Some("2")),
                var("A", Some("$HOME %n\nx")),
                var("EMPTY", None),
            ]),
            ..Default::default()
        };
        let pairs: Vec<_> = environment_words(&container, &node())
            .unwrap()
            .iter()
            .map(|w| unescape_environment(w).unwrap())
            .collect();
        let expected = [
            ("HOSTNAME", "node-1"),
            ("SYSTEMK_NODE_INTERNAL_IP", "10.0.0.5"),
            ("SYSTEMK_NODE_EXTERNAL_IP", ""),
            ("B", "2"),
            ("A", "$HOME %n\nx"),
            ("EMPTY", ""),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        assert_eq!(pairs, expected);
    }

    #[test]
    fn unsupported_and_invalid_env() {
        let from = Container {
            env: Some(vec![EnvVar {
                name: "X".into(),
                value: None,
                value_from: Some(EnvVarSource::default()),
            }]),
            ..Default::default()
        };
        assert!(matches!(
            environment_words(&from, &node()),
            Err(Error::Unsupported { .. })
        ));
        let env_from = Container {
            env_from: Some(vec![EnvFromSource::default()]),
            ..Default::default()
        };
        assert!(matches!(
            environment_words(&env_from, &node()),
            Err(Error::Unsupported { .. })
        ));
        for name in ["", "A=B", "A\nB", "1X", "a.b", "X\0"] {
            let bad = Container {
                env: Some(vec![var(name, Some("v"))]),
                ..Default::default()
            };
            assert!(environment_words(&bad, &node()).is_err(), "{name:?}");
        }
        let nul = Container {
            env: Some(vec![var("A", Some("a\0b"))]),
            ..Default::default()
        };
        assert!(environment_words(&nul, &node()).is_err());
    }
}
