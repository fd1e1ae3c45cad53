//! `GET /containerLogs/{namespace}/{pod}/{container}`: a container's output, read from the
//! journal of its unit with `journalctl` (argv only, no shell), matched on the unit AND
//! the running pod's UID (`SYSTEMK_POD_UID`, set by `LogExtraFields=`), so an earlier pod
//! of the same name never leaks in. The body streams; with `follow=true` until the client
//! goes away, and then the `journalctl` child is killed. What one read may cost is bounded
//! by [`Limits`]: bytes per line and per entry read, bytes of a read that sets no
//! `limitBytes`, and (in the handler) the number of followed logs. Layer 6.

use std::process::Stdio;

use axum::body::{Body, Bytes};
use futures::stream::{self, Stream};
use k8s_openapi::jiff::Timestamp;
use tokio::io::{AsyncBufRead, AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, ChildStdout, Command};
use tokio::sync::OwnedSemaphorePermit;

use super::error::{Error, Result};
use super::journal::{JSON_ENTRY_ARGS, LineFormat, entry_line, oversized_entry_line};
use super::limits::Limits;

/// The kubelet's log query parameters (`PodLogOptions` as the API server passes them on).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogOptions {
    /// Keep streaming new lines.
    pub follow: bool,
    /// Only the last N lines.
    pub tail_lines: Option<u64>,
    /// Prefix each line with its RFC 3339 time.
    pub timestamps: bool,
    /// Only lines from this time on.
    pub since: Option<Since>,
    /// Cut the body after this many bytes.
    pub limit_bytes: Option<u64>,
    /// The run before the current one (`lastState.terminated`) instead of the current.
    pub previous: bool,
}

/// Where the log starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    /// `sinceSeconds`: this many seconds before the request.
    Seconds(u64),
    /// `sinceTime`: an RFC 3339 time.
    Time(Timestamp),
}

impl LogOptions {
    /// Parses the query string (`follow=true&tailLines=5…`). Unknown parameters are
    /// ignored, as the kubelet does.
    pub fn from_query(query: &str) -> Result<Self> {
        let mut options = LogOptions::default();
        let mut since_seconds = None;
        let mut since_time = None;
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            match key.as_ref() {
                "follow" => options.follow = parse_bool(&key, &value)?,
                "timestamps" => options.timestamps = parse_bool(&key, &value)?,
                "previous" => options.previous = parse_bool(&key, &value)?,
                "tailLines" => options.tail_lines = Some(parse_number(&key, &value, 0)?),
                "limitBytes" => options.limit_bytes = Some(parse_number(&key, &value, 1)?),
                "sinceSeconds" => since_seconds = Some(parse_number(&key, &value, 1)?),
                "sinceTime" => {
                    since_time = Some(value.parse::<Timestamp>().map_err(|err| {
                        Error::BadRequest(format!(
                            "sinceTime {value:?} is not an RFC 3339 time: {err}"
                        ))
                    })?);
                }
                _ => {}
            }
        }
        options.since = match (since_seconds, since_time) {
            (Some(_), Some(_)) => {
                return Err(Error::BadRequest(
                    "at most one of sinceSeconds and sinceTime may be given".to_owned(),
                ));
            }
            (Some(seconds), None) => Some(Since::Seconds(seconds)),
            (None, Some(time)) => Some(Since::Time(time)),
            (None, None) => None,
        };
        Ok(options)
    }

    /// The first moment wanted, in µs since the epoch, for a request at `now`.
    pub fn since_us(&self, now: Timestamp) -> Option<i64> {
        match self.since? {
            Since::Seconds(seconds) => {
                let seconds = i64::try_from(seconds).unwrap_or(i64::MAX);
                Some(
                    now.as_microsecond()
                        .saturating_sub(seconds.saturating_mul(1_000_000)),
                )
            }
            Since::Time(time) => Some(time.as_microsecond()),
        }
    }
}

/// A boolean as Go's `strconv.ParseBool` reads it (the API server's encoding).
fn parse_bool(key: &str, value: &str) -> Result<bool> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(Error::BadRequest(format!(
            "{key}={value:?} is not a boolean"
        ))),
    }
}

fn parse_number(key: &str, value: &str, min: u64) -> Result<u64> {
    value
        .parse::<u64>()
        .ok()
        .filter(|n| *n >= min)
        .ok_or_else(|| Error::BadRequest(format!("{key}={value:?} must be an integer ≥ {min}")))
}

