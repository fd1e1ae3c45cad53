//! Preparing a pod's units: installing images, turning off the vendor units of packages
//! systemk installed, building the units, and writing only those whose content changed
//! (one batch, one `daemon-reload`) after the pod's slice (`pod::slice`), and the
//! containers' environment files (on the runtime
//! tmpfs, root-only; a changed file restarts its container as a changed unit does). A
//! pass prepares when the pod is new or changed, or when the retry of a failed
//! preparation is due. After a boot the runtime directory is empty: units that need it
//! (environment files, secret and token volumes) failed to start and are started again
//! once their files are back. Layer 4.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Container, Pod};

use super::stop::grace_of;
use super::{STOP_MARGIN, compute_status, read_unit};
use crate::clock::now;
use crate::package::{Holder, ImageRef, Installed, PullPolicy};
use crate::pod::blocking::off_runtime;
use crate::pod::container_unit::{ContainerRef, containers, unit_name};
use crate::pod::container_unit::{read_vendor_unit, selected_vendor_unit};
use crate::pod::context::Context;
use crate::pod::env::{EnvFacts, sync_env_file};
use crate::pod::error::{Error, Result};
use crate::pod::failure::{Failure, failure_events};
use crate::pod::mounts::check_targets;
use crate::pod::objects::{fetch_referenced, fetch_services};
use crate::pod::plan::{ContainerInputs, PlanFacts, PlannedUnit, plan_container, stdin_sockets};
use crate::pod::progress::EventKind;
use crate::pod::records;
use crate::pod::restart::{ContainerRestarts, RestartPolicy};
use crate::pod::slice::pod_slice;
use crate::pod::state::PodState;
use crate::pod::status::{Problem, WaitingReason};
use crate::pod::subpath;
use crate::unit::{
    ApiVolumeKind, HomeProtection, NodeSecurity, bind_mounts, container_mounts, env_file_path,
};
use crate::unit::{KubernetesMeta, UnitFile, UnitName, earlier_spec_hashes};
use std::path::PathBuf;

use super::volumes::sync_volumes;
use crate::pod::state::VolumeFailures;

