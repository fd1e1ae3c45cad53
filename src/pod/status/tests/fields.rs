//! Conditions, container statuses and pod-level fields.

use super::*;

// Conditions.

#[test]
fn conditions_come_in_kubelet_order() {
    let s = status_of(&pod(Always, vec![], vec![running("a")]));
    let types: Vec<&str> = s
        .conditions
        .iter()
        .flatten()
        .map(|c| c.type_.as_str())
        .collect();
    assert_eq!(
        types,
        ["Initialized", "Ready", "ContainersReady", "PodScheduled"]
    );
}

#[test]
fn pod_scheduled_is_true() {
    let s = status_of(&pod(Always, vec![], vec![creating("a")]));
    assert_eq!(condition(&s, "PodScheduled").status, "True");
}

#[test]
fn all_running_is_ready() {
    let s = status_of(&pod(Always, vec![], vec![running("a"), running("b")]));
    assert_eq!(condition(&s, "Ready").status, "True");
    assert_eq!(condition(&s, "ContainersReady").status, "True");
}

#[test]
fn one_not_running_is_not_ready() {
    let s = status_of(&pod(
        Always,
        vec![],
        vec![running("a"), backing_off("b", 1)],
    ));
    let ready = condition(&s, "Ready");
    assert_eq!(ready.status, "False");
    assert_eq!(ready.reason.as_deref(), Some("ContainersNotReady"));
    assert_eq!(
        ready.message.as_deref(),
        Some("containers with unready status: [b]")
    );
}

#[test]
fn running_but_reported_unready_is_not_ready() {
    let unready = ContainerObservation {
        ready: false,
        ..running("a")
    };
    let s = status_of(&pod(Always, vec![], vec![unready]));
    assert_eq!(condition(&s, "ContainersReady").status, "False");
}

#[test]
fn no_init_containers_is_initialized() {
    let s = status_of(&pod(Always, vec![], vec![creating("a")]));
    assert_eq!(condition(&s, "Initialized").status, "True");
}

#[test]
fn running_init_container_is_not_initialized() {
    let s = status_of(&pod(Always, vec![exited("one", 0), running("two")], vec![]));
    let initialized = condition(&s, "Initialized");
    assert_eq!(initialized.status, "False");
    assert_eq!(
        initialized.reason.as_deref(),
        Some("ContainersNotInitialized")
    );
    assert_eq!(
        initialized.message.as_deref(),
        Some("containers with incomplete status: [two]")
    );
}

#[test]
fn succeeded_init_containers_are_initialized() {
    let s = status_of(&pod(
        Always,
        vec![exited("init", 0)],
        vec![initializing("app")],
    ));
    assert_eq!(condition(&s, "Initialized").status, "True");
}

#[test]
fn succeeded_pod_is_not_ready_because_completed() {
    let s = status_of(&pod(Never, vec![], vec![exited("a", 0)]));
    assert_eq!(s.phase.as_deref(), Some("Succeeded"));
    assert_eq!(
        condition(&s, "Ready").reason.as_deref(),
        Some("PodCompleted")
    );
    assert_eq!(
        condition(&s, "Initialized").reason.as_deref(),
        Some("PodCompleted")
    );
}

#[test]
fn failed_pod_is_not_ready_because_failed() {
    let s = status_of(&pod(Never, vec![], vec![exited("a", 1)]));
    assert_eq!(
        condition(&s, "ContainersReady").reason.as_deref(),
        Some("PodFailed")
    );
}

#[test]
fn unchanged_condition_keeps_its_transition_time() {
    let p = pod(Always, vec![], vec![running("a")]);
    let first = pod_status(&p, None, at(100));
    let second = pod_status(&p, Some(&first), at(200));
    assert_eq!(
        condition(&second, "Ready").last_transition_time,
        Some(Time(at(100)))
    );
}

#[test]
fn changed_condition_gets_a_new_transition_time() {
    let first = pod_status(&pod(Always, vec![], vec![creating("a")]), None, at(100));
    let second = pod_status(
        &pod(Always, vec![], vec![running("a")]),
        Some(&first),
        at(200),
    );
    assert_eq!(
        condition(&second, "Ready").last_transition_time,
        Some(Time(at(200)))
    );
    assert_eq!(
        condition(&second, "PodScheduled").last_transition_time,
        Some(Time(at(100)))
    );
}

