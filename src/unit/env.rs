//! The container's environment. What the node provides (`HOSTNAME` — pods share the
//! host's network and name — and the node's IPs as `SYSTEMK_NODE_INTERNAL_IP` /
//! `SYSTEMK_NODE_EXTERNAL_IP`) goes into the unit as `Environment=` words
//! (`escape::environment`). The pod's own `env` — plain values, possibly from secrets —
//! never goes into the unit: a unit file is world-readable and systemd shows
//! `Environment=` to every local user (`systemctl show`, D-Bus). It goes into an
//! environment file, [`env_file_path`] on the runtime tmpfs, root-only, which the unit
//! names with `EnvironmentFile=` and the pod layer writes ([`env_file`] renders it).
//!
//! Order, as systemd applies it: every `Environment=` first (vendor lines, then the
//! node's), then each `EnvironmentFile=` in the order listed (the vendor's, then the
//! pod's, which comes last). So the pod's values win over the node's, the vendor's
//! `Environment=` and the vendor's `EnvironmentFile=`, as a container's `env` wins over
//! its image's `ENV`. The file has no `-` prefix: a unit whose file is missing (after a
//! boot, before systemk ran) fails to start rather than run without its environment.
//!
//! The file's syntax is systemd 252's `load_env_file()`, not `Environment=`'s: a value in
//! double quotes keeps every byte (newlines, `'`, `%`, `#`, non-ASCII) except that `\`,
//! `"`, `` ` `` and `$` must be backslash-escaped and a backslash before a newline would
//! join lines; systemd does not expand `$` or `%` in the file's values. So each line is
//! `NAME="value"` with those four escaped. The pod layer (`pod::env`) resolves
//! `valueFrom`, `envFrom` and `$(VAR)` references before a container gets here; any still
//! present is refused rather than written half-resolved.
//!
//! Layer 2: pure.

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Container;

use super::error::{Error, Result};
use super::escape::{check_env_name, environment};

/// Where the pod's environment files live, below the pod's runtime directory.
const ENV_DIR: &str = "env";

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

/// The `Environment=` values of every container: what the node provides.
pub fn environment_words(node: &NodeInfo) -> Result<Vec<String>> {
    Ok(vec![
        environment("HOSTNAME", &node.hostname)?,
        environment("SYSTEMK_NODE_INTERNAL_IP", &node.internal_ip)?,
        environment("SYSTEMK_NODE_EXTERNAL_IP", &node.external_ip)?,
    ])
}

/// The environment file of `container`'s unit, `<runtime pod dir>/env/<container>.env`.
/// The container name is a DNS label (checked with the unit name before any use).
pub fn env_file_path(runtime_pod_dir: &Path, container: &str) -> PathBuf {
    runtime_pod_dir
        .join(ENV_DIR)
        .join(format!("{container}.env"))
}

/// The content of `container`'s environment file: its `env` in order, one
/// `NAME="value"` line each; `None` when the container has no `env` (its unit then
/// names no file). Names must be what systemd accepts and values must not hold NUL.
pub fn env_file(container: &Container) -> Result<Option<String>> {
    if container.env_from.as_ref().is_some_and(|e| !e.is_empty()) {
        return Err(Error::Unsupported {
            what: format!("envFrom in container {}", container.name),
        });
    }
    let vars = container.env.as_deref().unwrap_or_default();
    if vars.is_empty() {
        return Ok(None);
    }
    let mut text = String::new();
    for var in vars {
        if var.value_from.is_some() {
            return Err(Error::Unsupported {
                what: format!(
                    "env {} with valueFrom in container {}",
                    var.name, container.name
                ),
            });
        }
        push_line(
            &mut text,
            &var.name,
            var.value.as_deref().unwrap_or_default(),
        )?;
    }
    Ok(Some(text))
}

