//! `KubernetesMeta`: the `[X-Kubernetes]` section through which a unit file carries the
//! pod it belongs to, so systemk can rebuild its pods from systemd alone (systemd is the
//! source of truth; unit names are never parsed back, since long ones are shortened).
//!
//! systemd ignores `X-` sections, so their values are systemk's own format: each value
//! goes through `escape::escape_plain` (backslash and control bytes escaped, edge spaces
//! as `\x20`), so no pod string (an image, a UID) can add a line to the file.
//!
//! `SpecHash` is the hex SHA-256 of the whole rendered unit without the `SpecHash=` line.
//! It fingerprints everything that decides how the container runs (command, environment,
//! user, mounts, limits, the vendor unit, the node IPs) rather than the container spec
//! alone: the reconciler builds the desired unit, compares hashes, and restarts exactly
//! when what systemd would run changes. Recomputing it over a unit on disk also tells
//! whether someone edited the file by hand.
//!
//! Layer 2: pure, no I/O.

use std::fmt;
use std::str::FromStr;

use ring::digest::{SHA256, digest};

use super::error::{Error, Result};
use super::escape::{escape_plain, unescape_plain};
use super::file::UnitFile;
use super::name::UnitName;
use super::pod_order;
use super::slice::SLICE;

/// The section name.
pub const SECTION: &str = "X-Kubernetes";

const NAMESPACE: &str = "Namespace";
const POD_NAME: &str = "PodName";
const POD_UID: &str = "PodUID";
const CONTAINER: &str = "Container";
const CONTAINER_INDEX: &str = "ContainerIndex";
const INIT_CONTAINER: &str = "InitContainer";
const IMAGE: &str = "Image";
const IMAGE_ID: &str = "ImageID";
const RESTART_POLICY: &str = "RestartPolicy";
const SPEC_HASH: &str = "SpecHash";

/// A pod's `spec.restartPolicy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum RestartPolicy {
    /// Restart whenever the container exits (Kubernetes' default).
    #[default]
    Always,
    /// Restart only after a non-zero exit.
    OnFailure,
    /// Never restart.
    Never,
}

impl RestartPolicy {
    /// The Kubernetes spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Always => "Always",
            Self::OnFailure => "OnFailure",
            Self::Never => "Never",
        }
    }
}

impl fmt::Display for RestartPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RestartPolicy {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "Always" => Ok(Self::Always),
            "OnFailure" => Ok(Self::OnFailure),
            "Never" => Ok(Self::Never),
            _ => Err("expected Always, OnFailure or Never"),
        }
    }
}

/// The pod metadata a systemk unit carries in its `[X-Kubernetes]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubernetesMeta {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub pod_name: String,
    /// The pod's UID: distinguishes a pod from an earlier pod of the same name.
    pub pod_uid: String,
    /// The container's name.
    pub container: String,
    /// Position of the container in `initContainers` or `containers`: init containers
    /// run in this order.
    pub container_index: usize,
    /// Whether the container is an init container.
    pub init_container: bool,
    /// The image reference as the pod spec gives it.
    pub image: String,
    /// What the image resolved to, as shown in the container status' `imageID`.
    pub image_id: String,
    /// The pod's restart policy.
    pub restart_policy: RestartPolicy,
    /// Hex SHA-256 of the rendered unit without the `SpecHash=` line; set by
    /// [`KubernetesMeta::write_to`], read back by [`KubernetesMeta::from_unit`].
    pub spec_hash: String,
}

impl KubernetesMeta {
    /// Replaces the `[X-Kubernetes]` section of `unit` with this metadata, as the last
    /// section, and seals the unit with its `SpecHash` (also stored in `self`). Call it
    /// after every other change to the unit, or the hash is stale.
    pub fn write_to(&mut self, unit: &mut UnitFile) -> Result<()> {
        unit.remove_section(SECTION);
        let index = self.container_index.to_string();
        let init = if self.init_container { "yes" } else { "no" };
        for (key, value) in [
            (NAMESPACE, self.namespace.as_str()),
            (POD_NAME, &self.pod_name),
            (POD_UID, &self.pod_uid),
            (CONTAINER, &self.container),
            (CONTAINER_INDEX, &index),
            (INIT_CONTAINER, init),
            (IMAGE, &self.image),
            (IMAGE_ID, &self.image_id),
            (RESTART_POLICY, self.restart_policy.as_str()),
        ] {
            unit.add(SECTION, key, escape_plain(value))?;
        }
        self.spec_hash = spec_hash(unit);
        unit.add(SECTION, SPEC_HASH, self.spec_hash.clone())
    }