/// Installs images and (re)writes the units whose content changed, in one batch; units
/// of containers that left the spec are removed; changed running units are stopped so
/// the start logic brings them back with the new spec.
pub(super) async fn prepare(
    ctx: &Context,
    uid: &str,
    pod: &Arc<Pod>,
    state: &mut PodState,
) -> Result<()> {
    state.prepared_mut().begin();
    // Empty after a boot (tmpfs): what lives there must be written again, and the units
    // that need it restarted.
    let prepared = ctx.dirs.prepare_async(pod, uid, &ctx.security).await;
    let runtime_fresh = *prepared.as_ref().unwrap_or(&false);
    if let Err(err) = prepared {
        abandon(pod, state, &err);
        return Ok(());
    }
    // The slice every unit of the pod names: a pod that cannot have one runs nothing.
    let slice = match pod_slice(pod) {
        Ok(slice) => slice,
        Err(err) => {
            abandon(pod, state, &err);
            return Ok(());
        }
    };
    if state.status().is_none() {
        // Installing can take minutes: meanwhile `systemk pods` shows the pod as
        // ContainerCreating, as the kubelet would.
        let status = compute_status(ctx, uid, pod, state, &HashMap::new(), now());
        let mut with_status = Pod::clone(pod);
        with_status.status = Some(status.clone());
        ctx.dirs.save_pod_async(uid, with_status).await?;
        state.run_mut().set_status(status);
    }
    // Read when the containers are prepared, as the kubelet reads them when it starts
    // one: a later change of the Services restarts nothing.
    let services = match fetch_services(ctx.objects.as_deref(), pod).await {
        Ok(services) => services,
        Err(err) => {
            abandon(pod, state, &err);
            return Ok(());
        }
    };
    let pod_dir = ctx.dirs.pod_dir(uid);
    let runtime_pod_dir = ctx.dirs.runtime_pod_dir(uid);
    let env = EnvFacts {
        services,
        host_ip: ctx.host_ips.first().copied(),
        pod_ip: ctx.host_ips.first().copied(),
        node_name: ctx.node.hostname.clone(),
        kubernetes_service: ctx.kubernetes_service.clone(),
        allocatable: ctx.allocatable,
    };
    let facts = PlanFacts {
        node: &ctx.node,
        env: &env,
        pod_dir: &pod_dir,
        runtime_pod_dir: &runtime_pod_dir,
        users: ctx.users.as_ref(),
        security: &ctx.security,
    };
    let mut wanted = BTreeSet::new();
    let mut to_write: Vec<(UnitName, String)> = Vec::new();
    let mut changed = Vec::new();
    // Units rewritten only to move them into the pod's slice: no restart, no event.
    let mut moved: Vec<UnitName> = Vec::new();
    // Containers whose unit was built, with how their unit hides /home.
    let mut built: Vec<(String, HomeProtection)> = Vec::new();
    let mut env_files: Vec<(UnitName, String, Option<String>)> = Vec::new();
    for container in containers(pod) {
        let name = unit_name(pod, container.container)?;
        let existing = existing_meta(&ctx.unit_dir, &name).await;
        match prepare_container(ctx, pod, container, &facts, existing.as_ref(), state).await {
            Ok(planned) => {
                let PlannedUnit {
                    unit,
                    env_file,
                    image_id,
                    identity,
                    home,
                    ..
                } = planned;
                env_files.push((name.clone(), container.container.name.clone(), env_file));
                state
                    .prepared_mut()
                    .built(&container.container.name, image_id, identity);
                built.push((container.container.name.clone(), home));
                let rendered = unit.render();
                let existing_hash = existing.map(|meta| meta.spec_hash);
                if existing_hash != spec_hash_of(&unit) {
                    // A unit an earlier systemk wrote (without a slice, or in
                    // systemk.slice) differs only by its `Slice=` line: rewritten, so its
                    // next start is in the pod's slice, but a running container is not
                    // restarted for it (see docs/design.md).
                    let slice_only = existing_hash
                        .as_ref()
                        .is_some_and(|existing| earlier_spec_hashes(&unit).contains(existing));
                    if slice_only {
                        tracing::info!(unit = %name, slice = %slice.name, "moving the unit into its pod's slice at its next start");
                        moved.push(name.clone());
                    } else if state.run().has_unit(&name) {
                        changed.push((name.clone(), container.container.name.clone()));
                    }
                    to_write.push((name.clone(), rendered));
                }
                wanted.insert(name);
            }
            Err(err) => {
                let problem = problem(&err);
                tracing::warn!(pod_uid = uid, container = %container.container.name, error = %problem.message, reason = problem.reason.as_str(), transient = problem.transient, "cannot prepare a container");
                let image = container.container.image.as_deref().unwrap_or_default();
                for (kind, reason, message) in failure_events(&problem, image) {
                    state.event(pod, kind, reason, message);
                }
                state
                    .prepared_mut()
                    .add_problem(container.container.name.as_str(), problem);
                // Keep a unit that exists: a failing re-install must not stop what runs.
                if state.run().has_unit(&name) {
                    wanted.insert(name);
                }
            }
        }
    }
    let slots: Vec<&str> = containers(pod)
        .iter()
        .map(|c| c.container.name.as_str())
        .collect();
    ctx.installer.retain_slots(uid, &slots);
    // Volume files are in place before any unit that mounts them is written or started;
    // a container whose volume cannot be written waits, like one whose image failed.
    let failures = sync_volumes(ctx, uid, pod, state).await;
    for container in containers(pod) {
        // A volume's files may be written at the next try; a refused target stays refused.
        let (message, transient) = if let Some((volume, why)) = failed_mount(container, &failures) {
            let message = format!("MountVolume.SetUp failed for volume {volume:?}: {why}");
            state.event(pod, EventKind::Warning, "FailedMount", message.clone());
            (message, true)
        } else if let Some((_, home)) = built.iter().find(|(c, _)| *c == container.container.name) {
            // With every source in place, no target may make systemd change the host.
            let Err(err) = check_container_mounts(
                pod,
                container,
                (&pod_dir, &runtime_pod_dir),
                *home,
                &ctx.security,
            ) else {
                continue;
            };
            let problem = problem(&err);
            tracing::warn!(pod_uid = uid, container = %container.container.name, error = %problem.message, "refusing a mount target");
            state.event(
                pod,
                EventKind::Warning,
                "Failed",
                format!("Error: {}", problem.message),
            );
            (problem.message, problem.transient)
        } else {
            continue;
        };
        let name = unit_name(pod, container.container)?;
        to_write.retain(|(written, _)| *written != name);
        changed.retain(|(unit, _)| *unit != name);
        if !state.run().has_unit(&name) {
            wanted.remove(&name);
        }
        state.prepared_mut().add_problem(
            container.container.name.as_str(),
            Problem {
                reason: WaitingReason::CreateContainerConfigError,
                message,
                transient,
            },
        );
    }
    state.volumes_mut().set_failures(failures);
    // Staged subPaths of mounts that left the spec go (a running unit keeps its own bind).
    let staging = wanted_staging(pod, &pod_dir, &runtime_pod_dir);
    let runtime = runtime_pod_dir.clone();
    off_runtime(&runtime_pod_dir, move || {
        subpath::remove_unwanted(&runtime, &staging)
    })
    .await?;
    // Only for containers whose unit goes ahead: a held-back one keeps its old file, so
    // the change is still seen (and restarts it) when it goes ahead.
    for (name, container, env) in &env_files {
        if !wanted.contains(name) {
            continue;
        }
        let path = env_file_path(&runtime_pod_dir, container);
        let content = env.clone();
        let env_changed = off_runtime(&path.clone(), move || {
            sync_env_file(&path, content.as_deref())
        })
        .await?;
        let needs_runtime =
            runtime_fresh && (env.is_some() || mounts_secret_volume(pod, container));
        let restart = env_changed || needs_runtime;
        if restart && state.run().has_unit(name) && !changed.iter().any(|(n, _)| n == name) {
            changed.push((name.clone(), container.clone()));
        }
    }
    let (runtime, kept) = (runtime_pod_dir.clone(), pod.clone());
    off_runtime(&runtime_pod_dir, move || {
        remove_stale_env_files(&runtime, &kept);
        Ok(())
    })
    .await?;
    let stale: Vec<UnitName> = state.units().difference(&wanted).cloned().collect();
    if !stale.is_empty() {
        let grace = grace_of(Some(pod));
        for name in &stale {
            ctx.systemd.stop(name, grace + STOP_MARGIN).await?;
        }
        ctx.systemd.remove(&ctx.unit_dir, &stale).await?;
    }
    for (name, container) in &changed {
        tracing::info!(unit = %name, "container spec changed: restarting it");
        ctx.systemd
            .stop(name, grace_of(Some(pod)) + STOP_MARGIN)
            .await?;
        state.run_mut().forget_restarts(container);
        // The container starts over: what its old spec ran (or failed to start), which
        // systemd still shows while the unit stays loaded, is not one of its runs to
        // count or back off from.
        let spec = containers(pod)
            .into_iter()
            .find(|c| c.container.name == *container);
        if let Some(spec) = spec {
            let (policy, stopped_at) = (RestartPolicy::of_pod(pod), now());
            state.run_mut().restarts_or_resume(container, || {
                ContainerRestarts::new(container.as_str(), policy, spec.role())
                    .after_run_at(stopped_at)
            });
        }
        let (dirs, pod_uid, name) = (ctx.dirs.clone(), uid.to_owned(), container.clone());
        off_runtime(&ctx.dirs.records_dir(uid), move || {
            records::remove(&dirs, &pod_uid, &name)
        })
        .await?;
    }
    // Before any unit names it; rewritten only when the pod's limits changed.
    ctx.systemd
        .write_slices(&ctx.unit_dir, &[(slice.name, slice.unit.render())])
        .await?;
    if !to_write.is_empty() {
        let written: Vec<UnitName> = to_write.iter().map(|(name, _)| name.clone()).collect();
        let sockets = stdin_sockets(pod, &written, &ctx.dirs.stdin_dir())?;
        // No reload of their own: the units' write reloads once for both, if needed.
        let touched = ctx
            .systemd
            .write_stdin_sockets(&ctx.unit_dir, &sockets)
            .await?;
        ctx.systemd
            .write_units_beside(&ctx.unit_dir, &to_write, &touched)
            .await?;
        for (name, _) in to_write.iter().filter(|(name, _)| !moved.contains(name)) {
            state.event(
                pod,
                EventKind::Normal,
                "Created",
                format!("Created unit {name}"),
            );
        }
        // Sidecars start at boot with the app containers they serve.
        let app_units: Vec<UnitName> = containers(pod)
            .into_iter()
            .filter(|c| c.long_running())
            .filter_map(|c| unit_name(pod, c.container).ok())
            .filter(|name| to_write.iter().any(|(written, _)| written == name))
            .collect();
        if !app_units.is_empty() {
            ctx.systemd.enable(&app_units).await?;
        }
    }
    state.run_mut().set_units(wanted);
    state.prepared_mut().finish(pod);
    Ok(())
}

