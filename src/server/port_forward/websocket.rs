//! The WebSocket side of a port-forward session (kubelet `portforward/websocket.go`): the
//! ports come from the request's `port` parameters, the n-th port has data on channel 2n
//! and errors on channel 2n+1, and each channel's first message is the port, 2 bytes
//! little-endian. Every port gets one forwarded connection ([`super::connection`]); the
//! socket closes when all of them have ended, the client goes away, or nothing moved for
//! the idle timeout. As wsstream, a slow pod port holds up the client's other channels,
//! not what the pods send. Layer 6.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, close_code};
use futures::stream::SplitStream;
use futures::{SinkExt as _, StreamExt as _};
use tokio::sync::{Notify, mpsc};

use super::connection::{self, Forwarded, INBOUND_CHUNKS, Target};
use crate::server::stream::channel::{ChannelProtocol, Inbound, port_prefix};
use crate::server::stream_websocket::send;

/// Reports from the connections waiting for the session.
const REPORTS: usize = 64;

/// Runs the session on `socket` for `ports`.
pub async fn serve(
    socket: WebSocket,
    protocol: ChannelProtocol,
    ports: Vec<u16>,
    target: Target,
    idle_timeout: Duration,
) {
    let (mut sink, messages) = socket.split();
    for (index, port) in (0u8..).zip(&ports) {
        for channel in [2 * index, 2 * index + 1] {
            if send(&mut sink, protocol, channel, &port_prefix(*port))
                .await
                .is_err()
            {
                return;
            }
        }
    }
    let (reports, mut from_forwards) = mpsc::channel(REPORTS);
    let mut to_pods = Vec::with_capacity(ports.len());
    for (key, port) in (0u32..).zip(&ports) {
        let (to_pod, inbound) = mpsc::channel(INBOUND_CHUNKS);
        to_pods.push(to_pod);
        let forward = connection::forward(key, *port, target.clone(), inbound, reports.clone());
        tokio::spawn(forward);
    }
    drop(reports);
    let activity = Arc::new(Notify::new());
    let mut reader = tokio::spawn(read(messages, protocol, to_pods, activity.clone()));
    let mut live = ports.len();
    let idle = tokio::time::sleep(idle_timeout);
    tokio::pin!(idle);
    while live > 0 {
        idle.as_mut()
            .reset(tokio::time::Instant::now() + idle_timeout);
        tokio::select! {
            () = &mut idle => {
                tracing::info!(idle = ?idle_timeout, "port-forward: the session idled too long");
                break;
            }
            () = activity.notified() => {}
            _ = &mut reader => break,
            report = from_forwards.recv() => {
                let sent = match report {
                    Some(Forwarded::Data { key, bytes }) => {
                        send(&mut sink, protocol, data_channel(key), &bytes).await
                    }
                    Some(Forwarded::Written { .. }) => Ok(()),
                    Some(Forwarded::Ended { key, error }) => {
                        live -= 1;
                        match error {
                            Some(error) => {
                                send(&mut sink, protocol, data_channel(key) + 1, error.as_bytes()).await
                            }
                            None => Ok(()),
                        }
                    }
                    None => break,
                };
                if sent.is_err() {
                    break;
                }
            }
        }
    }
    reader.abort();
    let normal = CloseFrame {
        code: close_code::NORMAL,
        reason: "".into(),
    };
    let _ = sink.send(Message::Close(Some(normal))).await;
    let _ = sink.close().await;
}

/// The data channel of the connection with `key`, its index among the ports (below 128).
fn data_channel(key: u32) -> u8 {
    u8::try_from(key * 2).unwrap_or(u8::MAX)
}

/// Passes the client's data messages to the connections, until the client closes.
async fn read(
    mut messages: SplitStream<WebSocket>,
    protocol: ChannelProtocol,
    to_pods: Vec<mpsc::Sender<Vec<u8>>>,
    activity: Arc<Notify>,
) {
    while let Some(Ok(message)) = messages.next().await {
        activity.notify_one();
        let payload = match message {
            Message::Binary(bytes) => bytes.to_vec(),
            Message::Text(text) => text.as_bytes().to_vec(),
            Message::Ping(_) | Message::Pong(_) => continue,
            Message::Close(_) => return,
        };
        match protocol.decode(&payload) {
            Ok(Some(Inbound::Data { channel, data })) if channel % 2 == 0 => {
                let index = usize::from(channel / 2);
                if let Some(to_pod) = to_pods.get(index)
                    && to_pod.send(data).await.is_err()
                {
                    tracing::debug!(index, "port-forward: the connection has ended");
                }
            }
            Ok(_) => {}
            Err(error) => {
                tracing::info!(%error, "port-forward: bad WebSocket message");
                return;
            }
        }
    }
}