// Container statuses.

#[test]
fn killed_by_signal_reports_128_plus_signal() {
    let s = app_status(&pod(Never, vec![], vec![killed("a", 9)]));
    let t = s.state.unwrap().terminated.unwrap();
    assert_eq!((t.exit_code, t.signal), (137, Some(9)));
    assert_eq!(t.reason.as_deref(), Some("Error"));
}

#[test]
fn exit_zero_is_completed() {
    let s = app_status(&pod(Never, vec![], vec![exited("a", 0)]));
    let t = s.state.unwrap().terminated.unwrap();
    assert_eq!(t.reason.as_deref(), Some("Completed"));
    assert_eq!(t.finished_at, Some(Time(at(5))));
    assert_eq!(
        t.container_id.as_deref(),
        Some("systemd://systemk.default.web.a.service")
    );
}

#[test]
fn nonzero_exit_is_error() {
    assert_eq!(termination(ExitStatus::Code(2)).reason(), "Error");
}

#[test]
fn oom_kill_is_oom_killed() {
    let t = Termination {
        oom_killed: true,
        ..termination(ExitStatus::Signal(9))
    };
    assert_eq!(t.reason(), "OOMKilled");
}

#[test]
fn crash_loop_shows_waiting_and_last_state() {
    let s = app_status(&pod(Always, vec![], vec![backing_off("a", 1)]));
    let waiting = s.state.unwrap().waiting.unwrap();
    assert_eq!(waiting.reason.as_deref(), Some("CrashLoopBackOff"));
    let last = s.last_state.unwrap().terminated.unwrap();
    assert_eq!(last.exit_code, 1);
    assert_eq!(s.restart_count, 1);
    assert_eq!((s.ready, s.started), (false, Some(false)));
}

#[test]
fn first_run_has_empty_last_state() {
    let s = app_status(&pod(Always, vec![], vec![running("a")]));
    assert_eq!(s.last_state, Some(Default::default()));
    assert_eq!((s.ready, s.started), (true, Some(true)));
    assert_eq!(
        s.state.unwrap().running.unwrap().started_at,
        Some(Time(at(0)))
    );
}

#[test]
fn waiting_reasons_use_api_spelling() {
    let spelled: Vec<&str> = WaitingReason::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(
        spelled,
        [
            "ContainerCreating",
            "PodInitializing",
            "CrashLoopBackOff",
            "InvalidImageName",
            "ErrImagePull",
            "ImagePullBackOff",
            "ErrImageNeverPull",
            "CreateContainerConfigError",
            "CreateContainerError",
            "RunContainerError",
        ]
    );
    for reason in WaitingReason::ALL {
        assert_eq!(WaitingReason::from_api(reason.as_str()), Some(reason));
    }
    assert_eq!(WaitingReason::from_api("Completed"), None);
}

#[test]
fn waiting_message_is_passed_through() {
    let failed = container(
        "a",
        ContainerState::Waiting {
            reason: WaitingReason::ErrImagePull,
            message: Some("apt-get install nope failed".into()),
        },
    );
    let s = app_status(&pod(Always, vec![], vec![failed]));
    let waiting = s.state.unwrap().waiting.unwrap();
    assert_eq!(waiting.reason.as_deref(), Some("ErrImagePull"));
    assert_eq!(
        waiting.message.as_deref(),
        Some("apt-get install nope failed")
    );
}

#[test]
fn init_container_is_ready_only_after_exit_zero() {
    let p = pod(Always, vec![exited("one", 0), running("two")], vec![]);
    let inits = status_of(&p).init_container_statuses.unwrap();
    assert_eq!((inits[0].ready, inits[1].ready), (true, false));
    assert_eq!(inits[1].started, Some(true));
}

#[test]
fn image_and_image_id_are_reported() {
    let s = app_status(&pod(Always, vec![], vec![running("a")]));
    assert_eq!(
        (s.image.as_str(), s.image_id.as_str()),
        ("/bin/sleep", "sha256:ab")
    );
}

// Pod-level fields.

