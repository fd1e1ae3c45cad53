//! Golden tests for `build`: each `tests/fixtures/golden/<case>.yaml` holds a pod, the
//! container to build and the package facts; `<case>.vendor.service`, when present, is
//! the vendor unit. The rendered unit must equal `<case>.service`, or, when building
//! fails, the error message must equal `<case>.error`. The `.service` files start with
//! a `# <unit name>` comment line, as `systemk render` prints them, then (`stdin: true`)
//! the container's socket unit under a `# <socket name>` line, and end with the pod's
//! slice unit under a `# <slice name>` line (the QoS tier from a test-only classification;
//! `pod::qos` is the real one, a layer above).
//! Regenerate with `SYSTEMK_UPDATE_GOLDEN=1 cargo test --lib golden`.

use std::fs;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};
use serde::Deserialize;

use super::build::{BuildInput, build};
use super::env::NodeInfo;
use super::file::UnitFile;
use super::identity::tests::TestUsers;
use super::meta::KubernetesMeta;
use super::pod_slice::{QosTier, SliceName, pod_slice_limits, pod_slice_unit};
use super::stdin::{stdin_socket, stdin_socket_name, wants_stdin};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Case {
    container: String,
    #[serde(default)]
    image_id: String,
    #[serde(default)]
    writable_dirs: Vec<PathBuf>,
    pod: Pod,
}

fn render_case(yaml: &Path) -> String {
    let case: Case = serde_yaml_ng::from_str(&fs::read_to_string(yaml).unwrap()).unwrap();
    let vendor_path = yaml.with_extension("vendor.service");
    let vendor = vendor_path
        .exists()
        .then(|| UnitFile::parse(&fs::read_to_string(&vendor_path).unwrap()).unwrap());
    let spec = case.pod.spec.as_ref().unwrap();
    let init = spec
        .init_containers
        .iter()
        .flatten()
        .position(|c| c.name == case.container);
    let (init_container, container_index, container) = match init {
        Some(i) => (true, i, &spec.init_containers.as_ref().unwrap()[i]),
        None => {
            let i = spec
                .containers
                .iter()
                .position(|c| c.name == case.container)
                .unwrap();
            (false, i, &spec.containers[i])
        }
    };
    let node = NodeInfo {
        hostname: "node-1".into(),
        internal_ip: "10.0.0.5".into(),
        external_ip: "203.0.113.5".into(),
    };
    let uid = case.pod.metadata.uid.clone().unwrap_or_default();
    let pod_dir = PathBuf::from(format!("/var/lib/systemk/pods/{uid}"));
    let runtime_pod_dir = PathBuf::from(format!("/run/systemk/pods/{uid}"));
    let tier = tier_of(spec);
    let slice = SliceName::for_pod(tier, &uid).unwrap();
    let input = BuildInput {
        slice: &slice,
        security: &crate::unit::NodeSecurity::default(),
        pod: &case.pod,
        container,
        init_container,
        container_index,
        image_id: &case.image_id,
        vendor_unit: vendor.as_ref(),
        writable_dirs: &case.writable_dirs,
        node: &node,
        pod_dir: &pod_dir,
        runtime_pod_dir: &runtime_pod_dir,
        users: &TestUsers,
    };
    match build(&input) {
        Ok(unit) => {
            let name = KubernetesMeta::from_unit(&unit)
                .unwrap()
                .unit_name()
                .unwrap();
            let mut out = format!("# {name}\n{}", unit.render());
            // The pod's env is in the environment file, not the unit: show it verbatim.
            if let Some(text) = super::env::env_file(container).unwrap() {
                let path = super::env::env_file_path(&runtime_pod_dir, &container.name);
                out.push_str(&format!("# {} (verbatim):\n{text}", path.display()));
            }
            if wants_stdin(container) {
                let socket = stdin_socket(&name, Path::new("/run/systemk/stdin")).unwrap();
                out.push_str(&format!(
                    "# {}\n{}",
                    stdin_socket_name(&name),
                    socket.render()
                ));
            }
            let limits = pod_slice_limits(spec, tier).unwrap();
            let meta = &case.pod.metadata;
            let namespace = meta.namespace.as_deref().unwrap_or("default");
            let name = meta.name.as_deref().unwrap_or_default();
            let slice_unit = pod_slice_unit(namespace, name, &limits).unwrap();
            out.push_str(&format!("# {slice}\n{}", slice_unit.render()));
            out
        }
        Err(err) => format!("error: {err}\n"),
    }
}