/// Stages the `subPath`s of `container` (`pod::subpath`) and checks its mount targets on
/// the host (`pod::mounts`).
fn check_container_mounts(
    pod: &Pod,
    container: ContainerRef<'_>,
    (pod_dir, runtime_pod_dir): (&Path, &Path),
    home: HomeProtection,
    security: &NodeSecurity,
) -> Result<()> {
    let dirs = (pod_dir, runtime_pod_dir);
    let mounts = container_mounts(pod, container.container, dirs, security)?;
    for mount in &mounts {
        if let Some(sub) = &mount.sub_path {
            subpath::stage(sub, Path::new(&mount.source))?;
        }
    }
    check_targets(&mounts, home)
}

/// Every staging path the pod's spec uses: those of containers that could not be
/// prepared too, as their existing units still bind them.
fn wanted_staging(pod: &Pod, pod_dir: &Path, runtime_pod_dir: &Path) -> Vec<PathBuf> {
    containers(pod)
        .into_iter()
        .filter_map(|c| bind_mounts(pod, c.container, pod_dir, runtime_pod_dir).ok())
        .flatten()
        .filter(|mount| mount.sub_path.is_some())
        .map(|mount| PathBuf::from(mount.source))
        .collect()
}

/// The first volume `container` mounts that failed, with why.
fn failed_mount<'a>(
    container: ContainerRef<'_>,
    failures: &'a VolumeFailures,
) -> Option<(&'a str, &'a str)> {
    container
        .container
        .volume_mounts
        .iter()
        .flatten()
        .find_map(|mount| failures.get_key_value(&mount.name))
        .map(|(volume, why)| (volume.as_str(), why.as_str()))
}

