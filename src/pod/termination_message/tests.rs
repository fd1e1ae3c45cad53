use k8s_openapi::api::core::v1::{ContainerStateTerminated, PodStatus};

use super::*;

const FALLBACK: MessagePolicy = MessagePolicy::FallbackToLogsOnError;

fn bytes(text: &str) -> FileRead {
    FileRead::Bytes(text.as_bytes().to_vec())
}

#[test]
fn the_file_is_the_message_whatever_the_policy() {
    for policy in [MessagePolicy::File, FALLBACK] {
        assert_eq!(
            message(policy, true, true, bytes("bye")),
            Message::Known(Some("bye".into()))
        );
    }
}

#[test]
fn only_the_last_4096_bytes_of_the_file_are_kept() {
    let long = format!("{}{}", "a".repeat(10), "b".repeat(MAX_FILE_BYTES));
    let Message::Known(Some(kept)) = message(MessagePolicy::File, false, true, bytes(&long)) else {
        panic!("no message");
    };
    assert_eq!(kept, "b".repeat(MAX_FILE_BYTES));
}

#[test]
fn an_empty_or_missing_file_falls_back_to_logs_only_for_a_failed_run_under_the_policy() {
    for file in [FileRead::Missing, bytes("")] {
        assert_eq!(
            message(FALLBACK, true, true, file.clone()),
            Message::FromLog
        );
        assert_eq!(
            message(FALLBACK, false, true, file.clone()),
            Message::Known(None),
            "a run that succeeded"
        );
        assert_eq!(
            message(FALLBACK, true, false, file.clone()),
            Message::Known(None),
            "a start that never ran the program"
        );
        assert_eq!(
            message(MessagePolicy::File, true, true, file),
            Message::Known(None)
        );
    }
}

#[test]
fn an_unreadable_file_says_so_without_falling_back() {
    assert_eq!(
        message(FALLBACK, true, true, FileRead::Failed("/x: denied".into())),
        Message::Known(Some("Error on reading termination log /x: denied".into()))
    );
}

#[test]
fn the_log_fallback_keeps_80_lines_and_2048_bytes() {
    let lines: Vec<String> = (0..100).map(|n| format!("line {n}")).collect();
    let text = from_log(&lines).unwrap();
    assert!(text.starts_with("line 20\n"), "{text}");
    assert!(text.ends_with("line 99\n"));
    assert_eq!(text.lines().count(), 80);
    let long: Vec<String> = (0..10).map(|n| format!("{n}{}", "x".repeat(500))).collect();
    let text = from_log(&long).unwrap();
    assert_eq!(text.len(), MAX_LOG_BYTES);
    assert!(text.ends_with(&format!("9{}\n", "x".repeat(500))));
    assert_eq!(from_log(&[]), None);
}

#[test]
fn the_policy_reads_the_spec() {
    assert_eq!(MessagePolicy::from_spec(None), MessagePolicy::File);
    assert_eq!(MessagePolicy::from_spec(Some("File")), MessagePolicy::File);
    assert_eq!(
        MessagePolicy::from_spec(Some("FallbackToLogsOnError")),
        FALLBACK
    );
}

fn terminated(message: &str) -> Option<ContainerState> {
    Some(ContainerState {
        terminated: Some(ContainerStateTerminated {
            message: Some(message.into()),
            ..ContainerStateTerminated::default()
        }),
        ..ContainerState::default()
    })
}

#[test]
fn messages_share_12_kib_across_the_pods_containers() {
    let status = |n: usize| PodStatus {
        init_container_statuses: Some(vec![ContainerStatus {
            state: terminated(&"i".repeat(MAX_FILE_BYTES)),
            ..ContainerStatus::default()
        }]),
        container_statuses: Some(
            (0..n)
                .map(|_| ContainerStatus {
                    state: terminated(&"a".repeat(MAX_FILE_BYTES)),
                    last_state: terminated(&"é".repeat(MAX_FILE_BYTES / 2)),
                    ..ContainerStatus::default()
                })
                .collect(),
        ),
        ..PodStatus::default()
    };
    let message = |state: &Option<ContainerState>| {
        state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .and_then(|t| t.message.clone())
            .unwrap()
    };
    // Two containers: 6 KiB each, more than any one message.
    let mut small = status(1);
    cut_to_pod_share(&mut small, 2);
    assert_eq!(small, status(1));
    // Five: 2457 bytes each; a two-byte character is not split.
    let mut large = status(4);
    cut_to_pod_share(&mut large, 5);
    let apps = large.container_statuses.unwrap();
    assert_eq!(message(&apps[0].state).len(), 2457);
    assert_eq!(message(&apps[0].last_state).len(), 2456);
    let init = large.init_container_statuses.unwrap();
    assert_eq!(message(&init[0].state).len(), 2457);
}
