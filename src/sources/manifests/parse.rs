//! One manifest file → its static pods, with the kubelet's defaults applied. Layer 5, pure:
//! the caller reads the file; this only turns text into pods or one error for the file.
//!
//! Defaults follow the kubelet's `applyDefaults` for file pods (pkg/kubelet/config/common.go):
//! namespace `default`, `-<node name>` appended to the name, `spec.nodeName` set, a
//! `NoExecute` toleration for every taint, `kubernetes.io/config.source=file` and
//! `kubernetes.io/config.hash`.
//!
//! One deliberate difference: the kubelet's UID is an md5 over the node, the file path **and
//! the whole pod**, so any edit makes a new pod and restarts every container. Here the UID
//! hashes only the node name, the file's name and the pod's namespace/name, so an edited pod
//! keeps its UID and the reconciler restarts just the containers that changed (issue 3);
//! `kubernetes.io/config.hash` still changes with every edit. The file's name, not its full
//! path, goes into the UID so moving the manifest directory does not restart pods. A `uid` in
//! the manifest is ignored: static pod UIDs belong to this source.

use std::path::Path;

use k8s_openapi::api::core::v1::{Pod, Toleration};
use ring::digest::{Context, SHA256, digest};
use serde::Deserialize;

use super::MANIFEST_FILE_ANNOTATION;
use super::validate::validate;
use crate::package::PullPolicy;
use crate::sources::{CONFIG_HASH_ANNOTATION, CONFIG_SOURCE_ANNOTATION, Error, SourceId};

/// The namespace of a static pod that names none (the kubelet's `metav1.NamespaceDefault`).
const DEFAULT_NAMESPACE: &str = "default";

/// One non-empty YAML document of a manifest file, of any kind.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// 1-based index of the document in the file (empty documents count), for messages.
    pub number: usize,
    /// Its `apiVersion`, when it has one.
    pub api_version: Option<String>,
    /// Its `kind`.
    pub kind: String,
    /// The whole document.
    pub value: serde_yaml_ng::Value,
}

impl Document {
    /// Its `metadata.name`, empty when it has none.
    pub fn name(&self) -> &str {
        self.value
            .get("metadata")
            .and_then(|metadata| metadata.get("name"))
            .and_then(serde_yaml_ng::Value::as_str)
            .unwrap_or_default()
    }

    /// Whether it is a v1 Pod, the only kind a static-pod directory runs.
    pub fn is_pod(&self) -> bool {
        self.api_version.as_deref() == Some("v1") && self.kind == "Pod"
    }

    /// The error for this document of the manifest at `path`.
    pub fn invalid(&self, path: &Path, problem: String) -> Error {
        Error::InvalidPod {
            path: path.to_owned(),
            document: self.number,
            problem,
        }
    }
}

/// Every non-empty document of `text`, the contents of the manifest at `path`. A syntax
/// error or a document without a kind makes the whole file an error.
pub fn documents(text: &str, path: &Path) -> Result<Vec<Document>, Error> {
    let mut documents = Vec::new();
    for (index, document) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let number = index + 1;
        let value =
            serde_yaml_ng::Value::deserialize(document).map_err(|source| Error::Syntax {
                path: path.to_owned(),
                line: source.location().map(|location| location.line()),
                source,
            })?;
        if value.is_null() {
            continue;
        }
        let api_version = value
            .get("apiVersion")
            .and_then(serde_yaml_ng::Value::as_str)
            .map(str::to_owned);
        let Some(kind) = value.get("kind").and_then(serde_yaml_ng::Value::as_str) else {
            return Err(Error::InvalidPod {
                path: path.to_owned(),
                document: number,
                problem: "the document has no kind".to_owned(),
            });
        };
        documents.push(Document {
            number,
            api_version,
            kind: kind.to_owned(),
            value,
        });
    }
    Ok(documents)
}

