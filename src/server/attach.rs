//! `GET`/`POST /attach/{namespace}/{pod}/{container}?input=1&output=1&error=1`:
//! `kubectl attach`. Answered as the kubelet answers (`getAttach`, `GetAttach`, the CRI's
//! attach): bad options 400, a pod this node does not run 404 `pod does not exist`, a
//! container that does not run 500 `container <name> not found in pod <pod>_<namespace>`,
//! all in plain text; then the upgrade exec also answers ([`command_session`]). The
//! session streams the output of the container's current run from the journal
//! ([`attach_output`]) and, for a container with `stdin: true`, writes the client's input
//! into the FIFO its socket unit holds ([`crate::unit::stdin_socket`]). A container
//! without one takes no input: the client's is read and dropped, as the CRI leaves it
//! unwired. The terminal is the container's setting, not the request's (`GetAttach`),
//! and a systemk container has none. Authorization happened before (`nodes/proxy`, in
//! the middleware). Layer 6.

use std::io::{self, ErrorKind};
use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::path::Path as FilePath;
use std::sync::Arc;

use axum::extract::{Path, Request, State as Shared};
use axum::http::StatusCode;
use axum::response::Response;
use tokio::net::unix::pipe;

use super::State;
use super::attach_output::{self, Follow};
use super::command_session::{ContainerPath, Session, StreamFlags, running_unit, serve};
use super::streaming::text;
use crate::unit::stdin_fifo_path;

/// The attach endpoint.
pub async fn attach(
    Shared(state): Shared<Arc<State>>,
    Path(path): Path<(String, String, String)>,
    request: Request,
) -> Response {
    serve_attach(&state, path.into(), request).await
}

/// The attach endpoint on the path that names the pod's UID too.
pub async fn attach_with_uid(
    Shared(state): Shared<Arc<State>>,
    Path(path): Path<(String, String, String, String)>,
    request: Request,
) -> Response {
    serve_attach(&state, path.into(), request).await
}

async fn serve_attach(state: &State, path: ContainerPath, request: Request) -> Response {
    let ContainerPath {
        namespace,
        pod,
        container,
        ..
    } = &path;
    let query = request.uri().query().unwrap_or_default();
    let since_us = crate::clock::now().as_microsecond();
    let flags = match StreamFlags::from_query(query) {
        Ok((flags, _)) => StreamFlags {
            tty: false,
            ..flags
        },
        Err(message) => return text(StatusCode::BAD_REQUEST, message),
    };
    let unit = match running_unit(state, &path).await {
        Ok(Some(unit)) => unit,
        Ok(None) => {
            let message = format!("container {container} not found in pod {pod}_{namespace}");
            return text(StatusCode::INTERNAL_SERVER_ERROR, message);
        }
        Err(response) => return response,
    };
    let follow = match Follow::of(state, &unit, flags, since_us) {
        Ok(follow) => follow,
        Err(message) => return text(StatusCode::INTERNAL_SERVER_ERROR, message),
    };
    let fifo = stdin_fifo_path(&state.dirs.stdin_dir(), &unit.status.name);
    let input = match flags.stdin.then(|| open_stdin(&fifo)).transpose() {
        Ok(input) => input.flatten(),
        Err(error) => {
            tracing::warn!(path = %fifo.display(), %error, "attach: refusing a standard input");
            let message =
                format!("cannot open the standard input of container {container}: {error}");
            return text(StatusCode::INTERNAL_SERVER_ERROR, message);
        }
    };
    let session = Session::of(
        &request,
        "attach",
        flags.expected(),
        state.limits.stream_idle_timeout,
    );
    serve(request, session, move |ends| {
        attach_output::run(ends, follow, input)
    })
    .await
}

/// The container's standard input, opened for writing without blocking: `None` when it
/// has none (no FIFO there, or nobody reading it). Never follows a symlink, and refuses
/// anything but a FIFO owned by systemk's own user (root, as is systemd, which makes it).
fn open_stdin(path: &FilePath) -> io::Result<Option<pipe::Sender>> {
    let opened = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW | libc::O_NOCTTY)
        .open(path);
    let file = match opened {
        Ok(file) => file,
        Err(error)
            if error.kind() == ErrorKind::NotFound || error.raw_os_error() == Some(libc::ENXIO) =>
        {
            return Ok(None);
        }
        Err(error) => return Err(error),
    };
    let metadata = file.metadata()?;
    if !metadata.file_type().is_fifo() || metadata.uid() != nix::unistd::geteuid().as_raw() {
        return Err(io::Error::new(
            ErrorKind::PermissionDenied,
            "it is not a FIFO of systemk's user",
        ));
    }
    pipe::Sender::from_file(file).map(Some)
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    fn fifo_in(dir: &FilePath) -> std::path::PathBuf {
        let path = dir.join("systemk.default.web.app.service");
        nix::unistd::mkfifo(
            &path,
            nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR,
        )
        .unwrap();
        path
    }

    #[tokio::test]
    async fn a_read_fifo_takes_the_input() {
        let dir = tempfile::tempdir().unwrap();
        let path = fifo_in(dir.path());
        let mut reader = pipe::OpenOptions::new().open_receiver(&path).unwrap();
        let mut input = open_stdin(&path).unwrap().expect("a reader is there");
        input.write_all(b"hi\n").await.unwrap();
        let mut read = [0u8; 3];
        reader.read_exact(&mut read).await.unwrap();
        assert_eq!(&read, b"hi\n");
    }

    #[test]
    fn no_fifo_or_no_reader_is_no_input() {
        let dir = tempfile::tempdir().unwrap();
        assert!(open_stdin(&dir.path().join("missing")).unwrap().is_none());
        let path = fifo_in(dir.path());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .unwrap();
        let _enter = runtime.enter();
        assert!(open_stdin(&path).unwrap().is_none());
    }

    #[test]
    fn a_planted_file_or_symlink_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, "x").unwrap();
        let err = open_stdin(&file).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
        let fifo = fifo_in(dir.path());
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&fifo, &link).unwrap();
        let err = open_stdin(&link).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ELOOP), "{err}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "x");
    }
}
