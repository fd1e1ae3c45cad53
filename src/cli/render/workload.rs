//! Which documents of a manifest `systemk render` turns into pods: Pods themselves, and the
//! pod template of the workload kinds that carry one (a Deployment's pods are its
//! template), named after the workload. Every other kind is skipped. Top layer, pure: no
//! node defaults here (the static-pod source applies those), no I/O.

use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use serde_yaml_ng::Value;

use crate::sources::manifests::Document;

/// Where the pod template sits in each workload kind: `(apiVersion, kind, path)`. A CronJob
/// nests a Job template, whose pod template is one level further down.
const TEMPLATES: &[(&str, &str, &[&str])] = &[
    ("v1", "ReplicationController", &["spec", "template"]),
    ("apps/v1", "Deployment", &["spec", "template"]),
    ("apps/v1", "ReplicaSet", &["spec", "template"]),
    ("apps/v1", "StatefulSet", &["spec", "template"]),
    ("apps/v1", "DaemonSet", &["spec", "template"]),
    ("batch/v1", "Job", &["spec", "template"]),
    (
        "batch/v1",
        "CronJob",
        &["spec", "jobTemplate", "spec", "template"],
    ),
];

/// The pod `document` describes: the Pod itself, or a workload's pod template as a Pod
/// named after the workload, in its namespace. `Ok(None)` for every other kind; `Err`
/// says what is wrong with a Pod or workload that cannot be read.
pub(super) fn pod_of(document: &Document) -> Result<Option<Pod>, String> {
    if document.is_pod() {
        return serde_yaml_ng::from_value(document.value.clone())
            .map(Some)
            .map_err(|e| e.to_string());
    }
    let api_version = document.api_version.as_deref().unwrap_or_default();
    let Some((_, _, path)) = TEMPLATES
        .iter()
        .find(|(version, kind, _)| *version == api_version && *kind == document.kind)
    else {
        return Ok(None);
    };
    let template = path
        .iter()
        .try_fold(&document.value, |value, key| value.get(key))
        .ok_or_else(|| format!("{} has no {}", document.kind, path.join(".")))?;
    let template: PodTemplateSpec = serde_yaml_ng::from_value(template.clone())
        .map_err(|e| format!("{}: {e}", path.join(".")))?;
    let mut metadata = template.metadata.unwrap_or_default();
    metadata.name = Some(document.name().to_owned());
    metadata.namespace = document
        .value
        .get("metadata")
        .and_then(|meta| meta.get("namespace"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    Ok(Some(Pod {
        metadata,
        spec: template.spec,
        status: None,
    }))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::sources::manifests::documents;

    fn only_document(text: &str) -> Document {
        let mut documents = documents(text, Path::new("test.yaml")).unwrap();
        assert_eq!(documents.len(), 1);
        documents.remove(0)
    }

    const CONTAINERS: &str = "containers:\n  - name: c\n    image: /bin/true\n";

    fn indented(text: &str, spaces: usize) -> String {
        let pad = " ".repeat(spaces);
        text.lines().map(|line| format!("{pad}{line}\n")).collect()
    }

    #[test]
    fn pod_is_itself() {
        let text = format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n{}",
            indented(CONTAINERS, 2)
        );
        let pod = pod_of(&only_document(&text)).unwrap().unwrap();
        assert_eq!(pod.metadata.name.as_deref(), Some("web"));
        assert_eq!(pod.spec.unwrap().containers[0].name, "c");
    }

    #[test]
    fn deployment_becomes_its_template_named_after_it() {
        let text = format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: shop\n\
             spec:\n  template:\n    metadata:\n      name: ignored\n      labels:\n        app: web\n\
             \x20   spec:\n{}",
            indented(CONTAINERS, 6)
        );
        let pod = pod_of(&only_document(&text)).unwrap().unwrap();
        assert_eq!(pod.metadata.name.as_deref(), Some("web"));
        assert_eq!(pod.metadata.namespace.as_deref(), Some("shop"));
        assert_eq!(pod.metadata.labels.unwrap()["app"], "web");
        assert_eq!(
            pod.spec.unwrap().containers[0].image.as_deref(),
            Some("/bin/true")
        );
    }

    #[test]
    fn cronjob_template_is_inside_its_job_template() {
        let text = format!(
            "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: nightly\n\
             spec:\n  jobTemplate:\n    spec:\n      template:\n        spec:\n{}",
            indented(CONTAINERS, 10)
        );
        let pod = pod_of(&only_document(&text)).unwrap().unwrap();
        assert_eq!(pod.metadata.name.as_deref(), Some("nightly"));
        assert_eq!(pod.metadata.namespace, None);
    }

    #[test]
    fn other_kinds_are_not_pods() {
        for text in [
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n",
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n",
            // The same kind name in a group systemk does not know is not a workload.
            "apiVersion: example.com/v1\nkind: Deployment\nmetadata:\n  name: web\n",
        ] {
            assert_eq!(pod_of(&only_document(text)), Ok(None), "{text}");
        }
    }

    #[test]
    fn workload_without_template_is_an_error() {
        let text = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec: {}\n";
        let error = pod_of(&only_document(text)).unwrap_err();
        assert!(error.contains("spec.template"), "{error}");
    }
}