    /// Reads the `[X-Kubernetes]` section of a unit systemk wrote.
    pub fn from_unit(unit: &UnitFile) -> Result<Self> {
        let text = |key: &'static str| -> Result<String> {
            let raw = unit.get(SECTION, key).ok_or(Error::MissingMeta { key })?;
            unescape_plain(raw).ok_or_else(|| Error::InvalidMeta {
                key,
                value: raw.to_owned(),
                why: "invalid escape sequence",
            })
        };
        let invalid = |key, value: String, why| Error::InvalidMeta { key, value, why };
        let namespace = text(NAMESPACE)?;
        let pod_name = text(POD_NAME)?;
        let container = text(CONTAINER)?;
        UnitName::for_container(&namespace, &pod_name, &container)?;
        let pod_uid = text(POD_UID)?;
        if pod_uid.is_empty() {
            return Err(invalid(POD_UID, pod_uid, "empty"));
        }
        let index = text(CONTAINER_INDEX)?;
        let container_index = index
            .parse()
            .map_err(|_| invalid(CONTAINER_INDEX, index, "not a number"))?;
        let init_container = match text(INIT_CONTAINER)?.as_str() {
            "yes" => true,
            "no" => false,
            other => {
                return Err(invalid(
                    INIT_CONTAINER,
                    other.to_owned(),
                    "expected yes or no",
                ));
            }
        };
        let policy = text(RESTART_POLICY)?;
        let restart_policy = policy
            .parse()
            .map_err(|why| invalid(RESTART_POLICY, policy, why))?;
        let spec_hash = text(SPEC_HASH)?;
        if spec_hash.len() != 64
            || !spec_hash
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(invalid(
                SPEC_HASH,
                spec_hash,
                "expected 64 lowercase hex digits",
            ));
        }
        Ok(Self {
            namespace,
            pod_name,
            pod_uid,
            container,
            container_index,
            init_container,
            image: text(IMAGE)?,
            image_id: text(IMAGE_ID)?,
            restart_policy,
            spec_hash,
        })
    }

    /// The unit name this metadata belongs to.
    pub fn unit_name(&self) -> Result<UnitName> {
        Ok(UnitName::for_container(
            &self.namespace,
            &self.pod_name,
            &self.container,
        )?)
    }
}

/// The hex SHA-256 of `unit` rendered without its `SpecHash=` line. Equal to the stored
/// `SpecHash` exactly when the file is as systemk wrote it.
pub fn spec_hash(unit: &UnitFile) -> String {
    let mut unsealed = unit.clone();
    unsealed.remove(SECTION, SPEC_HASH);
    hex::encode(digest(&SHA256, unsealed.render().as_bytes()))
}

/// The `SpecHash`es `unit` had as earlier versions of systemk wrote it, which differ
/// from it only by the `Slice=` line — none (before pods ran in `systemk.slice`), then
/// `systemk.slice` (before each pod had its own slice) — and by the pod's order (before
/// it was written into the units, see `pod_order`). A unit on disk with one of these
/// hashes must not restart a running container (see the worker): it is rewritten, and
/// moves to its slice at its next start.
pub fn earlier_spec_hashes(unit: &UnitFile) -> Vec<String> {
    let unordered = pod_order::unordered(unit);
    let mut hashes = sliced_before(unit).to_vec();
    if unordered != *unit {
        hashes.extend(sliced_before(&unordered));
        hashes.push(spec_hash(&unordered));
    }
    hashes
}

