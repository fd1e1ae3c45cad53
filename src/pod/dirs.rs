//! A pod's directories on the host: `<state>/pods/<uid>/` with its emptyDir volumes and the
//! restart records of its containers, and `<runtime>/pods/<uid>/` on a tmpfs (`/run`) for
//! what must never reach a persistent disk (environment files, secret and token volumes).
//! Created by systemk only, never through a path a pod controls; hostPath volumes are
//! prepared here too because their `type` asks for checks or creation before the unit
//! binds them. Both directories go away with the pod through [`remove_tree`], the one
//! removal that never follows a symlink nor crosses into a mounted file system.

use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{HostPathVolumeSource, Pod};

use super::host_paths::check_resolved_host_paths;
use super::{Error, Result};
use crate::atomic_file::{self, Durability};
use crate::unit::{NodeSecurity, empty_dir_path, is_dns_label, run_dir_path};

mod mountinfo;
mod offload;

/// The pod with its latest status, inside the pod's directory.
const POD_FILE: &str = "pod.json";

/// Mode of systemk's state and runtime directories when systemk creates them (the
/// package makes the state directory too).
const STATE_DIR_MODE: u32 = 0o755;
/// Mode of a container's own `/run` (the host's `/run` has it).
const RUN_DIR_MODE: u32 = 0o755;
/// Mode of its `lock` (`/var/lock` is a symlink to `/run/lock`; the host's is 1777).
const LOCK_DIR_MODE: u32 = 0o1777;
/// Mode of the directory holding all pods: only root may traverse it, so the world-writable
/// emptyDirs below are reachable only through the units' bind mounts.
const PODS_DIR_MODE: u32 = 0o700;
/// The kubelet's emptyDir mode: containers of one pod may run as different users.
const EMPTY_DIR_MODE: u32 = 0o777;
/// Mode of hostPath directories and files created for `DirectoryOrCreate`/`FileOrCreate`
/// (the kubelet's choice).
const HOST_DIR_MODE: u32 = 0o755;
const HOST_FILE_MODE: u32 = 0o644;
/// Mode of `pod.json`: what `fs::write` gave it under systemd's default umask (022); the
/// pods directory above it is root-only.
const POD_FILE_MODE: u32 = 0o644;

/// The directories systemk keeps for pods under its state and runtime directories.
#[derive(Debug, Clone)]
pub struct PodDirs {
    pods: PathBuf,
    runtime_pods: PathBuf,
}

impl PodDirs {
    /// Pod directories live in `<state_dir>/pods` and `<runtime_dir>/pods`.
    pub fn new(state_dir: &Path, runtime_dir: &Path) -> Self {
        Self {
            pods: state_dir.join("pods"),
            runtime_pods: runtime_dir.join("pods"),
        }
    }

    /// systemk's state directory, which holds the pods' directories.
    pub fn state_dir(&self) -> PathBuf {
        self.pods.parent().unwrap_or(&self.pods).to_owned()
    }

    /// The directory of the pod with this UID. The UID must already be validated
    /// (see [`check_uid`]).
    pub fn pod_dir(&self, uid: &str) -> PathBuf {
        self.pods.join(uid)
    }

    /// The pod's directory on the runtime tmpfs (`<runtime>/pods/<uid>`), for files that
    /// must not outlive a boot or reach a persistent disk. Root-only, like its parent.
    pub fn runtime_pod_dir(&self, uid: &str) -> PathBuf {
        self.runtime_pods.join(uid)
    }

    /// Where the FIFOs of containers with `stdin: true` live (`<runtime>/stdin`), made by
    /// their socket units.
    pub fn stdin_dir(&self) -> PathBuf {
        let runtime = self.runtime_pods.parent().unwrap_or(&self.runtime_pods);
        runtime.join(crate::unit::STDIN_DIR)
    }

    /// Where the restart records of a pod's containers live.
    pub fn records_dir(&self, uid: &str) -> PathBuf {
        self.pod_dir(uid).join("containers")
    }

