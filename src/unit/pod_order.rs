//! A pod's order, written into its units so that systemd keeps it without systemk: each
//! container's unit is ordered `After=` and `Requires=` every init container before it in
//! `initContainers` (an app container: all of them). An init container that runs to
//! completion is `Type=oneshot`, whose start job ends when its process exits with
//! success, so what is ordered after it waits for its success and is not started at all
//! when it fails. A sidecar before it is `After=` and `Wants=` instead: `Requires=` would
//! stop or restart every later container whenever systemk stops or restarts the sidecar
//! (systemd propagates an explicit stop and restart to the units that require it), while
//! the kubelet restarts a sidecar beside running app containers. At boot every enabled
//! unit is started, and this order runs the init containers again, one by one, before
//! the app containers start: as the kubelet re-runs them for a new sandbox. Pure.
//! Layer 2.

use k8s_openapi::api::core::v1::{Container, Pod};

use super::error::Result;
use super::file::UnitFile;
use super::name::{UNIT_PREFIX, UnitName};

/// Whether `container` (an init container when `init`) runs to completion: an init
/// container that is not a sidecar (`restartPolicy: Always`).
pub fn runs_to_completion(container: &Container, init: bool) -> bool {
    init && container.restart_policy.as_deref() != Some("Always")
}

/// A unit that comes before another of its pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Before {
    /// Its name.
    pub unit: UnitName,
    /// Whether it is a sidecar's, which is wanted rather than required.
    pub sidecar: bool,
}

/// The units of `pod` that come before the container at `index` of `initContainers`
/// (`init`) or `containers`.
pub fn units_before(pod: &Pod, init: bool, index: usize) -> Result<Vec<Before>> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let pod_name = pod.metadata.name.as_deref().unwrap_or_default();
    let inits = pod
        .spec
        .as_ref()
        .and_then(|spec| spec.init_containers.as_deref())
        .unwrap_or_default();
    let before = if init {
        &inits[..index.min(inits.len())]
    } else {
        inits
    };
    before
        .iter()
        .map(|c| {
            Ok(Before {
                unit: UnitName::for_container(namespace, pod_name, &c.name)?,
                sidecar: !runs_to_completion(c, true),
            })
        })
        .collect()
}

/// Orders `unit` after `before`: each required, a sidecar wanted.
pub fn order_after(unit: &mut UnitFile, before: &[Before]) -> Result<()> {
    for Before {
        unit: name,
        sidecar,
    } in before
    {
        unit.add("Unit", "After", name.as_str())?;
        let pull = if *sidecar { "Wants" } else { "Requires" };
        unit.add("Unit", pull, name.as_str())?;
    }
    Ok(())
}

/// `unit` as a systemk that did not write the order wrote it: without `After=`,
/// `Requires=` and `Wants=` on systemk units, and an init container's `Type=oneshot`
/// back to `exec`.
pub fn unordered(unit: &UnitFile) -> UnitFile {
    let mut unordered = unit.clone();
    unordered.retain("Unit", |key, value| {
        !(matches!(key, "After" | "Requires" | "Wants") && value.starts_with(UNIT_PREFIX))
    });
    if unordered.get("Service", "Type") == Some("oneshot") {
        // `set` keeps the line where it was; the constant cannot be refused.
        let _ = unordered.set("Service", "Type", "exec");
    }
    unordered
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pod() -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "shop", "uid": "u-1"},
            "spec": {
                "initContainers": [
                    {"name": "setup", "image": "/bin/true"},
                    {"name": "proxy", "image": "/bin/sleep", "restartPolicy": "Always"},
                    {"name": "migrate", "image": "/bin/true"},
                ],
                "containers": [{"name": "main", "image": "/bin/sleep"}],
            },
        }))
        .unwrap()
    }

    fn names(units: &[Before]) -> Vec<&str> {
        units.iter().map(|b| b.unit.as_str()).collect()
    }

    #[test]
    fn each_unit_comes_after_the_init_containers_before_it() {
        let pod = pod();
        assert!(units_before(&pod, true, 0).unwrap().is_empty());
        assert_eq!(
            names(&units_before(&pod, true, 2).unwrap()),
            [
                "systemk.shop.web.setup.service",
                "systemk.shop.web.proxy.service"
            ]
        );
        assert_eq!(units_before(&pod, false, 0).unwrap().len(), 3);
        let spec = pod.spec.as_ref().unwrap();
        let inits = spec.init_containers.as_ref().unwrap();
        assert!(runs_to_completion(&inits[0], true));
        assert!(
            !runs_to_completion(&inits[1], true),
            "a sidecar keeps running"
        );
        assert!(!runs_to_completion(&spec.containers[0], false));
    }

    #[test]
    fn the_order_is_after_and_requires_and_can_be_taken_out_again() {
        let pod = pod();
        let text = "[Unit]\nAfter=network.target\n[Service]\nType=oneshot\nExecStart=/bin/true\n";
        let mut unit = UnitFile::parse(text).unwrap();
        let before = units_before(&pod, false, 0).unwrap();
        order_after(&mut unit, &before).unwrap();
        assert_eq!(
            unit.get_all("Unit", "Requires"),
            [
                "systemk.shop.web.setup.service",
                "systemk.shop.web.migrate.service"
            ]
        );
        assert_eq!(
            unit.get_all("Unit", "Wants"),
            ["systemk.shop.web.proxy.service"],
            "a sidecar is wanted: its restart must not restart what follows it"
        );
        assert_eq!(unit.get_all("Unit", "After").len(), 4);
        let unordered = unordered(&unit);
        assert_eq!(unordered.get_all("Unit", "After"), ["network.target"]);
        assert!(unordered.get_all("Unit", "Requires").is_empty());
        assert!(unordered.get_all("Unit", "Wants").is_empty());
        assert_eq!(unordered.get("Service", "Type"), Some("exec"));
    }
}
