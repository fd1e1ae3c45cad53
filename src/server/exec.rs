//! `GET`/`POST /exec/{namespace}/{pod}/{container}?command=…&input=1&output=1&error=1&tty=1`:
//! `kubectl exec` and `kubectl cp`. Answered as the kubelet answers (`getExec`,
//! `remotecommand.NewOptions`, `ServeExec`): bad options 400, a pod this node does not run
//! 404 `pod does not exist`, a container that does not run 500 `container not found
//! ("name")`, all in plain text; then the upgrade to SPDY/3.1 (101, or 400/403 with the
//! protocols systemk speaks) or to a WebSocket with a channel protocol (400 when none
//! fits), and the session runs on its own task: the command enters the container's unit
//! ([`crate::systemd::spawn_in_unit`]) once the client's streams are open.
//! Authorization happened before (`nodes/proxy`, in the middleware). Layer 6.

use std::sync::Arc;

use axum::extract::{Path, Request, State as Shared};
use axum::http::StatusCode;
use axum::response::Response;

use super::State;
use super::conn::{self, Connection, Held};
use super::remote_command::{self, TransportEnds};
use super::stream::channel::ChannelProtocol;
use super::stream::spdy::upgrade::{REMOTE_COMMAND_PROTOCOLS, is_websocket};
use super::stream_session::{self, Expected, STREAM_CREATION_TIMEOUT, Timeouts};
use super::stream_websocket;
use super::streaming::{offered_protocols, pod_units, text, upgrade_spdy, upgrade_websocket};
use crate::systemd::{Streams, Systemd, spawn_in_unit};
use crate::unit::UnitName;

/// The query of an exec request, as the API server writes it (`streamParams`: core/v1
/// `ExecStdinParam` and friends are `input`, `output`, `error`, `tty`, `command`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOptions {
    /// The program and its arguments.
    pub command: Vec<String>,
    /// `input=1`.
    pub stdin: bool,
    /// `output=1`.
    pub stdout: bool,
    /// `error=1`; off with a terminal, which has only one output.
    pub stderr: bool,
    /// `tty=1`.
    pub tty: bool,
}

impl ExecOptions {
    /// Reads the query as the kubelet does: a flag is on only when it is `1`.
    pub fn from_query(query: &str) -> Result<Self, String> {
        let mut options = ExecOptions {
            command: Vec::new(),
            stdin: false,
            stdout: false,
            stderr: false,
            tty: false,
        };
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let on = value == "1";
            match key.as_ref() {
                "command" => options.command.push(value.into_owned()),
                "input" => options.stdin = on,
                "output" => options.stdout = on,
                "error" => options.stderr = on,
                "tty" => options.tty = on,
                _ => {}
            }
        }
        options.stderr &= !options.tty;
        if !options.stdin && !options.stdout && !options.stderr {
            return Err("you must specify at least 1 of stdin, stdout, stderr".into());
        }
        if options.command.is_empty() {
            return Err("a command is required".into());
        }
        Ok(options)
    }

    /// The streams the client opens.
    pub fn expected(&self) -> Expected {
        Expected {
            stdin: self.stdin,
            stdout: self.stdout,
            stderr: self.stderr,
            resize: self.tty,
        }
    }

    /// How the command's streams are connected.
    pub fn streams(&self) -> Streams {
        if self.tty {
            Streams::Terminal
        } else {
            Streams::Pipes {
                stdin: self.stdin,
                stdout: self.stdout,
                stderr: self.stderr,
            }
        }
    }
}

/// The exec endpoint.
pub async fn exec(
    Shared(state): Shared<Arc<State>>,
    Path((namespace, pod, container)): Path<(String, String, String)>,
    request: Request,
) -> Response {
    let target = Target {
        namespace: &namespace,
        pod: &pod,
        uid: None,
        container: &container,
    };
    serve(&state, target, request).await
}

/// The exec endpoint that names the pod's UID too (`/exec/{namespace}/{pod}/{uid}/{container}`).
pub async fn exec_with_uid(
    Shared(state): Shared<Arc<State>>,
    Path((namespace, pod, uid, container)): Path<(String, String, String, String)>,
    request: Request,
) -> Response {
    let target = Target {
        namespace: &namespace,
        pod: &pod,
        uid: Some(&uid),
        container: &container,
    };
    serve(&state, target, request).await
}

/// The container an exec request names.
struct Target<'a> {
    namespace: &'a str,
    pod: &'a str,
    /// The pod's UID, when the path names it: a pod of that name with another UID is not
    /// entered (the kubelet's exec looks by name only; its port-forward and attach check
    /// the UID, and systemk checks it everywhere).
    uid: Option<&'a str>,
    container: &'a str,
}

