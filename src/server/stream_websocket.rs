//! The WebSocket side of an exec or attach session, after the 101: channel messages
//! ([`super::stream::channel`]) to and from the command's channels
//! ([`super::remote_command`]). As the kubelet (`createWebSocketStreams`): the command starts
//! at once, an empty message on the lowest channel systemk writes tells the client the
//! session is up, stdin arrives on channel 0 (v5 closes it with its CLOSE signal), terminal
//! sizes on channel 4, stdout and stderr leave on 1 and 2, the status on 3 (JSON from v4 on,
//! else an error text), then the socket closes. Layer 6.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, close_code};
use futures::{SinkExt as _, StreamExt as _};

use super::remote_command::{FromCommand, StdinQueue, TransportEnds};
use super::stream::channel::{ChannelProtocol, Inbound, Outbound};
use super::stream::kind::ResizeDecoder;
use super::stream::status::{status_json, status_text};
use super::stream_session::Expected;

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const STATUS: u8 = 3;
const RESIZE: u8 = 4;

/// Runs the session on `socket` until the command has ended and its status is written,
/// the client goes away, or no message went either way for `idle_timeout`.
pub async fn serve(
    socket: WebSocket,
    protocol: ChannelProtocol,
    expected: Expected,
    ends: TransportEnds,
    idle_timeout: Duration,
) {
    let TransportEnds {
        ready,
        stdin,
        resize,
        mut output,
    } = ends;
    let (mut sink, mut messages) = socket.split();
    let mut stdin = StdinQueue::new(stdin);
    if !expected.stdin {
        stdin.finish();
    }
    let mut sizes = ResizeDecoder::default();
    let first = match (expected.stdout, expected.stderr) {
        (true, _) => STDOUT,
        (false, true) => STDERR,
        (false, false) => STATUS,
    };
    if send(&mut sink, protocol, first, &[]).await.is_err() || ready.send(()).is_err() {
        return;
    }
    let idle = tokio::time::sleep(idle_timeout);
    tokio::pin!(idle);
    loop {
        idle.as_mut()
            .reset(tokio::time::Instant::now() + idle_timeout);
        tokio::select! {
            () = &mut idle => {
                tracing::info!(idle = ?idle_timeout, "remote command: the session idled too long");
                break;
            }
            message = messages.next(), if !stdin.is_full() => {
                let payload = match message {
                    Some(Ok(Message::Binary(bytes))) => bytes.to_vec(),
                    Some(Ok(Message::Text(text))) => text.as_bytes().to_vec(),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                };
                match protocol.decode(&payload) {
                    Ok(Some(Inbound::Data { channel: STDIN, data })) => stdin.push(data),
                    Ok(Some(Inbound::Data { channel: RESIZE, data })) => match sizes.push(&data) {
                        Ok(new) => {
                            if let Some(size) = new.last() {
                                resize.send_replace(Some(*size));
                            }
                        }
                        Err(error) => tracing::info!(%error, "remote command: bad terminal size"),
                    },
                    Ok(Some(Inbound::Close { channel: STDIN })) => stdin.finish(),
                    Ok(_) => {}
                    Err(error) => {
                        tracing::info!(%error, "remote command: bad WebSocket message");
                        break;
                    }
                }
            }
            _ = stdin.pass_on() => {}
            message = output.recv() => {
                let sent = match message {
                    Some(FromCommand::Stdout(data)) => send(&mut sink, protocol, STDOUT, &data).await,
                    Some(FromCommand::Stderr(data)) => send(&mut sink, protocol, STDERR, &data).await,
                    Some(FromCommand::Done(outcome)) => {
                        let status = if protocol.status_is_json() {
                            Some(status_json(&outcome))
                        } else {
                            status_text(&outcome)
                        };
                        if let Some(status) = status {
                            let _ = send(&mut sink, protocol, STATUS, &status).await;
                        }
                        // A normal closure (1000), as Go's x/net/websocket closes: client-go
                        // reads a close without a status (1005) as an error.
                        let normal = CloseFrame { code: close_code::NORMAL, reason: "".into() };
                        let _ = sink.send(Message::Close(Some(normal))).await;
                        let _ = sink.close().await;
                        break;
                    }
                    None => break,
                };
                if sent.is_err() {
                    break;
                }
            }
        }
    }
}

/// Sends `data` on `channel`, encoded as `protocol` says.
pub(super) async fn send(
    sink: &mut futures::stream::SplitSink<WebSocket, Message>,
    protocol: ChannelProtocol,
    channel: u8,
    data: &[u8],
) -> Result<(), ()> {
    let message = match protocol.encode(channel, data).map_err(|_| ())? {
        Outbound::Binary(bytes) => Message::Binary(bytes.into()),
        Outbound::Text(text) => Message::Text(text.into()),
    };
    sink.send(message).await.map_err(|_| ())
}
