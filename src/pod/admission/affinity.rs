//! The node-affinity check of admission (component-helpers' `GetRequiredNodeAffinity`,
//! which the kubelet runs): every `nodeSelector` label equal on the Node, and, when the
//! pod has required node affinity, at least one of its terms matching — each term's
//! `matchExpressions` on the labels and `matchFields` on `metadata.name` all true. A term
//! with nothing in it, or one that does not parse (`In` without values, `Gt` without one
//! integer, a field other than `metadata.name`), matches nothing, as there. Pure.

use k8s_openapi::api::core::v1::{NodeSelectorRequirement, NodeSelectorTerm, Pod};

use super::{NODE_AFFINITY, NodeView, Rejection};

/// The scheduler's description of this failure.
const DESCRIPTION: &str = "node(s) didn't match Pod's node affinity/selector";

/// Whether `pod`'s node selector and required node affinity match `node`.
pub(super) fn fits(pod: &Pod, node: &NodeView) -> Result<(), Rejection> {
    let Some(spec) = pod.spec.as_ref() else {
        return Ok(());
    };
    for (key, value) in spec.node_selector.iter().flatten() {
        if node.labels.get(key) != Some(value) {
            let detail = format!("nodeSelector {key}={value}");
            return Err(Rejection::predicate(NODE_AFFINITY, DESCRIPTION, &detail));
        }
    }
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        });
    if let Some(required) = required
        && !required
            .node_selector_terms
            .iter()
            .any(|term| term_matches(term, node))
    {
        let detail = "no term of requiredDuringSchedulingIgnoredDuringExecution matches";
        return Err(Rejection::predicate(NODE_AFFINITY, DESCRIPTION, detail));
    }
    Ok(())
}

fn term_matches(term: &NodeSelectorTerm, node: &NodeView) -> bool {
    let expressions = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if expressions.is_empty() && fields.is_empty() {
        return false;
    }
    let labels_match = expressions
        .iter()
        .all(|r| requirement_matches(r, node.labels.get(&r.key).map(String::as_str)) == Some(true));
    let fields_match = fields.iter().all(|r| {
        r.key == "metadata.name"
            && matches!(r.operator.as_str(), "In" | "NotIn")
            && r.values.as_ref().is_some_and(|v| v.len() == 1)
            && requirement_matches(r, Some(&node.name)) == Some(true)
    });
    labels_match && fields_match
}

/// Whether the label (or field) `value` meets `requirement`; `None` when the requirement
/// does not parse, which fails its term.
fn requirement_matches(requirement: &NodeSelectorRequirement, value: Option<&str>) -> Option<bool> {
    let values = requirement.values.as_deref().unwrap_or_default();
    let matches = match requirement.operator.as_str() {
        "In" | "NotIn" => {
            if values.is_empty() {
                return None;
            }
            let found = value.is_some_and(|v| values.iter().any(|w| w == v));
            found == (requirement.operator == "In")
        }
        "Exists" | "DoesNotExist" => {
            if !values.is_empty() {
                return None;
            }
            value.is_some() == (requirement.operator == "Exists")
        }
        "Gt" | "Lt" => {
            let [bound] = values else {
                return None;
            };
            let bound: i64 = bound.parse().ok()?;
            match value.map(str::parse::<i64>) {
                Some(Ok(v)) if requirement.operator == "Gt" => v > bound,
                Some(Ok(v)) => v < bound,
                _ => false,
            }
        }
        _ => return None,
    };
    Some(matches)
}
