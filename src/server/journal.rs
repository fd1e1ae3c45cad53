//! One journal entry of `journalctl -o json` → the log line the kubelet API returns: the
//! MESSAGE (a string, or an array of bytes when it is not UTF-8) plus a newline, with
//! `timestamps=true` prefixed by the entry's time in RFC 3339 with nanoseconds, as the
//! kubelet prints it. Pure. Layer 6.

use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

/// The line `entry` (one JSON object of `journalctl -o json`) becomes; `None` for an
/// entry without a message, one that does not parse, or one older than `since_us`
/// (µs since the epoch; journalctl's `--since` is only second-exact).
pub fn entry_line(entry: &[u8], timestamps: bool, since_us: Option<i64>) -> Option<Vec<u8>> {
    let value: Value = serde_json::from_slice(entry).ok()?;
    let realtime_us = value
        .get("__REALTIME_TIMESTAMP")
        .and_then(Value::as_str)
        .and_then(|us| us.parse::<i64>().ok());
    if let (Some(since), Some(at)) = (since_us, realtime_us)
        && at < since
    {
        return None;
    }
    let message = message_bytes(value.get("MESSAGE")?)?;
    let mut line = Vec::with_capacity(message.len() + 32);
    if timestamps {
        line.extend_from_slice(rfc3339_nano(realtime_us.unwrap_or_default()).as_bytes());
        line.push(b' ');
    }
    line.extend_from_slice(&message);
    line.push(b'\n');
    Some(line)
}

/// A journal field's bytes: a string, an array of byte values, or (when the field occurs
/// more than once) an array of those, of which the first counts.
fn message_bytes(field: &Value) -> Option<Vec<u8>> {
    match field {
        Value::String(text) => Some(text.as_bytes().to_vec()),
        Value::Array(items) => match items.first()? {
            Value::Number(_) => items
                .iter()
                .map(|byte| byte.as_u64().and_then(|b| u8::try_from(b).ok()))
                .collect(),
            first => message_bytes(first),
        },
        _ => None,
    }
}

/// `2026-11-28T19:05:11.123456000Z`: UTC, nine fractional digits, the kubelet's fixed
/// RFC 3339 format for log timestamps.
pub fn rfc3339_nano(realtime_us: i64) -> String {
    let time = Timestamp::from_microsecond(realtime_us).unwrap_or(Timestamp::UNIX_EPOCH);
    format!(
        "{}.{:09}Z",
        time.strftime("%Y-%m-%dT%H:%M:%S"),
        time.subsec_nanosecond()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_message_becomes_a_line() {
        let entry = br#"{"__REALTIME_TIMESTAMP":"1764356711123456","MESSAGE":"hello"}"#;
        assert_eq!(entry_line(entry, false, None).unwrap(), b"hello\n");
    }

    #[test]
    fn byte_array_message_keeps_its_bytes() {
        let entry = br#"{"__REALTIME_TIMESTAMP":"1","MESSAGE":[104,105,255,27]}"#;
        assert_eq!(entry_line(entry, false, None).unwrap(), b"hi\xff\x1b\n");
    }

    #[test]
    fn repeated_field_takes_the_first_value() {
        let entry = br#"{"MESSAGE":["first",[115]]}"#;
        assert_eq!(entry_line(entry, false, None).unwrap(), b"first\n");
    }

    #[test]
    fn timestamps_prefix_rfc3339_nano_utc() {
        let entry = br#"{"__REALTIME_TIMESTAMP":"1764356711123456","MESSAGE":"hello"}"#;
        assert_eq!(
            String::from_utf8(entry_line(entry, true, None).unwrap()).unwrap(),
            "2025-11-28T19:05:11.123456000Z hello\n"
        );
    }

    #[test]
    fn entries_before_since_are_dropped() {
        let entry = br#"{"__REALTIME_TIMESTAMP":"1000","MESSAGE":"old"}"#;
        assert_eq!(entry_line(entry, false, Some(1001)), None);
        assert!(entry_line(entry, false, Some(1000)).is_some());
    }

    #[test]
    fn entries_without_message_or_json_are_skipped() {
        assert_eq!(entry_line(br#"{"MESSAGE":null}"#, false, None), None);
        assert_eq!(entry_line(br#"{"OTHER":"x"}"#, false, None), None);
        assert_eq!(entry_line(b"-- No entries --", false, None), None);
    }
}
