//! Whether systemd must re-read unit files systemk just wrote or removed. A
//! daemon-reload re-reads every unit file (tens to hundreds of milliseconds with many
//! units loaded, growing with their number), but only a unit systemd has loaded already
//! can be stale: one it never loaded is read from disk when it is first started, and one
//! it only found missing before (`LoadState=not-found`, e.g. after a status query of a
//! unit not written yet) is read again once the unit directory changed (systemd's unit
//! cache, `manager_unit_cache_should_retry_load`). A unit loaded without a file (a slice
//! systemd made because a unit named it) is stale once its file is written, though systemd
//! never says so. So a new pod's units start without a reload, and a changed unit gets one
//! (coalesced, see `reload.rs`).

use zbus::{OwnedObjectPath, OwnedVariant};

use super::client::Systemd;
use super::error::{Error, Result};
use super::proxy::SYSTEMD_SERVICE;

const UNIT_INTERFACE: &str = "org.freedesktop.systemd1.Unit";

impl Systemd {
    /// Reloads once if any of `names` is loaded with content older than its file (or in a
    /// state a reload may cure); else nothing.
    pub(super) async fn reload_if_stale(&self, names: &[&str]) -> Result<()> {
        for name in names {
            if self.is_stale(name).await? {
                tracing::debug!(unit = name, "loaded unit changed on disk: daemon-reload");
                return self.reload().await;
            }
        }
        tracing::debug!(
            units = names.len(),
            "no loaded unit changed: no daemon-reload"
        );
        Ok(())
    }

    async fn is_stale(&self, name: &str) -> Result<bool> {
        let path = match self.manager.get_unit(name).await {
            Ok(path) => path,
            Err(error) => {
                let error = Error::from_zbus("GetUnit", name, error);
                if error.is_no_such_unit() {
                    return Ok(false);
                }
                return Err(self.dbus_errors.record(error));
            }
        };
        let load_state = self.unit_property(name, &path, "LoadState").await?;
        match String::try_from(load_state).as_deref() {
            Ok("not-found") => Ok(false),
            Ok("loaded") => {
                // A unit loaded without a file (a slice systemd made because a unit named
                // it) never needs a reload in systemd's eyes, yet its file is new.
                let fragment = self.unit_property(name, &path, "FragmentPath").await?;
                if String::try_from(fragment).unwrap_or_default().is_empty() {
                    return Ok(true);
                }
                let stale = self.unit_property(name, &path, "NeedDaemonReload").await?;
                Ok(bool::try_from(&stale).unwrap_or(true))
            }
            _ => Ok(true),
        }
    }

    async fn unit_property(
        &self,
        name: &str,
        path: &OwnedObjectPath,
        property: &'static str,
    ) -> Result<OwnedVariant> {
        let failed = |error| {
            self.dbus_errors.record(Error::from_zbus(
                "Get LoadState, FragmentPath or NeedDaemonReload of",
                name,
                error,
            ))
        };
        let reply = self
            .connection
            .call_method(
                Some(SYSTEMD_SERVICE),
                path,
                Some("org.freedesktop.DBus.Properties"),
                "Get",
                &(UNIT_INTERFACE, property),
            )
            .await
            .map_err(failed)?;
        reply.body().deserialize().map_err(failed)
    }
}
