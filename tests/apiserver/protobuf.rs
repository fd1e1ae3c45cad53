//! Decoding of the Kubernetes protobuf wire format (`application/vnd.kubernetes.protobuf`)
//! for the request bodies kubectl 1.32's typed clients send — `kubectl create namespace`,
//! `create configmap`, `create secret`, `create serviceaccount`, `create token` — into the JSON objects the
//! store holds. Field numbers are those of `k8s.io/api/core/v1/generated.proto`. A body with a
//! field this decoder does not know is refused (415) rather than silently truncated. Pure.

use serde_json::{Map, Value, json};

use super::base64;

/// The 4-byte prefix of every Kubernetes protobuf body.
const MAGIC: &[u8] = b"k8s\x00";

/// One protobuf field value.
enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

/// Iterates the (field number, value) pairs of a message.
fn fields(mut data: &[u8]) -> Result<Vec<(u64, Field<'_>)>, String> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let key = varint(&mut data)?;
        let value = match key & 7 {
            0 => Field::Varint(varint(&mut data)?),
            2 => {
                let length = usize::try_from(varint(&mut data)?).map_err(|_| "length overflows")?;
                if length > data.len() {
                    return Err("truncated message".into());
                }
                let (bytes, rest) = data.split_at(length);
                data = rest;
                Field::Bytes(bytes)
            }
            other => return Err(format!("unsupported wire type {other}")),
        };
        out.push((key >> 3, value));
    }
    Ok(out)
}

fn varint(data: &mut &[u8]) -> Result<u64, String> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = data.split_first().ok_or("truncated varint")?;
        *data = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("varint too long".into())
}

fn text(field: &Field<'_>) -> Result<String, String> {
    match field {
        Field::Bytes(bytes) => {
            String::from_utf8(bytes.to_vec()).map_err(|_| "string is not UTF-8".into())
        }
        Field::Varint(_) => Err("expected a string".into()),
    }
}

fn bytes<'a>(field: &Field<'a>) -> Result<&'a [u8], String> {
    match field {
        Field::Bytes(bytes) => Ok(bytes),
        Field::Varint(_) => Err("expected bytes".into()),
    }
}

fn flag(field: &Field<'_>) -> Result<bool, String> {
    match field {
        Field::Varint(value) => Ok(*value != 0),
        Field::Bytes(_) => Err("expected a bool".into()),
    }
}

/// Adds one `map<string, V>` entry (key = 1, value = 2) to `map`.
fn map_entry(map: &mut Value, entry: &Field<'_>, binary: bool) -> Result<(), String> {
    let (mut key, mut value) = (String::new(), Value::String(String::new()));
    for (number, field) in fields(bytes(entry)?)? {
        match number {
            1 => key = text(&field)?,
            2 if binary => value = json!(base64::standard(bytes(&field)?)),
            2 => value = json!(text(&field)?),
            _ => return Err("unknown map entry field".into()),
        }
    }
    if !map.is_object() {
        *map = Value::Object(Map::new());
    }
    map[key] = value;
    Ok(())
}

/// Whether a field holds its zero value (Go's generated marshallers write every non-pointer
/// field, so empty strings, zero numbers and empty sub-messages arrive for unset fields).
fn is_default(field: &Field<'_>) -> bool {
    match field {
        Field::Varint(value) => *value == 0,
        Field::Bytes(data) => {
            data.is_empty()
                || fields(data).is_ok_and(|inner| inner.iter().all(|(_, f)| is_default(f)))
        }
    }
}

/// Accepts a field this decoder does not map only when it carries nothing.
fn unknown(message: &str, number: u64, field: &Field<'_>) -> Result<(), String> {
    if is_default(field) {
        Ok(())
    } else {
        Err(format!(
            "field {number} of {message} is not supported by the test API server"
        ))
    }
}