    /// The UIDs of every pod that has a directory.
    pub fn list(&self) -> Result<Vec<String>> {
        let entries = match fs::read_dir(&self.pods) {
            Ok(entries) => entries,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(Error::Io {
                    path: self.pods.clone(),
                    source,
                });
            }
        };
        let mut uids = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| Error::Io {
                path: self.pods.clone(),
                source,
            })?;
            if let Some(uid) = entry
                .file_name()
                .to_str()
                .filter(|uid| check_uid(uid).is_ok())
            {
                uids.push(uid.to_owned());
            }
        }
        Ok(uids)
    }

    /// Creates the state directory, if it is not there yet (a fresh node, a new
    /// `--state-dir`): admission reads the size of its file system before any pod.
    pub fn create_state_dir(&self) -> Result<()> {
        let Some(state_dir) = self.pods.parent() else {
            return Ok(());
        };
        DirBuilder::new()
            .recursive(true)
            .mode(STATE_DIR_MODE)
            .create(state_dir)
            .map_err(|source| Error::Io {
                path: state_dir.to_owned(),
                source,
            })
    }

    /// Creates the pod's directory, its emptyDirs, and prepares its hostPath volumes as
    /// their `type` asks. Idempotent: existing emptyDirs keep their contents.
    /// A hostPath that resolves into what unprivileged pods must not see is refused
    /// before anything is created for it.
    pub fn prepare(&self, pod: &Pod, uid: &str, security: &NodeSecurity) -> Result<()> {
        check_uid(uid)?;
        self.create_state_dir()?;
        create_dir(&self.pods, PODS_DIR_MODE)?;
        if let Some(runtime_dir) = self.runtime_pods.parent() {
            DirBuilder::new()
                .recursive(true)
                .mode(STATE_DIR_MODE)
                .create(runtime_dir)
                .map_err(|source| Error::Io {
                    path: runtime_dir.to_owned(),
                    source,
                })?;
        }
        create_dir(&self.runtime_pods, PODS_DIR_MODE)?;
        create_dir(&self.runtime_pod_dir(uid), PODS_DIR_MODE)?;
        let pod_dir = self.pod_dir(uid);
        create_dir(&pod_dir, PODS_DIR_MODE)?;
        create_dir(&self.records_dir(uid), PODS_DIR_MODE)?;
        check_resolved_host_paths(pod, security)?;
        // Each container's own /run (unit::run_dir_path); the unit binds it, so it must
        // exist before the first start, and after a reboot (it is on the state disk).
        let containers = pod.spec.iter().flat_map(|spec| {
            spec.init_containers
                .iter()
                .flatten()
                .chain(spec.containers.iter())
        });
        let mut run_parent_made = false;
        for container in containers {
            // Checked here too, before the unit layer: no name may leave the directory.
            if !is_dns_label(&container.name) {
                return Err(Error::InvalidPod {
                    why: format!("container name {:?} is not a DNS label", container.name),
                });
            }
            let dir = run_dir_path(&pod_dir, &container.name);
            if !run_parent_made && let Some(parent) = dir.parent() {
                create_dir(parent, PODS_DIR_MODE)?;
                run_parent_made = true;
            }
            make_run_dir(&dir)?;
            // Its termination-message file: the unit binds it, so it must exist too.
            super::termination_file::ensure(&pod_dir, &container.name)?;
        }
        let volumes = pod
            .spec
            .as_ref()
            .and_then(|spec| spec.volumes.as_deref())
            .unwrap_or_default();
        for volume in volumes {
            if volume.empty_dir.is_some() {
                // This runs before the unit layer validates the pod: check the name here
                // too, so no name can leave the directory.
                check_volume_name(&volume.name)?;
                let dir = empty_dir_path(&pod_dir, &volume.name);
                if let Some(parent) = dir.parent() {
                    create_dir(parent.parent().unwrap_or(parent), PODS_DIR_MODE)?;
                    create_dir(parent, PODS_DIR_MODE)?;
                }
                create_dir(&dir, EMPTY_DIR_MODE)?;
            } else if let Some(host_path) = &volume.host_path {
                prepare_host_path(&volume.name, host_path)?;
            }
        }
        Ok(())
    }

    /// Empties `container`'s own `/run` (`unit::run_dir_path`) before systemk starts it,
    /// as a restarted container gets a fresh one; the unit must not be running. Through
    /// [`remove_tree`]: nothing the container planted there is followed.
    pub fn reset_run_dir(&self, uid: &str, container: &str) -> Result<()> {
        check_uid(uid)?;
        if !is_dns_label(container) {
            return Err(Error::InvalidPod {
                why: format!("container name {container:?} is not a DNS label"),
            });
        }
        let dir = run_dir_path(&self.pod_dir(uid), container);
        remove_tree(&dir).map_err(|source| Error::Io {
            path: dir.clone(),
            source,
        })?;
        make_run_dir(&dir)
    }

    /// Keeps the pod with its latest status in `<pod dir>/pod.json` (for `systemk pods`),
    /// atomically.
    pub fn save_pod(&self, uid: &str, pod: &Pod) -> Result<()> {
        check_uid(uid)?;
        let path = self.pod_dir(uid).join(POD_FILE);
        let io_error = |source| Error::Io {
            path: path.clone(),
            source,
        };
        let json = serde_json::to_vec_pretty(pod).map_err(|err| io_error(io::Error::other(err)))?;
        atomic_file::write(&path, &json, POD_FILE_MODE, Durability::Unsynced).map_err(io_error)
    }

    /// The pod last saved by [`Self::save_pod`], if readable.
    pub fn load_pod(&self, uid: &str) -> Option<Pod> {
        check_uid(uid).ok()?;
        let text = fs::read_to_string(self.pod_dir(uid).join(POD_FILE)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Removes the pod's directories with its emptyDirs, environment files and volumes
    /// (see [`remove_tree`]). hostPath volumes are never touched: they are bind mounts of
    /// the units, not part of these trees.
    pub fn remove(&self, uid: &str) -> Result<()> {
        check_uid(uid)?;
        for dir in [self.runtime_pod_dir(uid), self.pod_dir(uid)] {
            remove_tree(&dir).map_err(|source| Error::Io { path: dir, source })?;
        }
        Ok(())
    }
}

/// Removes `dir` with everything below it, and is the only way pod directories are
/// removed. It never follows a symlink (`remove_dir_all` works with `openat` and
/// `O_NOFOLLOW`) and never descends into a mounted file system: mount points at or below
/// `dir` (systemk's own bind mounts, e.g. under `<runtime pod dir>/volume-subpaths/`) are
/// detached first (`umount --lazy`); when one stays mounted nothing is removed and the
/// error names it, because removing through a bind mount would delete what it shows (a
/// pod's volume, or a host directory). A missing `dir` is not an error.
pub(crate) fn remove_tree(dir: &Path) -> io::Result<()> {
    match fs::symlink_metadata(dir) {
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(err),
        // A symlink or file where a directory belongs: remove it, never what it names.
        Ok(meta) if !meta.is_dir() => return fs::remove_file(dir),
        Ok(_) => {}
    }
    // mountinfo names mount points by their real path; the configured prefix may be a
    // symlink (`/var/run` → `/run`). The pod directory itself was checked above.
    let real = fs::canonicalize(dir)?;
    let mut mounted = mountinfo::mount_points_below(&real)?;
    if !mounted.is_empty() {
        // Deepest first, so no mount hides another.
        mounted.sort_by_key(|path| std::cmp::Reverse(path.components().count()));
        for point in &mounted {
            detach(point);
        }
        let left = mountinfo::mount_points_below(&real)?;
        if let Some(point) = left.first() {
            return Err(io::Error::other(format!(
                "{} is still a mount point: the directory is kept, unmount it by hand",
                point.display()
            )));
        }
    }
    match fs::remove_dir_all(dir) {
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Detaches the mount at `point` (lazily: busy files keep their mount until closed, but
/// the tree is gone from the directory); a failure shows in the check that follows.
fn detach(point: &Path) {
    let outcome = std::process::Command::new("umount")
        .args(["--lazy", "--no-canonicalize", "--"])
        .arg(point)
        .stdin(std::process::Stdio::null())
        .output();
    match outcome {
        Ok(out) if out.status.success() => {}
        Ok(out) => tracing::warn!(
            path = %point.display(),
            stderr = %String::from_utf8_lossy(&out.stderr).trim(),
            "cannot unmount below a pod directory"
        ),
        Err(err) => {
            tracing::warn!(path = %point.display(), error = %crate::error_chain::Chain(&err), "cannot run umount")
        }
    }
}

/// A pod UID becomes a directory name: only the characters of a UUID are allowed.
pub fn check_uid(uid: &str) -> Result<()> {
    let valid = !uid.is_empty()
        && uid.len() <= 64
        && uid.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(Error::InvalidPod {
            why: format!("pod UID {uid:?} is not a UUID"),
        })
    }
}

fn check_volume_name(name: &str) -> Result<()> {
    if is_dns_label(name) {
        Ok(())
    } else {
        Err(Error::InvalidPod {
            why: format!("volume name {name:?} is not a DNS label"),
        })
    }
}

/// A container's own `/run` with its `lock` directory. What the container made there
/// (also a `lock` of its own) is left alone.
fn make_run_dir(dir: &Path) -> Result<()> {
    create_dir(dir, RUN_DIR_MODE)?;
    let lock = dir.join("lock");
    match fs::symlink_metadata(&lock) {
        Err(err) if err.kind() == io::ErrorKind::NotFound => create_dir(&lock, LOCK_DIR_MODE),
        _ => Ok(()),
    }
}

/// Creates `dir` with `mode` unless it exists; an existing symlink is refused so nothing
/// planted in the state directory can redirect a pod's files.
fn create_dir(dir: &Path, mode: u32) -> Result<()> {
    let io_error = |source| Error::Io {
        path: dir.to_owned(),
        source,
    };
    // mkdir first, never look-then-create: passes of different pods run at once and share
    // the parent directories, so between a look and a mkdir another pass may create one
    // (seen in the .deb install test: the second of two new pods failed with EEXIST).
    match DirBuilder::new().mode(mode).create(dir) {
        // The umask narrowed the mode given to mkdir; emptyDirs must be world-writable.
        Ok(()) => fs::set_permissions(dir, fs::Permissions::from_mode(mode)).map_err(io_error),
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => match fs::symlink_metadata(dir) {
            Ok(meta) if meta.is_dir() => Ok(()),
            Ok(_) => Err(io_error(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "not a directory",
            ))),
            Err(err) => Err(io_error(err)),
        },
        Err(err) => Err(io_error(err)),
    }
}

fn prepare_host_path(volume: &str, source: &HostPathVolumeSource) -> Result<()> {
    let path = Path::new(&source.path);
    let kind = source.type_.as_deref().unwrap_or_default();
    let mismatch = |expected: &str| Error::HostPathType {
        volume: volume.to_owned(),
        path: path.to_owned(),
        expected: expected.to_owned(),
    };
    let io_error = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    // hostPath follows symlinks on purpose (as the kubelet does): the admin chose the path.
    let meta = match fs::metadata(path) {
        Ok(meta) => Some(meta),
        Err(err) if err.kind() == io::ErrorKind::NotFound => None,
        Err(err) => return Err(io_error(err)),
    };
    match (kind, meta) {
        ("", _) => Ok(()),
        ("DirectoryOrCreate", None) => DirBuilder::new()
            .recursive(true)
            .mode(HOST_DIR_MODE)
            .create(path)
            .map_err(io_error),
        ("DirectoryOrCreate" | "Directory", Some(meta)) if meta.is_dir() => Ok(()),
        ("DirectoryOrCreate" | "Directory", _) => Err(mismatch("a directory")),
        ("FileOrCreate", None) => {
            if let Some(parent) = path.parent() {
                DirBuilder::new()
                    .recursive(true)
                    .mode(HOST_DIR_MODE)
                    .create(parent)
                    .map_err(io_error)?;
            }
            fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
                .map_err(io_error)?;
            fs::set_permissions(path, fs::Permissions::from_mode(HOST_FILE_MODE)).map_err(io_error)
        }
        ("FileOrCreate" | "File", Some(meta)) if meta.is_file() => Ok(()),
        ("FileOrCreate" | "File", _) => Err(mismatch("a file")),
        ("Socket", Some(meta)) if meta.file_type().is_socket() => Ok(()),
        ("Socket", _) => Err(mismatch("a socket")),
        ("CharDevice", Some(meta)) if meta.file_type().is_char_device() => Ok(()),
        ("CharDevice", _) => Err(mismatch("a character device")),
        ("BlockDevice", Some(meta)) if meta.file_type().is_block_device() => Ok(()),
        ("BlockDevice", _) => Err(mismatch("a block device")),
        (other, _) => Err(Error::InvalidPod {
            why: format!("hostPath volume {volume:?} has unknown type {other:?}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{EmptyDirVolumeSource, PodSpec, Volume};

    const UID: &str = "0f4c7e2a-1b2c-4d5e-8f90-0123456789ab";

    fn pod_with(volumes: Vec<Volume>) -> Pod {
        Pod {
            spec: Some(PodSpec {
                volumes: Some(volumes),
                ..PodSpec::default()
            }),
            ..Pod::default()
        }
    }

    fn empty_dir(name: &str) -> Volume {
        Volume {
            name: name.into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Volume::default()
        }
    }

    fn host_path(name: &str, path: &Path, kind: &str) -> Volume {
        Volume {
            name: name.into(),
            host_path: Some(HostPathVolumeSource {
                path: path.display().to_string(),
                type_: Some(kind.into()),
            }),
            ..Volume::default()
        }
    }

    #[test]
    fn prepare_creates_world_writable_empty_dirs_and_remove_deletes_them() {
        let state = tempfile::tempdir().unwrap();
        let dirs = PodDirs::new(state.path(), &state.path().join("run"));
        dirs.prepare(
            &pod_with(vec![empty_dir("cache")]),
            UID,
            &NodeSecurity::default(),
        )
        .unwrap();
        let cache = dirs.pod_dir(UID).join("volumes/empty-dir/cache");
        assert_eq!(
            fs::metadata(&cache).unwrap().permissions().mode() & 0o7777,
            EMPTY_DIR_MODE
        );
        fs::write(cache.join("kept"), "x").unwrap();
        dirs.prepare(
            &pod_with(vec![empty_dir("cache")]),
            UID,
            &NodeSecurity::default(),
        )
        .unwrap();
        assert!(cache.join("kept").exists());
        assert_eq!(dirs.list().unwrap(), vec![UID.to_owned()]);
        dirs.remove(UID).unwrap();
        assert!(!dirs.pod_dir(UID).exists());
    }

    #[test]
    fn the_runtime_dir_is_root_only_and_goes_with_the_pod() {
        let state = tempfile::tempdir().unwrap();
        let runtime = tempfile::tempdir().unwrap();
        let dirs = PodDirs::new(state.path(), runtime.path());
        dirs.prepare(&pod_with(vec![]), UID, &NodeSecurity::default())
            .unwrap();
        let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&runtime.path().join("pods")), 0o700);
        let pod_run = dirs.runtime_pod_dir(UID);
        assert_eq!(pod_run, runtime.path().join("pods").join(UID));
        assert_eq!(mode(&pod_run), 0o700);
        fs::create_dir_all(pod_run.join("env")).unwrap();
        fs::write(pod_run.join("env/c.env"), "A=1\n").unwrap();
        dirs.remove(UID).unwrap();
        assert!(!pod_run.exists() && !dirs.pod_dir(UID).exists());
        dirs.remove(UID).unwrap();
    }

    #[test]
    fn every_container_gets_its_own_run_dir() {
        use k8s_openapi::api::core::v1::Container;
        let state = tempfile::tempdir().unwrap();
        let dirs = PodDirs::new(state.path(), &state.path().join("rt"));
        let container = |name: &str| Container {
            name: name.into(),
            ..Container::default()
        };
        let mut pod = pod_with(vec![]);
        let spec = pod.spec.as_mut().unwrap();
        spec.init_containers = Some(vec![container("init")]);
        spec.containers = vec![container("web"), container("side")];
        dirs.prepare(&pod, UID, &NodeSecurity::default()).unwrap();
        let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&dirs.pod_dir(UID).join("run")), 0o700);
        for name in ["init", "web", "side"] {
            let dir = run_dir_path(&dirs.pod_dir(UID), name);
            assert_eq!(mode(&dir), RUN_DIR_MODE, "{name}");
            assert_eq!(mode(&dir.join("lock")), LOCK_DIR_MODE, "{name}");
        }
        // A restart empties it; what the container planted is not followed.
        let web = run_dir_path(&dirs.pod_dir(UID), "web");
        let victim = tempfile::tempdir().unwrap();
        fs::write(victim.path().join("kept"), "x").unwrap();
        std::os::unix::fs::symlink(victim.path(), web.join("planted")).unwrap();
        fs::write(web.join("crond.pid"), "1").unwrap();
        dirs.reset_run_dir(UID, "web").unwrap();
        assert!(!web.join("planted").exists() && !web.join("crond.pid").exists());
        assert!(web.join("lock").is_dir() && victim.path().join("kept").exists());
        // A name that could leave the directory is refused before anything is made.
        pod.spec.as_mut().unwrap().containers = vec![container("../../x")];
        assert!(dirs.prepare(&pod, UID, &NodeSecurity::default()).is_err());
        assert!(!state.path().join("x").exists());
        dirs.remove(UID).unwrap();
        assert!(!dirs.pod_dir(UID).exists());
    }

    #[test]
    fn removal_never_follows_a_symlink() {
        let state = tempfile::tempdir().unwrap();
        let runtime = tempfile::tempdir().unwrap();
        let victim = tempfile::tempdir().unwrap();
        fs::write(victim.path().join("keep"), "x").unwrap();
        let dirs = PodDirs::new(state.path(), runtime.path());
        dirs.prepare(&pod_with(vec![]), UID, &NodeSecurity::default())
            .unwrap();
        let pod_run = dirs.runtime_pod_dir(UID);
        std::os::unix::fs::symlink(victim.path(), pod_run.join("link")).unwrap();
        dirs.remove(UID).unwrap();
        assert!(!pod_run.exists());
        // A pod directory that is itself a symlink: the link goes, not its target.
        fs::create_dir_all(runtime.path().join("pods")).unwrap();
        std::os::unix::fs::symlink(victim.path(), &pod_run).unwrap();
        dirs.remove(UID).unwrap();
        assert!(!pod_run.is_symlink());
        assert!(victim.path().join("keep").exists());
    }

    #[test]
    fn names_that_could_escape_are_refused() {
        let state = tempfile::tempdir().unwrap();
        let dirs = PodDirs::new(state.path(), &state.path().join("run"));
        assert!(
            dirs.prepare(
                &pod_with(vec![empty_dir("../x")]),
                UID,
                &NodeSecurity::default()
            )
            .is_err()
        );
        assert!(
            dirs.prepare(&pod_with(vec![]), "../../etc", &NodeSecurity::default())
                .is_err()
        );
        assert!(dirs.remove("..").is_err());
    }

    #[test]
    fn a_planted_symlink_is_refused() {
        let state = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let dirs = PodDirs::new(state.path(), &state.path().join("run"));
        fs::create_dir_all(state.path().join("pods")).unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), dirs.pod_dir(UID)).unwrap();
        assert!(
            dirs.prepare(
                &pod_with(vec![empty_dir("data")]),
                UID,
                &NodeSecurity::default()
            )
            .is_err()
        );
    }

    #[test]
    fn host_path_types_are_checked_or_created() {
        let host = tempfile::tempdir().unwrap();
        let state = tempfile::tempdir().unwrap();
        let dirs = PodDirs::new(state.path(), &state.path().join("run"));
        let made = host.path().join("made/dir");
        let file = host.path().join("made/file");
        dirs.prepare(
            &pod_with(vec![host_path("a", &made, "DirectoryOrCreate")]),
            UID,
            &NodeSecurity::default(),
        )
        .unwrap();
        dirs.prepare(
            &pod_with(vec![host_path("b", &file, "FileOrCreate")]),
            UID,
            &NodeSecurity::default(),
        )
        .unwrap();
        assert!(made.is_dir() && file.is_file());
        assert!(
            dirs.prepare(
                &pod_with(vec![host_path("c", &file, "Directory")]),
                UID,
                &NodeSecurity::default()
            )
            .is_err()
        );
        assert!(
            dirs.prepare(
                &pod_with(vec![host_path("d", &made, "Socket")]),
                UID,
                &NodeSecurity::default()
            )
            .is_err()
        );
        assert!(
            dirs.prepare(
                &pod_with(vec![host_path("e", &made, "Weird")]),
                UID,
                &NodeSecurity::default()
            )
            .is_err()
        );
        dirs.remove(UID).unwrap();
        assert!(made.is_dir(), "hostPaths are never removed");
    }
}
