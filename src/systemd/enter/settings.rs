//! What systemd says about a running unit, for entering it: its main process, read with
//! one small `Get` on every call a resident prober cannot take without asking (see
//! `Probers::serving_current_run`), and the settings that hold for one run of that
//! process (cgroup, capabilities, no-new-privileges, working directory), read with one
//! `GetAll` of the `Service` interface the first time and cached per (unit, main pid,
//! start time). A probe every second then costs systemd one property, not some two
//! hundred (the bench's `probe_cpu_percent` found the `GetAll` replies the largest
//! share of an exec probe's cost in systemk). Layer 3.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use zbus::{OwnedObjectPath, OwnedVariant};

use crate::systemd::Systemd;
use crate::systemd::proxy::SYSTEMD_SERVICE;
use crate::unit::UnitName;

const SERVICE_INTERFACE: &str = "org.freedesktop.systemd1.Service";
const PROPERTIES_INTERFACE: &str = "org.freedesktop.DBus.Properties";

/// Beyond this many cached units the cache is emptied: entries of removed units go with
/// it, and each entry is a few hundred bytes.
const CACHE_LIMIT: usize = 4096;

/// The unit's settings for one run of its main process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Settings {
    /// `MainPID` when they were read.
    pub(super) main_pid: u32,
    /// `ControlGroup`, relative to systemd's root.
    pub(super) control_group: String,
    /// `CapabilityBoundingSet`.
    pub(super) bounding: u64,
    /// `AmbientCapabilities`.
    pub(super) ambient: u64,
    /// `NoNewPrivileges`.
    pub(super) no_new_privileges: bool,
    /// `WorkingDirectory`.
    pub(super) working_directory: WorkingDirectory,
    /// A stop of the unit kills every process in its cgroup, ignoring SIGTERM or not
    /// (`KillMode=control-group` or `mixed`, `SendSIGKILL=yes`): none outlives its run.
    pub(super) stop_kills_every_process: bool,
}

/// A unit's object path and, once read, its settings for the run of the main process
/// with this start time.
#[derive(Clone)]
struct Entry {
    path: OwnedObjectPath,
    run: Option<(u64, Arc<Settings>)>,
}

type Cache = Mutex<HashMap<String, Entry>>;

/// Process-wide because `run_in_unit` is a free function; an entry applies only to the
/// process (pid and start time) it was read for.
fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(Cache::default)
}

fn cached(unit: &str) -> Option<Entry> {
    cache().lock().ok()?.get(unit).cloned()
}

fn remember(unit: &str, entry: Entry) {
    if let Ok(mut cache) = cache().lock() {
        if cache.len() >= CACHE_LIMIT && !cache.contains_key(unit) {
            cache.clear();
        }
        cache.insert(unit.to_owned(), entry);
    }
}

/// The unit's object path (cached: systemd derives it from the name) and its `MainPID`,
/// 0 when it has none.
pub(super) async fn main_pid(
    systemd: &Systemd,
    name: &UnitName,
) -> zbus::Result<(OwnedObjectPath, u32)> {
    let path = match cached(name.as_str()) {
        Some(entry) => entry.path,
        None => {
            let path = systemd.manager.get_unit(name.as_str()).await?;
            remember(
                name.as_str(),
                Entry {
                    path: path.clone(),
                    run: None,
                },
            );
            path
        }
    };
    let reply = systemd
        .connection
        .call_method(
            Some(SYSTEMD_SERVICE),
            &path,
            Some(PROPERTIES_INTERFACE),
            "Get",
            &(SERVICE_INTERFACE, "MainPID"),
        )
        .await?;
    let value: OwnedVariant = reply.body().deserialize()?;
    // systemd's `MainPID` is a `u`: anything else is no main process to enter.
    Ok((path, u32::try_from(&value).unwrap_or(0)))
}

/// The settings for the run of the main process `pid` started at `start_time`: cached,
/// or read now. `None` when systemd's `MainPID` is no longer `pid` (the unit restarted
/// in between).
pub(super) async fn for_run(
    systemd: &Systemd,
    name: &UnitName,
    path: OwnedObjectPath,
    pid: u32,
    start_time: u64,
) -> zbus::Result<Option<Arc<Settings>>> {
    if let Some(Entry {
        run: Some((started, settings)),
        ..
    }) = cached(name.as_str())
        && settings.main_pid == pid
        && started == start_time
    {
        return Ok(Some(settings));
    }
    let reply = systemd
        .connection
        .call_method(
            Some(SYSTEMD_SERVICE),
            &path,
            Some(PROPERTIES_INTERFACE),
            "GetAll",
            &(SERVICE_INTERFACE,),
        )
        .await?;
    let properties: HashMap<String, OwnedVariant> = reply.body().deserialize()?;
    let settings = parse(&properties);
    if settings.main_pid != pid {
        return Ok(None);
    }
    let settings = Arc::new(settings);
    remember(
        name.as_str(),
        Entry {
            path,
            run: Some((start_time, settings.clone())),
        },
    );
    Ok(Some(settings))
}

