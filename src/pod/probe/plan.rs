//! A container's probe spec → a [`Plan`]: the kubelet's defaults filled in, named ports
//! resolved from the container's ports, and every string that will reach a socket or a
//! request checked. Pure. Layer 4.

use std::net::IpAddr;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, ContainerPort, HTTPGetAction, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// Which probe: the kubelet's names, used in events ("Liveness probe failed: …").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Failure restarts the container.
    Liveness,
    /// Drives the container's `ready`.
    Readiness,
    /// Gates the other two; failure restarts the container.
    Startup,
}

impl Kind {
    /// The capitalised name the kubelet puts in `Unhealthy` events.
    pub fn title(self) -> &'static str {
        match self {
            Kind::Liveness => "Liveness",
            Kind::Readiness => "Readiness",
            Kind::Startup => "Startup",
        }
    }

    /// The lower-case name of the `Killing` event ("failed liveness probe").
    pub fn lower(self) -> &'static str {
        match self {
            Kind::Liveness => "liveness",
            Kind::Readiness => "readiness",
            Kind::Startup => "startup",
        }
    }

    /// Whether a failure kills the container (readiness only marks it unready).
    pub fn kills(self) -> bool {
        self != Kind::Readiness
    }

    /// The container's field that holds this probe.
    pub fn field(self) -> &'static str {
        match self {
            Kind::Liveness => "livenessProbe",
            Kind::Readiness => "readinessProbe",
            Kind::Startup => "startupProbe",
        }
    }
}

/// The plans of every probe `container` has, startup first (it gates the others).
pub fn container_plans(container: &Container) -> Result<Vec<Plan>, (Kind, Invalid)> {
    let ports = container.ports.as_deref().unwrap_or_default();
    [
        (Kind::Startup, &container.startup_probe),
        (Kind::Liveness, &container.liveness_probe),
        (Kind::Readiness, &container.readiness_probe),
    ]
    .into_iter()
    .filter_map(|(kind, probe)| Some((kind, probe.as_ref()?)))
    .map(|(kind, probe)| plan(kind, probe, ports).map_err(|invalid| (kind, invalid)))
    .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
/// The `httpGet` scheme.
pub enum Scheme {
    /// Plain HTTP.
    Http,
    /// HTTPS, certificates not verified (as the kubelet).
    Https,
}

/// What the probe does; `host: None` means the pod's IP (the node's, on the host network).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A command in the container's context.
    Exec {
        /// The command and its arguments.
        argv: Vec<String>,
    },
    /// An HTTP GET; 200–399 is success.
    Http {
        /// HTTP or HTTPS.
        scheme: Scheme,
        /// Where to connect; `None` is the pod's IP.
        host: Option<String>,
        /// The resolved port.
        port: u16,
        /// The request path, starting with `/`.
        path: String,
        /// Extra request headers, checked.
        headers: Vec<(String, String)>,
    },
    /// A TCP connect within the timeout.
    Tcp {
        /// Where to connect; `None` is the pod's IP.
        host: Option<String>,
        /// The resolved port.
        port: u16,
    },
    /// grpc.health.v1 Health/Check over plaintext HTTP/2 to the pod's IP.
    Grpc {
        /// The port.
        port: u16,
        /// The `service` of the request; empty asks about the whole server.
        service: String,
    },
}

/// One probe, ready to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Which probe.
    pub kind: Kind,
    /// What it does.
    pub action: Action,
    /// Time after the container starts before the first attempt.
    pub initial_delay: Duration,
    /// Time between attempts.
    pub period: Duration,
    /// How long one attempt may take.
    pub timeout: Duration,
    /// Consecutive successes that turn the result to success.
    pub success_threshold: u32,
    /// Consecutive failures that turn the result to failure.
    pub failure_threshold: u32,
    /// Probe-level `terminationGracePeriodSeconds`; the pod's applies when `None`.
    pub termination_grace: Option<Duration>,
}

/// Why a probe cannot run, with the field it is about (`httpGet.port`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct Invalid {
    /// The probe's field, as `httpGet.port`.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

fn invalid(field: &'static str, reason: impl Into<String>) -> Invalid {
    Invalid {
        field,
        reason: reason.into(),
    }
}

/// Checks one probe and fills in the kubelet's defaults: period 10 s, timeout 1 s, success 1, failure 3, delay 0.
pub fn plan(kind: Kind, probe: &Probe, ports: &[ContainerPort]) -> Result<Plan, Invalid> {
    let success_threshold = positive("successThreshold", probe.success_threshold, 1)?;
    if kind.kills() && success_threshold != 1 {
        return Err(invalid(
            "successThreshold",
            "must be 1 for liveness and startup probes",
        ));
    }
    let termination_grace = match probe.termination_grace_period_seconds {
        None => None,
        Some(_) if !kind.kills() => {
            return Err(invalid(
                "terminationGracePeriodSeconds",
                "only liveness and startup probes may set it",
            ));
        }
        Some(seconds) if seconds < 1 => {
            return Err(invalid("terminationGracePeriodSeconds", "must be ≥ 1"));
        }
        Some(seconds) => Some(Duration::from_secs(seconds.unsigned_abs())),
    };
    let initial_delay = match probe.initial_delay_seconds.unwrap_or(0) {
        delay if delay < 0 => return Err(invalid("initialDelaySeconds", "must be ≥ 0")),
        delay => delay.unsigned_abs(),
    };
    Ok(Plan {
        kind,
        action: action(probe, ports)?,
        initial_delay: Duration::from_secs(initial_delay.into()),
        period: Duration::from_secs(positive("periodSeconds", probe.period_seconds, 10)?.into()),
        timeout: Duration::from_secs(positive("timeoutSeconds", probe.timeout_seconds, 1)?.into()),
        success_threshold,
        failure_threshold: positive("failureThreshold", probe.failure_threshold, 3)?,
        termination_grace,
    })
}

