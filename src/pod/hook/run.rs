//! Running one lifecycle hook, and the kubelet's words when it fails. Layer 4.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use reqwest::header;

use super::plan::Hook;
use crate::pod::probe::exec::{Ended, Runner};
use crate::pod::probe::outcome::{MAX_OUTPUT, text};
use crate::pod::probe::plan::{Action, Scheme};

/// The kubelet's `User-Agent` for lifecycle requests.
const USER_AGENT: &str = "kube-lifecycle/1.33";

/// Where a hook reaches its container.
pub struct Reach<'a> {
    /// Runs `exec` hooks in the container's context.
    pub runner: &'a dyn Runner,
    /// The container's unit.
    pub unit: &'a str,
    /// The pod's IP (the node's): the host of `httpGet` hooks that name none.
    pub pod_ip: &'a str,
}

/// How a hook failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    /// What went wrong.
    pub error: String,
    /// What an `exec` hook wrote (at most 10 KiB).
    pub output: String,
}

/// Runs `hook`, giving up after `timeout`.
pub async fn run(hook: &Hook, reach: &Reach<'_>, timeout: Duration) -> Result<(), Failed> {
    match hook {
        Hook::Exec { argv } => exec(argv, reach, timeout).await,
        Hook::Http(action) => http(action, reach.pod_ip, timeout).await,
        Hook::Sleep(pause) => {
            tokio::time::sleep((*pause).min(timeout)).await;
            Ok(())
        }
    }
}

async fn exec(argv: &[String], reach: &Reach<'_>, timeout: Duration) -> Result<(), Failed> {
    let command = argv.join(" ");
    let (ended, output) = reach
        .runner
        .run(reach.unit, argv, timeout, MAX_OUTPUT)
        .await
        .map_err(|error| Failed {
            error,
            output: String::new(),
        })?;
    let error = match ended {
        Ended::Exited(0) => return Ok(()),
        Ended::Exited(code) => format!("command '{command}' exited with {code}: "),
        Ended::Signaled(signal) => format!("command '{command}' was killed by signal {signal}"),
        Ended::TimedOut => format!("command '{command}' timed out after {timeout:?}"),
    };
    Err(Failed {
        error,
        output: text(&output),
    })
}

async fn http(action: &Action, pod_ip: &str, timeout: Duration) -> Result<(), Failed> {
    let Action::Http {
        scheme,
        host,
        port,
        path,
        headers,
    } = action
    else {
        return Err(failed("a hook's HTTP action is not one"));
    };
    let host = host.as_deref().unwrap_or(pod_ip);
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    let scheme = match scheme {
        Scheme::Http => "http",
        Scheme::Https => "https",
    };
    let url = format!("{scheme}://{host}:{port}{path}");
    let client = crate::pod::probe::http::client(timeout)
        .map_err(|error| failed(format!("the HTTP client: {error}")))?;
    let mut request = client.get(&url).header(header::USER_AGENT, USER_AGENT);
    for (name, value) in headers {
        request = request.header(name.as_str(), value.as_str());
    }
    // The kubelet's lifecycle handler reads no status: any answer is a run hook.
    request
        .send()
        .await
        .map(drop)
        .map_err(|error| failed(format!("Get {url:?}: {error}")))
}

fn failed(error: impl Into<String>) -> Failed {
    Failed {
        error: error.into(),
        output: String::new(),
    }
}

/// The event message of a failed hook, as the kubelet's `handlerRunner` words it.
pub fn message(hook: &Hook, container: &str, pod: &Pod, failed: &Failed) -> String {
    let pod = format!(
        "{}_{}({})",
        pod.metadata.name.as_deref().unwrap_or_default(),
        pod.metadata.namespace.as_deref().unwrap_or("default"),
        pod.metadata.uid.as_deref().unwrap_or_default(),
    );
    match hook {
        Hook::Exec { argv } => format!(
            "Exec lifecycle hook ([{}]) for Container {container:?} in Pod {pod:?} failed - error: {}, message: {:?}",
            argv.join(" "),
            failed.error,
            failed.output
        ),
        Hook::Http(Action::Http { path, .. }) => format!(
            "HTTP lifecycle hook ({path}) for Container {container:?} in Pod {pod:?} failed - error: {}",
            failed.error
        ),
        Hook::Http(_) | Hook::Sleep(_) => format!(
            "Lifecycle hook for Container {container:?} in Pod {pod:?} failed - error: {}",
            failed.error
        ),
    }
}

#[cfg(test)]
#[path = "run/tests.rs"]
mod tests;
