//! `GET`/`POST /exec/{namespace}/{pod}/{container}?command=…&input=1&output=1&error=1&tty=1`:
//! `kubectl exec` and `kubectl cp`. Answered as the kubelet answers (`getExec`,
//! `remotecommand.NewOptions`, `ServeExec`): bad options 400, a pod this node does not run
//! 404 `pod does not exist`, a container that does not run 500 `container not found
//! ("name")`, all in plain text; then the upgrade and session shared with attach
//! ([`super::command_session`]), whose container side here is a command that enters the
//! container's unit ([`crate::systemd::spawn_in_unit`]) once the client's streams are open.
//! Authorization happened before (`nodes/proxy`, in the middleware). Layer 6.

use std::sync::Arc;

use axum::extract::{Path, Request, State as Shared};
use axum::http::StatusCode;
use axum::response::Response;

use super::State;
use super::command_session::{ContainerPath, Session, StreamFlags, running_unit, serve};
use super::remote_command;
use super::streaming::text;
use crate::systemd::{Streams, spawn_in_unit};

/// The query of an exec request, as the API server writes it (`streamParams`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOptions {
    /// The program and its arguments.
    pub command: Vec<String>,
    /// The streams.
    pub flags: StreamFlags,
}

impl ExecOptions {
    /// Reads the query as the kubelet does; a command is required.
    pub fn from_query(query: &str) -> Result<Self, String> {
        let (flags, command) = StreamFlags::from_query(query)?;
        if command.is_empty() {
            return Err("a command is required".into());
        }
        Ok(Self { command, flags })
    }

    /// How the command's streams are connected.
    pub fn streams(&self) -> Streams {
        let StreamFlags {
            stdin,
            stdout,
            stderr,
            tty,
        } = self.flags;
        if tty {
            Streams::Terminal
        } else {
            Streams::Pipes {
                stdin,
                stdout,
                stderr,
            }
        }
    }
}

/// The exec endpoint.
pub async fn exec(
    Shared(state): Shared<Arc<State>>,
    Path(path): Path<(String, String, String)>,
    request: Request,
) -> Response {
    serve_exec(&state, path.into(), request).await
}

/// The exec endpoint on the path that names the pod's UID too.
pub async fn exec_with_uid(
    Shared(state): Shared<Arc<State>>,
    Path(path): Path<(String, String, String, String)>,
    request: Request,
) -> Response {
    serve_exec(&state, path.into(), request).await
}

async fn serve_exec(state: &State, path: ContainerPath, request: Request) -> Response {
    let query = request.uri().query().unwrap_or_default();
    let options = match ExecOptions::from_query(query) {
        Ok(options) => options,
        Err(message) => return text(StatusCode::BAD_REQUEST, message),
    };
    let unit = match running_unit(state, &path).await {
        Ok(Some(unit)) => unit.status.name,
        Ok(None) => {
            let message = format!("container not found ({:?})", path.container);
            return text(StatusCode::INTERNAL_SERVER_ERROR, message);
        }
        Err(response) => return response,
    };
    let expected = options.flags.expected();
    let session = Session::of(&request, "exec", expected, state.limits.stream_idle_timeout);
    let systemd = state.systemd.clone();
    serve(request, session, move |command| async move {
        let streams = options.streams();
        let start = spawn_in_unit(&systemd, unit.as_str(), &options.command, streams);
        remote_command::run(command, options.flags.tty, start).await;
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_streams_follow_the_flags() {
        let options = ExecOptions::from_query("command=sh&input=1&output=1&error=1").unwrap();
        assert_eq!(
            options.streams(),
            Streams::Pipes {
                stdin: true,
                stdout: true,
                stderr: true
            }
        );
        let options = ExecOptions::from_query("command=sh&input=1&output=1&tty=1").unwrap();
        assert_eq!(options.streams(), Streams::Terminal);
    }

    #[test]
    fn no_command_is_a_bad_request() {
        assert_eq!(
            ExecOptions::from_query("output=1"),
            Err("a command is required".into())
        );
        assert!(ExecOptions::from_query("command=ls&tty=1").is_err());
    }
}