fn positive(field: &'static str, value: Option<i32>, default: u32) -> Result<u32, Invalid> {
    match value {
        None => Ok(default),
        Some(value) if value >= 1 => Ok(value.unsigned_abs()),
        Some(_) => Err(invalid(field, "must be ≥ 1")),
    }
}

fn action(probe: &Probe, ports: &[ContainerPort]) -> Result<Action, Invalid> {
    let handlers = [
        probe.exec.is_some(),
        probe.http_get.is_some(),
        probe.tcp_socket.is_some(),
        probe.grpc.is_some(),
    ];
    if handlers.iter().filter(|set| **set).count() != 1 {
        return Err(invalid(
            "handler",
            "exactly one of exec, httpGet, tcpSocket and grpc must be set",
        ));
    }
    if let Some(exec) = &probe.exec {
        let argv = exec.command.clone().unwrap_or_default();
        if argv.is_empty() || argv.iter().any(|arg| arg.contains('\0')) {
            return Err(invalid("exec.command", "must be non-empty, without NUL"));
        }
        return Ok(Action::Exec { argv });
    }
    if let Some(http) = &probe.http_get {
        return http_action(http, ports);
    }
    if let Some(tcp) = &probe.tcp_socket {
        return Ok(Action::Tcp {
            host: host("tcpSocket.host", tcp.host.as_deref())?,
            port: port("tcpSocket.port", &tcp.port, ports)?,
        });
    }
    let grpc = probe
        .grpc
        .as_ref()
        .ok_or_else(|| invalid("grpc", "missing"))?;
    let service = grpc.service.clone().unwrap_or_default();
    if service.chars().any(char::is_control) {
        return Err(invalid("grpc.service", "must not hold control characters"));
    }
    Ok(Action::Grpc {
        port: port("grpc.port", &IntOrString::Int(grpc.port), ports)?,
        service,
    })
}

fn http_action(http: &HTTPGetAction, ports: &[ContainerPort]) -> Result<Action, Invalid> {
    let scheme = match http.scheme.as_deref() {
        None | Some("HTTP") => Scheme::Http,
        Some("HTTPS") => Scheme::Https,
        Some(other) => {
            return Err(invalid(
                "httpGet.scheme",
                format!("{other:?} is neither HTTP nor HTTPS"),
            ));
        }
    };
    let path = http.path.clone().unwrap_or_default();
    if path.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(invalid(
            "httpGet.path",
            "must not hold spaces or control characters",
        ));
    }
    // The kubelet builds the URL from the path as given and adds the leading slash.
    let path = if path.starts_with('/') {
        path
    } else {
        format!("/{path}")
    };
    let mut headers = Vec::new();
    for header in http.http_headers.iter().flatten() {
        if !is_token(&header.name) {
            return Err(invalid(
                "httpGet.httpHeaders",
                format!("{:?} is not a header name", header.name),
            ));
        }
        if header.value.chars().any(|c| c.is_control() && c != '\t') {
            return Err(invalid(
                "httpGet.httpHeaders",
                format!("the value of {} holds control characters", header.name),
            ));
        }
        headers.push((header.name.clone(), header.value.clone()));
    }
    Ok(Action::Http {
        scheme,
        host: host("httpGet.host", http.host.as_deref())?,
        port: port("httpGet.port", &http.port, ports)?,
        path,
        headers,
    })
}

/// RFC 9110 `token`: what a header name may be.
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// An IP address or a DNS name; empty means the pod's IP, as in the kubelet.
fn host(field: &'static str, host: Option<&str>) -> Result<Option<String>, Invalid> {
    let Some(host) = host.filter(|host| !host.is_empty()) else {
        return Ok(None);
    };
    if host.parse::<IpAddr>().is_ok() || is_dns_name(host) {
        return Ok(Some(host.to_owned()));
    }
    Err(invalid(
        field,
        format!("{host:?} is neither an IP address nor a DNS name"),
    ))
}

fn is_dns_name(host: &str) -> bool {
    host.len() <= 253
        && host.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// A number 1–65535, or the name of one of the container's ports.
fn port(field: &'static str, port: &IntOrString, ports: &[ContainerPort]) -> Result<u16, Invalid> {
    let number = match port {
        IntOrString::Int(number) => *number,
        IntOrString::String(name) => match name.parse::<i32>() {
            Ok(number) => number,
            Err(_) => ports
                .iter()
                .find(|port| port.name.as_deref() == Some(name.as_str()))
                .map(|port| port.container_port)
                .ok_or_else(|| {
                    invalid(field, format!("the container has no port named {name:?}"))
                })?,
        },
    };
    u16::try_from(number)
        .ok()
        .filter(|number| *number != 0)
        .ok_or_else(|| invalid(field, format!("{number} is not a port (1–65535)")))
}

#[cfg(test)]
#[path = "plan/tests.rs"]
mod tests;
