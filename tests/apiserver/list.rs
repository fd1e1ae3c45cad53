//! GET on a collection: namespace scoping, label and field selectors, resourceVersion and
//! resourceVersionMatch rules, and `limit`/`continue` paging (continue tokens name the last
//! key returned; pages read the current state rather than a snapshot).

use serde_json::{Value, json};

use super::request::ResourceRequest;
use super::selectors::{FieldSelector, LabelSelector};
use super::status::{ApiError, ApiResult};
use super::{Api, events};

/// Parsed `labelSelector` and `fieldSelector` of a list or watch.
pub struct Selectors {
    labels: LabelSelector,
    fields: FieldSelector,
}

impl Selectors {
    /// Reads both selectors from the query.
    pub fn from_request(req: &ResourceRequest) -> ApiResult<Self> {
        Ok(Self {
            labels: LabelSelector::parse(req.param("labelSelector").unwrap_or(""))?,
            fields: FieldSelector::parse(req.param("fieldSelector").unwrap_or(""), req.resource)?,
        })
    }

    /// The selectors of a list or watch. A server configured to ignore field selectors
    /// there (as some third-party control planes do) still validates them, then selects on
    /// labels alone.
    pub fn for_reading(api: &Api, req: &ResourceRequest) -> ApiResult<Self> {
        let mut selectors = Self::from_request(req)?;
        if api.config.ignore_field_selectors {
            selectors.fields = FieldSelector::default();
        }
        Ok(selectors)
    }

    /// Whether the object is selected.
    pub fn matches(&self, object: &Value) -> bool {
        self.labels.matches(object) && self.fields.matches(object)
    }
}

/// Removes `kind`/`apiVersion` from list items, as the real server's list encoding does.
fn as_list_item(mut object: Value) -> Value {
    if let Some(map) = object.as_object_mut() {
        map.remove("kind");
        map.remove("apiVersion");
    }
    object
}

/// GET on a collection (without `watch`).
pub fn list(api: &Api, req: &ResourceRequest) -> ApiResult<Value> {
    let resource = req.resource;
    let selectors = Selectors::for_reading(api, req)?;
    let state = api.store.lock();
    let revision = state.revision();
    if let Some(wanted) = req
        .param("resourceVersion")
        .filter(|rv| !rv.is_empty() && *rv != "0")
    {
        let wanted: u64 = wanted
            .parse()
            .map_err(|_| ApiError::bad_request(format!("invalid resource version \"{wanted}\"")))?;
        match req.param("resourceVersionMatch") {
            Some("Exact") if wanted != revision => {
                return Err(ApiError::expired(format!(
                    "too old resource version: {wanted} ({revision})"
                )));
            }
            _ if wanted > revision => {
                return Err(ApiError::too_large(wanted, revision));
            }
            _ => {}
        }
    }
    let start_after = match req.param("continue").filter(|token| !token.is_empty()) {
        Some(token) => Some(decode_continue(token)?),
        None => None,
    };
    let limit: usize = req
        .param("limit")
        .and_then(|limit| limit.parse().ok())
        .filter(|l| *l > 0)
        .unwrap_or(usize::MAX);
    let mut items = Vec::new();
    let mut next = None;
    let matching = state
        .list(resource, req.namespace.as_deref())
        .into_iter()
        .map(|(key, object)| (key, events::from_storage(resource, object)))
        .filter(|(key, _)| {
            start_after
                .as_ref()
                .is_none_or(|after| (&key.namespace, &key.name) > (&after.0, &after.1))
        })
        .filter(|(_, object)| selectors.matches(object));
    let mut remaining = 0usize;
    for (key, object) in matching {
        if items.len() == limit {
            remaining += 1;
            continue;
        }
        items.push(as_list_item(object));
        if items.len() == limit {
            next = Some(hex::encode(format!("{}/{}", key.namespace, key.name)));
        }
    }
    let mut metadata = json!({ "resourceVersion": revision.to_string() });
    if remaining > 0
        && let Some(token) = next
    {
        metadata["continue"] = json!(token);
        metadata["remainingItemCount"] = json!(remaining);
    }
    Ok(json!({
        "kind": format!("{}List", resource.kind),
        "apiVersion": resource.api_version(),
        "metadata": metadata,
        "items": items,
    }))
}

fn decode_continue(token: &str) -> ApiResult<(String, String)> {
    let bad = || ApiError::bad_request(format!("continue key is not valid: {token}"));
    let text = String::from_utf8(hex::decode(token).map_err(|_| bad())?).map_err(|_| bad())?;
    let (namespace, name) = text.split_once('/').ok_or_else(bad)?;
    Ok((namespace.to_string(), name.to_string()))
}
