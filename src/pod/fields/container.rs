//! The container-level part of the field table: `Container` (app and init),
//! `EphemeralContainer`, `VolumeMount` and `SecurityContext`. Pure. Layer 4.

use k8s_openapi::api::core::v1::{Container, EphemeralContainer, SecurityContext, VolumeMount};

use super::{Walk, has};

const NO_STDIN_ONCE: &str = "the standard input of a container with stdin: true stays open \
     after an attach ends (as with stdinOnce: false): systemd holds it open for the container's run";
const NO_TTY: &str = "containers get no terminal: their output goes to the journal, and \
     kubectl attach streams it without one";

/// `init` for an init container. As the API server has it, a regular init container (one
/// that runs to completion) may have neither probes nor hooks, a sidecar (`restartPolicy:
/// Always`) may have both, and `restartPolicy` is for init containers only.
pub(super) fn container(container: &Container, init: bool, w: &mut Walk) {
    let sidecar = init && container.restart_policy.as_deref() == Some("Always");
    let regular_init = init && !sidecar;
    let Container {
        args,
        command,
        env,
        env_from,
        image,
        image_pull_policy,
        lifecycle,
        liveness_probe,
        name,
        ports,
        readiness_probe,
        resize_policy,
        resources,
        restart_policy,
        security_context,
        startup_probe,
        stdin,
        stdin_once,
        termination_message_path,
        termination_message_policy,
        tty,
        volume_devices,
        volume_mounts,
        working_dir,
    } = container;
    w.honoured("args", args);
    w.honoured("command", command);
    w.honoured("env", env);
    w.honoured("envFrom", env_from);
    w.honoured("image", image);
    w.honoured("imagePullPolicy", image_pull_policy);
    if regular_init {
        w.refused(
            "lifecycle",
            lifecycle.is_some(),
            "init containers other than sidecars may not have lifecycle hooks",
        );
    } else {
        w.honoured("lifecycle", lifecycle);
    }
    probe(w, regular_init, "livenessProbe", liveness_probe.is_some());
    w.honoured("name", name);
    w.honoured("ports", ports);
    probe(w, regular_init, "readinessProbe", readiness_probe.is_some());
    w.ignored(
        "resizePolicy",
        has(resize_policy),
        "resources change with the pod spec: the unit is rewritten and the container restarted",
    );
    w.honoured("resources", resources);
    let why = if init {
        "only Always (a sidecar) is allowed on an init container"
    } else {
        "only init containers may have a restartPolicy"
    };
    w.refused("restartPolicy", restart_policy.is_some() && !sidecar, why);
    w.honoured("securityContext", security_context);
    if let Some(context) = security_context {
        w.nested(format!("{}.securityContext", w.at), |w| {
            self::security_context(context, w)
        });
    }
    probe(w, regular_init, "startupProbe", startup_probe.is_some());
    w.honoured("stdin", stdin);
    w.ignored("stdinOnce", *stdin_once == Some(true), NO_STDIN_ONCE);
    w.honoured("terminationMessagePath", termination_message_path);
    w.honoured("terminationMessagePolicy", termination_message_policy);
    w.ignored("tty", *tty == Some(true), NO_TTY);
    w.refused(
        "volumeDevices",
        has(volume_devices),
        "raw block volumes are not supported",
    );
    w.honoured("volumeMounts", volume_mounts);
    for mount in volume_mounts.iter().flatten() {
        w.nested(format!("{}.volumeMounts{{{}}}", w.at, mount.name), |w| {
            volume_mount(mount, w)
        });
    }
    w.honoured("workingDir", working_dir);
}

/// Probes run for app containers and sidecars (their plans are checked by
/// `unit_checks`); a regular init container runs to completion and may have none, as the
/// API server says.
fn probe(w: &mut Walk, regular_init: bool, name: &'static str, set: bool) {
    if regular_init {
        w.refused(
            name,
            set,
            "init containers other than sidecars may not have probes",
        );
    } else {
        w.honoured(name, &set);
    }
}