/// Removes the environment files of containers that left the pod's spec.
fn remove_stale_env_files(runtime_pod_dir: &Path, pod: &Pod) {
    let Some(dir) = env_file_path(runtime_pod_dir, "x")
        .parent()
        .map(Path::to_owned)
    else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    let kept: BTreeSet<std::path::PathBuf> = containers(pod)
        .iter()
        .map(|c| env_file_path(runtime_pod_dir, &c.container.name))
        .collect();
    for entry in entries.flatten() {
        let path = entry.path();
        if !kept.contains(&path)
            && let Err(err) = std::fs::remove_file(&path)
        {
            tracing::warn!(path = %path.display(), error = %err, "cannot remove a stale environment file");
        }
    }
}

/// Whether `container` mounts a volume whose files live on the runtime tmpfs.
fn mounts_secret_volume(pod: &Pod, container: &str) -> bool {
    let Some(container) = containers(pod)
        .into_iter()
        .find(|c| c.container.name == container)
    else {
        return false;
    };
    container
        .container
        .volume_mounts
        .iter()
        .flatten()
        .filter_map(|mount| {
            pod.spec
                .as_ref()?
                .volumes
                .iter()
                .flatten()
                .find(|v| v.name == mount.name)
        })
        .any(|volume| ApiVolumeKind::of(volume).is_some_and(ApiVolumeKind::is_secret))
}