/// The `journalctl` arguments for the log of `unit` of the pod `pod_uid` (both validated
/// by the caller): JSON entries, complete fields, matched on both fields (AND).
pub fn journalctl_args(
    unit: &str,
    pod_uid: &str,
    options: &LogOptions,
    since_us: Option<i64>,
    until_us: Option<i64>,
) -> Vec<String> {
    let mut args: Vec<String> = JSON_ENTRY_ARGS.map(str::to_owned).to_vec();
    if options.follow {
        args.push("--follow".to_owned());
    }
    match options.tail_lines {
        Some(lines) => args.push(format!("--lines={lines}")),
        // --follow alone shows only the last 10 entries.
        None if options.follow => args.push("--no-tail".to_owned()),
        None => {}
    }
    if let Some(since) = since_us {
        // Whole seconds, rounded down; entry_line drops what is older to the µs.
        args.push(format!("--since=@{}", since.div_euclid(1_000_000)));
    }
    if let Some(until) = until_us {
        // Whole seconds, rounded up: a run's last lines reach the journal just after it
        // ends, and the next run starts no sooner than its back-off (10 s) later.
        args.push(format!("--until=@{}", until.div_euclid(1_000_000) + 1));
    }
    args.push(format!("_SYSTEMD_UNIT={unit}"));
    args.push(format!("SYSTEMK_POD_UID={pod_uid}"));
    args
}

/// Starts `journalctl` for the log and returns the streaming body, bounded by `limits`:
/// lines by `max_line_bytes`, a read without `follow` and `limitBytes` by
/// `default_log_bytes` (and then a closing notice). `follow_permit` is held until the
/// stream ends or the client goes away.
pub fn stream_log(
    args: Vec<String>,
    options: &LogOptions,
    since_us: Option<i64>,
    limits: &Limits,
    follow_permit: Option<OwnedSemaphorePermit>,
) -> Result<Body> {
    let mut child = Command::new("journalctl")
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        // The client going away drops the body, and with it the child.
        .kill_on_drop(true)
        .spawn()
        .map_err(|err| Error::Local {
            action: "run journalctl",
            message: err.to_string(),
        })?;
    let stdout = child.stdout.take().ok_or_else(|| Error::Local {
        action: "run journalctl",
        message: "no stdout".to_owned(),
    })?;
    let (remaining, cut_notice) = match (options.limit_bytes, options.follow) {
        (Some(limit), _) => (Some(limit), None),
        (None, true) => (None, None),
        (None, false) => (
            Some(limits.default_log_bytes),
            Some(default_bound_notice(limits.default_log_bytes)),
        ),
    };
    let state = LogStream {
        entries: BufReader::new(stdout),
        child,
        format: LineFormat {
            timestamps: options.timestamps,
            since_us,
            max_line_bytes: limits.max_line_bytes,
        },
        max_entry_bytes: limits.max_entry_bytes,
        remaining,
        cut_notice,
        at_line_start: true,
        _follow_permit: follow_permit,
    };
    Ok(Body::from_stream(lines(state)))
}

/// What ends a log cut by the default bound, so nobody mistakes it for the whole log.
fn default_bound_notice(bytes: u64) -> String {
    format!(
        "[systemk: the log was cut after {bytes} bytes; ask with tailLines, sinceSeconds or limitBytes for the rest]\n"
    )
}

struct LogStream {
    entries: BufReader<ChildStdout>,
    child: Child,
    format: LineFormat,
    max_entry_bytes: usize,
    /// Bytes still allowed by `limitBytes` or the default bound.
    remaining: Option<u64>,
    /// Sent once when the default bound cut the log (never for `limitBytes`).
    cut_notice: Option<String>,
    /// Whether what was sent so far ends with a newline.
    at_line_start: bool,
    /// A `follow` stream's share of [`Limits::max_follow_streams`].
    _follow_permit: Option<OwnedSemaphorePermit>,
}

fn lines(state: LogStream) -> impl Stream<Item = std::io::Result<Bytes>> {
    stream::unfold(Some(state), |state| async move {
        let mut state = state?;
        loop {
            if state.remaining == Some(0) {
                // Dropping the state kills journalctl.
                let mut notice = state.cut_notice.take()?;
                if !state.at_line_start {
                    notice.insert(0, '\n');
                }
                return Some((Ok(Bytes::from(notice)), None));
            }
            let line = match read_entry(&mut state.entries, state.max_entry_bytes).await {
                Ok(Some(Entry::Whole(entry))) => entry_line(&entry, &state.format),
                Ok(Some(Entry::Oversized(prefix))) => {
                    oversized_entry_line(&prefix, state.max_entry_bytes, &state.format)
                }
                Ok(None) => {
                    // Reap journalctl; it has exited.
                    let _ = state.child.wait().await;
                    return None;
                }
                Err(err) => return Some((Err(err), None)),
            };
            let Some(mut line) = line else {
                continue;
            };
            if let Some(remaining) = state.remaining.as_mut() {
                let keep = usize::try_from(*remaining).unwrap_or(usize::MAX);
                line.truncate(keep);
                *remaining -= line.len() as u64;
            }
            state.at_line_start = line.last() == Some(&b'\n');
            return Some((Ok(Bytes::from(line)), Some(state)));
        }
    })
}

/// One line of journalctl's output.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Entry {
    /// The whole line, without its newline.
    Whole(Vec<u8>),
    /// The first `max` bytes of a longer line; the rest was read and dropped.
    Oversized(Vec<u8>),
}

