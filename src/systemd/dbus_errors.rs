//! D-Bus calls that failed, counted by operation and error for `/metrics`
//! (`systemk_systemd_dbus_errors`): every failed call of this layer, in a reconcile pass
//! or not (status reads of the kubelet API, stats, exec entries). The counts live in the
//! [`Systemd`](super::Systemd) client and are shared by its clones; `main` registers them.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use super::error::Error;

/// The `error` label of a failure without a D-Bus error name: the bus connection failed,
/// or the reply could not be read.
const TRANSPORT: &str = "transport";

/// One series: which call failed, and how.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct DbusErrorLabels {
    /// The call, e.g. `StartUnit`.
    pub operation: &'static str,
    /// The D-Bus error name systemd sent (`org.freedesktop.systemd1.NoSuchUnit`), or
    /// `transport`.
    pub error: String,
}

/// Failed D-Bus calls; cheap to clone, clones share the counts.
#[derive(Debug, Clone, Default)]
pub struct DbusErrors(Family<DbusErrorLabels, Counter>);

impl DbusErrors {
    /// The family to register.
    pub fn family(&self) -> Family<DbusErrorLabels, Counter> {
        self.0.clone()
    }

    /// Counts `error` if it is a failed D-Bus call, and hands it back.
    pub(super) fn record(&self, error: Error) -> Error {
        match &error {
            Error::Call {
                operation, name, ..
            } => self.count(operation, name),
            Error::Bus { operation, .. } => self.count(operation, TRANSPORT),
            _ => {}
        }
        error
    }

    /// Counts a failed `operation` whose zbus error never became this layer's [`Error`].
    pub(super) fn record_zbus(&self, operation: &'static str, error: &zbus::Error) {
        use zbus::DBusError as _;
        match error {
            zbus::Error::MethodError(name, _, _) => self.count(operation, name),
            zbus::Error::FDO(fdo) => self.count(operation, fdo.name().as_str()),
            _ => self.count(operation, TRANSPORT),
        }
    }

    fn count(&self, operation: &'static str, error: &str) {
        self.0
            .get_or_create(&DbusErrorLabels {
                operation,
                error: error.to_owned(),
            })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::encoding::prometheus_text::encode;
    use prometheus_client::registry::Registry;

    use super::*;

    fn exposition(errors: &DbusErrors) -> String {
        let mut registry = Registry::default();
        registry.register("systemk_systemd_dbus_errors", "h", errors.family());
        let mut text = String::new();
        encode(&mut text, &registry).expect("encodes");
        text
    }

    #[test]
    fn a_call_error_counts_under_its_dbus_name_and_a_bus_failure_as_transport() {
        let errors = DbusErrors::default();
        let call = Error::Call {
            operation: "StartUnit",
            unit: "u".into(),
            name: "org.freedesktop.systemd1.NoSuchUnit".into(),
            message: "m".into(),
        };
        let bus = Error::Bus {
            operation: "GetAll properties of",
            unit: "u".into(),
            message: "m".into(),
        };
        let returned = errors.record(call);
        assert!(
            returned.is_no_such_unit(),
            "the error is handed back as it was"
        );
        errors.record(bus);
        errors.record(Error::MissingProperty {
            unit: "u".into(),
            property: "MainPID",
        });
        let text = exposition(&errors);
        assert!(text.contains(
            "systemk_systemd_dbus_errors_total{operation=\"StartUnit\",error=\"org.freedesktop.systemd1.NoSuchUnit\"} 1"
        ), "{text}");
        assert!(text.contains(
            "systemk_systemd_dbus_errors_total{operation=\"GetAll properties of\",error=\"transport\"} 1"
        ), "{text}");
        assert_eq!(
            text.matches("systemk_systemd_dbus_errors_total{").count(),
            2,
            "{text}"
        );
    }

    #[test]
    fn a_zbus_error_counts_like_the_error_it_would_become() {
        let errors = DbusErrors::default();
        errors.record_zbus("Get MainPID", &zbus::Error::InvalidReply);
        assert!(exposition(&errors).contains(
            "systemk_systemd_dbus_errors_total{operation=\"Get MainPID\",error=\"transport\"} 1"
        ));
    }
}
