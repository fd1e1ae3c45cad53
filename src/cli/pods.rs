//! `systemk pods [-o json]`: the pods on this machine, like `kubectl get pods -A`, read
//! from systemd (the units and their `[X-Kubernetes]` sections) and from the status the
//! reconciler saved in each pod's directory. Needs neither the agent nor an API server;
//! changes nothing. Below the table, a line per pod names the fields systemk ignores.

mod row;

use anyhow::Context as _;
use k8s_openapi::api::core::v1::Pod;

use crate::config::{PodsArgs, PodsFormat};
use crate::pod::{self, PodDirs};
use crate::systemd::Systemd;

/// Prints the pods in the format `args` asks for.
pub async fn run(args: PodsArgs) -> anyhow::Result<()> {
    let systemd = Systemd::connect()
        .await
        .context("cannot reach systemd on the system bus (systemk pods reads pods from systemd)")?;
    let units = systemd
        .list_managed(&args.paths.unit_dir)
        .await
        .context("cannot list systemk's units")?;
    let dirs = PodDirs::new(&args.paths.state_dir, &args.paths.runtime_dir);
    let now = crate::clock::now();
    let mut pods = tokio::task::spawn_blocking(move || pod::live_pods(&dirs, units, now))
        .await
        .context("reading the pods' state failed")?
        .with_context(|| {
            format!(
                "cannot read the pods' state in {}",
                args.paths.state_dir.display()
            )
        })?;
    pods.sort_by(|a, b| sort_key(a).cmp(&sort_key(b)));
    let out = match args.output {
        PodsFormat::Table => {
            let rows: Vec<row::PodRow> = pods.iter().map(|p| row::pod_row(p, now)).collect();
            row::table(&rows) + &notes(&pods)
        }
        PodsFormat::Json => {
            let list = serde_json::json!({
                "apiVersion": "v1",
                "kind": "List",
                "metadata": { "resourceVersion": "" },
                "items": pods,
            });
            let mut text = serde_json::to_string_pretty(&list).context("cannot encode the pods")?;
            text.push('\n');
            text
        }
    };
    print!("{out}");
    Ok(())
}

/// One line per pod with fields systemk ignores, after the table: what its Warning event
/// (or, for a static pod, its warn log line) said.
fn notes(pods: &[Pod]) -> String {
    pods.iter()
        .filter_map(|pod| {
            let warning = pod::fields::review(pod).warning()?;
            let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
            let name = pod.metadata.name.as_deref().unwrap_or_default();
            Some(format!("{namespace}/{name}: {warning}\n"))
        })
        .collect()
}

fn sort_key(pod: &Pod) -> (Option<&str>, Option<&str>) {
    (
        pod.metadata.namespace.as_deref(),
        pod.metadata.name.as_deref(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_with_ignored_fields_get_a_line_below_the_table() {
        let pod = |name: &str, spec: serde_json::Value| -> Pod {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": name, "namespace": "web"},
                "spec": spec,
            }))
            .unwrap()
        };
        let plain = pod(
            "plain",
            serde_json::json!({"containers": [{"name": "main"}]}),
        );
        let aliased = pod(
            "aliased",
            serde_json::json!({"containers": [{"name": "main"}], "hostAliases": [{"ip": "10.0.0.1"}]}),
        );
        assert_eq!(
            notes(&[plain, aliased]),
            "web/aliased: systemk ignores spec.hostAliases (containers use the node's /etc/hosts)\n"
        );
    }
}