/// Appends `NAME="value"` and a newline, escaped for systemd's environment-file parser.
fn push_line(text: &mut String, name: &str, value: &str) -> Result<()> {
    check_env_name(name)?;
    if value.contains('\0') {
        return Err(Error::Unpassable {
            what: format!("environment variable {name}"),
            value: value.to_owned(),
            why: "a NUL byte cannot be passed to a process",
        });
    }
    text.push_str(name);
    text.push_str("=\"");
    for c in value.chars() {
        if matches!(c, '\\' | '"' | '`' | '$') {
            text.push('\\');
        }
        text.push(c);
    }
    text.push_str("\"\n");
    Ok(())
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{EnvFromSource, EnvVar, EnvVarSource};

    use super::super::escape::reference::{tricky_strings, unescape_environment};
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

    fn with_env(env: Vec<EnvVar>) -> Container {
        Container {
            name: "c".into(),
            env: Some(env),
            ..Default::default()
        }
    }

    /// A model of systemd 252's `parse_env_file_internal()` for the lines
    /// [`env_file`] writes and for what else a line may hold: comments, unquoted values
    /// with backslash escapes, double quotes with their four escapes and continuation.
    /// Single quotes are never written and refused here.
    fn parse_env_file(text: &str) -> Result<Vec<(String, String)>, String> {
        #[derive(PartialEq)]
        enum State {
            PreKey,
            Key,
            PreValue,
            Value,
            ValueEscape,
            Double,
            DoubleEscape,
            Comment,
        }
        let mut state = State::PreKey;
        let (mut key, mut value) = (String::new(), String::new());
        // Where trailing unquoted whitespace starts: systemd trims only that.
        let mut trailing: Option<usize> = None;
        let mut out = Vec::new();
        let mut push = |key: &mut String, value: &mut String| {
            out.push((key.trim_end().to_owned(), std::mem::take(value)));
            key.clear();
        };
        for c in text.chars() {
            state = match state {
                State::PreKey if c.is_whitespace() => State::PreKey,
                State::PreKey if c == '#' || c == ';' => State::Comment,
                State::PreKey => {
                    key.push(c);
                    State::Key
                }
                State::Key if c == '\n' => return Err(format!("line without '=': {key}")),
                State::Key if c == '=' => State::PreValue,
                State::Key => {
                    key.push(c);
                    State::Key
                }
                State::PreValue | State::Value if c == '\n' => {
                    if let Some(at) = trailing.take() {
                        value.truncate(at);
                    }
                    push(&mut key, &mut value);
                    State::PreKey
                }
                State::PreValue if c == ' ' || c == '\t' => State::PreValue,
                State::PreValue if c == '"' => State::Double,
                State::PreValue if c == '\'' => return Err("single quotes".into()),
                State::PreValue | State::Value if c == '\\' => State::ValueEscape,
                State::PreValue | State::Value => {
                    if c == ' ' || c == '\t' {
                        trailing.get_or_insert(value.len());
                    } else {
                        trailing = None;
                    }
                    value.push(c);
                    State::Value
                }
                State::ValueEscape => {
                    trailing = None;
                    if c != '\n' {
                        value.push(c);
                    }
                    State::Value
                }
                State::Double if c == '"' => {
                    trailing = None;
                    State::PreValue
                }
                State::Double if c == '\\' => State::DoubleEscape,
                State::Double => {
                    value.push(c);
                    State::Double
                }
                State::DoubleEscape => {
                    if matches!(c, '"' | '\\' | '`' | '$') {
                        value.push(c);
                    } else if c != '\n' {
                        value.push('\\');
                        value.push(c);
                    }
                    State::Double
                }
                State::Comment if c == '\n' => State::PreKey,
                State::Comment => State::Comment,
            };
        }
        match state {
            State::PreKey | State::Comment => Ok(out),
            _ => Err("the file does not end with a complete line".into()),
        }
    }

    #[test]
    fn node_values_are_environment_words() {
        let pairs: Vec<_> = environment_words(&node())
            .unwrap()
            .iter()
            .map(|w| unescape_environment(w).unwrap())
            .collect();
        let expected = [
            ("HOSTNAME", "node-1"),
            ("SYSTEMK_NODE_INTERNAL_IP", "10.0.0.5"),
            ("SYSTEMK_NODE_EXTERNAL_IP", ""),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        assert_eq!(pairs, expected);
    }

    #[test]
    fn pod_values_go_to_the_file_in_order() {
        let container = with_env(vec![
            var("B", Some("2")),
            var("A", Some("$HOME %n\nx")),
            var("EMPTY", None),
        ]);
        let text = env_file(&container).unwrap().unwrap();
        assert_eq!(text, "B=\"2\"\nA=\"\\$HOME %n\nx\"\nEMPTY=\"\"\n");
        let expected = [("B", "2"), ("A", "$HOME %n\nx"), ("EMPTY", "")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()));
        assert_eq!(parse_env_file(&text).unwrap(), expected);
        assert_eq!(env_file(&Container::default()).unwrap(), None);
        assert_eq!(env_file(&with_env(vec![])).unwrap(), None);
    }

    #[test]
    fn every_value_survives_systemds_parser() {
        let strings = tricky_strings();
        let env: Vec<EnvVar> = strings
            .iter()
            .enumerate()
            .map(|(i, s)| var(&format!("V{i}"), Some(s)))
            .collect();
        let text = env_file(&with_env(env)).unwrap().unwrap();
        let parsed = parse_env_file(&text).unwrap();
        let expected: Vec<(String, String)> = strings
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("V{i}"), s.clone()))
            .collect();
        assert_eq!(parsed, expected);
    }

    #[test]
    fn env_file_path_is_below_the_runtime_pod_dir() {
        assert_eq!(
            env_file_path(Path::new("/run/systemk/pods/u"), "web"),
            Path::new("/run/systemk/pods/u/env/web.env")
        );
    }

    #[test]
    fn unsupported_and_invalid_env() {
        let from = with_env(vec![EnvVar {
            name: "X".into(),
            value: None,
            value_from: Some(EnvVarSource::default()),
        }]);
        assert!(matches!(env_file(&from), Err(Error::Unsupported { .. })));
        let env_from = Container {
            env_from: Some(vec![EnvFromSource::default()]),
            ..Default::default()
        };
        assert!(matches!(
            env_file(&env_from),
            Err(Error::Unsupported { .. })
        ));
        for name in ["", "A=B", "A\nB", "1X", "a.b", "X\0", "#X", " X"] {
            let bad = with_env(vec![var(name, Some("v"))]);
            assert!(env_file(&bad).is_err(), "{name:?}");
        }
        assert!(env_file(&with_env(vec![var("A", Some("a\0b"))])).is_err());
    }
}
