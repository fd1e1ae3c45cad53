//! The taint check of admission, as the kubelet's `generalFilter`: only `NoExecute` taints
//! count (`NoSchedule` and `PreferNoSchedule` are the scheduler's — a pod bound to the
//! node by hand still runs), and a pod must tolerate each. A toleration matches as
//! `Toleration.ToleratesTaint`: an empty effect matches every effect, an empty key (with
//! `Exists`) every key, `Exists` every value, `Equal` (or no operator) the same value;
//! `Lt`/`Gt` are behind a feature gate that is off by default, so they match nothing.
//! Pure.

use k8s_openapi::api::core::v1::{PodSpec, Taint, Toleration};

use super::{Rejection, TAINT_TOLERATION};

/// The scheduler's description of this failure.
const DESCRIPTION: &str = "node(s) had taints that the pod didn't tolerate";

fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    let effect = toleration.effect.as_deref().unwrap_or_default();
    if !effect.is_empty() && effect != taint.effect {
        return false;
    }
    let key = toleration.key.as_deref().unwrap_or_default();
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match toleration.operator.as_deref().unwrap_or_default() {
        "" | "Equal" => {
            toleration.value.as_deref().unwrap_or_default()
                == taint.value.as_deref().unwrap_or_default()
        }
        "Exists" => true,
        _ => false,
    }
}

/// Whether `spec` tolerates every `NoExecute` taint of `taints`.
pub(super) fn tolerated(spec: &PodSpec, taints: &[Taint]) -> Result<(), Rejection> {
    let tolerations = spec.tolerations.as_deref().unwrap_or_default();
    let untolerated = taints
        .iter()
        .filter(|taint| taint.effect == "NoExecute")
        .find(|taint| !tolerations.iter().any(|t| tolerates(t, taint)));
    match untolerated {
        None => Ok(()),
        Some(taint) => {
            let value = taint.value.as_deref().unwrap_or_default();
            let detail = format!("untolerated taint {}={value}:{}", taint.key, taint.effect);
            Err(Rejection::predicate(TAINT_TOLERATION, DESCRIPTION, &detail))
        }
    }
}
