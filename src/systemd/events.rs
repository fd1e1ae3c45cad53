//! Unit change notifications: [`Systemd::subscribe`] turns systemd's signals into a
//! stream of [`UnitEvent`]s about systemk units. An event is a hint to read the unit's
//! status again, never a source of truth: signals can be dropped when the queue is full
//! and any bus peer can send a `PropertiesChanged`.

use std::collections::HashMap;

use futures::channel::mpsc;
use futures::stream::{Stream, StreamExt};
use zbus::message::Message;
use zbus::{MatchRule, MessageStream, Variant};

use super::client::Systemd;
use super::error::{Error, Result};
use super::status::ActiveState;
use crate::unit::{UNIT_PREFIX, UnitName};

/// Where systemd puts unit objects; the rest of the path is the escaped unit name.
const UNIT_PATH_PREFIX: &str = "/org/freedesktop/systemd1/unit/";

const UNIT_INTERFACE: &str = "org.freedesktop.systemd1.Unit";

/// A systemk unit's `ActiveState` or `SubState` changed; the new values when systemd
/// sent them.
///
/// Loading and unloading are no events: a daemon-reload unloads and loads every unit
/// (`UnitRemoved` and `UnitNew` for each, with no state change), and on a node of a
/// thousand pods that would be a thousand needless passes after every reload. A unit
/// becomes inactive before systemd may unload it, so its state change tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitEvent {
    /// The unit.
    pub name: UnitName,
    /// The new `ActiveState`.
    pub active_state: Option<ActiveState>,
    /// The new `SubState`.
    pub sub_state: Option<String>,
}

impl Systemd {
    /// A stream of changes to systemk units, from now on. It ends when the bus
    /// connection closes.
    ///
    /// The signals arrive on a connection of their own, drained by a task into an
    /// unbounded channel: zbus stops reading a connection while one of its signal queues
    /// is full, so a slow consumer must never hold up the job waits of this client.
    pub async fn subscribe(
        &self,
    ) -> Result<impl Stream<Item = UnitEvent> + Send + Unpin + 'static> {
        let failed = |error| {
            self.dbus_errors
                .record(Error::from_zbus("subscribe to unit changes", "", error))
        };
        let events = Systemd::connect().await?;
        let rule = MatchRule::builder()
            .msg_type(zbus::message::Type::Signal)
            .interface("org.freedesktop.DBus.Properties")
            .member("PropertiesChanged")
            .path_namespace("/org/freedesktop/systemd1/unit")
            .build()
            .map_err(failed)?;
        let mut changes = MessageStream::for_match_rule(rule, &events.connection, None)
            .await
            .map_err(failed)?
            .filter_map(|message| async move { message.ok().and_then(|m| state_change(&m)) })
            .boxed();
        let (sender, receiver) = mpsc::unbounded();
        tokio::spawn(async move {
            // Owns the connection: it closes when the consumer drops the stream.
            let _events = events;
            while let Some(event) = changes.next().await {
                if sender.unbounded_send(event).is_err() {
                    break;
                }
            }
        });
        Ok(receiver)
    }
}

/// A `PropertiesChanged` of a systemk unit's `Unit` interface that touches its state.
fn state_change(message: &Message) -> Option<UnitEvent> {
    let path = message.header().path()?.as_str().to_owned();
    let unit = unit_name_from_path(&path)?;
    let body = message.body();
    let (interface, changed, _invalidated): (&str, HashMap<&str, Variant<'_>>, Vec<&str>) =
        body.deserialize().ok()?;
    if interface != UNIT_INTERFACE {
        return None;
    }
    let text = |key| {
        changed
            .get(key)
            .and_then(|value| String::try_from(value).ok())
    };
    let active_state = text("ActiveState").map(|state| ActiveState::parse(&state));
    let sub_state = text("SubState");
    let touches_state = changed.contains_key("ActiveState") || changed.contains_key("SubState");
    if !touches_state {
        return None;
    }
    Some(UnitEvent {
        name: systemk_unit(&unit)?,
        active_state,
        sub_state,
    })
}

/// The unit's name when it is a systemk unit.
fn systemk_unit(unit: &str) -> Option<UnitName> {
    if !unit.starts_with(UNIT_PREFIX) {
        return None;
    }
    unit.parse().ok()
}

/// Reverses systemd's object-path escaping (`bus_label_escape`): every byte that is not
/// an ASCII letter or digit was written as `_` and two lowercase hex digits.
fn unit_name_from_path(path: &str) -> Option<String> {
    let label = path.strip_prefix(UNIT_PATH_PREFIX)?;
    let bytes = label.as_bytes();
    let mut name = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'_' {
            let hex = label.get(i + 1..i + 3)?;
            name.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            name.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(name).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_paths_become_unit_names() {
        let path = "/org/freedesktop/systemd1/unit/systemk_2edefault_2eweb_2dv1_2ec_2eservice";
        assert_eq!(
            unit_name_from_path(path).as_deref(),
            Some("systemk.default.web-v1.c.service")
        );
    }

    #[test]
    fn leading_digit_and_at_are_escaped_too() {
        let path = "/org/freedesktop/systemd1/unit/_31x_40y_2eservice";
        assert_eq!(unit_name_from_path(path).as_deref(), Some("1x@y.service"));
    }

    #[test]
    fn broken_escapes_and_other_paths_are_ignored() {
        assert_eq!(
            unit_name_from_path("/org/freedesktop/systemd1/unit/a_2"),
            None
        );
        assert_eq!(unit_name_from_path("/org/freedesktop/systemd1/job/1"), None);
    }

    #[test]
    fn only_systemk_units_make_events() {
        assert!(systemk_unit("ssh.service").is_none());
        assert!(systemk_unit("systemk.a.b.c.service").is_some());
    }
}
