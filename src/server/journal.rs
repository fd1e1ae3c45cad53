//! One journal entry of `journalctl -o json` → the log line the kubelet API returns: the
//! MESSAGE (a string, or an array of bytes when it is not UTF-8) plus a newline, with
//! `timestamps=true` prefixed by the entry's time in RFC 3339 with nanoseconds, as the
//! kubelet prints it. A message longer than the line bound is cut and says so
//! ([`bound_message`]); an entry too long to read whole becomes a notice
//! ([`oversized_entry_line`]). Pure. Layer 6.

use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

/// The `journalctl` arguments that make the entries [`entry_line`] reads: JSON, complete
/// fields, the message only, no pager or notices.
pub const JSON_ENTRY_ARGS: [&str; 5] = [
    "--no-pager",
    "--quiet",
    "--all",
    "--output=json",
    "--output-fields=MESSAGE",
];

/// How a journal entry becomes a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineFormat {
    /// Prefix the entry's time.
    pub timestamps: bool,
    /// Drop entries older than this, in µs since the epoch (journalctl's `--since` is only
    /// second-exact).
    pub since_us: Option<i64>,
    /// Longest message kept, in bytes ([`bound_message`]).
    pub max_line_bytes: usize,
}

/// The line `entry` (one JSON object of `journalctl -o json`) becomes; `None` for an
/// entry without a message, one that does not parse, or one older than `format.since_us`.
pub fn entry_line(entry: &[u8], format: &LineFormat) -> Option<Vec<u8>> {
    let LineFormat {
        timestamps,
        since_us,
        max_line_bytes,
    } = *format;
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
    let message = bound_message(message_bytes(value.get("MESSAGE")?)?, max_line_bytes);
    Some(line_of(&message, timestamps, realtime_us))
}

/// The notice that replaces an entry longer than `max_entry_bytes`, of which `prefix` was
/// read; its time comes from the prefix (journalctl prints `__REALTIME_TIMESTAMP` before
/// the message). `None` when that time is before `since_us`.
pub fn oversized_entry_line(
    prefix: &[u8],
    max_entry_bytes: usize,
    format: &LineFormat,
) -> Option<Vec<u8>> {
    let realtime_us = realtime_in_prefix(prefix);
    if let (Some(since), Some(at)) = (format.since_us, realtime_us)
        && at < since
    {
        return None;
    }
    let notice =
        format!("[systemk: a journal entry of more than {max_entry_bytes} bytes was skipped]");
    Some(line_of(notice.as_bytes(), format.timestamps, realtime_us))
}

/// `message` cut to at most `max` bytes, notice included: a longer one keeps its start (up
/// to a UTF-8 character boundary) and ends with ` [truncated, N bytes in all]`.
pub fn bound_message(mut message: Vec<u8>, max: usize) -> Vec<u8> {
    if message.len() <= max {
        return message;
    }
    let notice = format!(" [truncated, {} bytes in all]", message.len());
    let mut keep = max.saturating_sub(notice.len());
    // Back up over UTF-8 continuation bytes (10xxxxxx) so a character is never split;
    // binary messages lose at most three more bytes.
    let start = keep;
    while keep > 0 && start - keep < 3 && message[keep] & 0xC0 == 0x80 {
        keep -= 1;
    }
    if message[keep] & 0xC0 == 0x80 {
        keep = start;
    }
    message.truncate(keep);
    message.extend_from_slice(notice.as_bytes());
    message.truncate(max);
    message
}

/// `message` plus a newline, with `timestamps` after the entry's time.
fn line_of(message: &[u8], timestamps: bool, realtime_us: Option<i64>) -> Vec<u8> {
    let mut line = Vec::with_capacity(message.len() + 32);
    if timestamps {
        line.extend_from_slice(rfc3339_nano(realtime_us.unwrap_or_default()).as_bytes());
        line.push(b' ');
    }
    line.extend_from_slice(message);
    line.push(b'\n');
    line
}