fn object_meta(data: &[u8]) -> Result<Value, String> {
    let mut meta = json!({});
    for (number, field) in fields(data)? {
        match number {
            1 | 2 | 3 | 6 if is_default(&field) => {}
            1 => meta["name"] = json!(text(&field)?),
            2 => meta["generateName"] = json!(text(&field)?),
            3 => meta["namespace"] = json!(text(&field)?),
            5 if is_default(&field) => {}
            5 => meta["uid"] = json!(text(&field)?),
            // generation: the server keeps its own.
            7 => {}
            6 => meta["resourceVersion"] = json!(text(&field)?),
            // creationTimestamp: clients send the zero time; the server sets it anyway.
            8 => {}
            11 => map_entry(&mut meta["labels"], &field, false)?,
            12 => map_entry(&mut meta["annotations"], &field, false)?,
            14 => {
                let finalizer = json!(text(&field)?);
                match meta["finalizers"].as_array_mut() {
                    Some(list) => list.push(finalizer),
                    None => meta["finalizers"] = json!([finalizer]),
                }
            }
            other => unknown("ObjectMeta", other, &field)?,
        }
    }
    Ok(meta)
}

/// `TokenRequestSpec` (`k8s.io/api/authentication/v1/generated.proto`), as
/// `kubectl create token` sends it.
fn token_request_spec(data: &[u8]) -> Result<Value, String> {
    let mut spec = json!({});
    for (number, field) in fields(data)? {
        match number {
            1 => {
                let audience = json!(text(&field)?);
                match spec["audiences"].as_array_mut() {
                    Some(list) => list.push(audience),
                    None => spec["audiences"] = json!([audience]),
                }
            }
            3 => {
                let mut bound = json!({});
                for (ref_number, ref_field) in fields(bytes(&field)?)? {
                    let key = match ref_number {
                        1 => "kind",
                        2 => "apiVersion",
                        3 => "name",
                        4 => "uid",
                        other => {
                            unknown("BoundObjectReference", other, &ref_field)?;
                            continue;
                        }
                    };
                    bound[key] = json!(text(&ref_field)?);
                }
                spec["boundObjectRef"] = bound;
            }
            4 => match field {
                // int64 as a two's-complement varint.
                Field::Varint(value) => spec["expirationSeconds"] = json!(value as i64),
                Field::Bytes(_) => return Err("expirationSeconds is not a varint".into()),
            },
            other => unknown("TokenRequestSpec", other, &field)?,
        }
    }
    Ok(spec)
}

fn push(list: &mut Value, item: Value) {
    match list.as_array_mut() {
        Some(items) => items.push(item),
        None => *list = json!([item]),
    }
}

/// `certificates/v1` CertificateSigningRequestSpec (what `kubectl certificate approve`
/// sends back). `extra` (6) is skipped: the server sets the requester's identity itself.
fn csr_spec(data: &[u8]) -> Result<Value, String> {
    let mut spec = json!({});
    for (number, field) in fields(data)? {
        match number {
            1 => spec["request"] = json!(base64::standard(bytes(&field)?)),
            2 => spec["username"] = json!(text(&field)?),
            3 => spec["uid"] = json!(text(&field)?),
            4 => push(&mut spec["groups"], json!(text(&field)?)),
            5 => push(&mut spec["usages"], json!(text(&field)?)),
            6 => {}
            7 => spec["signerName"] = json!(text(&field)?),
            8 => match field {
                Field::Varint(value) => spec["expirationSeconds"] = json!(value as i64),
                Field::Bytes(_) => return Err("expirationSeconds is not a varint".into()),
            },
            other => unknown("CertificateSigningRequestSpec", other, &field)?,
        }
    }
    Ok(spec)
}

/// A `meta/v1` Time (seconds, nanos) as RFC 3339; `None` for the zero time.
fn time(data: &[u8]) -> Result<Option<String>, String> {
    let mut seconds = 0i64;
    for (number, field) in fields(data)? {
        if let (1, Field::Varint(value)) = (number, &field) {
            seconds = *value as i64;
        }
    }
    Ok((seconds != 0).then(|| {
        k8s_openapi::jiff::Timestamp::from_second(seconds)
            .map(|t| t.to_string())
            .unwrap_or_default()
    }))
}

