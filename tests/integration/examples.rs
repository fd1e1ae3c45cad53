//! The shipped manifests (issue 5): every file in `k3s/examples/` and `k3s/static-pods/`
//! renders with the real `systemk render -f`, one unit per container, and every
//! `k3s/examples/` file applies with the real `kubectl apply -f` to the test API server,
//! after which each of its objects exists there. Packages the examples name need not be
//! installed: render then synthesises the unit or says in a comment why it cannot.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use serde_yaml_ng::Value;

use crate::apiserver::TestApiServer;

/// How long one kubectl or render run may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// One object of a manifest file, as kubectl names it.
struct Object {
    kind: String,
    namespace: Option<String>,
    name: String,
    /// Container names of its pod (or pod template), init containers included.
    containers: Vec<String>,
}

fn repo_dir(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no manifests in {}", dir.display());
    files
}

/// The pod spec of a Pod, or of a workload's template (CronJob: one level further down).
fn pod_spec(document: &Value) -> Option<&Value> {
    if document["kind"] == "Pod" {
        return document.get("spec");
    }
    let spec = document.get("spec")?;
    let template = spec
        .get("template")
        .or_else(|| spec.get("jobTemplate")?.get("spec")?.get("template"))?;
    template.get("spec")
}

fn objects(file: &Path) -> Vec<Object> {
    let text = std::fs::read_to_string(file).unwrap();
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|document| serde::Deserialize::deserialize(document).unwrap())
        .filter(|document: &Value| !document.is_null())
        .map(|document| {
            let text = |value: &Value| value.as_str().map(str::to_owned);
            let containers = pod_spec(&document)
                .map(|spec| {
                    ["initContainers", "containers"]
                        .iter()
                        .filter_map(|key| spec.get(*key)?.as_sequence())
                        .flatten()
                        .map(|container| text(&container["name"]).unwrap())
                        .collect()
                })
                .unwrap_or_default();
            Object {
                kind: text(&document["kind"]).unwrap(),
                namespace: text(&document["metadata"]["namespace"]),
                name: text(&document["metadata"]["name"]).unwrap(),
                containers,
            }
        })
        .collect()
}

async fn run(command: &mut tokio::process::Command, what: &str) -> String {
    let output: Output = tokio::time::timeout(COMMAND_TIMEOUT, command.kill_on_drop(true).output())
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {COMMAND_TIMEOUT:?}"))
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn node_name() -> String {
    nix::unistd::gethostname()
        .unwrap()
        .into_string()
        .unwrap()
        .to_lowercase()
}

#[tokio::test]
async fn every_shipped_manifest_renders_one_unit_per_container() {
    let node = node_name();
    let files = [repo_dir("k3s/examples"), repo_dir("k3s/static-pods")].concat();
    for file in files {
        let what = format!("systemk render -f {}", file.display());
        let out = run(
            tokio::process::Command::new(env!("CARGO_BIN_EXE_systemk"))
                .arg("render")
                .arg("-f")
                .arg(&file),
            &what,
        )
        .await;
        let headers: Vec<&str> = out
            .lines()
            .filter(|line| line.starts_with("# systemk."))
            .collect();
        let mut expected = Vec::new();
        for object in objects(&file) {
            let namespace = object.namespace.as_deref().unwrap_or("default");
            if object.containers.is_empty() {
                let skipped = format!("# skipped {}/{}: not a pod", object.kind, object.name);
                assert!(out.contains(&skipped), "{what} lacks {skipped:?}:\n{out}");
            }
            for container in &object.containers {
                expected.push(format!(
                    "# systemk.{namespace}.{}-{node}.{container}.service",
                    object.name
                ));
            }
        }
        assert!(!expected.is_empty(), "{} has no containers", file.display());
        assert_eq!(headers, expected, "{what} printed:\n{out}");
        // Each pod's slice after its units.
        let slices = out
            .lines()
            .filter(|line| line.starts_with("# systemk-") && line.ends_with(".slice"))
            .count();
        let pods = objects(&file)
            .iter()
            .filter(|object| !object.containers.is_empty())
            .count();
        assert_eq!(slices, pods, "{what} printed:\n{out}");
        // A unit that could be built is printed whole; one that could not says why.
        let rendered = out.matches("\n[X-Kubernetes]\n").count();
        let explained = out
            .matches("is not installed here, and without its vendor unit")
            .count();
        assert_eq!(
            rendered + explained,
            expected.len(),
            "{what} printed:\n{out}"
        );
    }
}

#[tokio::test]
async fn every_cluster_example_applies_to_the_api_server() {
    let Some(program) =
        crate::support::kubectl_or_skip("every_cluster_example_applies_to_the_api_server")
    else {
        return;
    };
    let (server, _url) = TestApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = server.write_kubeconfig(dir.path());
    let kubectl = |args: &[&str]| {
        let mut command = tokio::process::Command::new(&program);
        command
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("--cache-dir")
            .arg(dir.path().join("cache"))
            .args(args)
            .env("HOME", dir.path());
        command
    };
    for file in repo_dir("k3s/examples") {
        let path = file.to_string_lossy();
        let what = format!("kubectl apply -f {path}");
        let out = run(&mut kubectl(&["apply", "-f", &path]), &what).await;
        for object in objects(&file) {
            let reference = format!("{}/{}", object.kind.to_lowercase(), object.name);
            let printed = reference_with_group(&object.kind, &object.name);
            assert!(
                out.contains(&format!("{printed} created")),
                "{what} did not create {printed}:\n{out}"
            );
            // -n is ignored for cluster-scoped kinds (ClusterRole…).
            let namespace = object.namespace.as_deref().unwrap_or("default");
            let got = run(
                &mut kubectl(&["get", "-n", namespace, "-o", "name", &reference]),
                &format!("kubectl get {reference}"),
            )
            .await;
            assert_eq!(got.trim(), printed);
        }
    }
}

/// How kubectl names an object in `apply` and `get -o name` output: `<resource>.<group>/<name>` for grouped kinds.
fn reference_with_group(kind: &str, name: &str) -> String {
    let resource = match kind {
        "Deployment" => "deployment.apps",
        "ClusterRole" => "clusterrole.rbac.authorization.k8s.io",
        "ClusterRoleBinding" => "clusterrolebinding.rbac.authorization.k8s.io",
        other => return format!("{}/{name}", other.to_lowercase()),
    };
    format!("{resource}/{name}")
}