/// The `__REALTIME_TIMESTAMP` of a JSON entry's first bytes.
fn realtime_in_prefix(prefix: &[u8]) -> Option<i64> {
    const KEY: &[u8] = b"\"__REALTIME_TIMESTAMP\":\"";
    let at = prefix.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let digits: Vec<u8> = prefix[at..]
        .iter()
        .copied()
        .take_while(u8::is_ascii_digit)
        .collect();
    std::str::from_utf8(&digits).ok()?.parse().ok()
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

    fn format(timestamps: bool, since_us: Option<i64>) -> LineFormat {
        LineFormat {
            timestamps,
            since_us,
            max_line_bytes: 64,
        }
    }

    #[test]
    fn text_message_becomes_a_line() {
        let entry = br#"{"__REALTIME_TIMESTAMP":"1764356711123456","MESSAGE":"hello"}"#;
        assert_eq!(entry_line(entry, &format(false, None)).unwrap(), b"hello\n");
    }

    #[test]
    fn byte_array_message_keeps_its_bytes() {
        let entry = br#"{"__REALTIME_TIMESTAMP":"1","MESSAGE":[104,105,255,27]}"#;
        assert_eq!(
            entry_line(entry, &format(false, None)).unwrap(),
            b"hi\xff\x1b\n"
        );
    }

    #[test]
    fn repeated_field_takes_the_first_value() {
        let entry = br#"{"MESSAGE":["first",[115]]}"#;
        assert_eq!(entry_line(entry, &format(false, None)).unwrap(), b"first\n");
    }

    #[test]
    fn timestamps_prefix_rfc3339_nano_utc() {
        let entry = br#"{"__REALTIME_TIMESTAMP":"1764356711123456","MESSAGE":"hello"}"#;
        assert_eq!(
            String::from_utf8(entry_line(entry, &format(true, None)).unwrap()).unwrap(),
            "2025-11-28T19:05:11.123456000Z hello\n"
        );
    }

    #[test]
    fn entries_before_since_are_dropped() {
        let entry = br#"{"__REALTIME_TIMESTAMP":"1000","MESSAGE":"old"}"#;
        assert_eq!(entry_line(entry, &format(false, Some(1001))), None);
        assert!(entry_line(entry, &format(false, Some(1000))).is_some());
    }

    #[test]
    fn entries_without_message_or_json_are_skipped() {
        assert_eq!(
            entry_line(br#"{"MESSAGE":null}"#, &format(false, None)),
            None
        );
        assert_eq!(entry_line(br#"{"OTHER":"x"}"#, &format(false, None)), None);
        assert_eq!(entry_line(b"-- No entries --", &format(false, None)), None);
    }

    #[test]
    fn a_long_message_is_cut_and_says_its_length() {
        let long = vec![b'x'; 100];
        let cut = bound_message(long, 64);
        assert_eq!(cut.len(), 64);
        let text = String::from_utf8(cut).unwrap();
        assert!(text.ends_with("x [truncated, 100 bytes in all]"), "{text}");
        assert_eq!(bound_message(b"short".to_vec(), 64), b"short");
        assert_eq!(bound_message(vec![b'y'; 64], 64), vec![b'y'; 64]);
    }

    #[test]
    fn a_cut_never_splits_a_utf8_character() {
        // 40 × "é" (2 bytes each): the cut at 64 - 30 = 34 falls between characters,
        // at 33 it would fall inside one.
        let text = "é".repeat(40);
        for max in [63, 64] {
            let cut = bound_message(text.clone().into_bytes(), max);
            let cut = String::from_utf8(cut).expect("valid UTF-8");
            assert!(cut.len() <= max && cut.ends_with(" [truncated, 80 bytes in all]"));
        }
        // Binary data that only looks like continuation bytes is cut where it falls.
        let cut = bound_message(vec![0x80; 100], 64);
        assert_eq!(cut.len(), 64);
    }

    #[test]
    fn entry_lines_are_bounded() {
        let entry = format!(r#"{{"MESSAGE":"{}"}}"#, "z".repeat(1000));
        let line = entry_line(entry.as_bytes(), &format(false, None)).unwrap();
        assert_eq!(line.len(), 65);
        assert!(line.ends_with(b"[truncated, 1000 bytes in all]\n"));
    }

    #[test]
    fn an_oversized_entry_becomes_a_notice_with_its_time() {
        let prefix =
            br#"{"__CURSOR":"s=1","__REALTIME_TIMESTAMP":"1764356711123456","MESSAGE":"aaaa"#;
        let line = oversized_entry_line(prefix, 1024, &format(true, None)).unwrap();
        assert_eq!(
            String::from_utf8(line).unwrap(),
            "2025-11-28T19:05:11.123456000Z [systemk: a journal entry of more than 1024 bytes was skipped]\n"
        );
        assert_eq!(
            oversized_entry_line(prefix, 1024, &format(false, Some(1764356711123457))),
            None
        );
        assert!(oversized_entry_line(b"{", 1024, &format(false, Some(1))).is_some());
    }
}
