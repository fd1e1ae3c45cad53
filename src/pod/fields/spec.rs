//! The pod-level part of the field table: `PodSpec`, `PodSecurityContext` and `Volume`.
//! Pure. Layer 4.

use k8s_openapi::api::core::v1::{PodSecurityContext, PodSpec, Volume};

use super::container::{container, ephemeral};
use super::{Walk, has};

/// What the node's resolver files give instead of cluster DNS and pod host names.
const NODE_DNS: &str =
    "pods use the node's /etc/resolv.conf, as a hostNetwork pod with dnsPolicy Default";
const NODE_NAME: &str = "containers see the node's host name, as in a hostNetwork pod";

pub(super) fn pod_spec(spec: &PodSpec, w: &mut Walk) {
    let PodSpec {
        active_deadline_seconds,
        affinity,
        automount_service_account_token,
        containers,
        dns_config,
        dns_policy,
        enable_service_links,
        ephemeral_containers,
        host_aliases,
        host_ipc,
        host_network,
        host_pid,
        host_users,
        hostname,
        image_pull_secrets,
        init_containers,
        node_name,
        node_selector,
        os,
        overhead,
        preemption_policy,
        priority,
        priority_class_name,
        readiness_gates,
        resource_claims,
        resources,
        restart_policy,
        runtime_class_name,
        scheduler_name,
        scheduling_gates,
        security_context,
        service_account,
        service_account_name,
        set_hostname_as_fqdn,
        share_process_namespace,
        subdomain,
        termination_grace_period_seconds,
        tolerations,
        topology_spread_constraints,
        volumes,
    } = spec;
    w.honoured("activeDeadlineSeconds", active_deadline_seconds);
    w.honoured("affinity", affinity);
    w.honoured(
        "automountServiceAccountToken",
        automount_service_account_token,
    );
    w.honoured("containers", containers);
    w.ignored("dnsConfig", dns_config.is_some(), NODE_DNS);
    w.ignored(
        "dnsPolicy",
        matches!(
            dns_policy.as_deref(),
            Some("ClusterFirstWithHostNet" | "None")
        ),
        NODE_DNS,
    );
    w.honoured("enableServiceLinks", enable_service_links);
    w.ignored(
        "ephemeralContainers",
        has(ephemeral_containers),
        "ephemeral containers are not run",
    );
    w.ignored(
        "hostAliases",
        has(host_aliases),
        "containers use the node's /etc/hosts",
    );
    w.honoured("hostIPC", host_ipc);
    w.ignored(
        "hostNetwork",
        *host_network == Some(false),
        "pods always use the node's network",
    );
    w.honoured("hostPID", host_pid);
    w.honoured("hostUsers", host_users);
    w.ignored(
        "hostname",
        hostname.as_ref().is_some_and(|h| !h.is_empty()),
        NODE_NAME,
    );
    w.ignored(
        "imagePullSecrets",
        has(image_pull_secrets),
        "images are Debian packages from the node's apt sources, which use no registry credentials",
    );
    w.honoured("initContainers", init_containers);
    w.honoured("nodeName", node_name);
    w.honoured("nodeSelector", node_selector);
    w.honoured("os", os);
    w.honoured("overhead", overhead);
    w.honoured("preemptionPolicy", preemption_policy);
    w.honoured("priority", priority);
    w.honoured("priorityClassName", priority_class_name);
    w.honoured("readinessGates", readiness_gates);
    w.refused(
        "resourceClaims",
        has(resource_claims),
        "dynamic resource allocation is not supported",
    );
    w.ignored(
        "resources",
        resources.is_some(),
        "pod-level resources are not applied; each container's own resources are",
    );
    w.honoured("restartPolicy", restart_policy);
    w.refused(
        "runtimeClassName",
        runtime_class_name.as_ref().is_some_and(|r| !r.is_empty()),
        "systemk has no runtime classes: every container is a systemd unit",
    );
    w.honoured("schedulerName", scheduler_name);
    w.honoured("schedulingGates", scheduling_gates);
    w.honoured("securityContext", security_context);
    if let Some(context) = security_context {
        w.nested("spec.securityContext".to_owned(), |w| {
            pod_security_context(context, w)
        });
    }
    w.honoured("serviceAccount", service_account);
    w.honoured("serviceAccountName", service_account_name);
    w.ignored(
        "setHostnameAsFQDN",
        *set_hostname_as_fqdn == Some(true),
        NODE_NAME,
    );
    w.ignored(
        "shareProcessNamespace",
        *share_process_namespace == Some(true),
        "containers share the node's PID namespace, with no pod sandbox process; they see \
         each other's processes as hostPID allows",
    );
    w.ignored(
        "subdomain",
        subdomain.as_ref().is_some_and(|s| !s.is_empty()),
        NODE_NAME,
    );
    w.honoured(
        "terminationGracePeriodSeconds",
        termination_grace_period_seconds,
    );
    w.honoured("tolerations", tolerations);
    w.honoured("topologySpreadConstraints", topology_spread_constraints);
    w.honoured("volumes", volumes);
    for volume_ in volumes.iter().flatten() {
        w.nested(format!("spec.volumes{{{}}}", volume_.name), |w| {
            volume(volume_, w)
        });
    }
    for init in init_containers.iter().flatten() {
        w.nested(format!("spec.initContainers{{{}}}", init.name), |w| {
            container(init, true, w)
        });
    }
    for app in containers {
        w.nested(format!("spec.containers{{{}}}", app.name), |w| {
            container(app, false, w)
        });
    }
    for debug in ephemeral_containers.iter().flatten() {
        w.nested(format!("spec.ephemeralContainers{{{}}}", debug.name), |w| {
            ephemeral(debug, w)
        });
    }
}

