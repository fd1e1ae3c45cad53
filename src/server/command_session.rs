//! What exec and attach share once their requests are checked: the streams the query
//! asks for (`input`, `output`, `error`, `tty`, read as the kubelet's
//! `remotecommand.NewOptions` reads them), the container's running unit, and the upgrade
//! to SPDY/3.1 (101, or 400/403 with the protocols systemk speaks) or to a WebSocket with
//! a channel protocol (400 when none fits), after which the session runs on its own task:
//! the transport ([`stream_session`], [`stream_websocket`]) beside the container's side
//! (a command for exec, the container's own output and input for attach), joined by
//! [`remote_command::channels`]. Layer 6.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::Response;

use super::State;
use super::conn::{self, Connection, Held};
use super::remote_command::{self, CommandEnds, TransportEnds};
use super::stream::channel::ChannelProtocol;
use super::stream::spdy::upgrade::{REMOTE_COMMAND_PROTOCOLS, is_websocket};
use super::stream_session::{self, Expected, STREAM_CREATION_TIMEOUT, Timeouts};
use super::stream_websocket;
use super::streaming::{offered_protocols, pod_units, text, upgrade_spdy, upgrade_websocket};
use crate::systemd::ManagedUnit;
use crate::unit::UnitName;

/// The streams a request asks for (core/v1 `ExecStdinParam` and friends are `input`,
/// `output`, `error`, `tty`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamFlags {
    /// `input=1`.
    pub stdin: bool,
    /// `output=1`.
    pub stdout: bool,
    /// `error=1`; off with a terminal, which has only one output.
    pub stderr: bool,
    /// `tty=1`.
    pub tty: bool,
}

impl StreamFlags {
    /// Reads the query as the kubelet does: a flag is on only when it is `1`; also returns
    /// the `command` words, in order.
    pub fn from_query(query: &str) -> Result<(Self, Vec<String>), String> {
        let mut flags = StreamFlags {
            stdin: false,
            stdout: false,
            stderr: false,
            tty: false,
        };
        let mut command = Vec::new();
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let on = value == "1";
            match key.as_ref() {
                "command" => command.push(value.into_owned()),
                "input" => flags.stdin = on,
                "output" => flags.stdout = on,
                "error" => flags.stderr = on,
                "tty" => flags.tty = on,
                _ => {}
            }
        }
        flags.stderr &= !flags.tty;
        if !flags.stdin && !flags.stdout && !flags.stderr {
            return Err("you must specify at least 1 of stdin, stdout, stderr".into());
        }
        Ok((flags, command))
    }

    /// The streams the client opens.
    pub fn expected(self) -> Expected {
        Expected {
            stdin: self.stdin,
            stdout: self.stdout,
            stderr: self.stderr,
            resize: self.tty,
        }
    }
}

/// The container a request names: `/{namespace}/{pod}/{container}`, or
/// `/{namespace}/{pod}/{uid}/{container}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerPath {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub pod: String,
    /// The pod's UID, when the path names it: a pod of that name with another UID is not
    /// entered (the kubelet's exec looks by name only; its attach and port-forward check
    /// the UID, and systemk checks it everywhere).
    pub uid: Option<String>,
    /// The container's name.
    pub container: String,
}

impl From<(String, String, String)> for ContainerPath {
    fn from((namespace, pod, container): (String, String, String)) -> Self {
        Self {
            namespace,
            pod,
            uid: None,
            container,
        }
    }
}

impl From<(String, String, String, String)> for ContainerPath {
    fn from((namespace, pod, uid, container): (String, String, String, String)) -> Self {
        Self {
            namespace,
            pod,
            uid: Some(uid),
            container,
        }
    }
}

/// The unit of the container, when it runs (its main process is there); the kubelet's
/// 404 when the pod does not run here (or has another UID than the path's), 400 for names
/// no unit can have.
pub async fn running_unit(
    state: &State,
    path: &ContainerPath,
) -> Result<Option<ManagedUnit>, Response> {
    UnitName::for_container(&path.namespace, &path.pod, &path.container)
        .map_err(|err| text(StatusCode::BAD_REQUEST, err.to_string()))?;
    let units = pod_units(state, &path.namespace, &path.pod).await?;
    if let Some(uid) = &path.uid
        && units.iter().all(|unit| &unit.meta.pod_uid != uid)
    {
        return Err(text(StatusCode::NOT_FOUND, "pod not found".into()));
    }
    Ok(units
        .into_iter()
        .find(|unit| unit.meta.container == path.container && unit.status.main_pid != 0))
}

