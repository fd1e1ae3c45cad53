//! Running apt and dpkg programs: argv passed as separate arguments (never a shell),
//! stdout collected (as text, or as bytes up to a cap that stops the program), only the
//! tail of stderr kept so errors stay bounded. Layer 1.

use std::process::{ExitStatus, Stdio};

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};

use super::error::{Error, Result, STDERR_TAIL_BYTES, STDOUT_TAIL_BYTES};

/// dpkg-query's file list of the largest Debian packages is a few MiB; more than this
/// is not something systemk should hold in memory.
const STDOUT_MAX_BYTES: usize = 64 << 20;

/// What a finished program left behind.
pub(crate) struct Finished {
    /// Its exit status.
    pub status: ExitStatus,
    /// All of stdout (up to [`STDOUT_MAX_BYTES`]).
    pub stdout: String,
    /// The last [`STDERR_TAIL_BYTES`] of stderr.
    pub stderr: String,
}

/// What a program whose stdout is binary left behind.
pub(crate) struct Captured {
    /// Its exit status (killed when stdout went past the cap).
    pub status: ExitStatus,
    /// Stdout, at most the cap given to [`run_capped`].
    pub stdout: Vec<u8>,
    /// Stdout went past the cap: the program was killed and `stdout` is incomplete.
    pub overflowed: bool,
    /// The last [`STDERR_TAIL_BYTES`] of stderr.
    pub stderr: String,
}

/// Runs `program` with `args` and `env` added to the inherited environment, stdin closed.
/// The child is killed if the future is dropped.
pub(crate) async fn run(
    program: &'static str,
    args: &[&str],
    env: &[(&str, &str)],
) -> Result<Finished> {
    let mut child = spawn(program, args, env)?;
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(pipes_missing(program));
    };
    let (stdout, stderr, status) = tokio::join!(read_head(stdout), read_tail(stderr), child.wait());
    let status = status.map_err(|source| Error::Spawn { program, source })?;
    Ok(Finished {
        status,
        stdout,
        stderr,
    })
}

/// Runs `program` with `args` (stdin closed), keeping at most `max_stdout` bytes of its
/// stdout; a program that writes more is killed, so a hostile input cannot make it run
/// (decompress, say) for long or fill memory.
pub(crate) async fn run_capped(
    program: &'static str,
    args: &[&str],
    max_stdout: usize,
) -> Result<Captured> {
    let mut child = spawn(program, args, &[])?;
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(pipes_missing(program));
    };
    let ((stdout, overflowed), stderr) = tokio::join!(
        async {
            let read = read_capped(stdout, max_stdout).await;
            if read.1 {
                // Ignore the error: the child may have exited meanwhile.
                let _ = child.start_kill();
            }
            read
        },
        read_tail(stderr)
    );
    let status = child
        .wait()
        .await
        .map_err(|source| Error::Spawn { program, source })?;
    Ok(Captured {
        status,
        stdout,
        overflowed,
        stderr,
    })
}

fn spawn(program: &'static str, args: &[&str], env: &[(&str, &str)]) -> Result<Child> {
    Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| Error::Spawn { program, source })
}

fn pipes_missing(program: &'static str) -> Error {
    Error::Spawn {
        program,
        source: std::io::Error::other("pipes not set up"),
    }
}

impl Finished {
    /// The last [`STDOUT_TAIL_BYTES`] of stdout, cut at a character boundary.
    pub fn stdout_tail(&self) -> String {
        let text = self.stdout.trim_end();
        let mut start = text.len().saturating_sub(STDOUT_TAIL_BYTES);
        while !text.is_char_boundary(start) {
            start += 1;
        }
        text[start..].trim_start().to_owned()
    }
}

async fn read_head(mut pipe: impl AsyncRead + Unpin) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    while let Ok(n @ 1..) = pipe.read(&mut buf).await {
        if out.len() < STDOUT_MAX_BYTES {
            out.extend_from_slice(&buf[..n]);
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Up to `max` bytes of `pipe`, and whether it had more (then reading stopped).
async fn read_capped(mut pipe: impl AsyncRead + Unpin, max: usize) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    while let Ok(n @ 1..) = pipe.read(&mut buf).await {
        if out.len() + n > max {
            return (out, true);
        }
        out.extend_from_slice(&buf[..n]);
    }
    (out, false)
}

async fn read_tail(mut pipe: impl AsyncRead + Unpin) -> String {
    let mut tail = Vec::new();
    let mut buf = [0u8; 8192];
    while let Ok(n @ 1..) = pipe.read(&mut buf).await {
        tail.extend_from_slice(&buf[..n]);
        if tail.len() > STDERR_TAIL_BYTES {
            tail.drain(..tail.len() - STDERR_TAIL_BYTES);
        }
    }
    String::from_utf8_lossy(&tail).trim().to_owned()
}
