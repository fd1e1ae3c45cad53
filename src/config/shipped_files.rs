//! Tests that the files shipped beside the binary agree with the code: `debian/default`
//! (installed as `/etc/default/systemk`) documents every `SYSTEMK_<FLAG>` variable of the
//! CLI, and the example manifests in `k3s/examples/` and the RBAC in `k3s/rbac.yaml` parse
//! as the Kubernetes objects they claim to be. Test-only; reads the repository, never the
//! host's `/etc`.

use std::fs;
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, PodSpec, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use serde::Deserialize;

use super::Cli;

fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// The variables `/etc/default/systemk` documents: lines `#NAME=...`.
fn documented_variables(default_file: &str) -> Vec<&str> {
    default_file
        .lines()
        .filter_map(|line| {
            line.strip_prefix('#')?
                .split_once('=')
                .map(|(name, _)| name)
        })
        .filter(|name| {
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        })
        .collect()
}

#[test]
fn default_file_documents_every_environment_variable() {
    let default_file = fs::read_to_string(repo_path("debian/default")).unwrap();
    let documented = documented_variables(&default_file);
    let command = Cli::command();
    let missing: Vec<String> = command
        .get_arguments()
        .filter_map(|arg| arg.get_env())
        .map(|env| env.to_string_lossy().into_owned())
        .filter(|env| !documented.contains(&env.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "debian/default does not document {missing:?}"
    );
}

#[test]
fn default_file_sets_nothing() {
    let default_file = fs::read_to_string(repo_path("debian/default")).unwrap();
    let active: Vec<&str> = default_file
        .lines()
        .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
        .collect();
    assert!(active.is_empty(), "uncommented lines: {active:?}");
}

#[test]
fn documented_variables_reads_commented_assignments_only() {
    let text = "# Prose mentioning SYSTEMK_X=1 inline.\n#SYSTEMK_A=/x\n#RUST_LOG=info\nB=2\n";
    assert_eq!(documented_variables(text), ["SYSTEMK_A", "RUST_LOG"]);
}

/// Just enough of an object to pick the type to parse it as.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TypeMeta {
    api_version: String,
    kind: String,
}

/// Parses one YAML document as the type its `apiVersion`/`kind` name: catches wrong value
/// types and missing required fields, and (see [`from_value`]) misspelt keys. Returns the
/// pod spec of workloads.
fn parse_object(document: serde_yaml_ng::Value) -> Result<Option<PodSpec>, String> {
    let meta: TypeMeta = serde_yaml_ng::from_value(document.clone()).map_err(|e| e.to_string())?;
    let spec = match (meta.api_version.as_str(), meta.kind.as_str()) {
        ("v1", "Pod") => from_value::<Pod>(document)?.spec,
        ("apps/v1", "Deployment") => from_value::<Deployment>(document)?
            .spec
            .and_then(|spec| spec.template.spec),
        ("v1", "ConfigMap") => from_value::<ConfigMap>(document).map(|_| None)?,
        ("v1", "ServiceAccount") => from_value::<ServiceAccount>(document).map(|_| None)?,
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => {
            from_value::<ClusterRole>(document).map(|_| None)?
        }
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
            from_value::<ClusterRoleBinding>(document).map(|_| None)?
        }
        ("rbac.authorization.k8s.io/v1", "Role") => from_value::<Role>(document).map(|_| None)?,
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => {
            from_value::<RoleBinding>(document).map(|_| None)?
        }
        (api_version, kind) => return Err(format!("unexpected {api_version} {kind}")),
    };
    Ok(spec)
}

/// Parses `value` as `T` and fails on any key `T` does not know: k8s-openapi silently drops
/// unknown fields, so a key lost in the round trip back to YAML is a typo.
fn from_value<T>(value: serde_yaml_ng::Value) -> Result<T, String>
where
    T: serde::de::DeserializeOwned + serde::Serialize,
{
    let parsed: T = serde_yaml_ng::from_value(value.clone()).map_err(|e| e.to_string())?;
    let round_trip = serde_yaml_ng::to_value(&parsed).map_err(|e| e.to_string())?;
    let mut unknown = Vec::new();
    lost_keys(&value, &round_trip, "", &mut unknown);
    if unknown.is_empty() {
        Ok(parsed)
    } else {
        Err(format!("unknown fields {unknown:?}"))
    }
}