/// What a session needs besides the container's side once upgraded.
pub struct Session {
    /// What the log lines call it.
    pub what: &'static str,
    /// The streams the client opens.
    pub expected: Expected,
    /// How long the session may be silent both ways.
    pub idle: Duration,
    /// Keeps the connection busy while the session runs.
    pub held: Option<Held>,
}

impl Session {
    /// A session for `request` opening the `expected` streams.
    pub fn of(request: &Request, what: &'static str, expected: Expected, idle: Duration) -> Self {
        Self {
            what,
            expected,
            idle,
            held: request
                .extensions()
                .get::<Arc<Connection>>()
                .cloned()
                .map(conn::hold),
        }
    }

    /// Runs the container's `side` beside `transport`, which gets the transport's ends.
    async fn run<T, F>(
        self,
        transport: impl FnOnce(TransportEnds) -> T,
        side: impl FnOnce(CommandEnds) -> F + Send + 'static,
    ) where
        T: Future<Output = ()>,
        F: Future<Output = ()>,
    {
        let _held = self.held;
        let (ends, command) = remote_command::channels();
        tokio::join!(transport(ends), side(command));
        tracing::info!(what = self.what, "session ended");
    }
}

/// Upgrades `request` (a WebSocket or SPDY, as the client asks) and runs `session` with
/// the container's `side`, which gets the command's ends of the channels and runs until
/// the container's part is over.
pub async fn serve<F: Future<Output = ()> + Send>(
    request: Request,
    session: Session,
    side: impl FnOnce(CommandEnds) -> F + Send + 'static,
) -> Response {
    if is_websocket(request.headers()) {
        websocket(request, session, side).await
    } else {
        spdy(request, session, side)
    }
}

fn spdy<F: Future<Output = ()> + Send>(
    request: Request,
    session: Session,
    side: impl FnOnce(CommandEnds) -> F + Send + 'static,
) -> Response {
    upgrade_spdy(
        request,
        REMOTE_COMMAND_PROTOCOLS,
        session.what,
        move |io| async move {
            let timeouts = Timeouts {
                creation: STREAM_CREATION_TIMEOUT,
                idle: session.idle,
            };
            let expected = session.expected;
            session
                .run(
                    |ends| stream_session::serve(io, expected, ends, timeouts),
                    side,
                )
                .await;
        },
    )
}

/// A WebSocket upgrade, answered as apimachinery's `wsstream` answers it: the first
/// channel protocol the client offers that systemk speaks, else 400.
async fn websocket<F: Future<Output = ()> + Send>(
    request: Request,
    session: Session,
    side: impl FnOnce(CommandEnds) -> F + Send + 'static,
) -> Response {
    let offered = offered_protocols(request.headers());
    let Some(protocol) = ChannelProtocol::negotiate(offered.as_deref()) else {
        let message = format!(
            "requested protocol(s) are not supported: {}",
            offered.unwrap_or_default()
        );
        return text(StatusCode::BAD_REQUEST, message);
    };
    let selected = offered.is_some().then(|| protocol.name());
    let upgrade = match upgrade_websocket(request, selected).await {
        Ok(upgrade) => upgrade,
        Err(response) => return response,
    };
    upgrade.on_upgrade(move |socket| async move {
        let (expected, idle) = (session.expected, session.idle);
        session
            .run(
                |ends| stream_websocket::serve(socket, protocol, expected, ends, idle),
                side,
            )
            .await;
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_servers_query_is_read_as_the_kubelet_reads_it() {
        let (flags, command) = StreamFlags::from_query(
            "command=sh&command=-c&command=echo+hi&input=1&output=1&error=1",
        )
        .unwrap();
        assert_eq!(command, ["sh", "-c", "echo hi"]);
        assert!(flags.stdin && flags.stdout && flags.stderr && !flags.tty);
        assert_eq!(flags.expected().count(), 4);
    }

    #[test]
    fn a_terminal_has_no_stderr_and_a_resize_stream() {
        let (flags, _) = StreamFlags::from_query("input=1&output=1&error=1&tty=1").unwrap();
        assert!(!flags.stderr);
        let expected = flags.expected();
        assert!(expected.resize && !expected.stderr);
        assert_eq!(expected.count(), 4);
    }

    #[test]
    fn no_stream_is_a_bad_request() {
        for query in ["command=ls&tty=1", "output=true", ""] {
            assert_eq!(
                StreamFlags::from_query(query),
                Err("you must specify at least 1 of stdin, stdout, stderr".into()),
                "{query}"
            );
        }
    }
}
