//! The files of configMap, secret, projected and downwardAPI volumes on the host: what
//! they hold ([`content`]), who owns them ([`owner`]), and writing them atomically in the
//! kubelet's `..data` layout ([`atomic`]), so a running container sees each update whole.

mod atomic;
mod content;
mod owner;

pub use atomic::{FileOwner, Payload, VolumeFile, check_payload_path, write_payload};
pub use content::{DEFAULT_MODE, VolumeSources, token_specs, volume_payload, volume_token_specs};
pub use owner::volume_owner;
