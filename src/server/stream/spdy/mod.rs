//! SPDY/3.1 as the API server speaks it to the kubelet for exec, attach and port-forward:
//! frames ([`frame`]), compressed header blocks ([`headers`], with the SPDY/3 dictionary),
//! the server side of a connection ([`session`]) and the HTTP upgrade that starts one
//! ([`upgrade`]). Pure code over bytes, fuzzed (`fuzz/`); the handlers own the sockets.
//! Layer: server.

mod dictionary;
pub mod frame;
pub mod headers;
pub mod session;
pub mod upgrade;

pub use headers::Headers;
pub use session::{Event, Session, SessionLimits};

#[cfg(test)]
pub(crate) mod testing;

#[cfg(test)]
mod corpus;
