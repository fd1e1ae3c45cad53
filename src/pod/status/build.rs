//! The one way a pod's status is built: from the pod, what is known of each container (its
//! restart machine, its unit's status, why it could not be prepared, its image ID) and
//! the status posted before. The reconciler feeds it what a pass saw, `systemk pods` what
//! `pod.json`, the restart records and systemd say now; both get the same rules. Pure: no
//! clock, no I/O. Layer 4.

use std::collections::HashMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Pod, PodStatus};
use k8s_openapi::jiff::Timestamp;

use super::observation::{ContainerFacts, Problem, container_observation};
use super::{PodObservation, ReadinessGates, pod_status};
use crate::pod::container_unit::{ContainerRef, containers};
use crate::pod::probe::Probed;
use crate::pod::qos::pod_qos_class;
use crate::pod::restart::{ContainerRestarts, RestartPolicy};
use crate::systemd::UnitStatus;

/// What is known about one container besides its spec. The default is a container
/// nothing is known of yet: no image ID, not started, no unit, no problem.
#[derive(Debug, Default, Clone, Copy)]
pub struct ContainerSeen<'a> {
    /// What its image resolved to; empty when unknown.
    pub image_id: &'a str,
    /// Its restart machine, up to date with `unit`; `None`: it never started.
    pub restarts: Option<&'a ContainerRestarts>,
    /// Its unit's status, when the unit exists.
    pub unit: Option<&'a UnitStatus>,
    /// Why it could not be prepared, if so.
    pub problem: Option<&'a Problem>,
    /// What its readiness and startup probes report.
    pub probed: Probed,
}

/// What is known about a pod besides its spec.
#[derive(Debug, Default)]
pub struct PodSeen<'a> {
    /// The pod's UID, for the CrashLoopBackOff message.
    pub uid: &'a str,
    /// The status built before, if any: a terminal phase stays, as do `startTime` and
    /// the conditions' transition times.
    pub previous: Option<&'a PodStatus>,
    /// When systemk first worked on the pod, when known.
    pub start_time: Option<Timestamp>,
    /// The node's addresses (pods use the host network).
    pub host_ips: &'a [IpAddr],
    /// By container name; a container missing here is one nothing is known of.
    pub containers: HashMap<&'a str, ContainerSeen<'a>>,
}

