//! `/metrics/resource` as the kubelet's resource metrics collector
//! (pkg/kubelet/metrics/collectors/resource_metrics.go) writes it from the CPU and memory
//! summary: the same names, help texts (with component-base's `[STABLE]`/`[ALPHA]`
//! marks), types and labels, in Prometheus text format 0.0.4 as client_golang writes it:
//! families by name, series by label values, floats as Go's `%g`, and the sample time in
//! milliseconds on each usage series (`container_start_time_seconds` and the scrape
//! error gauges carry none). metrics-server reads exactly these. Pure. Layer 6.

use std::fmt::Write as _;

use k8s_openapi::jiff::Timestamp;

use super::summary::{ContainerStats, PodStats, Summary};

/// The content type client_golang answers with for the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One series: its labels (name, value) in name order, value and sample time.
type Series = (Vec<(&'static str, String)>, f64, Option<Timestamp>);

/// One family: name, help (with its stability mark), type, series.
struct Family {
    name: &'static str,
    help: &'static str,
    kind: &'static str,
    series: Vec<Series>,
}

/// The families of one scrape; `None` when the summary could not be read (then only
/// the scrape error gauges, at 1).
pub fn render(summary: Option<&Summary>) -> String {
    let error = if summary.is_some() { 0.0 } else { 1.0 };
    let mut families = vec![
        family(
            "resource_scrape_error",
            "[STABLE] 1 if there was an error while getting container metrics, 0 otherwise",
            "gauge",
        ),
        family(
            "scrape_error",
            "[ALPHA] (Deprecated since 1.29.0) 1 if there was an error while getting container metrics, 0 otherwise",
            "gauge",
        ),
    ];
    for family in &mut families {
        family.series.push((Vec::new(), error, None));
    }
    if let Some(summary) = summary {
        families.extend(usage_families(summary));
    }
    families.retain(|family| !family.series.is_empty());
    families.sort_by_key(|family| family.name);
    let mut text = String::new();
    for mut family in families {
        family.series.sort_by(|a, b| a.0.cmp(&b.0));
        let _ = writeln!(text, "# HELP {} {}", family.name, family.help);
        let _ = writeln!(text, "# TYPE {} {}", family.name, family.kind);
        for (labels, value, at) in &family.series {
            text.push_str(family.name);
            if !labels.is_empty() {
                let pairs: Vec<String> = labels
                    .iter()
                    .map(|(name, value)| format!("{name}=\"{}\"", escape(value)))
                    .collect();
                let _ = write!(text, "{{{}}}", pairs.join(","));
            }
            let _ = write!(text, " {}", go_float(*value));
            if let Some(at) = at {
                let _ = write!(text, " {}", at.as_millisecond());
            }
            text.push('\n');
        }
    }
    text
}

fn family(name: &'static str, help: &'static str, kind: &'static str) -> Family {
    Family {
        name,
        help,
        kind,
        series: Vec::new(),
    }
}

fn usage_families(summary: &Summary) -> Vec<Family> {
    let mut node_cpu = family(
        "node_cpu_usage_seconds_total",
        "[STABLE] Cumulative cpu time consumed by the node in core-seconds",
        "counter",
    );
    let mut node_memory = family(
        "node_memory_working_set_bytes",
        "[STABLE] Current working set of the node in bytes",
        "gauge",
    );
    let mut start = family(
        "container_start_time_seconds",
        "[STABLE] Start time of the container since unix epoch in seconds",
        "gauge",
    );
    let mut container_cpu = family(
        "container_cpu_usage_seconds_total",
        "[STABLE] Cumulative cpu time consumed by the container in core-seconds",
        "counter",
    );
    let mut container_memory = family(
        "container_memory_working_set_bytes",
        "[STABLE] Current working set of the container in bytes",
        "gauge",
    );
    let mut pod_cpu = family(
        "pod_cpu_usage_seconds_total",
        "[STABLE] Cumulative cpu time consumed by the pod in core-seconds",
        "counter",
    );
    let mut pod_memory = family(
        "pod_memory_working_set_bytes",
        "[STABLE] Current working set of the pod in bytes",
        "gauge",
    );
    let node = &summary.node;
    if let Some((ns, at)) = node
        .cpu
        .as_ref()
        .and_then(|c| Some((c.usage_core_nano_seconds?, c.time)))
    {
        node_cpu.series.push((Vec::new(), seconds(ns), Some(at)));
    }
    if let Some((bytes, at)) = node
        .memory
        .as_ref()
        .and_then(|m| Some((m.working_set_bytes?, m.time)))
    {
        node_memory
            .series
            .push((Vec::new(), bytes as f64, Some(at)));
    }
    for pod in &summary.pods {
        for container in &pod.containers {
            let labels = container_labels(pod, container);
            if container.start_time.as_second() > 0 {
                let value = container.start_time.as_nanosecond() as f64 / 1e9;
                start.series.push((labels.clone(), value, None));
            }
            if let Some(cpu) = &container.cpu
                && let Some(ns) = cpu.usage_core_nano_seconds
            {
                container_cpu
                    .series
                    .push((labels.clone(), seconds(ns), Some(cpu.time)));
            }
            if let Some(memory) = &container.memory
                && let Some(bytes) = memory.working_set_bytes
            {
                container_memory
                    .series
                    .push((labels, bytes as f64, Some(memory.time)));
            }
        }
        let labels = vec![
            ("namespace", pod.pod_ref.namespace.clone()),
            ("pod", pod.pod_ref.name.clone()),
        ];
        if let Some(cpu) = &pod.cpu
            && let Some(ns) = cpu.usage_core_nano_seconds
        {
            pod_cpu
                .series
                .push((labels.clone(), seconds(ns), Some(cpu.time)));
        }
        if let Some(memory) = &pod.memory
            && let Some(bytes) = memory.working_set_bytes
        {
            pod_memory
                .series
                .push((labels, bytes as f64, Some(memory.time)));
        }
    }
    vec![
        node_cpu,
        node_memory,
        start,
        container_cpu,
        container_memory,
        pod_cpu,
        pod_memory,
    ]
}

fn container_labels(pod: &PodStats, container: &ContainerStats) -> Vec<(&'static str, String)> {
    vec![
        ("container", container.name.clone()),
        ("namespace", pod.pod_ref.namespace.clone()),
        ("pod", pod.pod_ref.name.clone()),
    ]
}

/// Core-nanoseconds as core-seconds, as the collector divides by `time.Second`.
fn seconds(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// A label value as the text format escapes it: backslash, double quote, newline.
fn escape(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

/// `value` as client_golang writes it, `strconv.FormatFloat(value, 'g', -1, 64)`: the
/// shortest digits that read back exactly, with an exponent (`e+07`, at least two digits)
/// when it is below −4 or at least 6 (Go decides on precision 6 for the shortest form).
fn go_float(value: f64) -> String {
    if value.is_nan() {
        return "NaN".to_owned();
    }
    if value.is_infinite() {
        return if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    if value == 0.0 {
        return "0".to_owned();
    }
    let scientific = format!("{value:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if (-4..6).contains(&exponent) {
        return format!("{value}");
    }
    let sign = if exponent < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exponent.abs())
}

#[cfg(test)]
mod tests;