/// The settings in a `GetAll` reply of the `Service` interface; a missing capability
/// set is the full one (nothing dropped), a missing ambient set empty.
pub(super) fn parse(properties: &HashMap<String, OwnedVariant>) -> Settings {
    let string = |key: &str| {
        properties
            .get(key)
            .and_then(|value| String::try_from(value.try_clone().ok()?).ok())
            .unwrap_or_default()
    };
    let number = |key: &str| properties.get(key).and_then(|v| u64::try_from(v).ok());
    Settings {
        main_pid: properties
            .get("MainPID")
            .and_then(|value| u32::try_from(value).ok())
            .unwrap_or(0),
        control_group: string("ControlGroup"),
        bounding: number("CapabilityBoundingSet").unwrap_or(u64::MAX),
        ambient: number("AmbientCapabilities").unwrap_or(0),
        no_new_privileges: properties
            .get("NoNewPrivileges")
            .and_then(|v| bool::try_from(v).ok())
            .unwrap_or(false),
        working_directory: working_directory(&string("WorkingDirectory")),
        stop_kills_every_process: matches!(string("KillMode").as_str(), "control-group" | "mixed")
            && properties
                .get("SendSIGKILL")
                .and_then(|v| bool::try_from(v).ok())
                .unwrap_or(false),
    }
}

/// `WorkingDirectory=` as systemd reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct WorkingDirectory {
    /// `None` is the user's home (`~`).
    pub(super) path: Option<PathBuf>,
    /// `-` in the unit (`!` in the property): a missing directory falls back to `/`.
    pub(super) missing_ok: bool,
}

/// systemd's `WorkingDirectory` property: empty (the root), `~`, or a path, each with a
/// `!` prefix when a missing directory is allowed.
pub(super) fn working_directory(property: &str) -> WorkingDirectory {
    let (missing_ok, rest) = match property.strip_prefix('!') {
        Some(rest) => (true, rest),
        None => (false, property),
    };
    let path = match rest {
        "~" => None,
        "" => Some(PathBuf::from("/")),
        path => Some(PathBuf::from(path)),
    };
    WorkingDirectory { path, missing_ok }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::PathBuf;

    use zbus::OwnedVariant;
    use zbus::Variant as Value;

    use super::*;

    fn variant(value: Value<'static>) -> OwnedVariant {
        OwnedVariant::try_from(value).expect("a plain value converts")
    }

    #[test]
    fn settings_come_from_the_service_properties() {
        let properties = HashMap::from([
            ("MainPID".to_owned(), variant(Value::U32(4242))),
            (
                "ControlGroup".to_owned(),
                variant(Value::from("/system.slice/a.service")),
            ),
            (
                "CapabilityBoundingSet".to_owned(),
                variant(Value::U64(0x400)),
            ),
            ("AmbientCapabilities".to_owned(), variant(Value::U64(0x400))),
            ("NoNewPrivileges".to_owned(), variant(Value::Bool(true))),
            ("WorkingDirectory".to_owned(), variant(Value::from("!/srv"))),
            ("KillMode".to_owned(), variant(Value::from("mixed"))),
            ("SendSIGKILL".to_owned(), variant(Value::Bool(true))),
        ]);
        let settings = parse(&properties);
        assert_eq!(settings.main_pid, 4242);
        assert_eq!(settings.control_group, "/system.slice/a.service");
        assert_eq!((settings.bounding, settings.ambient), (0x400, 0x400));
        assert!(settings.no_new_privileges);
        assert!(settings.stop_kills_every_process);
        assert_eq!(
            settings.working_directory,
            WorkingDirectory {
                path: Some(PathBuf::from("/srv")),
                missing_ok: true
            }
        );
    }

    #[test]
    fn missing_settings_drop_nothing_and_add_nothing() {
        let settings = parse(&HashMap::new());
        assert_eq!(settings.main_pid, 0);
        assert_eq!(settings.control_group, "");
        assert_eq!((settings.bounding, settings.ambient), (u64::MAX, 0));
        assert!(!settings.no_new_privileges);
        assert!(!settings.stop_kills_every_process);
    }

    #[test]
    fn only_a_stop_that_kills_the_whole_cgroup_for_sure_counts() {
        let kills = |mode: &str, sigkill: bool| {
            let properties = HashMap::from([
                ("KillMode".to_owned(), variant(Value::from(mode.to_owned()))),
                ("SendSIGKILL".to_owned(), variant(Value::Bool(sigkill))),
            ]);
            parse(&properties).stop_kills_every_process
        };
        assert!(kills("control-group", true));
        assert!(kills("mixed", true));
        // Only the main process is signalled, or nothing: others outlive the run.
        assert!(!kills("process", true));
        assert!(!kills("none", true));
        // A process that ignores SIGTERM outlives the stop.
        assert!(!kills("control-group", false));
    }

    #[test]
    fn a_wrongly_typed_main_pid_is_no_main_process() {
        let properties = HashMap::from([("MainPID".to_owned(), variant(Value::from("12")))]);
        assert_eq!(parse(&properties).main_pid, 0);
    }

    #[test]
    fn working_directory_property_forms() {
        assert_eq!(
            working_directory(""),
            WorkingDirectory {
                path: Some("/".into()),
                missing_ok: false
            }
        );
        assert_eq!(
            working_directory("!~"),
            WorkingDirectory {
                path: None,
                missing_ok: true
            }
        );
        assert_eq!(
            working_directory("/srv/app"),
            WorkingDirectory {
                path: Some("/srv/app".into()),
                missing_ok: false
            }
        );
    }
}
