//! Names, help, types and labels against the kubelet's own list
//! (`tests/fixtures/stats/kubelet-resource-metrics.txt`, copied from
//! resource_metrics.go), and the exact text of one scrape.

use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::server::stats::summary::{CpuRates, Sample, build};

const KUBELET: &str = include_str!("../../../../tests/fixtures/stats/kubelet-resource-metrics.txt");

/// name → (type, label names, help) of the kubelet's list.
fn kubelet_metrics() -> BTreeMap<&'static str, (&'static str, BTreeSet<&'static str>, &'static str)>
{
    KUBELET
        .lines()
        .filter(|line| !line.starts_with('#'))
        .map(|line| {
            let fields: Vec<&str> = line.splitn(4, '|').collect();
            let labels = fields[2].split(',').filter(|l| !l.is_empty()).collect();
            (fields[0], (fields[1], labels, fields[3]))
        })
        .collect()
}

fn summary() -> Summary {
    let sample: Sample = crate::server::stats::summary::tests::sample();
    build(&sample, &mut CpuRates::default(), true)
}

#[test]
fn names_help_types_and_labels_are_the_kubelets() {
    let kubelet = kubelet_metrics();
    let text = render(Some(&summary()));
    let mut seen = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap();
            assert_eq!(help, kubelet[name].2, "help of {name}");
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert_eq!(kind, kubelet[name].0, "type of {name}");
            seen.insert(name.to_owned());
        } else {
            let name = line.split(['{', ' ']).next().unwrap();
            let labels: BTreeSet<&str> = line
                .split_once('{')
                .map(|(_, rest)| rest.split_once('}').unwrap().0)
                .into_iter()
                .flat_map(|pairs| pairs.split(','))
                .map(|pair| pair.split_once('=').unwrap().0)
                .collect();
            assert_eq!(labels, kubelet[name].1, "labels of {line}");
        }
    }
    let stable: BTreeSet<String> = kubelet
        .iter()
        .filter(|(_, (_, _, help))| help.starts_with("[STABLE]"))
        .map(|(name, _)| (*name).to_owned())
        .collect();
    assert!(
        stable.is_subset(&seen),
        "missing: {:?}",
        stable.difference(&seen)
    );
}

#[test]
fn one_scrape_reads_as_the_kubelet_writes_it() {
    let expected = "\
# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the container in core-seconds
# TYPE container_cpu_usage_seconds_total counter
container_cpu_usage_seconds_total{container=\"app\",namespace=\"shop\",pod=\"web\"} 2 1796558410500
# HELP container_memory_working_set_bytes [STABLE] Current working set of the container in bytes
# TYPE container_memory_working_set_bytes gauge
container_memory_working_set_bytes{container=\"app\",namespace=\"shop\",pod=\"web\"} 200 1796558410500
# HELP container_start_time_seconds [STABLE] Start time of the container since unix epoch in seconds
# TYPE container_start_time_seconds gauge
container_start_time_seconds{container=\"app\",namespace=\"shop\",pod=\"web\"} 1.796554801999e+09
# HELP node_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the node in core-seconds
# TYPE node_cpu_usage_seconds_total counter
node_cpu_usage_seconds_total 4 1796558410500
# HELP node_memory_working_set_bytes [STABLE] Current working set of the node in bytes
# TYPE node_memory_working_set_bytes gauge
node_memory_working_set_bytes 2000 1796558410500
# HELP pod_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the pod in core-seconds
# TYPE pod_cpu_usage_seconds_total counter
pod_cpu_usage_seconds_total{namespace=\"shop\",pod=\"web\"} 2 1796558410500
# HELP pod_memory_working_set_bytes [STABLE] Current working set of the pod in bytes
# TYPE pod_memory_working_set_bytes gauge
pod_memory_working_set_bytes{namespace=\"shop\",pod=\"web\"} 200 1796558410500
# HELP resource_scrape_error [STABLE] 1 if there was an error while getting container metrics, 0 otherwise
# TYPE resource_scrape_error gauge
resource_scrape_error 0
# HELP scrape_error [ALPHA] (Deprecated since 1.29.0) 1 if there was an error while getting container metrics, 0 otherwise
# TYPE scrape_error gauge
scrape_error 0
";
    assert_eq!(render(Some(&summary())), expected);
}

#[test]
fn a_failed_reading_reports_only_the_scrape_error() {
    let text = render(None);
    let series: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(series, ["resource_scrape_error 1", "scrape_error 1"]);
}

#[test]
fn floats_read_as_gos_shortest_g_format() {
    for (value, expected) in [
        (0.0, "0"),
        (1.0, "1"),
        (3.742686, "3.742686"),
        (123456.5, "123456.5"),
        (1234567.0, "1.234567e+06"),
        (26361856.0, "2.6361856e+07"),
        (0.0001234, "0.0001234"),
        (0.00001234, "1.234e-05"),
        (1e21, "1e+21"),
        (f64::INFINITY, "+Inf"),
    ] {
        assert_eq!(go_float(value), expected, "{value}");
    }
}

#[test]
fn label_values_are_escaped() {
    assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
}