#[test]
fn pod_ip_is_the_host_ip() {
    let p = PodObservation {
        host_ips: vec!["192.0.2.7".parse().unwrap(), "2001:db8::7".parse().unwrap()],
        ..pod(Always, vec![], vec![running("a")])
    };
    let s = status_of(&p);
    assert_eq!(s.host_ip.as_deref(), Some("192.0.2.7"));
    assert_eq!(s.pod_ip.as_deref(), Some("192.0.2.7"));
    let pod_ips: Vec<&str> = s.pod_ips.iter().flatten().map(|i| i.ip.as_str()).collect();
    assert_eq!(pod_ips, ["192.0.2.7", "2001:db8::7"]);
    assert_eq!(s.host_ips.unwrap().len(), 2);
}

#[test]
fn issue_14_one_pod_ip_per_family_internal_first() {
    let p = PodObservation {
        host_ips: ["10.0.0.5", "203.0.113.5", "fd00::5"]
            .iter()
            .map(|ip| ip.parse().unwrap())
            .collect(),
        ..pod(Always, vec![], vec![running("a")])
    };
    let s = status_of(&p);
    let pod_ips: Vec<&str> = s.pod_ips.iter().flatten().map(|i| i.ip.as_str()).collect();
    let host_ips: Vec<&str> = s.host_ips.iter().flatten().map(|i| i.ip.as_str()).collect();
    assert_eq!(pod_ips, ["10.0.0.5", "fd00::5"]);
    assert_eq!(host_ips, ["10.0.0.5", "fd00::5"]);
    assert_eq!(s.pod_ip.as_deref(), Some("10.0.0.5"));
    assert_eq!(s.host_ip.as_deref(), Some("10.0.0.5"));
}

#[test]
fn unknown_host_ips_are_left_out() {
    let p = PodObservation {
        host_ips: vec![],
        ..pod(Always, vec![], vec![running("a")])
    };
    let s = status_of(&p);
    assert_eq!(
        (s.host_ip, s.host_ips, s.pod_ip, s.pod_ips),
        (None, None, None, None)
    );
}

#[test]
fn start_time_comes_from_the_observation() {
    let s = status_of(&pod(Always, vec![], vec![running("a")]));
    assert_eq!(s.start_time, Some(Time(at(-10))));
}

#[test]
fn start_time_defaults_to_now() {
    let p = PodObservation {
        start_time: None,
        ..pod(Always, vec![], vec![running("a")])
    };
    assert_eq!(status_of(&p).start_time, Some(Time(at(100))));
}

#[test]
fn start_time_never_changes_once_posted() {
    let p = pod(Always, vec![], vec![running("a")]);
    let first = pod_status(&p, None, at(100));
    let later = PodObservation {
        start_time: Some(at(50)),
        ..p
    };
    assert_eq!(
        pod_status(&later, Some(&first), at(200)).start_time,
        Some(Time(at(-10)))
    );
}

#[test]
fn terminal_phase_never_goes_back() {
    let done = pod_status(&pod(Never, vec![], vec![exited("a", 0)]), None, at(100));
    let again = pod(Never, vec![], vec![running("a")]);
    assert_eq!(
        pod_status(&again, Some(&done), at(200)).phase.as_deref(),
        Some("Succeeded")
    );
}

#[test]
fn qos_class_is_reported() {
    let p = PodObservation {
        qos_class: QosClass::Guaranteed,
        ..pod(Always, vec![], vec![running("a")])
    };
    assert_eq!(status_of(&p).qos_class.as_deref(), Some("Guaranteed"));
}

#[test]
fn no_init_containers_means_no_init_statuses() {
    assert_eq!(
        status_of(&pod(Always, vec![], vec![running("a")])).init_container_statuses,
        None
    );
}

#[test]
fn crash_loop_message_matches_the_kubelet() {
    assert_eq!(
        crash_loop_message(Duration::from_secs(20), "app", "web", "default", "u-1"),
        "back-off 20s restarting failed container=app pod=web_default(u-1)"
    );
}

#[test]
fn durations_print_like_go() {
    let printed: Vec<String> = [10, 80, 300, 3600]
        .map(|s| go_duration(Duration::from_secs(s)))
        .into();
    assert_eq!(printed, ["10s", "1m20s", "5m0s", "1h0m0s"]);
    assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
}
