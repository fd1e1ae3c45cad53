//! systemk's own requests to the API server, as it counts them on its kubelet API's
//! `/metrics` (`systemk_api_requests_total{verb, resource, code}`), read through the
//! API server's `nodes/proxy` (the test API server reaches the kubelet as
//! `kube-apiserver-kubelet-client`). systemk checks that caller with one
//! SubjectAccessReview and caches the answer for 5 minutes, so [`Counts::read`] is
//! called once untimed before the counts that matter: later reads cost no request.

use std::collections::BTreeMap;

use anyhow::Context as _;

/// The series' name in the exposition.
const SERIES: &str = "systemk_api_requests_total{";

/// Requests by (verb, resource), all status codes together.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counts(BTreeMap<(String, String), u64>);

impl Counts {
    /// The counts of the agent of `node`, now.
    pub async fn read(client: &kube::Client, node: &str) -> anyhow::Result<Self> {
        let request =
            http::Request::get(format!("/api/v1/nodes/{node}/proxy/metrics")).body(Vec::new())?;
        let text = client
            .request_text(request)
            .await
            .context("systemk's /metrics through nodes/proxy")?;
        Ok(Self::parse(&text))
    }

    fn parse(text: &str) -> Self {
        let mut counts = BTreeMap::new();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix(SERIES) else {
                continue;
            };
            let Some((labels, value)) = rest.split_once("} ") else {
                continue;
            };
            let label = |name: &str| {
                labels
                    .split(',')
                    .find_map(|pair| pair.strip_prefix(&format!("{name}=\"")))
                    .map(|v| v.trim_end_matches('"').to_owned())
                    .unwrap_or_default()
            };
            let Ok(value) = value.trim().parse::<f64>() else {
                continue;
            };
            *counts
                .entry((label("verb"), label("resource")))
                .or_default() += value as u64;
        }
        Self(counts)
    }

    /// What was counted since `before`, series that did not move left out.
    pub fn since(&self, before: &Self) -> Self {
        Self(
            self.0
                .iter()
                .filter_map(|(key, &after)| {
                    let delta = after.saturating_sub(before.0.get(key).copied().unwrap_or(0));
                    (delta > 0).then(|| (key.clone(), delta))
                })
                .collect(),
        )
    }

    /// All requests.
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// Requests by verb.
    pub fn by_verb(&self) -> BTreeMap<String, u64> {
        let mut verbs = BTreeMap::new();
        for ((verb, _), count) in &self.0 {
            *verbs.entry(verb.clone()).or_default() += count;
        }
        verbs
    }

    /// Requests by `"<verb> <resource>"`.
    pub fn by_verb_and_resource(&self) -> BTreeMap<String, u64> {
        self.0
            .iter()
            .map(|((verb, resource), count)| (format!("{verb} {resource}"), *count))
            .collect()
    }
}
