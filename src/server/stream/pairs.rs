//! The pairing of SPDY port-forward streams as the kubelet pairs them
//! (`portforward/httpstream.go`, `httpStreamHandler.run` and `httpStreamPair.add`): the
//! client opens an error stream and a data stream per forwarded connection, with the same
//! `requestID`; the connection starts once both are there, and a pair still missing a
//! stream after the stream creation timeout is dropped with an error on whatever stream it
//! has. Pure: the caller supplies the clock. Layer: server.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::server::stream::kind::{PortForwardRole, PortForwardStream};

/// A forwarded connection whose two streams are open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pair {
    /// The pod's port, from the data stream.
    pub port: u16,
    /// The data stream.
    pub data: u32,
    /// The error stream.
    pub error: u32,
}

#[derive(Debug)]
struct Pending {
    data: Option<(u32, u16)>,
    error: Option<u32>,
    deadline: Instant,
}

/// A stream the pairing refused, with the kubelet's message for the pair's error stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The error stream of the request, when it is already open.
    pub error: Option<u32>,
    /// What goes on it.
    pub message: String,
}

/// The pairs still waiting for a stream, by request id.
#[derive(Debug)]
pub struct Pairs {
    pending: HashMap<String, Pending>,
    timeout: Duration,
}

impl Pairs {
    /// No pair yet; each pair gets `timeout` from its first stream.
    pub fn new(timeout: Duration) -> Self {
        Self {
            pending: HashMap::new(),
            timeout,
        }
    }

    /// Adds stream `id`: the complete pair, nothing yet, or the kubelet's refusal of a second
    /// stream of the same role.
    pub fn add(
        &mut self,
        stream: PortForwardStream,
        id: u32,
        now: Instant,
    ) -> Result<Option<Pair>, Refused> {
        let request_id = stream.request_id;
        let timeout = self.timeout;
        let pending = self
            .pending
            .entry(request_id.clone())
            .or_insert_with(|| Pending {
                data: None,
                error: None,
                deadline: now + timeout,
            });
        let taken = match stream.role {
            PortForwardRole::Data => pending.data.is_some(),
            PortForwardRole::Error => pending.error.is_some(),
        };
        if taken {
            let role = match stream.role {
                PortForwardRole::Data => "data",
                PortForwardRole::Error => "error",
            };
            return Err(Refused {
                error: pending.error,
                message: format!(
                    "error processing stream for request {request_id}: {role} stream already assigned"
                ),
            });
        }
        match stream.role {
            PortForwardRole::Data => pending.data = Some((id, stream.port)),
            PortForwardRole::Error => pending.error = Some(id),
        }
        let (Some((data, port)), Some(error)) = (pending.data, pending.error) else {
            return Ok(None);
        };
        self.pending.remove(&request_id);
        Ok(Some(Pair { port, data, error }))
    }

    /// Drops the pairs whose time is up: each one's streams, and the message for its error
    /// stream.
    pub fn expire(&mut self, now: Instant) -> Vec<(Vec<u32>, Refused)> {
        let expired: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(id, _)| id.clone())
            .collect();
        expired
            .into_iter()
            .filter_map(|id| {
                let pending = self.pending.remove(&id)?;
                let streams = pending
                    .error
                    .into_iter()
                    .chain(pending.data.map(|(data, _)| data))
                    .collect();
                let message = format!("(request={id}) timed out waiting for streams");
                Some((
                    streams,
                    Refused {
                        error: pending.error,
                        message,
                    },
                ))
            })
            .collect()
    }

    /// Whether `id` is the data stream of a pair still waiting for its error stream.
    pub fn is_waiting_data(&self, id: u32) -> bool {
        self.pending
            .values()
            .any(|p| p.data.is_some_and(|(data, _)| data == id))
    }

    /// When the next pair runs out of time.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.pending.values().map(|p| p.deadline).min()
    }
}

#[cfg(test)]
#[path = "pairs/tests.rs"]
mod tests;