/// An ephemeral container is not run at all (the pod says so once); its fields are
/// listed so a new one is noticed here too.
pub(super) fn ephemeral(container: &EphemeralContainer, w: &mut Walk) {
    let EphemeralContainer {
        args,
        command,
        env,
        env_from,
        image,
        image_pull_policy,
        lifecycle,
        liveness_probe,
        name,
        ports,
        readiness_probe,
        resize_policy,
        resources,
        restart_policy,
        security_context,
        startup_probe,
        stdin,
        stdin_once,
        target_container_name,
        termination_message_path,
        termination_message_policy,
        tty,
        volume_devices,
        volume_mounts,
        working_dir,
    } = container;
    // Each binding is used, so a new field is noticed here too.
    for (field, _set) in [
        ("args", args.is_some()),
        ("command", command.is_some()),
        ("env", env.is_some()),
        ("envFrom", env_from.is_some()),
        ("image", image.is_some()),
        ("imagePullPolicy", image_pull_policy.is_some()),
        ("lifecycle", lifecycle.is_some()),
        ("livenessProbe", liveness_probe.is_some()),
        ("name", !name.is_empty()),
        ("ports", ports.is_some()),
        ("readinessProbe", readiness_probe.is_some()),
        ("resizePolicy", resize_policy.is_some()),
        ("resources", resources.is_some()),
        ("restartPolicy", restart_policy.is_some()),
        ("securityContext", security_context.is_some()),
        ("startupProbe", startup_probe.is_some()),
        ("stdin", stdin.is_some()),
        ("stdinOnce", stdin_once.is_some()),
        ("targetContainerName", target_container_name.is_some()),
        ("terminationMessagePath", termination_message_path.is_some()),
        (
            "terminationMessagePolicy",
            termination_message_policy.is_some(),
        ),
        ("tty", tty.is_some()),
        ("volumeDevices", volume_devices.is_some()),
        ("volumeMounts", volume_mounts.is_some()),
        ("workingDir", working_dir.is_some()),
    ] {
        w.not_run(field);
    }
}

/// Every field is the unit layer's mount check's.
pub(super) fn volume_mount(mount: &VolumeMount, w: &mut Walk) {
    let VolumeMount {
        mount_path,
        mount_propagation,
        name,
        read_only,
        recursive_read_only,
        sub_path,
        sub_path_expr,
    } = mount;
    w.by_unit("mountPath", mount_path);
    w.by_unit("mountPropagation", mount_propagation);
    w.by_unit("name", name);
    w.by_unit("readOnly", read_only);
    w.by_unit("recursiveReadOnly", recursive_read_only);
    w.by_unit("subPath", sub_path);
    w.by_unit("subPathExpr", sub_path_expr);
}

/// Every field is the unit layer's confinement check's, but a writable root file system,
/// which is warned about.
pub(super) fn security_context(context: &SecurityContext, w: &mut Walk) {
    let SecurityContext {
        allow_privilege_escalation,
        app_armor_profile,
        capabilities,
        privileged,
        proc_mount,
        read_only_root_filesystem,
        run_as_group,
        run_as_non_root,
        run_as_user,
        se_linux_options,
        seccomp_profile,
        windows_options,
    } = context;
    w.by_unit("allowPrivilegeEscalation", allow_privilege_escalation);
    w.by_unit("appArmorProfile", app_armor_profile);
    w.by_unit("capabilities", capabilities);
    w.by_unit("privileged", privileged);
    w.by_unit("procMount", proc_mount);
    w.ignored(
        "readOnlyRootFilesystem",
        *read_only_root_filesystem == Some(false),
        "the root file system is always read-only: write to volumes, /tmp or the package's state directories",
    );
    w.by_unit("runAsGroup", run_as_group);
    w.by_unit("runAsNonRoot", run_as_non_root);
    w.by_unit("runAsUser", run_as_user);
    w.by_unit("seLinuxOptions", se_linux_options);
    w.by_unit("seccompProfile", seccomp_profile);
    w.by_unit("windowsOptions", windows_options);
}