/// The QoS tier of the golden pods: none has cpu or memory → BestEffort; every
/// container limits both and requests nothing else → Guaranteed; else Burstable.
fn tier_of(spec: &PodSpec) -> QosTier {
    let all = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten());
    let lists = |c: &Container| {
        let r = c.resources.clone().unwrap_or_default();
        (r.requests.unwrap_or_default(), r.limits.unwrap_or_default())
    };
    let counted = |list: &std::collections::BTreeMap<String, _>| {
        list.keys().any(|k| k == "cpu" || k == "memory")
    };
    if all.clone().all(|c| {
        let (requests, limits) = lists(c);
        !counted(&requests) && !counted(&limits)
    }) {
        return QosTier::BestEffort;
    }
    let guaranteed = all.clone().all(|c| {
        let (requests, limits) = lists(c);
        ["cpu", "memory"].iter().all(|k| {
            limits.contains_key(*k) && requests.get(*k).is_none_or(|r| Some(r) == limits.get(*k))
        })
    });
    if guaranteed {
        QosTier::Guaranteed
    } else {
        QosTier::Burstable
    }
}

fn diff(expected: &str, actual: &str) -> String {
    let (e, a): (Vec<_>, Vec<_>) = (expected.lines().collect(), actual.lines().collect());
    let mut out = String::new();
    for i in 0..e.len().max(a.len()) {
        match (e.get(i), a.get(i)) {
            (Some(x), Some(y)) if x == y => out.push_str(&format!("  {x}\n")),
            (x, y) => {
                if let Some(x) = x {
                    out.push_str(&format!("- {x}\n"));
                }
                if let Some(y) = y {
                    out.push_str(&format!("+ {y}\n"));
                }
            }
        }
    }
    out
}

#[test]
fn golden_units() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden");
    let update = std::env::var_os("SYSTEMK_UPDATE_GOLDEN").is_some_and(|v| v == "1");
    let mut cases: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 10,
        "golden cases missing in {}",
        dir.display()
    );
    let mut failures = Vec::new();
    for yaml in &cases {
        let actual = render_case(yaml);
        let (expected_path, stale) = if actual.starts_with("error: ") {
            (yaml.with_extension("error"), yaml.with_extension("service"))
        } else {
            (yaml.with_extension("service"), yaml.with_extension("error"))
        };
        if update {
            fs::write(&expected_path, &actual).unwrap();
            let _ = fs::remove_file(stale);
            continue;
        }
        let expected = fs::read_to_string(&expected_path).unwrap_or_default();
        if expected != actual {
            failures.push(format!(
                "{}:\n{}",
                expected_path.display(),
                diff(&expected, &actual)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "golden mismatches (SYSTEMK_UPDATE_GOLDEN=1 to accept):\n{}",
        failures.join("\n")
    );
}

/// systemd 252 itself reads every golden unit without a warning: each directive is
/// known, each value parses. Only missing binaries of the test cases are tolerated.
#[test]
fn golden_units_pass_systemd_analyze_verify() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden");
    let scratch = tempfile::tempdir().unwrap();
    let mut units = Vec::new();
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if !name.ends_with(".service") || name.ends_with(".vendor.service") {
            continue;
        }
        let text = fs::read_to_string(&path).unwrap();
        // `# <name>` lines start the service, its stdin socket and the pod's slice; other
        // `#` lines (the environment file, shown verbatim) stay with the unit before.
        let mut blocks: Vec<(String, String)> = Vec::new();
        for (i, part) in text.strip_prefix("# ").unwrap().split("\n# ").enumerate() {
            let (header, body) = part.split_once('\n').unwrap_or((part, ""));
            let is_unit = header.ends_with(".socket") || header.ends_with(".slice");
            match blocks.last_mut() {
                Some((_, unit)) if i > 0 && !is_unit => unit.push_str(&format!("# {part}\n")),
                _ => blocks.push((header.to_owned(), format!("{body}\n"))),
            }
        }
        for (name, unit) in blocks {
            let target = scratch.path().join(name);
            fs::write(&target, unit).unwrap();
            units.push(target);
        }
    }
    // The pod's other units that a golden unit requires (its earlier init containers)
    // are not golden cases themselves: stand-ins let systemd resolve the dependency.
    for unit in units.clone() {
        let text = fs::read_to_string(&unit).unwrap();
        for required in text.lines().filter_map(|l| l.strip_prefix("Requires=")) {
            let stand_in = scratch.path().join(required);
            if !stand_in.exists() {
                fs::write(&stand_in, "[Service]\nType=oneshot\nExecStart=/bin/true\n").unwrap();
            }
        }
    }
    let output = std::process::Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(&units)
        .output()
        .expect("systemd-analyze (systemd 252) must be installed to check the golden units");
    let complaints: Vec<_> = String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter(|l| !l.contains("is not executable: No such file or directory"))
        .map(str::to_owned)
        .collect();
    assert!(
        complaints.is_empty(),
        "systemd-analyze verify:\n{}",
        complaints.join("\n")
    );
}