/// `certificates/v1` CertificateSigningRequestStatus: conditions and certificate.
fn csr_status(data: &[u8]) -> Result<Value, String> {
    let mut status = json!({});
    for (number, field) in fields(data)? {
        match number {
            1 => {
                let mut condition = json!({});
                for (n, f) in fields(bytes(&field)?)? {
                    let key = match n {
                        1 => "type",
                        2 => "reason",
                        3 => "message",
                        4 => "lastUpdateTime",
                        5 => "lastTransitionTime",
                        6 => "status",
                        other => {
                            unknown("CertificateSigningRequestCondition", other, &f)?;
                            continue;
                        }
                    };
                    condition[key] = match n {
                        4 | 5 => json!(time(bytes(&f)?)?),
                        _ => json!(text(&f)?),
                    };
                }
                push(&mut status["conditions"], condition);
            }
            2 => status["certificate"] = json!(base64::standard(bytes(&field)?)),
            other => unknown("CertificateSigningRequestStatus", other, &field)?,
        }
    }
    Ok(status)
}

/// Decodes the kind-specific fields of `raw` into `object`.
fn decode_kind(kind: &str, raw: &[u8], object: &mut Value) -> Result<(), String> {
    for (number, field) in fields(raw)? {
        match (kind, number) {
            (_, 1) => object["metadata"] = object_meta(bytes(&field)?)?,
            ("Namespace", 2) => {
                for (spec_number, spec_field) in fields(bytes(&field)?)? {
                    if spec_number != 1 {
                        unknown("NamespaceSpec", spec_number, &spec_field)?;
                        continue;
                    }
                    let finalizers = object["spec"]["finalizers"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default();
                    object["spec"]["finalizers"] =
                        json!([finalizers, vec![json!(text(&spec_field)?)]].concat());
                }
            }
            ("ConfigMap", 2) | ("Secret", 4) => map_entry(
                &mut object[if kind == "Secret" {
                    "stringData"
                } else {
                    "data"
                }],
                &field,
                false,
            )?,
            ("ConfigMap", 3) | ("Secret", 2) => map_entry(
                &mut object[if kind == "Secret" {
                    "data"
                } else {
                    "binaryData"
                }],
                &field,
                true,
            )?,
            ("ConfigMap", 4) | ("Secret", 5) => object["immutable"] = json!(flag(&field)?),
            ("Secret", 3) if is_default(&field) => {}
            ("Secret", 3) => object["type"] = json!(text(&field)?),
            ("ServiceAccount", 4) => object["automountServiceAccountToken"] = json!(flag(&field)?),
            ("TokenRequest", 2) => object["spec"] = token_request_spec(bytes(&field)?)?,
            ("CertificateSigningRequest", 2) => object["spec"] = csr_spec(bytes(&field)?)?,
            ("CertificateSigningRequest", 3) => object["status"] = csr_status(bytes(&field)?)?,
            // The status: kubectl sends it empty; anything else is refused below.
            (_, other) => unknown(kind, other, &field)?,
        }
    }
    Ok(())
}

/// Decodes a protobuf request body into a JSON object.
pub fn decode(body: &[u8]) -> Result<Value, String> {
    let envelope = body
        .strip_prefix(MAGIC)
        .ok_or("missing the k8s protobuf prefix")?;
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    for (number, field) in fields(envelope)? {
        match number {
            1 => {
                for (type_number, type_field) in fields(bytes(&field)?)? {
                    match type_number {
                        1 => api_version = text(&type_field)?,
                        2 => kind = text(&type_field)?,
                        _ => {}
                    }
                }
            }
            2 => raw = bytes(&field)?,
            _ => {}
        }
    }
    if !matches!(
        kind.as_str(),
        "Namespace"
            | "ConfigMap"
            | "Secret"
            | "ServiceAccount"
            | "TokenRequest"
            | "CertificateSigningRequest"
    ) {
        return Err(format!(
            "protobuf bodies of kind {kind:?} are not supported by the test API server"
        ));
    }
    let mut object = json!({"apiVersion": api_version, "kind": kind, "metadata": {}});
    decode_kind(&kind, raw, &mut object)?;
    Ok(object)
}
