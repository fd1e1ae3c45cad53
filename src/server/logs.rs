//! `GET /containerLogs/{namespace}/{pod}/{container}`: a container's output, read from the
//! journal of its unit with `journalctl` (argv only, no shell), matched on the unit AND
//! the running pod's UID (`SYSTEMK_POD_UID`, set by `LogExtraFields=`), so an earlier pod
//! of the same name never leaks in. The body streams; with `follow=true` until the client
//! goes away, and then the `journalctl` child is killed. Layer 6.

use std::process::Stdio;

use axum::body::{Body, Bytes};
use futures::stream::{self, Stream};
use k8s_openapi::jiff::Timestamp;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, ChildStdout, Command};

use super::error::{Error, Result};
use super::journal::entry_line;

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
    /// ignored, as the kubelet does; `previous=true` is refused: systemd keeps one
    /// journal per unit and systemk does not tell its runs apart.
    pub fn from_query(query: &str) -> Result<Self> {
        let mut options = LogOptions::default();
        let mut since_seconds = None;
        let mut since_time = None;
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            match key.as_ref() {
                "follow" => options.follow = parse_bool(&key, &value)?,
                "timestamps" => options.timestamps = parse_bool(&key, &value)?,
                "previous" if parse_bool(&key, &value)? => {
                    return Err(Error::BadRequest(
                        "previous=true is not supported: systemk keeps one journal per container and cannot show the previous run apart".to_owned(),
                    ));
                }
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
) -> Vec<String> {
    let mut args: Vec<String> = [
        "--no-pager",
        "--quiet",
        "--all",
        "--output=json",
        "--output-fields=MESSAGE",
    ]
    .map(str::to_owned)
    .to_vec();
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
    args.push(format!("_SYSTEMD_UNIT={unit}"));
    args.push(format!("SYSTEMK_POD_UID={pod_uid}"));
    args
}

/// Starts `journalctl` for the log and returns the streaming body.
pub fn stream_log(args: Vec<String>, options: &LogOptions, since_us: Option<i64>) -> Result<Body> {
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
    let state = LogStream {
        entries: BufReader::new(stdout).split(b'\n'),
        child,
        timestamps: options.timestamps,
        since_us,
        remaining: options.limit_bytes,
    };
    Ok(Body::from_stream(lines(state)))
}

struct LogStream {
    entries: tokio::io::Split<BufReader<ChildStdout>>,
    child: Child,
    timestamps: bool,
    since_us: Option<i64>,
    /// Bytes still allowed by `limitBytes`.
    remaining: Option<u64>,
}

fn lines(state: LogStream) -> impl Stream<Item = std::io::Result<Bytes>> {
    stream::unfold(Some(state), |state| async move {
        let mut state = state?;
        loop {
            if state.remaining == Some(0) {
                return None;
            }
            match state.entries.next_segment().await {
                Ok(Some(entry)) => {
                    let Some(mut line) = entry_line(&entry, state.timestamps, state.since_us)
                    else {
                        continue;
                    };
                    if let Some(remaining) = state.remaining.as_mut() {
                        let keep = usize::try_from(*remaining).unwrap_or(usize::MAX);
                        line.truncate(keep);
                        *remaining -= line.len() as u64;
                    }
                    return Some((Ok(Bytes::from(line)), Some(state)));
                }
                Ok(None) => {
                    // Reap journalctl; it has exited.
                    let _ = state.child.wait().await;
                    return None;
                }
                Err(err) => return Some((Err(err), None)),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parses_the_kubelets_parameters() {
        let options = LogOptions::from_query(
            "follow=true&tailLines=5&timestamps=1&limitBytes=100&sinceSeconds=60&container=x",
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
            options.since_us(Timestamp::now()),
            Some(time.as_microsecond())
        );
        assert!(LogOptions::from_query("sinceTime=yesterday").is_err());
    }

    #[test]
    fn bad_values_are_refused() {
        for query in [
            "previous=true",
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
        let args = journalctl_args(unit, "0123-abcd", &LogOptions::default(), None);
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
        let args = journalctl_args("u.service", "1", &follow, Some(1_500_000));
        assert!(args.contains(&"--follow".to_owned()));
        assert!(args.contains(&"--no-tail".to_owned()));
        assert!(args.contains(&"--since=@1".to_owned()));
        let tail = LogOptions {
            tail_lines: Some(3),
            ..follow
        };
        let args = journalctl_args("u.service", "1", &tail, None);
        assert!(args.contains(&"--lines=3".to_owned()));
        assert!(!args.contains(&"--no-tail".to_owned()));
    }
}