/// The hashes of `unit` without its `Slice=` line and in `systemk.slice`.
fn sliced_before(unit: &UnitFile) -> [String; 2] {
    let mut unsliced = unit.clone();
    unsliced.remove("Service", "Slice");
    let mut in_root = unit.clone();
    // `set` keeps the line where the builder put it, as the earlier builder did; it
    // cannot refuse the constant.
    let in_root_hash = in_root
        .set("Service", "Slice", SLICE)
        .map_or_else(|_| spec_hash(&unsliced), |()| spec_hash(&in_root));
    [spec_hash(&unsliced), in_root_hash]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> KubernetesMeta {
        KubernetesMeta {
            namespace: "default".into(),
            pod_name: "web".into(),
            pod_uid: "0b7c7b9e-5d7a-4f55-9a43-2d2f0e0c1a11".into(),
            container: "nginx".into(),
            container_index: 1,
            init_container: false,
            image: "nginx=1.22.1-9".into(),
            image_id: "nginx=1.22.1-9".into(),
            restart_policy: RestartPolicy::OnFailure,
            spec_hash: String::new(),
        }
    }

    fn sealed(meta: &mut KubernetesMeta) -> UnitFile {
        let mut unit = UnitFile::parse("[Service]\nExecStart=/bin/true\n").unwrap();
        meta.write_to(&mut unit).unwrap();
        unit
    }

    #[test]
    fn round_trips_through_render_and_parse() {
        let mut meta = meta();
        let unit = sealed(&mut meta);
        let back = KubernetesMeta::from_unit(&UnitFile::parse(&unit.render()).unwrap()).unwrap();
        assert_eq!(back, meta);
        assert_eq!(
            back.unit_name().unwrap().as_str(),
            "systemk.default.web.nginx.service"
        );
        assert!(unit.render().ends_with(&format!("[X-Kubernetes]\nNamespace=default\nPodName=web\nPodUID=0b7c7b9e-5d7a-4f55-9a43-2d2f0e0c1a11\nContainer=nginx\nContainerIndex=1\nInitContainer=no\nImage=nginx=1.22.1-9\nImageID=nginx=1.22.1-9\nRestartPolicy=OnFailure\nSpecHash={}\n", meta.spec_hash)));
    }

    #[test]
    fn hostile_values_stay_on_their_line() {
        let mut meta = meta();
        meta.image = "x\nExecStartPre=/bin/evil\\".into();
        meta.pod_uid = " \r[Service]\nUser=root ".into();
        let unit = sealed(&mut meta);
        let text = unit.render();
        assert_eq!(text.lines().count(), 14, "{text}");
        let back = KubernetesMeta::from_unit(&UnitFile::parse(&text).unwrap()).unwrap();
        assert_eq!(back, meta);
    }

    #[test]
    fn earlier_hashes_are_those_of_the_unit_without_a_slice_and_in_the_root_slice() {
        let sealed_with = |slice: Option<&str>| {
            let mut unit = UnitFile::parse("[Service]\nExecStart=/bin/true\n").unwrap();
            if let Some(slice) = slice {
                unit.add("Service", "Slice", slice).unwrap();
            }
            unit.add("Service", "KillSignal", "SIGTERM").unwrap();
            let mut meta = meta();
            meta.write_to(&mut unit).unwrap();
            (unit, meta.spec_hash)
        };
        let (_, unsliced) = sealed_with(None);
        let (_, in_root) = sealed_with(Some("systemk.slice"));
        let (pod_slice, own) = sealed_with(Some("systemk-pod0b7c7b9e.slice"));
        assert_eq!(earlier_spec_hashes(&pod_slice), [unsliced.clone(), in_root]);
        assert!(!earlier_spec_hashes(&pod_slice).contains(&own));
        // Any other change is a change.
        let mut changed = pod_slice.clone();
        changed.set("Service", "ExecStart", "/bin/false").unwrap();
        assert!(!earlier_spec_hashes(&changed).contains(&unsliced));
    }

    #[test]
    fn a_unit_written_before_the_pod_order_is_an_earlier_version() {
        let mut meta = meta();
        let text = "[Unit]\nAfter=systemk.default.web.setup.service\n\
                    Requires=systemk.default.web.setup.service\n\
                    [Service]\nType=oneshot\nExecStart=/bin/true\nSlice=systemk-pod0b7c7b9e.slice\n";
        let mut ordered = UnitFile::parse(text).unwrap();
        meta.write_to(&mut ordered).unwrap();
        let mut before = pod_order::unordered(&ordered);
        assert_eq!(before.get("Service", "Type"), Some("exec"));
        before.remove("Service", "Slice");
        let hashes = earlier_spec_hashes(&ordered);
        assert!(
            hashes.contains(&spec_hash(&before)),
            "unsliced and unordered"
        );
        assert!(hashes.contains(&spec_hash(&pod_order::unordered(&ordered))));
        assert!(!hashes.contains(&spec_hash(&ordered)));
    }

    #[test]
    fn spec_hash_detects_any_change() {
        let mut meta = meta();
        let mut unit = sealed(&mut meta);
        assert_eq!(spec_hash(&unit), meta.spec_hash);
        unit.set("Service", "ExecStart", "/bin/false").unwrap();
        assert_ne!(spec_hash(&unit), meta.spec_hash);
    }

    #[test]
    fn missing_or_bad_keys_are_errors() {
        let mut meta = meta();
        let unit = sealed(&mut meta);
        for (key, bad) in [
            ("Namespace", "Bad"),
            ("InitContainer", "maybe"),
            ("ContainerIndex", "-1"),
            ("RestartPolicy", "Sometimes"),
            ("SpecHash", "abc"),
            ("PodUID", ""),
            ("Image", "\\q"),
        ] {
            let mut broken = unit.clone();
            broken.set(SECTION, key, bad).unwrap();
            assert!(KubernetesMeta::from_unit(&broken).is_err(), "{key}={bad}");
        }
        let mut missing = unit.clone();
        missing.remove(SECTION, "Image");
        assert_eq!(
            KubernetesMeta::from_unit(&missing),
            Err(Error::MissingMeta { key: "Image" })
        );
    }
}