/// Every field is the unit layer's confinement check's.
pub(super) fn pod_security_context(context: &PodSecurityContext, w: &mut Walk) {
    let PodSecurityContext {
        app_armor_profile,
        fs_group,
        fs_group_change_policy,
        run_as_group,
        run_as_non_root,
        run_as_user,
        se_linux_change_policy,
        se_linux_options,
        seccomp_profile,
        supplemental_groups,
        supplemental_groups_policy,
        sysctls,
        windows_options,
    } = context;
    w.by_unit("appArmorProfile", app_armor_profile);
    w.by_unit("fsGroup", fs_group);
    w.by_unit("fsGroupChangePolicy", fs_group_change_policy);
    w.by_unit("runAsGroup", run_as_group);
    w.by_unit("runAsNonRoot", run_as_non_root);
    w.by_unit("runAsUser", run_as_user);
    w.by_unit("seLinuxChangePolicy", se_linux_change_policy);
    w.by_unit("seLinuxOptions", se_linux_options);
    w.by_unit("seccompProfile", seccomp_profile);
    w.by_unit("supplementalGroups", supplemental_groups);
    w.by_unit("supplementalGroupsPolicy", supplemental_groups_policy);
    w.by_unit("sysctls", sysctls);
    w.by_unit("windowsOptions", windows_options);
}

/// The kinds systemk provides are honoured, every other kind refused: the unit layer's
/// volume check decides.
pub(super) fn volume(volume: &Volume, w: &mut Walk) {
    let Volume {
        aws_elastic_block_store,
        azure_disk,
        azure_file,
        cephfs,
        cinder,
        config_map,
        csi,
        downward_api,
        empty_dir,
        ephemeral,
        fc,
        flex_volume,
        flocker,
        gce_persistent_disk,
        git_repo,
        glusterfs,
        host_path,
        image,
        iscsi,
        name,
        nfs,
        persistent_volume_claim,
        photon_persistent_disk,
        portworx_volume,
        projected,
        quobyte,
        rbd,
        scale_io,
        secret,
        storageos,
        vsphere_volume,
    } = volume;
    w.by_unit("awsElasticBlockStore", aws_elastic_block_store);
    w.by_unit("azureDisk", azure_disk);
    w.by_unit("azureFile", azure_file);
    w.by_unit("cephfs", cephfs);
    w.by_unit("cinder", cinder);
    w.by_unit("configMap", config_map);
    w.by_unit("csi", csi);
    w.by_unit("downwardAPI", downward_api);
    w.by_unit("emptyDir", empty_dir);
    if let Some(empty_dir) = empty_dir {
        w.ignored(
            "emptyDir.sizeLimit",
            empty_dir.size_limit.is_some(),
            "the directory's size is not limited",
        );
    }
    w.by_unit("ephemeral", ephemeral);
    w.by_unit("fc", fc);
    w.by_unit("flexVolume", flex_volume);
    w.by_unit("flocker", flocker);
    w.by_unit("gcePersistentDisk", gce_persistent_disk);
    w.by_unit("gitRepo", git_repo);
    w.by_unit("glusterfs", glusterfs);
    w.by_unit("hostPath", host_path);
    w.by_unit("image", image);
    w.by_unit("iscsi", iscsi);
    w.by_unit("name", name);
    w.by_unit("nfs", nfs);
    w.by_unit("persistentVolumeClaim", persistent_volume_claim);
    w.by_unit("photonPersistentDisk", photon_persistent_disk);
    w.by_unit("portworxVolume", portworx_volume);
    w.by_unit("projected", projected);
    if let Some(projected) = projected {
        let trust_bundle = projected
            .sources
            .iter()
            .flatten()
            .any(|source| source.cluster_trust_bundle.is_some());
        w.refused(
            "projected.clusterTrustBundle",
            trust_bundle,
            "clusterTrustBundle projections are not supported",
        );
    }
    w.by_unit("quobyte", quobyte);
    w.by_unit("rbd", rbd);
    w.by_unit("scaleIO", scale_io);
    w.by_unit("secret", secret);
    w.by_unit("storageos", storageos);
    w.by_unit("vsphereVolume", vsphere_volume);
}
