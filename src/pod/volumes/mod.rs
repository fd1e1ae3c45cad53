//! The files of configMap, secret, projected and downwardAPI volumes on the host.

mod atomic;
pub use atomic::{FileOwner, Payload, VolumeFile, check_payload_path, write_payload};