/// Every Pod in `text`, the contents of the manifest at `path`, defaulted for `node_name`.
///
/// Empty documents are skipped, documents of another kind are skipped with a warning. The
/// file is all or nothing: one broken document makes the whole file an error.
pub(super) fn parse_manifest(text: &str, path: &Path, node_name: &str) -> Result<Vec<Pod>, Error> {
    let mut pods = Vec::new();
    for document in documents(text, path)? {
        if !document.is_pod() {
            tracing::warn!(
                path = %path.display(),
                document = document.number,
                kind = document.kind,
                api_version = document.api_version,
                "skipping a document that is not a v1 Pod"
            );
            continue;
        }
        let pod: Pod = serde_yaml_ng::from_value(document.value.clone())
            .map_err(|e| document.invalid(path, e.to_string()))?;
        pods.push(static_pod(pod, path, document.number, node_name)?);
    }
    Ok(pods)
}

/// `pod`, read from document `document` of the manifest at `path`, as the static pod of
/// `node_name`: the kubelet's defaults applied (see the module doc), then validated.
pub fn static_pod(
    mut pod: Pod,
    path: &Path,
    document: usize,
    node_name: &str,
) -> Result<Pod, Error> {
    let invalid = |problem: String| Error::InvalidPod {
        path: path.to_owned(),
        document,
        problem,
    };
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy())
        .unwrap_or_default();
    apply_defaults(&mut pod, &file_name, node_name).map_err(invalid)?;
    validate(&pod).map_err(invalid)?;
    Ok(pod)
}

/// The kubelet's defaults for a file pod, with a content-independent UID (see the module doc).
fn apply_defaults(pod: &mut Pod, file_name: &str, node_name: &str) -> Result<(), String> {
    let meta = &mut pod.metadata;
    let name = meta
        .name
        .take()
        .filter(|name| !name.is_empty())
        .ok_or("metadata.name is missing")?;
    let namespace = meta
        .namespace
        .get_or_insert_with(|| DEFAULT_NAMESPACE.to_owned())
        .clone();
    meta.uid = Some(stable_uid(node_name, file_name, &namespace, &name));
    meta.name = Some(format!("{name}-{}", node_name.to_lowercase()));
    let annotations = meta.annotations.get_or_insert_with(Default::default);
    annotations.remove(CONFIG_HASH_ANNOTATION);
    annotations.insert(
        CONFIG_SOURCE_ANNOTATION.to_owned(),
        SourceId::File.as_str().to_owned(),
    );
    annotations.insert(MANIFEST_FILE_ANNOTATION.to_owned(), file_name.to_owned());
    // A manifest states what is wanted; any status in it is noise.
    pod.status = None;

    let spec = pod.spec.get_or_insert_with(Default::default);
    spec.node_name = Some(node_name.to_owned());
    // As the kubelet does, so a mirror pod is never evicted for a node problem: a static
    // pod only stops when its manifest goes away.
    let tolerate_all = Toleration {
        operator: Some("Exists".to_owned()),
        effect: Some("NoExecute".to_owned()),
        ..Toleration::default()
    };
    let tolerations = spec.tolerations.get_or_insert_with(Vec::new);
    if !tolerations.contains(&tolerate_all) {
        tolerations.push(tolerate_all);
    }

    // The API server defaults imagePullPolicy on create; a file pod gets the same rule.
    let pod_spec = pod.spec.get_or_insert_with(Default::default);
    let init = pod_spec.init_containers.iter_mut().flatten();
    for container in pod_spec.containers.iter_mut().chain(init) {
        if container
            .image_pull_policy
            .as_deref()
            .is_none_or(str::is_empty)
        {
            let image = container.image.as_deref().unwrap_or_default();
            container.image_pull_policy = Some(PullPolicy::default_for(image).as_str().to_owned());
        }
    }

    let hash = config_hash(pod)?;
    if let Some(annotations) = pod.metadata.annotations.as_mut() {
        annotations.insert(CONFIG_HASH_ANNOTATION.to_owned(), hash);
    }
    Ok(())
}