async fn serve(state: &Arc<State>, target: Target<'_>, request: Request) -> Response {
    let query = request.uri().query().unwrap_or_default();
    let options = match ExecOptions::from_query(query) {
        Ok(options) => options,
        Err(message) => return text(StatusCode::BAD_REQUEST, message),
    };
    let unit = match running_unit(state, &target).await {
        Ok(unit) => unit,
        Err(response) => return response,
    };
    let session = Session {
        systemd: state.systemd.clone(),
        idle: state.limits.stream_idle_timeout,
        unit,
        options,
        held: request
            .extensions()
            .get::<Arc<Connection>>()
            .cloned()
            .map(conn::hold),
    };
    if is_websocket(request.headers()) {
        websocket(request, session).await
    } else {
        spdy(request, session)
    }
}

/// What a session needs once upgraded.
struct Session {
    systemd: Systemd,
    /// How long the session may be silent both ways.
    idle: std::time::Duration,
    unit: String,
    options: ExecOptions,
    /// Keeps the connection busy while the session runs.
    held: Option<Held>,
}

impl Session {
    /// Runs the command side beside `transport`, which gets the transport's ends.
    async fn run<F: Future<Output = ()>>(self, transport: impl FnOnce(TransportEnds) -> F) {
        let _held = self.held;
        let (ends, command) = remote_command::channels();
        let start = spawn_in_unit(
            &self.systemd,
            &self.unit,
            &self.options.command,
            self.options.streams(),
        );
        let terminal = self.options.tty;
        tokio::join!(
            transport(ends),
            remote_command::run(command, terminal, start)
        );
        tracing::info!(unit = self.unit, "exec: session ended");
    }
}

fn spdy(request: Request, session: Session) -> Response {
    upgrade_spdy(
        request,
        REMOTE_COMMAND_PROTOCOLS,
        "exec",
        move |io| async move {
            let expected = session.options.expected();
            let timeouts = Timeouts {
                creation: STREAM_CREATION_TIMEOUT,
                idle: session.idle,
            };
            session
                .run(|ends| stream_session::serve(io, expected, ends, timeouts))
                .await;
        },
    )
}

/// A WebSocket upgrade, answered as apimachinery's `wsstream` answers it: the first
/// channel protocol the client offers that systemk speaks, else 400.
async fn websocket(request: Request, session: Session) -> Response {
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
        let (expected, idle) = (session.options.expected(), session.idle);
        session
            .run(|ends| stream_websocket::serve(socket, protocol, expected, ends, idle))
            .await;
    })
}

/// The unit of a running container, or the kubelet's answer when there is none.
async fn running_unit(state: &State, target: &Target<'_>) -> Result<String, Response> {
    let Target {
        namespace,
        pod,
        uid,
        container,
    } = *target;
    UnitName::for_container(namespace, pod, container)
        .map_err(|err| text(StatusCode::BAD_REQUEST, err.to_string()))?;
    let units = pod_units(state, namespace, pod).await?;
    if uid.is_some_and(|uid| units.iter().all(|unit| unit.meta.pod_uid != uid)) {
        return Err(text(StatusCode::NOT_FOUND, "pod not found".into()));
    }
    units
        .into_iter()
        .find(|unit| unit.meta.container == container && unit.status.main_pid != 0)
        .map(|unit| unit.status.name.as_str().to_owned())
        .ok_or_else(|| {
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("container not found ({container:?})"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_servers_query_is_read_as_the_kubelet_reads_it() {
        let options = ExecOptions::from_query(
            "command=sh&command=-c&command=echo+hi&input=1&output=1&error=1",
        )
        .unwrap();
        assert_eq!(options.command, ["sh", "-c", "echo hi"]);
        assert_eq!(
            options.streams(),
            Streams::Pipes {
                stdin: true,
                stdout: true,
                stderr: true
            }
        );
        assert_eq!(options.expected().count(), 4);
    }

    #[test]
    fn a_terminal_has_no_stderr_and_a_resize_stream() {
        let options = ExecOptions::from_query("command=sh&input=1&output=1&error=1&tty=1").unwrap();
        assert!(!options.stderr);
        assert_eq!(options.streams(), Streams::Terminal);
        let expected = options.expected();
        assert!(expected.resize && !expected.stderr);
        assert_eq!(expected.count(), 4);
    }

    #[test]
    fn no_stream_or_no_command_is_a_bad_request() {
        assert_eq!(
            ExecOptions::from_query("command=ls&tty=1"),
            Err("you must specify at least 1 of stdin, stdout, stderr".into())
        );
        assert_eq!(
            ExecOptions::from_query("command=ls&output=true"),
            Err("you must specify at least 1 of stdin, stdout, stderr".into())
        );
        assert!(ExecOptions::from_query("output=1").is_err());
    }
}