/// Collects the paths of mapping keys present in `original` but missing from `round_trip`.
fn lost_keys(
    original: &serde_yaml_ng::Value,
    round_trip: &serde_yaml_ng::Value,
    path: &str,
    lost: &mut Vec<String>,
) {
    use serde_yaml_ng::Value;
    match (original, round_trip) {
        (Value::Mapping(original), Value::Mapping(round_trip)) => {
            for (key, value) in original {
                let name = key.as_str().unwrap_or("?");
                let child = format!("{path}.{name}");
                match round_trip.get(key) {
                    Some(kept) => lost_keys(value, kept, &child, lost),
                    None => lost.push(child),
                }
            }
        }
        (Value::Sequence(original), Value::Sequence(round_trip)) => {
            for (index, (value, kept)) in original.iter().zip(round_trip).enumerate() {
                lost_keys(value, kept, &format!("{path}[{index}]"), lost);
            }
        }
        _ => {}
    }
}

#[test]
fn from_value_rejects_misspelt_keys() {
    let pod: serde_yaml_ng::Value = serde_yaml_ng::from_str(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  containers:\n  - {name: c, imagee: bash}\n",
    )
    .unwrap();
    let err = from_value::<Pod>(pod).unwrap_err();
    assert!(err.contains(".spec.containers[0].imagee"), "{err}");
}

/// Every workload example must be able to land on a systemk node and only there.
fn check_targets_systemk_nodes(spec: &PodSpec) -> Result<(), String> {
    let selects = spec
        .node_selector
        .as_ref()
        .and_then(|selector| selector.get("node.kubernetes.io/instance-type"))
        .is_some_and(|value| value == "systemk");
    let tolerates = spec.tolerations.iter().flatten().any(|toleration| {
        toleration.key.as_deref() == Some("virtual-kubelet.io/provider")
            && toleration.value.as_deref() == Some("systemk")
            && toleration.effect.as_deref() == Some("NoSchedule")
    });
    match (selects, tolerates) {
        (true, true) => Ok(()),
        (false, _) => Err("no nodeSelector node.kubernetes.io/instance-type: systemk".into()),
        (_, false) => Err("no toleration of virtual-kubelet.io/provider=systemk:NoSchedule".into()),
    }
}

/// Parses every document of a multi-document YAML text; returns the failures and the pod
/// specs of the workloads.
fn parse_documents(name: &str, text: &str) -> (Vec<String>, Vec<PodSpec>) {
    let mut failures = Vec::new();
    let mut specs = Vec::new();
    for (index, document) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        match serde_yaml_ng::Value::deserialize(document)
            .map_err(|e| e.to_string())
            .and_then(parse_object)
        {
            Ok(spec) => specs.extend(spec),
            Err(err) => failures.push(format!("{name} document {index}: {err}")),
        }
    }
    (failures, specs)
}

#[test]
fn k3s_rbac_parses_and_names_no_node() {
    let text = fs::read_to_string(repo_path("k3s/rbac.yaml")).unwrap();
    // Applied once per cluster: nothing in it is per node.
    assert!(!text.contains("NODENAME"));
    let (failures, _) = parse_documents("rbac.yaml", &text);
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn k3s_examples_parse_and_target_systemk_nodes() {
    let mut files: Vec<PathBuf> = fs::read_dir(repo_path("k3s/examples"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no examples found");
    let mut failures = Vec::new();
    let mut workloads = 0;
    for file in &files {
        let text = fs::read_to_string(file).unwrap();
        let name = file.display().to_string();
        let (parse_failures, specs) = parse_documents(&name, &text);
        failures.extend(parse_failures);
        for spec in specs {
            workloads += 1;
            if let Err(err) = check_targets_systemk_nodes(&spec) {
                failures.push(format!("{name}: {err}"));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(workloads >= 6, "only {workloads} pods/deployments found");
}
