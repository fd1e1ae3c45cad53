use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::*;
use crate::server::remote_command::channels;
use crate::server::stream::spdy::frame::{FLAG_FIN, Frame};
use crate::server::stream::spdy::testing::{Peer, go_frames};
use crate::server::stream::status::Outcome;

const TIMEOUTS: Timeouts = Timeouts {
    creation: STREAM_CREATION_TIMEOUT,
    idle: Duration::from_secs(3600),
};

const EXEC: Expected = Expected {
    stdin: true,
    stdout: true,
    stderr: true,
    resize: false,
};

/// The recorded Go client's frames of `name` whose comment passes `keep`.
fn client_bytes(name: &str, keep: impl Fn(&str) -> bool) -> Vec<u8> {
    go_frames(name)
        .into_iter()
        .filter(|(comment, _)| keep(comment))
        .flat_map(|(_, bytes)| bytes)
        .collect()
}

/// Runs a session against the recorded client and a command that echoes its stdin to
/// stdout, writes `err` to stderr and exits 3; returns every frame the client gets.
async fn exec_session(client: Vec<u8>) -> Vec<(Frame, Option<Headers>)> {
    let (server_io, mut client_io) = tokio::io::duplex(1 << 20);
    let (transport, mut command) = channels_for_test();
    let server = tokio::spawn(serve(server_io, EXEC, transport, TIMEOUTS));
    client_io.write_all(&client).await.unwrap();
    command.ready.await.expect("the streams are all open");
    let mut stdin = Vec::new();
    while let Some(chunk) = command.stdin.recv().await {
        stdin.extend(chunk);
    }
    command
        .output
        .send(FromCommand::Stdout(stdin))
        .await
        .unwrap();
    let err = FromCommand::Stderr(b"err".to_vec());
    command.output.send(err).await.unwrap();
    let done = FromCommand::Done(Outcome::Exited(3));
    command.output.send(done).await.unwrap();
    let mut written = Vec::new();
    client_io.read_to_end(&mut written).await.unwrap();
    server.await.unwrap();
    Peer::new().read(&written)
}

/// The command's ends with their fields in reach of the test.
struct TestCommand {
    ready: tokio::sync::oneshot::Receiver<()>,
    stdin: mpsc::Receiver<Vec<u8>>,
    output: mpsc::Sender<FromCommand>,
}

fn channels_for_test() -> (TransportEnds, TestCommand) {
    let (transport, command) = channels();
    let (ready, stdin, output) = command.into_parts();
    (
        transport,
        TestCommand {
            ready,
            stdin,
            output,
        },
    )
}

fn data_of(frames: &[(Frame, Option<Headers>)], stream: u32) -> (Vec<u8>, bool) {
    let mut bytes = Vec::new();
    let mut fin = false;
    for (frame, _) in frames {
        if let Frame::Data {
            stream_id,
            flags,
            data,
        } = frame
            && *stream_id == stream
        {
            bytes.extend(data);
            fin |= flags & FLAG_FIN != 0;
        }
    }
    (bytes, fin)
}

#[tokio::test]
async fn an_exec_session_answers_each_stream_and_ends_with_the_status_and_goaway() {
    let frames = exec_session(client_bytes("exec", |c| !c.starts_with("GOAWAY"))).await;
    let replies: Vec<u32> = frames
        .iter()
        .filter_map(|(frame, _)| match frame {
            Frame::SynReply { stream_id, .. } => Some(*stream_id),
            _ => None,
        })
        .collect();
    assert_eq!(replies, [1, 3, 5, 7]);
    assert_eq!(data_of(&frames, 5), (b"hello\n".to_vec(), true));
    assert_eq!(data_of(&frames, 7), (b"err".to_vec(), true));
    let (status, fin) = data_of(&frames, 1);
    assert!(fin);
    let status: serde_json::Value = serde_json::from_slice(&status).unwrap();
    assert_eq!(status["details"]["causes"][0]["message"], "3");
    assert!(
        frames
            .iter()
            .any(|(f, _)| matches!(f, Frame::Ping { id: 1 })),
        "the ping is echoed"
    );
    let last = &frames.last().unwrap().0;
    assert!(matches!(last, Frame::GoAway { status: 0, .. }), "{last:?}");
    let status_at = frames
        .iter()
        .position(|(f, _)| matches!(f, Frame::Data { stream_id: 1, .. }))
        .unwrap();
    let output_at = frames
        .iter()
        .position(|(f, _)| matches!(f, Frame::Data { stream_id: 5, .. }))
        .unwrap();
    assert!(output_at < status_at, "output before status");
}

#[tokio::test]
async fn the_command_waits_for_every_stream_and_the_session_ends_at_the_timeout() {
    let (server_io, mut client_io) = tokio::io::duplex(1 << 20);
    let (transport, command) = channels_for_test();
    let short = Timeouts {
        creation: Duration::from_millis(50),
        ..TIMEOUTS
    };
    let server = tokio::spawn(serve(server_io, EXEC, transport, short));
    // Only error and stdin: stdout and stderr never come.
    let two = client_bytes("exec", |c| {
        c.ends_with("streamType=error") || c.ends_with("streamType=stdin")
    });
    client_io.write_all(&two).await.unwrap();
    server.await.unwrap();
    assert!(command.ready.await.is_err(), "the command never started");
}

#[tokio::test]
async fn a_terminal_session_passes_the_size() {
    let tty = Expected {
        stdin: true,
        stdout: true,
        stderr: false,
        resize: true,
    };
    let (server_io, mut client_io) = tokio::io::duplex(1 << 20);
    let (transport, command) = channels();
    let mut sizes = transport.resize.subscribe();
    let server = tokio::spawn(serve(server_io, tty, transport, TIMEOUTS));
    client_io
        .write_all(&client_bytes("tty", |_| true))
        .await
        .unwrap();
    sizes.changed().await.unwrap();
    let size = sizes.borrow().expect("a size");
    assert!(size.width > 0 && size.height > 0, "{size:?}");
    drop(client_io);
    server.await.unwrap();
    drop(command);
}

#[tokio::test]
async fn a_silent_session_ends_at_its_idle_timeout_and_drops_the_command() {
    let (server_io, mut client_io) = tokio::io::duplex(1 << 20);
    let (transport, command) = channels_for_test();
    let short = Timeouts {
        idle: Duration::from_millis(50),
        ..TIMEOUTS
    };
    let server = tokio::spawn(serve(server_io, EXEC, transport, short));
    let streams = client_bytes("exec", |c| c.starts_with("SYN_STREAM"));
    client_io.write_all(&streams).await.unwrap();
    command.ready.await.expect("the streams are all open");
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("the session ended")
        .unwrap();
    command.output.closed().await;
}