/// Installs the container's image, turns its vendor units off when systemk installed
/// the package just now, fetches the objects its environment names, reads its vendor unit
/// and plans its unit ([`plan_container`]). `existing` is what the container's unit, if
/// one was written before, says of itself.
pub(super) async fn prepare_container(
    ctx: &Context,
    pod: &Arc<Pod>,
    container: ContainerRef<'_>,
    facts: &PlanFacts<'_>,
    existing: Option<&KubernetesMeta>,
    state: &PodState,
) -> Result<PlannedUnit> {
    let image: ImageRef = container
        .container
        .image
        .as_deref()
        .unwrap_or_default()
        .parse()?;
    // As the kubelet, tell of the image when a container is created with it, not on every
    // restart of systemk, which prepares every pod again.
    let announce = existing.is_none_or(|meta| meta.image != image.to_string());
    let image_text = container.container.image.as_deref().unwrap_or_default();
    let pull =
        PullPolicy::of_container(container.container.image_pull_policy.as_deref(), image_text)?;
    // Never pulls nothing, so the kubelet tells of no pulling.
    if announce && pull != PullPolicy::Never {
        state.event(
            pod,
            EventKind::Normal,
            "Pulling",
            format!("Installing image \"{image}\""),
        );
    }
    // As the kubelet, which pulls when it creates a container, not when it restarts: a
    // container whose unit an earlier run of systemk wrote (adopted, not prepared since)
    // is not upgraded, and keeps the image ID it was started with, so a restart of
    // systemk restarts no container whose package another pod upgraded meanwhile.
    let adopted = existing.is_some_and(|meta| meta.image == image.to_string())
        && state.prepared().applied().is_none();
    let pull = match pull {
        PullPolicy::Always if adopted => PullPolicy::IfNotPresent,
        other => other,
    };
    let started = std::time::Instant::now();
    let installing = ctx.installing.enter();
    let outcome = ctx
        .installer
        .install(&image, pull, &holder_of(pod, &container.container.name))
        .await;
    drop(installing);
    let failure = outcome.as_ref().err().map(|err| err.reason());
    ctx.metrics
        .install(failure, started.elapsed().as_secs_f64());
    let mut installed = outcome?;
    if adopted
        && let Some(meta) = existing
        && meta.image_id != installed.image_id
    {
        tracing::info!(container = %container.container.name, started_with = %meta.image_id, installed = %installed.image_id, "the container keeps the image ID it was started with");
        installed.image_id = meta.image_id.clone();
    }
    if announce && let Some(warning) = ctx.installer.warning(&image) {
        state.event(pod, EventKind::Warning, "UnverifiedImage", warning);
    }
    if announce {
        let outcome = if installed.newly_installed {
            "Installed"
        } else {
            "Already installed:"
        };
        state.event(
            pod,
            EventKind::Normal,
            "Pulled",
            format!("{outcome} image \"{image}\" as {}", installed.image_id),
        );
    }
    if installed.newly_installed {
        let vendor = units_to_disable(pod, container.container, &installed);
        if !vendor.is_empty() {
            tracing::info!(package = ?installed.package, units = ?vendor, "disabling the vendor units of a package systemk installed");
            ctx.systemd.disable_vendor(&vendor).await?;
        }
    }
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let objects = fetch_referenced(ctx.objects.as_deref(), namespace, container.container).await?;
    let vendor_unit = read_vendor_unit(pod, container.container, &installed)?;
    let inputs = ContainerInputs {
        installed: Some(&installed),
        vendor_unit: vendor_unit.as_ref(),
        objects: objects.as_ref(),
    };
    plan_container(pod, container, inputs, facts)
}

/// The host's units to stop and disable after systemk installed `installed`'s package:
/// those of every package the install added (the image package and the dependencies apt
/// pulled in with it), and the unit the container runs when a dependency the host had
/// before ships it (nginx's `nginx.service` is `nginx-common`'s), so only the pod runs the
/// daemon. Units of packages the host had stay: the host's `postgresql.service` must not
/// stop because a pod installed `postgresql-contrib`. Templates are no units to stop; an
/// instance the pod runs is.
fn units_to_disable(pod: &Pod, container: &Container, installed: &Installed) -> Vec<String> {
    let mut names = installed.added_units.clone();
    // A choice that fails is reported when the unit is read just after.
    if let Ok(Some(selected)) = selected_vendor_unit(pod, container, installed)
        && !names.contains(&selected.name)
    {
        names.push(selected.name);
    }
    names
}

/// The holder of a container's package: its pod (by UID, named `namespace/name` in
/// errors) and its container.
pub(crate) fn holder_of(pod: &Pod, container: &str) -> Holder {
    let meta = &pod.metadata;
    Holder {
        owner: meta.uid.clone().unwrap_or_default(),
        slot: container.to_owned(),
        name: format!(
            "{}/{}",
            meta.namespace.as_deref().unwrap_or("default"),
            meta.name.as_deref().unwrap_or_default()
        ),
    }
}

/// The waiting state of a container whose preparation failed with `err`.
pub(super) fn problem(err: &Error) -> Problem {
    Failure::of_prepare(err).problem(err)
}

/// The pod cannot be prepared at all: every container shows why, and nothing runs.
fn abandon(pod: &Pod, state: &mut PodState, err: &Error) {
    for container in containers(pod) {
        state
            .prepared_mut()
            .add_problem(container.container.name.as_str(), problem(err));
    }
    state.prepared_mut().abandon();
}

/// What the unit written before for a container says of itself.
async fn existing_meta(unit_dir: &Path, name: &UnitName) -> Option<KubernetesMeta> {
    let unit = read_unit(unit_dir, name).await?;
    KubernetesMeta::from_unit(&unit).ok()
}

pub(super) fn spec_hash_of(unit: &UnitFile) -> Option<String> {
    KubernetesMeta::from_unit(unit)
        .ok()
        .map(|meta| meta.spec_hash)
}
