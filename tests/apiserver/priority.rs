//! The Priority admission plugin on pod create (plugin/pkg/admission/priority): the
//! priority comes from `priorityClassName` — only the two built-in classes exist here
//! (`system-cluster-critical` 2000000000, `system-node-critical` 2000001000), as the test
//! server has no PriorityClass objects; without a class (and no global default) it is 0.
//! An unknown class is refused, and so is a `spec.priority` that differs from the computed
//! one: a pod cannot claim a priority. Since Kubernetes 1.17 the critical classes are
//! allowed in every namespace (restricting them is a ResourceQuota the admin configures),
//! so they are not refused here either.

use serde_json::{Value, json};

use super::status::{ApiError, ApiResult};

/// The built-in priority classes and their values (pkg/apis/scheduling).
const SYSTEM_CLASSES: [(&str, i64); 2] = [
    ("system-cluster-critical", 2_000_000_000),
    ("system-node-critical", 2_000_001_000),
];

/// Resolves the pod's priority from its class, or refuses it.
pub fn admit(pod: &mut Value) -> ApiResult<()> {
    let name = pod["metadata"]["name"].as_str().unwrap_or("").to_owned();
    let forbidden = |why: String| ApiError::forbidden("", "pods", &name, &why);
    let class = pod["spec"]["priorityClassName"]
        .as_str()
        .filter(|c| !c.is_empty())
        .map(str::to_owned);
    let priority = match &class {
        None => 0,
        Some(class) => SYSTEM_CLASSES
            .iter()
            .find(|(known, _)| known == class)
            .map(|(_, value)| *value)
            .ok_or_else(|| forbidden(format!("no PriorityClass with name {class} was found")))?,
    };
    if let Some(given) = pod["spec"]["priority"].as_i64()
        && given != priority
    {
        return Err(forbidden(format!(
            "the integer value of priority ({given}) must not be provided in pod spec; priority admission controller computed {priority} from the given PriorityClass name"
        )));
    }
    pod["spec"]["priority"] = json!(priority);
    if pod["spec"]["preemptionPolicy"].is_null() {
        pod["spec"]["preemptionPolicy"] = json!("PreemptLowerPriority");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::crud_tests::{PODS, pod, server};
    use super::*;

    #[tokio::test]
    async fn priority_comes_from_the_class_and_cannot_be_claimed() {
        let (_server, client) = server().await;
        let (code, created) = client.post(PODS, &pod("plain", None, json!({}))).await;
        assert_eq!(code, 201, "{created}");
        assert_eq!(created["spec"]["priority"], 0);
        let mut critical = pod("critical", None, json!({}));
        critical["spec"]["priorityClassName"] = json!("system-node-critical");
        let (code, created) = client.post(PODS, &critical).await;
        assert_eq!(code, 201, "{created}");
        assert_eq!(created["spec"]["priority"], 2_000_001_000);
        let mut claimed = pod("claimed", None, json!({}));
        claimed["spec"]["priority"] = json!(2_000_001_000);
        let (code, refused) = client.post(PODS, &claimed).await;
        assert_eq!(code, 403, "{refused}");
        assert!(
            refused["message"]
                .as_str()
                .unwrap()
                .contains("the integer value of priority (2000001000) must not be provided"),
            "{refused}"
        );
        let mut unknown = pod("unknown", None, json!({}));
        unknown["spec"]["priorityClassName"] = json!("very-important");
        let (code, refused) = client.post(PODS, &unknown).await;
        assert_eq!(code, 403, "{refused}");
    }
}