/// A UUID-shaped UID from the first 16 bytes of a SHA-256 over the pod's identity. NUL
/// separates the fields because no file name or DNS name contains one.
fn stable_uid(node_name: &str, file_name: &str, namespace: &str, name: &str) -> String {
    let mut context = Context::new(&SHA256);
    for part in [
        "systemk static pod\0host:",
        node_name,
        "\0file:",
        file_name,
        "\0namespace:",
        namespace,
        "\0name:",
        name,
    ] {
        context.update(part.as_bytes());
    }
    let hex = hex::encode(&context.finish().as_ref()[..16]);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// A hash of the defaulted pod: it changes with every edit of the pod, and only then.
/// serde_json writes maps in key order, so the same pod always serialises the same way.
fn config_hash(pod: &Pod) -> Result<String, String> {
    let json = serde_json::to_vec(pod).map_err(|e| format!("cannot serialise the pod: {e}"))?;
    Ok(hex::encode(&digest(&SHA256, &json).as_ref()[..16]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODE: &str = "Node-1";

    fn pod_yaml(name: &str, image: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n\
             spec:\n  containers:\n    - name: c\n      image: {image}\n"
        )
    }

    fn parse(text: &str, file: &str) -> Result<Vec<Pod>, Error> {
        parse_manifest(text, Path::new(file), NODE)
    }

    fn annotation<'a>(pod: &'a Pod, key: &str) -> Option<&'a str> {
        pod.metadata
            .annotations
            .as_ref()?
            .get(key)
            .map(String::as_str)
    }

    #[test]
    fn defaults_follow_the_kubelet() {
        let pods = parse(&pod_yaml("web", "/bin/true"), "/etc/m/web.yaml").unwrap();
        let pod = &pods[0];
        assert_eq!(pod.metadata.name.as_deref(), Some("web-node-1"));
        assert_eq!(pod.metadata.namespace.as_deref(), Some("default"));
        let spec = pod.spec.as_ref().unwrap();
        assert_eq!(spec.node_name.as_deref(), Some(NODE));
        let toleration = &spec.tolerations.as_ref().unwrap()[0];
        assert_eq!(toleration.operator.as_deref(), Some("Exists"));
        assert_eq!(toleration.effect.as_deref(), Some("NoExecute"));
        assert_eq!(annotation(pod, CONFIG_SOURCE_ANNOTATION), Some("file"));
        assert_eq!(annotation(pod, MANIFEST_FILE_ANNOTATION), Some("web.yaml"));
        assert_eq!(annotation(pod, CONFIG_HASH_ANNOTATION).unwrap().len(), 32);
    }

    #[test]
    fn image_pull_policy_defaults_as_the_api_server_does() {
        let policy = |image: &str| {
            let pods = parse(&pod_yaml("web", image), "web.yaml").unwrap();
            pods[0].spec.as_ref().unwrap().containers[0]
                .image_pull_policy
                .clone()
        };
        assert_eq!(policy("uptimed").as_deref(), Some("Always"));
        assert_eq!(policy("uptimed=1.0").as_deref(), Some("IfNotPresent"));
        assert_eq!(policy("/bin/true").as_deref(), Some("IfNotPresent"));
        let given = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n    \
                     - name: c\n      image: uptimed\n      imagePullPolicy: Never\n";
        let pods = parse(given, "web.yaml").unwrap();
        assert_eq!(
            pods[0].spec.as_ref().unwrap().containers[0]
                .image_pull_policy
                .as_deref(),
            Some("Never")
        );
    }

    #[test]
    fn uid_is_uuid_shaped_and_stable() {
        let first = parse(&pod_yaml("web", "/bin/true"), "/etc/m/web.yaml").unwrap();
        let again = parse(&pod_yaml("web", "/bin/true"), "/elsewhere/web.yaml").unwrap();
        let uid = first[0].metadata.uid.as_deref().unwrap();
        assert_eq!(uid.len(), 36);
        assert_eq!(
            uid.split('-').map(str::len).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert_eq!(again[0].metadata.uid.as_deref(), Some(uid));
        assert_eq!(first, again);
    }

    #[test]
    fn edited_pod_keeps_its_uid_but_not_its_hash() {
        let before = parse(&pod_yaml("web", "/bin/true"), "web.yaml").unwrap();
        let after = parse(&pod_yaml("web", "/bin/false"), "web.yaml").unwrap();
        assert_eq!(before[0].metadata.uid, after[0].metadata.uid);
        assert_ne!(
            annotation(&before[0], CONFIG_HASH_ANNOTATION),
            annotation(&after[0], CONFIG_HASH_ANNOTATION)
        );
    }

    #[test]
    fn uid_differs_by_file_name_and_node() {
        let text = pod_yaml("web", "/bin/true");
        let here = parse(&text, "a.yaml").unwrap();
        let other_file = parse(&text, "b.yaml").unwrap();
        let other_node = parse_manifest(&text, Path::new("a.yaml"), "node-2").unwrap();
        assert_ne!(here[0].metadata.uid, other_file[0].metadata.uid);
        assert_ne!(here[0].metadata.uid, other_node[0].metadata.uid);
    }

    #[test]
    fn uid_and_hash_from_the_manifest_are_replaced() {
        let text = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  uid: mine\n  \
                    annotations:\n    kubernetes.io/config.hash: forged\n\
                    spec:\n  containers:\n    - name: c\n      image: /bin/true\n";
        let pod = &parse(text, "web.yaml").unwrap()[0];
        assert_ne!(pod.metadata.uid.as_deref(), Some("mine"));
        assert_ne!(annotation(pod, CONFIG_HASH_ANNOTATION), Some("forged"));
    }

    #[test]
    fn empty_file_has_no_pods() {
        assert!(parse("", "empty.yaml").unwrap().is_empty());
        assert!(
            parse("---\n# only a comment\n---\n", "empty.yaml")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn syntax_error_names_the_line() {
        // Line 10 of the file, in its second document: lines count from the top of the file.
        let text = format!("{}---\nkind: a: b\n", pod_yaml("web", "/bin/true"));
        match parse(&text, "broken.yaml") {
            Err(Error::Syntax { line, .. }) => assert_eq!(line, Some(10)),
            other => panic!("expected a syntax error, got {other:?}"),
        }
    }

    #[test]
    fn document_without_kind_is_invalid() {
        let error = parse("metadata:\n  name: web\n", "web.yaml").unwrap_err();
        assert_eq!(error.reason(), "InvalidPod");
        assert!(!error.is_transient());
    }

    #[test]
    fn missing_name_is_invalid() {
        let text =
            "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n    - name: c\n      image: x\n";
        let error = parse(text, "web.yaml").unwrap_err();
        assert!(error.to_string().contains("metadata.name"), "{error}");
    }

    #[test]
    fn invalid_names_are_reported() {
        for (text, expected) in [
            (pod_yaml("Web", "x"), "pod name"),
            (
                pod_yaml("web", "x").replace("name: c", "name: C_1"),
                "container name",
            ),
            (
                pod_yaml("web", "x").replace("name: web", "name: web\n  namespace: a.b"),
                "namespace",
            ),
            (
                pod_yaml("web", "x").replace(
                    "containers:",
                    "initContainers:\n    - name: c\n      image: y\n  containers:",
                ),
                "used twice",
            ),
            (
                "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers: []\n"
                    .to_owned(),
                "empty",
            ),
        ] {
            let error = parse(&text, "web.yaml").unwrap_err();
            assert!(
                error.to_string().contains(expected),
                "{error} lacks {expected:?}"
            );
        }
    }
}