/// The status of `pod` at `now`, given what is known about it.
pub fn build(pod: &Pod, seen: &PodSeen<'_>, now: Timestamp) -> PodStatus {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let pod_name = pod.metadata.name.as_deref().unwrap_or_default();
    let policy = RestartPolicy::of_pod(pod);
    let all = containers(pod);
    let has_inits = all.iter().any(|c| c.init);
    let observe = |container: &ContainerRef<'_>| {
        let name = container.container.name.as_str();
        let known = seen.containers.get(name).copied().unwrap_or_default();
        let fresh;
        let restarts = match known.restarts {
            Some(restarts) => restarts,
            None => {
                fresh = ContainerRestarts::new(name, policy, container.role());
                &fresh
            }
        };
        container_observation(&ContainerFacts {
            name,
            image: container.container.image.as_deref().unwrap_or_default(),
            image_id: known.image_id,
            restarts,
            unit: known.unit,
            problem: known.problem,
            probed: known.probed,
            sidecar: container.sidecar(),
            pod_has_init_containers: has_inits,
            pod: (pod_name, namespace, seen.uid),
        })
    };
    let observation = PodObservation {
        restart_policy: policy,
        init_containers: all.iter().filter(|c| c.init).map(observe).collect(),
        containers: all.iter().filter(|c| !c.init).map(observe).collect(),
        start_time: seen.start_time,
        host_ips: seen.host_ips.to_vec(),
        qos_class: pod_qos_class(pod),
        deleted: pod.metadata.deletion_timestamp.is_some(),
        readiness_gates: ReadinessGates::of(pod),
    };
    pod_status(&observation, seen.previous, now)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{Container, PodSpec};

    use super::*;
    use crate::pod::observe::observe_unit;
    use crate::pod::observe::tests::{SECOND, T0, unit};
    use crate::pod::restart::Role;
    use crate::pod::status::WaitingReason;
    use crate::systemd::ActiveState;

    fn pod(policy: &str, init: bool) -> Pod {
        let container = |name: &str| Container {
            name: name.into(),
            image: Some("/bin/sleep".into()),
            ..Container::default()
        };
        Pod {
            spec: Some(PodSpec {
                containers: vec![container("app")],
                init_containers: init.then(|| vec![container("setup")]),
                restart_policy: Some(policy.into()),
                ..PodSpec::default()
            }),
            ..Pod::default()
        }
    }

    fn now() -> Timestamp {
        Timestamp::from_microsecond(i64::try_from(T0 + 5 * SECOND).unwrap()).unwrap()
    }

    fn state_of(status: &PodStatus, init: bool) -> k8s_openapi::api::core::v1::ContainerState {
        let list = if init {
            status.init_container_statuses.as_ref()
        } else {
            status.container_statuses.as_ref()
        };
        list.unwrap()[0].state.clone().unwrap()
    }

    #[test]
    fn nothing_known_is_creating_or_initializing() {
        let status = build(&pod("Always", false), &PodSeen::default(), now());
        assert_eq!(status.phase.as_deref(), Some("Pending"));
        let waiting = state_of(&status, false).waiting.unwrap();
        assert_eq!(waiting.reason.as_deref(), Some("ContainerCreating"));
        let status = build(&pod("Always", true), &PodSeen::default(), now());
        let waiting = state_of(&status, false).waiting.unwrap();
        assert_eq!(waiting.reason.as_deref(), Some("PodInitializing"));
    }

    #[test]
    fn a_running_unit_with_its_machine_is_running() {
        let running = unit(ActiveState::Active, 42, 0, 0, T0, 0);
        let mut restarts = ContainerRestarts::new("app", RestartPolicy::Always, Role::App);
        observe_unit(&mut restarts, &running);
        let ips = ["192.0.2.7".parse().unwrap()];
        let seen = PodSeen {
            uid: "u-1",
            host_ips: &ips,
            containers: HashMap::from([(
                "app",
                ContainerSeen {
                    image_id: "sha256:ab",
                    restarts: Some(&restarts),
                    unit: Some(&running),
                    problem: None,
                    probed: Probed::default(),
                },
            )]),
            ..PodSeen::default()
        };
        let status = build(&pod("Always", false), &seen, now());
        assert_eq!(status.phase.as_deref(), Some("Running"));
        assert_eq!(status.pod_ip.as_deref(), Some("192.0.2.7"));
        let app = &status.container_statuses.unwrap()[0];
        assert!(app.ready);
        assert_eq!(app.image_id, "sha256:ab");
    }

    #[test]
    fn an_activating_container_is_started_but_holds_the_pod_unready() {
        let activating = unit(ActiveState::Activating, 42, 0, 0, T0, 0);
        let mut restarts = ContainerRestarts::new("app", RestartPolicy::Always, Role::App);
        observe_unit(&mut restarts, &activating);
        let seen = |unit| PodSeen {
            uid: "u-1",
            containers: HashMap::from([(
                "app",
                ContainerSeen {
                    restarts: Some(&restarts),
                    unit: Some(unit),
                    ..ContainerSeen::default()
                },
            )]),
            ..PodSeen::default()
        };
        let condition = |status: &PodStatus, type_: &str| {
            let conditions = status.conditions.as_ref().unwrap();
            let c = conditions.iter().find(|c| c.type_ == type_).unwrap();
            (c.status.clone(), c.reason.clone())
        };
        let status = build(&pod("Always", false), &seen(&activating), now());
        assert_eq!(status.phase.as_deref(), Some("Running"));
        let app = &status.container_statuses.clone().unwrap()[0];
        assert!(app.state.as_ref().unwrap().running.is_some());
        assert_eq!((app.started, app.ready), (Some(true), false));
        let unready = ("False".to_owned(), Some("ContainersNotReady".to_owned()));
        assert_eq!(condition(&status, "ContainersReady"), unready);
        assert_eq!(condition(&status, "Ready"), unready);
        let active = unit(ActiveState::Active, 42, 0, 0, T0, 0);
        let status = build(&pod("Always", false), &seen(&active), now());
        assert!(status.container_statuses.clone().unwrap()[0].ready);
        assert_eq!(condition(&status, "ContainersReady").0, "True");
        assert_eq!(condition(&status, "Ready").0, "True");
    }

    #[test]
    fn a_problem_is_the_waiting_reason() {
        let problem = Problem {
            reason: WaitingReason::ErrImagePull,
            message: "no such package".into(),
            transient: true,
        };
        let seen = PodSeen {
            containers: HashMap::from([(
                "app",
                ContainerSeen {
                    problem: Some(&problem),
                    ..ContainerSeen::default()
                },
            )]),
            ..PodSeen::default()
        };
        let status = build(&pod("Never", false), &seen, now());
        let waiting = state_of(&status, false).waiting.unwrap();
        assert_eq!(waiting.reason.as_deref(), Some("ErrImagePull"));
        assert_eq!(waiting.message.as_deref(), Some("no such package"));
    }

    #[test]
    fn the_previous_status_keeps_a_terminal_phase_and_start_time() {
        let first = build(&pod("Never", false), &PodSeen::default(), now());
        let mut previous = first.clone();
        previous.phase = Some("Succeeded".into());
        let seen = PodSeen {
            previous: Some(&previous),
            ..PodSeen::default()
        };
        let later = Timestamp::from_microsecond(i64::try_from(T0 + 60 * SECOND).unwrap()).unwrap();
        let status = build(&pod("Never", false), &seen, later);
        assert_eq!(status.phase.as_deref(), Some("Succeeded"));
        assert_eq!(status.start_time, first.start_time);
    }

    #[test]
    fn an_unreadable_policy_reads_as_always() {
        assert_eq!(
            RestartPolicy::of_pod(&pod("Sometimes", false)),
            RestartPolicy::Always
        );
        assert_eq!(
            RestartPolicy::of_pod(&Pod::default()),
            RestartPolicy::Always
        );
        assert_eq!(
            RestartPolicy::of_pod(&pod("Never", false)),
            RestartPolicy::Never
        );
    }

    #[test]
    fn a_record_kept_under_another_policy_starts_over() {
        let mut record = ContainerRestarts::new("app", RestartPolicy::Always, Role::App);
        observe_unit(&mut record, &unit(ActiveState::Active, 42, 0, 0, T0, 0));
        let kept = ContainerRestarts::resumed(
            "app",
            RestartPolicy::Always,
            Role::App,
            Some(record.clone()),
        );
        assert_eq!(kept, record);
        let fresh =
            ContainerRestarts::resumed("app", RestartPolicy::Never, Role::App, Some(record));
        assert_eq!(
            fresh,
            ContainerRestarts::new("app", RestartPolicy::Never, Role::App)
        );
    }
}
