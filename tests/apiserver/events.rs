//! events.k8s.io/v1 Events share storage with core/v1 Events, as in kube-apiserver: objects
//! are stored in the core/v1 shape and converted at the API boundary, so an event written by
//! kube-rs' `Recorder` (events.k8s.io/v1) shows in `kubectl describe` (core/v1) and back.
//! Pure field renames; identity for every other resource.

use serde_json::{Map, Value, json};

use super::resources::Resource;

/// (core/v1 field, events.k8s.io/v1 field).
const RENAMES: &[(&str, &str)] = &[
    ("involvedObject", "regarding"),
    ("related", "related"),
    ("message", "note"),
    ("reason", "reason"),
    ("type", "type"),
    ("action", "action"),
    ("eventTime", "eventTime"),
    ("series", "series"),
    ("reportingComponent", "reportingController"),
    ("reportingInstance", "reportingInstance"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
];

fn is_events_v1(resource: &Resource) -> bool {
    resource.group == "events.k8s.io"
}

fn rename(object: Value, api_version: &str, from_core: bool) -> Value {
    let Value::Object(mut source) = object else {
        return object;
    };
    let mut converted = Map::new();
    converted.insert("apiVersion".into(), json!(api_version));
    converted.insert("kind".into(), json!("Event"));
    if let Some(metadata) = source.remove("metadata") {
        converted.insert("metadata".into(), metadata);
    }
    for (core, v1) in RENAMES {
        let (from, to) = if from_core { (core, v1) } else { (v1, core) };
        if let Some(value) = source.remove(*from).filter(|value| !value.is_null()) {
            converted.insert((*to).into(), value);
        }
    }
    Value::Object(converted)
}

/// The stored (core/v1) shape of an object written through `resource`.
pub fn to_storage(resource: &Resource, object: Value) -> Value {
    if is_events_v1(resource) {
        rename(object, "v1", false)
    } else {
        object
    }
}

/// The shape `resource` serves for a stored object.
pub fn from_storage(resource: &Resource, object: Value) -> Value {
    if is_events_v1(resource) {
        rename(object, "events.k8s.io/v1", true)
    } else {
        object
    }
}

#[cfg(test)]
mod unit_tests {
    use super::*;
    use crate::apiserver::resources;

    #[test]
    fn round_trip_between_core_and_events_v1() {
        let v1 = resources::find("events.k8s.io", "v1", "events").unwrap();
        let core = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e"},
            "involvedObject": {"kind": "Pod", "name": "web"}, "message": "hi", "reportingComponent": "systemk", "count": 2});
        let served = from_storage(v1, core.clone());
        assert_eq!(served["regarding"]["name"], "web");
        assert_eq!(
            (
                served["note"].as_str(),
                served["reportingController"].as_str()
            ),
            (Some("hi"), Some("systemk"))
        );
        assert_eq!(to_storage(v1, served), core);
    }
}