/// Reads the next line of `reader`, keeping at most `max` bytes of it in memory; `None`
/// at the end.
pub(super) async fn read_entry<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> std::io::Result<Option<Entry>> {
    let mut entry = Vec::new();
    let mut oversized = false;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            // A last line without a newline still counts.
            return Ok(match (entry.is_empty() && !oversized, oversized) {
                (true, _) => None,
                (false, true) => Some(Entry::Oversized(entry)),
                (false, false) => Some(Entry::Whole(entry)),
            });
        }
        let (chunk, used, done) = match available.iter().position(|b| *b == b'\n') {
            Some(at) => (&available[..at], at + 1, true),
            None => (available, available.len(), false),
        };
        let room = max.saturating_sub(entry.len());
        oversized |= chunk.len() > room;
        entry.extend_from_slice(&chunk[..chunk.len().min(room)]);
        reader.consume(used);
        if done {
            return Ok(Some(if oversized {
                Entry::Oversized(entry)
            } else {
                Entry::Whole(entry)
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parses_the_kubelets_parameters() {
        let options = LogOptions::from_query(
            "follow=true&tailLines=5&timestamps=1&limitBytes=100&sinceSeconds=60&container=x&previous=1",
        )
        .unwrap();
        assert_eq!(
            options,
            LogOptions {
                follow: true,
                tail_lines: Some(5),
                timestamps: true,
                since: Some(Since::Seconds(60)),
                limit_bytes: Some(100),
                previous: true,
            }
        );
        assert_eq!(LogOptions::from_query("").unwrap(), LogOptions::default());
        assert!(LogOptions::from_query("previous=false").is_ok());
    }

    #[test]
    fn since_time_is_rfc3339() {
        let options = LogOptions::from_query("sinceTime=2026-11-28T19%3A00%3A00Z").unwrap();
        let time: Timestamp = "2026-11-28T19:00:00Z".parse().unwrap();
        assert_eq!(options.since, Some(Since::Time(time)));
        assert_eq!(
            options.since_us(crate::clock::now()),
            Some(time.as_microsecond())
        );
        assert!(LogOptions::from_query("sinceTime=yesterday").is_err());
    }

    #[test]
    fn bad_values_are_refused() {
        for query in [
            "previous=maybe",
            "follow=yes",
            "tailLines=-1",
            "limitBytes=0",
            "sinceSeconds=0",
            "sinceSeconds=5&sinceTime=2026-11-28T19:00:00Z",
        ] {
            let err = LogOptions::from_query(query).unwrap_err();
            assert!(matches!(err, Error::BadRequest(_)), "{query}: {err}");
        }
    }

    #[test]
    fn since_seconds_counts_back_from_now() {
        let now: Timestamp = "2026-11-28T19:00:00Z".parse().unwrap();
        let options = LogOptions::from_query("sinceSeconds=60").unwrap();
        assert_eq!(
            options.since_us(now),
            Some(now.as_microsecond() - 60_000_000)
        );
    }

    #[test]
    fn journalctl_matches_unit_and_pod_uid() {
        let unit = "systemk.default.web.app.service";
        let args = journalctl_args(unit, "0123-abcd", &LogOptions::default(), None, None);
        assert_eq!(
            args[args.len() - 2..],
            [
                "_SYSTEMD_UNIT=systemk.default.web.app.service",
                "SYSTEMK_POD_UID=0123-abcd"
            ]
        );
        assert!(
            !args
                .iter()
                .any(|a| a.starts_with("--lines") || a == "--follow")
        );
    }

    #[test]
    fn follow_without_tail_shows_everything() {
        let follow = LogOptions {
            follow: true,
            ..LogOptions::default()
        };
        let args = journalctl_args("u.service", "1", &follow, Some(1_500_000), None);
        assert!(args.contains(&"--follow".to_owned()));
        assert!(args.contains(&"--no-tail".to_owned()));
        assert!(args.contains(&"--since=@1".to_owned()));
        let tail = LogOptions {
            tail_lines: Some(3),
            ..follow
        };
        let args = journalctl_args("u.service", "1", &tail, None, None);
        assert!(args.contains(&"--lines=3".to_owned()));
        assert!(!args.contains(&"--no-tail".to_owned()));
    }

    #[tokio::test]
    async fn entries_are_read_whole_or_cut_at_the_bound() {
        let mut input: &[u8] = b"short\n0123456789abcdef\n\nlast";
        let mut entries = Vec::new();
        while let Some(entry) = read_entry(&mut input, 10).await.unwrap() {
            entries.push(entry);
        }
        assert_eq!(
            entries,
            [
                Entry::Whole(b"short".to_vec()),
                Entry::Oversized(b"0123456789".to_vec()),
                Entry::Whole(Vec::new()),
                Entry::Whole(b"last".to_vec()),
            ]
        );
    }

    #[test]
    fn the_default_bound_notice_names_the_way_out() {
        let notice = default_bound_notice(10);
        assert!(
            notice.contains("after 10 bytes") && notice.ends_with("limitBytes for the rest]\n")
        );
    }
}
