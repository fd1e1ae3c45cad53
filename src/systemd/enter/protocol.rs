//! The messages between systemk and a unit's resident prober (`systemk-prober`, see
//! [`super::prober`]): one request and one reply per command, each a single
//! `SOCK_SEQPACKET` packet, so neither side ever parses a partial message. Every length is
//! bounded and every decode is checked: the prober runs as the container, so its replies
//! are untrusted input. Pure; layer 3.

/// The largest request: a command line and an environment (the kubelet's own limits on a
/// pod's size keep real ones far below this).
pub const MAX_REQUEST: usize = 256 * 1024;
/// The most output a reply carries (the last bytes the command wrote).
pub const MAX_OUTPUT: usize = 64 * 1024;
/// The largest reply: its header and the output.
pub const MAX_REPLY: usize = REPLY_HEADER + MAX_OUTPUT;

const REQUEST_HEADER: usize = 5 * 4;
const REPLY_HEADER: usize = 4 + 1 + 4;

/// One command to run: every path to try for the program (as `execvp` would, already
/// looked up in the container's `PATH`), its arguments and its whole environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Echoed in the reply: a reply to an earlier request is never taken for this one's.
    pub id: u32,
    /// After this long the command's process group is killed.
    pub timeout_ms: u32,
    /// How many bytes of output to keep, at most [`MAX_OUTPUT`].
    pub max_output: u32,
    /// Each path to try for the program, in order.
    pub candidates: Vec<Vec<u8>>,
    /// The arguments, the program's name first.
    pub argv: Vec<Vec<u8>>,
    /// `NAME=value` entries.
    pub envp: Vec<Vec<u8>>,
}

/// How a command ended, or why it did not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// It exited with this code.
    Exited(i32),
    /// This signal killed it.
    Signaled(i32),
    /// It outlived its timeout; its process group was killed.
    TimedOut,
    /// No candidate path exists in the container's view.
    NotFound,
    /// It could not be run, or once started not be waited for (then it was killed), with
    /// this errno (`EACCES` when a candidate was not executable).
    ExecFailed(i32),
    /// The prober could not start it (its output pipe failed with this errno, or the
    /// request was malformed): it did not run, and may run another way.
    ProberFailed(i32),
}

/// The answer to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The request's id.
    pub id: u32,
    /// How it ended.
    pub end: End,
    /// stdout and stderr interleaved: the last `max_output` bytes.
    pub output: Vec<u8>,
}

impl Request {
    /// The packet; `None` when a string holds a NUL byte (it could not be passed to
    /// `execve`) or the packet would exceed [`MAX_REQUEST`].
    pub fn encode(&self) -> Option<Vec<u8>> {
        let strings = self.candidates.iter().chain(&self.argv).chain(&self.envp);
        let mut packet = Vec::with_capacity(
            REQUEST_HEADER + strings.clone().map(|s| s.len() + 1).sum::<usize>(),
        );
        for number in [
            self.id,
            self.timeout_ms,
            self.max_output,
            u32::try_from(self.candidates.len()).ok()?,
            u32::try_from(self.argv.len()).ok()?,
        ] {
            packet.extend_from_slice(&number.to_le_bytes());
        }
        for string in strings {
            if string.contains(&0) {
                return None;
            }
            packet.extend_from_slice(string);
            packet.push(0);
        }
        (packet.len() <= MAX_REQUEST).then_some(packet)
    }

    /// The request in `packet`; `None` when it is malformed. The id alone is returned by
    /// [`request_id`] so that even a malformed request gets its reply.
    pub fn decode(packet: &[u8]) -> Option<Self> {
        let number = |index: usize| -> Option<u32> {
            let bytes = packet.get(index * 4..index * 4 + 4)?;
            Some(u32::from_le_bytes(bytes.try_into().ok()?))
        };
        let (candidates, argv) = (number(3)? as usize, number(4)? as usize);
        let body = packet.get(REQUEST_HEADER..)?;
        let mut strings: Vec<Vec<u8>> = match body.split_last() {
            None => Vec::new(),
            Some((0, body)) => body.split(|&b| b == 0).map(<[u8]>::to_vec).collect(),
            Some(_) => return None,
        };
        if strings.len() < candidates + argv || candidates == 0 || argv == 0 {
            return None;
        }
        let envp = strings.split_off(candidates + argv);
        let argv = strings.split_off(candidates);
        Some(Self {
            id: number(0)?,
            timeout_ms: number(1)?,
            max_output: number(2)?.min(MAX_OUTPUT as u32),
            candidates: strings,
            argv,
            envp,
        })
    }
}

/// The id of a request packet, if it has one.
pub fn request_id(packet: &[u8]) -> Option<u32> {
    Some(u32::from_le_bytes(packet.get(..4)?.try_into().ok()?))
}

impl Reply {
    /// The packet; output beyond [`MAX_OUTPUT`] is cut from the front.
    pub fn encode(&self) -> Vec<u8> {
        let (kind, value) = match self.end {
            End::Exited(code) => (0, code),
            End::Signaled(signal) => (1, signal),
            End::TimedOut => (2, 0),
            End::NotFound => (3, 0),
            End::ExecFailed(errno) => (4, errno),
            End::ProberFailed(errno) => (5, errno),
        };
        let output = &self.output[self.output.len().saturating_sub(MAX_OUTPUT)..];
        let mut packet = Vec::with_capacity(REPLY_HEADER + output.len());
        packet.extend_from_slice(&self.id.to_le_bytes());
        packet.push(kind);
        packet.extend_from_slice(&value.to_le_bytes());
        packet.extend_from_slice(output);
        packet
    }

    /// The reply in `packet`; `None` when it is malformed or longer than [`MAX_REPLY`].
    pub fn decode(packet: &[u8]) -> Option<Self> {
        if packet.len() > MAX_REPLY {
            return None;
        }
        let id = u32::from_le_bytes(packet.get(..4)?.try_into().ok()?);
        let kind = *packet.get(4)?;
        let value = i32::from_le_bytes(packet.get(5..9)?.try_into().ok()?);
        let end = match kind {
            0 => End::Exited(value),
            1 => End::Signaled(value),
            2 => End::TimedOut,
            3 => End::NotFound,
            4 => End::ExecFailed(value),
            5 => End::ProberFailed(value),
            _ => return None,
        };
        Some(Self {
            id,
            end,
            output: packet[REPLY_HEADER..].to_vec(),
        })
    }
}

#[cfg(test)]
#[path = "protocol/tests.rs"]
mod tests;
