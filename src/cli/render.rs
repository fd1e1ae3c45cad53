//! `systemk render -f POD.yaml`: prints the units the pods of a manifest become, as a
//! static pod of this node, without installing or starting anything and without root.
//! A package installed here contributes its vendor unit; one that is not is synthesised
//! and a comment says so. Workloads (Deployment, Job…) render their pod template, named
//! after the workload (see [`workload`]); other kinds are skipped with a comment, so any
//! manifest meant for `kubectl apply` can be rendered. A container's `env` is not in its
//! unit but in the root-only environment file the unit names (`EnvironmentFile=`); render
//! prints that file's content after the unit as comment lines. It can: without a cluster,
//! every value comes from the manifest itself (a secret reference cannot be resolved).
//! A pod admission would refuse for its fields is a comment saying why; fields systemk
//! ignores are named in a comment before the units.

mod workload;

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;
use k8s_openapi::api::core::v1::Pod;

use crate::config::RenderArgs;
use crate::package::{ImageRef, Installer, InstallerConfig};
use crate::pod::{self, ContainerInputs, EnvFacts, PlanFacts, PlannedUnit, PodDirs};
use crate::sources::manifests;
use crate::unit::{self, NodeInfo, NodeSecurity, SystemUsers};

/// Prints the units of every pod in `args.file`.
pub async fn run(args: RenderArgs) -> anyhow::Result<()> {
    let node_name = super::hostname()?;
    let items = read_items(&args.file, &node_name)
        .with_context(|| format!("cannot read pods from {}", args.file.display()))?;
    let node = NodeInfo {
        hostname: node_name.clone(),
        internal_ip: args.node_ip.to_string(),
        external_ip: args.node_external_ip.unwrap_or(args.node_ip).to_string(),
    };
    let env = EnvFacts {
        host_ip: Some(args.node_ip),
        pod_ip: Some(args.node_ip),
        node_name: node_name.clone(),
        kubernetes_service: None,
        services: Vec::new(),
        allocatable: super::agent::node_allocatable(),
    };
    let installer = Installer::new(InstallerConfig::default())?;
    let dirs = PodDirs::new(
        Path::new(crate::config::DEFAULT_STATE_DIR),
        Path::new(crate::config::DEFAULT_RUNTIME_DIR),
    );
    let security = crate::config::default_node_security();
    let mut out = String::new();
    for item in &items {
        match item {
            Item::Pod(pod) => {
                render_pod(pod, &installer, &dirs, (&node, &security), &env, &mut out).await?
            }
            Item::Skipped { kind, name } => {
                writeln!(out, "# skipped {kind}/{name}: not a pod\n")?;
            }
        }
    }
    print!("{out}");
    Ok(())
}

/// One document of the manifest, as render shows it.
enum Item {
    /// A pod, defaulted as a static pod of this node.
    Pod(Box<Pod>),
    /// A document of a kind that has no pod.
    Skipped {
        /// Its kind.
        kind: String,
        /// Its `metadata.name`.
        name: String,
    },
}

/// The documents of the manifest at `path` in file order. Blocking, but the file is small
/// (at most [`manifests::MAX_MANIFEST_BYTES`]) and render does nothing else meanwhile.
fn read_items(path: &Path, node_name: &str) -> Result<Vec<Item>, crate::sources::Error> {
    let text = manifests::read_file(path)?;
    let mut items = Vec::new();
    for document in manifests::documents(&text, path)? {
        let item = match workload::pod_of(&document) {
            Ok(Some(pod)) => Item::Pod(Box::new(manifests::static_pod(
                pod,
                path,
                document.number,
                node_name,
            )?)),
            Ok(None) => Item::Skipped {
                kind: document.kind.clone(),
                name: document.name().to_owned(),
            },
            Err(problem) => return Err(document.invalid(path, problem)),
        };
        items.push(item);
    }
    Ok(items)
}

