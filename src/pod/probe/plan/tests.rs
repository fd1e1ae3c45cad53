use k8s_openapi::api::core::v1::{
    ExecAction, GRPCAction, HTTPGetAction, HTTPHeader, Probe, TCPSocketAction,
};
use serde_json::json;

use super::*;

fn probe(value: serde_json::Value) -> Probe {
    serde_json::from_value(value).unwrap()
}

fn named(name: &str, number: i32) -> ContainerPort {
    ContainerPort {
        name: Some(name.into()),
        container_port: number,
        ..Default::default()
    }
}

#[test]
fn defaults_are_the_kubelets() {
    let plan = plan(
        Kind::Readiness,
        &probe(json!({"tcpSocket": {"port": 80}})),
        &[],
    )
    .unwrap();
    assert_eq!(plan.period, Duration::from_secs(10));
    assert_eq!(plan.timeout, Duration::from_secs(1));
    assert_eq!(plan.initial_delay, Duration::ZERO);
    assert_eq!((plan.success_threshold, plan.failure_threshold), (1, 3));
    assert_eq!(plan.termination_grace, None);
    assert_eq!(
        plan.action,
        Action::Tcp {
            host: None,
            port: 80
        }
    );
}

#[test]
fn named_ports_resolve_from_the_containers_ports() {
    let spec = probe(json!({"httpGet": {"port": "web", "path": "healthz"}}));
    let plan = plan(Kind::Liveness, &spec, &[named("web", 8080)]).unwrap();
    assert_eq!(
        plan.action,
        Action::Http {
            scheme: Scheme::Http,
            host: None,
            port: 8080,
            path: "/healthz".into(),
            headers: vec![],
        }
    );
    let missing = super::plan(Kind::Liveness, &spec, &[]).unwrap_err();
    assert_eq!(missing.field, "httpGet.port");
    let numeric = probe(json!({"tcpSocket": {"port": "81"}}));
    assert_eq!(
        super::plan(Kind::Readiness, &numeric, &[]).unwrap().action,
        Action::Tcp {
            host: None,
            port: 81
        }
    );
}

#[test]
fn thresholds_and_grace_follow_the_api_validation() {
    let both = |kind, value| plan(kind, &probe(value), &[]).map(|p| p.success_threshold);
    assert_eq!(
        both(
            Kind::Readiness,
            json!({"tcpSocket": {"port": 1}, "successThreshold": 2})
        ),
        Ok(2)
    );
    assert!(
        both(
            Kind::Liveness,
            json!({"tcpSocket": {"port": 1}, "successThreshold": 2})
        )
        .is_err()
    );
    assert!(
        both(
            Kind::Readiness,
            json!({"tcpSocket": {"port": 1}, "periodSeconds": 0})
        )
        .is_err()
    );
    assert!(
        both(
            Kind::Readiness,
            json!({"tcpSocket": {"port": 1}, "initialDelaySeconds": -1})
        )
        .is_err()
    );
    let grace = json!({"tcpSocket": {"port": 1}, "terminationGracePeriodSeconds": 5});
    assert!(plan(Kind::Readiness, &probe(grace.clone()), &[]).is_err());
    assert_eq!(
        plan(Kind::Startup, &probe(grace), &[])
            .unwrap()
            .termination_grace,
        Some(Duration::from_secs(5))
    );
}

#[test]
fn exactly_one_handler() {
    assert!(plan(Kind::Readiness, &Probe::default(), &[]).is_err());
    let two = Probe {
        exec: Some(ExecAction {
            command: Some(vec!["true".into()]),
        }),
        tcp_socket: Some(TCPSocketAction {
            port: IntOrString::Int(1),
            host: None,
        }),
        ..Default::default()
    };
    assert_eq!(
        plan(Kind::Readiness, &two, &[]).unwrap_err().field,
        "handler"
    );
    let empty = Probe {
        exec: Some(ExecAction { command: None }),
        ..Default::default()
    };
    assert!(plan(Kind::Readiness, &empty, &[]).is_err());
    let grpc = Probe {
        grpc: Some(GRPCAction {
            port: 9000,
            service: None,
        }),
        ..Default::default()
    };
    assert_eq!(
        plan(Kind::Readiness, &grpc, &[]).unwrap().action,
        Action::Grpc {
            port: 9000,
            service: String::new()
        }
    );
}

fn http(change: impl FnOnce(&mut HTTPGetAction)) -> Result<Plan, Invalid> {
    let mut action = HTTPGetAction {
        port: IntOrString::Int(80),
        ..Default::default()
    };
    change(&mut action);
    plan(
        Kind::Readiness,
        &Probe {
            http_get: Some(action),
            ..Default::default()
        },
        &[],
    )
}

fn header(name: &str, value: &str) -> Option<Vec<HTTPHeader>> {
    Some(vec![HTTPHeader {
        name: name.into(),
        value: value.into(),
    }])
}

#[test]
fn attack_header_injection_is_refused() {
    assert!(http(|a| a.http_headers = header("X-Ok", "a\r\nHost: evil")).is_err());
    assert!(http(|a| a.http_headers = header("X-Ok\r\nHost", "a")).is_err());
    assert!(http(|a| a.http_headers = header("X Ok", "a")).is_err());
    assert!(http(|a| a.http_headers = header("", "a")).is_err());
    assert!(http(|a| a.http_headers = header("X-Ok", "a\tb")).is_ok());
}

#[test]
fn attack_hosts_paths_ports_and_schemes_are_checked() {
    assert!(http(|a| a.host = Some("127.0.0.1".into())).is_ok());
    assert!(http(|a| a.host = Some("::1".into())).is_ok());
    assert!(http(|a| a.host = Some("example.com".into())).is_ok());
    for bad in [
        "evil.com/x",
        "a b",
        "a\r\nb",
        "user@host",
        "-a.com",
        "host:80",
    ] {
        assert!(http(|a| a.host = Some(bad.into())).is_err(), "{bad}");
    }
    assert!(http(|a| a.path = Some("/a b".into())).is_err());
    assert!(http(|a| a.path = Some("/a\r\nHost: x".into())).is_err());
    assert!(http(|a| a.scheme = Some("FILE".into())).is_err());
    assert!(http(|a| a.port = IntOrString::Int(0)).is_err());
    assert!(http(|a| a.port = IntOrString::Int(70000)).is_err());
    assert!(http(|a| a.scheme = Some("HTTPS".into())).is_ok());
    let nul = Probe {
        exec: Some(ExecAction {
            command: Some(vec!["a\0b".into()]),
        }),
        ..Default::default()
    };
    assert!(plan(Kind::Readiness, &nul, &[]).is_err());
    let control = Probe {
        grpc: Some(GRPCAction {
            port: 1,
            service: Some("a\nb".into()),
        }),
        ..Default::default()
    };
    assert!(plan(Kind::Readiness, &control, &[]).is_err());
}
