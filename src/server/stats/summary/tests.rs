//! The summary against `tests/fixtures/stats/kubelet-summary.json`, a summary written by
//! hand from the kubelet's `stats/v1alpha1` types.go (field names, nesting, omissions).

use super::*;
use crate::systemd::MemoryUsage;

const UID: &str = "1234abcd-0000-4000-8000-00000000000f";
const SLICE: &str = "/systemk.slice/systemk-besteffort.slice/systemk-besteffort-pod1234abcd_0000_4000_8000_00000000000f.slice";

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn container_cgroup() -> String {
    format!("{SLICE}/systemk.shop.web.app.service")
}

pub(crate) fn sample() -> Sample {
    let fs = FsUsage {
        available: 400,
        capacity: 1000,
        used: 500,
        inodes_free: 90,
        inodes: 100,
    };
    let usage = CgroupUsage {
        cpu_ns: Some(2_000_000_000),
        memory: Some(MemoryUsage {
            usage: 300,
            working_set: 200,
            rss: 100,
            page_faults: Some(5),
            major_page_faults: Some(0),
        }),
    };
    Sample {
        time: at("2026-12-06T12:00:10.5Z"),
        node_name: "node-a".into(),
        boot_time: Some(at("2026-12-01T08:00:00Z")),
        node_cpu_ns: Some(4_000_000_000),
        node_memory: Some(NodeMemory {
            usage: MemoryUsage {
                usage: 3000,
                working_set: 2000,
                rss: 1000,
                page_faults: Some(11),
                major_page_faults: Some(1),
            },
            capacity: 8000,
        }),
        interfaces: vec![Interface {
            name: "eth0".into(),
            rx_bytes: 5000,
            rx_errors: 2,
            tx_bytes: 7000,
            tx_errors: 3,
        }],
        node_fs: Some(fs),
        image_fs: Some(fs),
        pods: vec![PodSample {
            pod_ref: PodReference {
                name: "web".into(),
                namespace: "shop".into(),
                uid: UID.into(),
            },
            start_time: Some(at("2026-12-06T11:00:00Z")),
            usage: Some((SLICE.into(), usage)),
            containers: vec![ContainerSample {
                name: "app".into(),
                start_time: Some(at("2026-12-06T11:00:01.999Z")),
                cgroup: container_cgroup(),
                usage,
            }],
            volumes: vec![("cache".into(), fs, 8192, 3)],
        }],
    }
}

/// Readings ten seconds before [`sample`]'s.
fn earlier() -> CpuRates {
    let then = at("2026-12-06T12:00:00.5Z");
    let mut rates = CpuRates::default();
    rates.rate("", then, 1_500_000_000);
    rates.rate(SLICE, then, 1_000_000_000);
    rates.rate(&container_cgroup(), then, 1_000_000_000);
    rates
}

#[test]
fn the_summary_has_the_kubelets_shape() {
    let recorded: serde_json::Value = serde_json::from_str(include_str!(
        "../../../../tests/fixtures/stats/kubelet-summary.json"
    ))
    .unwrap();
    let summary = build(&sample(), &mut earlier(), false);
    let ours = serde_json::to_value(&summary).unwrap();
    assert_eq!(
        ours,
        recorded,
        "ours:\n{}",
        serde_json::to_string_pretty(&ours).unwrap()
    );
}

#[test]
fn only_cpu_and_memory_leaves_out_network_file_systems_and_volumes() {
    let summary = build(&sample(), &mut earlier(), true);
    let json = serde_json::to_value(&summary).unwrap();
    for absent in ["network", "fs", "runtime"] {
        assert!(json["node"].get(absent).is_none(), "node.{absent}");
    }
    for absent in ["network", "volume"] {
        assert!(json["pods"][0].get(absent).is_none(), "pod.{absent}");
    }
    assert_eq!(
        json["pods"][0]["containers"][0]["memory"]["workingSetBytes"],
        200
    );
    assert_eq!(
        json["node"]["cpu"]["usageCoreNanoSeconds"],
        4_000_000_000u64
    );
}

#[test]
fn the_first_reading_has_no_rate_and_gone_cgroups_are_forgotten() {
    let mut rates = CpuRates::default();
    let summary = build(&sample(), &mut rates, true);
    let cpu = summary.node.cpu.unwrap();
    assert_eq!(cpu.usage_nano_cores, None);
    assert_eq!(cpu.usage_core_nano_seconds, Some(4_000_000_000));
    assert_eq!(rates.last.len(), 3);
    let mut empty = sample();
    empty.pods.clear();
    build(&empty, &mut rates, true);
    assert_eq!(rates.last.len(), 1, "only the node is left");
}

#[test]
fn a_counter_that_went_back_has_no_rate() {
    let mut rates = CpuRates::default();
    rates.rate("x", at("2026-12-06T12:00:00Z"), 500);
    assert_eq!(rates.rate("x", at("2026-12-06T12:00:01Z"), 100), None);
    assert_eq!(
        rates.rate("x", at("2026-12-06T12:00:01Z"), 200),
        None,
        "no time passed"
    );
    assert_eq!(rates.rate("x", at("2026-12-06T12:00:02Z"), 300), Some(100));
}