/// Prints the units of `pod` as a pass of the agent would plan them
/// ([`pod::plan_container`]), with the packages as installed here: one that is not
/// installed plans a synthesised unit, without vendor unit or image ID.
async fn render_pod(
    pod: &Pod,
    installer: &Installer,
    dirs: &PodDirs,
    (node, security): (&NodeInfo, &NodeSecurity),
    env: &EnvFacts,
    out: &mut String,
) -> anyhow::Result<()> {
    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
    let pod_dir = dirs.pod_dir(uid);
    let runtime_pod_dir = dirs.runtime_pod_dir(uid);
    let facts = PlanFacts {
        node,
        env,
        pod_dir: &pod_dir,
        runtime_pod_dir: &runtime_pod_dir,
        users: &SystemUsers,
        security,
    };
    let pod_name = pod.metadata.name.as_deref().unwrap_or_default();
    // What the agent's admission would say, on one comment line each.
    let review = pod::fields::review(pod);
    if let Some(refusal) = review.refusal() {
        writeln!(
            out,
            "# pod {pod_name} is refused at admission (UnsupportedPodSpec): {refusal}\n"
        )?;
        return Ok(());
    }
    if let Some(warning) = review.warning() {
        writeln!(
            out,
            "# pod {pod_name}: warning (UnsupportedField): {warning}"
        )?;
    }
    for container in pod::containers(pod) {
        let name = pod::unit_name(pod, container.container)?;
        let image_text = container.container.image.as_deref().unwrap_or_default();
        let context = || format!("pod {pod_name}, container {}", container.container.name);
        let image: ImageRef = image_text.parse().with_context(context)?;
        let installed = installer.query(&image).await?;
        let vendor_unit = match &installed {
            Some(installed) => {
                pod::read_vendor_unit(pod, container.container, installed).with_context(context)?
            }
            None => None,
        };
        writeln!(out, "# {name}")?;
        // As the agent does for a static pod: fieldRefs and $(VAR) resolve here; configMap
        // and secret references need the API, which render does not ask.
        let inputs = ContainerInputs {
            installed: installed.as_ref(),
            vendor_unit: vendor_unit.as_ref(),
            objects: None,
        };
        match pod::plan_container(pod, container, inputs, &facts) {
            Ok(planned) => {
                if installed.is_none() && image.package_name().is_some() {
                    writeln!(
                        out,
                        "# {image} is not installed here: this unit is synthesised, without its vendor unit"
                    )?;
                }
                out.push_str(&planned.unit.render());
                push_env_file(out, &planned, &runtime_pod_dir)?;
                // Its standard input's socket unit, written beside it (`stdin: true`).
                let sockets = pod::stdin_sockets(pod, &[name], &dirs.stdin_dir())?;
                for (name, socket) in sockets {
                    if let Some(socket) = socket {
                        writeln!(out, "\n# {}", crate::unit::stdin_socket_name(&name))?;
                        out.push_str(&socket);
                    }
                }
            }
            Err(err @ pod::Error::EnvConfig { .. }) => {
                writeln!(
                    out,
                    "# its environment cannot be resolved without the cluster: {err}\n"
                )?;
                continue;
            }
            Err(err) if installed.is_none() && image.package_name().is_some() => writeln!(
                out,
                "# {image} is not installed here, and without its vendor unit: {err}\n\
                 # (installed, the package's own unit would provide ExecStart)"
            )?,
            Err(err) => return Err(err).with_context(context),
        }
        out.push('\n');
    }
    // The slice the units name, as the agent writes it before their first start.
    match pod::slice::pod_slice(pod) {
        Ok(slice) => {
            writeln!(out, "# {}", slice.name)?;
            out.push_str(&slice.unit.render());
            out.push('\n');
        }
        Err(err) => writeln!(out, "# pod {pod_name} has no slice: {err}\n")?,
    }
    Ok(())
}

/// The environment file of `planned` as comment lines after its unit, when it has one.
fn push_env_file(
    out: &mut String,
    planned: &PlannedUnit,
    runtime_pod_dir: &Path,
) -> anyhow::Result<()> {
    let Some(text) = &planned.env_file else {
        return Ok(());
    };
    let path = unit::env_file_path(runtime_pod_dir, &planned.resolved.name);
    writeln!(
        out,
        "# {} (mode 0600, written by systemk when it prepares the pod):",
        path.display()
    )?;
    for line in text.lines() {
        writeln!(out, "#   {line}")?;
    }
    Ok(())
}
