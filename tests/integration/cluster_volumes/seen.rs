//! What a container sees of its volumes, read as root inside the mount namespace of its
//! main process (`nsenter`), and the claims of the tokens it finds there.

use serde_json::Value;

use crate::apiserver::base64;
use crate::cluster::harness::in_mount_namespace;

/// The file at `path` as process `pid` sees it, `None` when it cannot be read.
pub async fn read_as(pid: u32, path: &str) -> Option<String> {
    let (ok, stdout, _) = in_mount_namespace(pid, &["cat", path]).await;
    ok.then_some(stdout)
}

/// `<uid> <gid> <octal mode>` of the file at `path` (symlinks followed) as `pid` sees it.
pub async fn owner_and_mode(pid: u32, path: &str) -> String {
    let (ok, stdout, stderr) =
        in_mount_namespace(pid, &["stat", "-L", "-c", "%u %g %a", path]).await;
    assert!(ok, "stat {path}: {stderr}");
    stdout.trim().to_owned()
}

/// The entries of directory `path` as `pid` sees it, without the `..`-prefixed ones of
/// the kubelet's layout (`..data`, the timestamped directory).
pub async fn visible_entries(pid: u32, path: &str) -> Vec<String> {
    let (ok, stdout, stderr) = in_mount_namespace(pid, &["ls", "-A", path]).await;
    assert!(ok, "ls {path}: {stderr}");
    stdout
        .lines()
        .filter(|name| !name.starts_with(".."))
        .map(str::to_owned)
        .collect()
}

/// The claims of a JWT: its middle part, base64url without padding.
pub fn jwt_claims(token: &str) -> Value {
    let parts: Vec<&str> = token.trim().split('.').collect();
    assert_eq!(parts.len(), 3, "not a JWT: {token}");
    assert!(
        parts.iter().all(|p| !p.is_empty()),
        "empty JWT part: {token}"
    );
    let payload = base64::decode_url_safe(parts[1]).expect("base64url JWT payload");
    serde_json::from_slice(&payload).expect("JSON JWT payload")
}
