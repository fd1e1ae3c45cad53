//! A container's `lifecycle` → checked [`Hooks`]. Pure. Layer 4.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, LifecycleHandler};

use crate::pod::probe::plan::{Action, Invalid, exec_argv, http_action};

/// One hook's action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hook {
    /// A command in the container's context.
    Exec {
        /// The command and its arguments.
        argv: Vec<String>,
    },
    /// An HTTP GET (an [`Action::Http`]); any answer passes.
    Http(Action),
    /// A pause in systemk, e.g. to let load balancers notice before the stop signal.
    Sleep(Duration),
}

/// The hooks of one container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hooks {
    /// Runs right after the container starts.
    pub post_start: Option<Hook>,
    /// Runs before the stop signal, within the grace period.
    pub pre_stop: Option<Hook>,
}

/// The container's hooks, checked; `Err` names the hook (`postStart`) and what is wrong.
pub fn container_hooks(container: &Container) -> Result<Hooks, (&'static str, Invalid)> {
    let Some(lifecycle) = &container.lifecycle else {
        return Ok(Hooks::default());
    };
    let ports = container.ports.as_deref().unwrap_or_default();
    let hook = |name: &'static str, handler: &Option<LifecycleHandler>| {
        handler
            .as_ref()
            .map(|handler| plan(handler, ports).map_err(|invalid| (name, invalid)))
            .transpose()
    };
    Ok(Hooks {
        post_start: hook("postStart", &lifecycle.post_start)?,
        pre_stop: hook("preStop", &lifecycle.pre_stop)?,
    })
}

fn plan(
    handler: &LifecycleHandler,
    ports: &[k8s_openapi::api::core::v1::ContainerPort],
) -> Result<Hook, Invalid> {
    let set = [
        handler.exec.is_some(),
        handler.http_get.is_some(),
        handler.sleep.is_some(),
        handler.tcp_socket.is_some(),
    ];
    if set.iter().filter(|set| **set).count() != 1 {
        return Err(Invalid {
            field: "handler",
            reason: "exactly one of exec, httpGet and sleep must be set".to_owned(),
        });
    }
    if handler.tcp_socket.is_some() {
        return Err(Invalid {
            field: "tcpSocket",
            reason: "is not a lifecycle handler the kubelet runs".to_owned(),
        });
    }
    if let Some(exec) = &handler.exec {
        return Ok(Hook::Exec {
            argv: exec_argv(exec.command.as_deref())?,
        });
    }
    if let Some(http) = &handler.http_get {
        return Ok(Hook::Http(http_action(http, ports)?));
    }
    let seconds = handler.sleep.as_ref().map_or(0, |sleep| sleep.seconds);
    let seconds = u64::try_from(seconds).map_err(|_| Invalid {
        field: "sleep.seconds",
        reason: "must be ≥ 0".to_owned(),
    })?;
    Ok(Hook::Sleep(Duration::from_secs(seconds)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn container(lifecycle: serde_json::Value) -> Container {
        serde_json::from_value(json!({
            "name": "main", "image": "/bin/sleep", "lifecycle": lifecycle,
            "ports": [{"name": "web", "containerPort": 8080}],
        }))
        .unwrap()
    }

    #[test]
    fn hooks_are_planned_with_named_ports() {
        let hooks = container_hooks(&container(json!({
            "postStart": {"exec": {"command": ["/bin/touch", "/tmp/up"]}},
            "preStop": {"httpGet": {"port": "web", "path": "drain"}},
        })))
        .unwrap();
        assert_eq!(
            hooks.post_start,
            Some(Hook::Exec {
                argv: vec!["/bin/touch".into(), "/tmp/up".into()]
            })
        );
        let Some(Hook::Http(Action::Http { port, path, .. })) = hooks.pre_stop else {
            panic!("{hooks:?}");
        };
        assert_eq!((port, path.as_str()), (8080, "/drain"));
        let sleep = container_hooks(&container(json!({"preStop": {"sleep": {"seconds": 5}}})));
        assert_eq!(
            sleep.unwrap().pre_stop,
            Some(Hook::Sleep(Duration::from_secs(5)))
        );
    }

    #[test]
    fn bad_hooks_are_refused_naming_the_hook() {
        for (lifecycle, hook, field) in [
            (json!({"postStart": {}}), "postStart", "handler"),
            (
                json!({"preStop": {"tcpSocket": {"port": 80}}}),
                "preStop",
                "tcpSocket",
            ),
            (
                json!({"preStop": {"sleep": {"seconds": -1}}}),
                "preStop",
                "sleep.seconds",
            ),
            (
                json!({"postStart": {"exec": {"command": []}}}),
                "postStart",
                "exec.command",
            ),
            (
                json!({"postStart": {"httpGet": {"port": "nope"}}}),
                "postStart",
                "httpGet.port",
            ),
        ] {
            let (name, invalid) = container_hooks(&container(lifecycle.clone())).unwrap_err();
            assert_eq!((name, invalid.field), (hook, field), "{lifecycle}");
        }
    }

    #[test]
    fn attack_a_hook_header_cannot_smuggle_a_request() {
        let smuggled = container(json!({"preStop": {"httpGet": {
            "port": 80, "httpHeaders": [{"name": "X", "value": "a\r\nHost: evil"}],
        }}}));
        let (_, invalid) = container_hooks(&smuggled).unwrap_err();
        assert_eq!(invalid.field, "httpGet.httpHeaders");
        let nul = container(json!({"postStart": {"exec": {"command": ["/bin/sh\u{0}x"]}}}));
        assert!(container_hooks(&nul).is_err());
    }
}
