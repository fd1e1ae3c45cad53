//! `httpGet` (kubelet `probe/http`): one GET, 200–399 passes, redirects followed only
//! on the same host (another host ends the probe with a warning, which passes), HTTPS
//! without certificate checks, a bounded body as the output. Layer 4.

use std::time::Duration;

use reqwest::redirect::{Attempt, Policy};
use reqwest::{Client, StatusCode, header};

use super::outcome::{MAX_OUTPUT, Outcome, Result, text};
use super::plan::Scheme;

/// The kubelet's `User-Agent`, with the Kubernetes version systemk speaks.
pub const USER_AGENT: &str = "kube-probe/1.33";

/// As the kubelet's client (`followNonLocalRedirects` false, at most 10 redirects).
const MAX_REDIRECTS: usize = 10;

/// A client for one probe, kept by its worker: no connection is reused between
/// attempts (the kubelet disables keep-alive) and certificates are not checked.
pub fn client(timeout: Duration) -> reqwest::Result<Client> {
    Client::builder()
        .tls_danger_accept_invalid_certs(true)
        .pool_max_idle_per_host(0)
        .redirect(Policy::custom(redirect))
        .timeout(timeout)
        .build()
}

fn redirect(attempt: Attempt<'_>) -> reqwest::redirect::Action {
    if attempt.previous().len() > MAX_REDIRECTS {
        return attempt.error(format!("stopped after {MAX_REDIRECTS} redirects"));
    }
    let first = attempt.previous().first().and_then(|url| url.host_str());
    if attempt.url().host_str() == first {
        attempt.follow()
    } else {
        attempt.stop()
    }
}

/// What one GET asks for; `host` is the plan's host or the pod's IP.
pub struct Request<'a> {
    /// HTTP or HTTPS.
    pub scheme: Scheme,
    /// An IP address or a checked DNS name.
    pub host: &'a str,
    /// The port.
    pub port: u16,
    /// The checked path, starting with `/`.
    pub path: &'a str,
    /// The checked extra headers; they replace the defaults of the same name.
    pub headers: &'a [(String, String)],
}

/// One attempt.
pub async fn probe(client: &Client, request: &Request<'_>) -> Outcome {
    let scheme = match request.scheme {
        Scheme::Http => "http",
        Scheme::Https => "https",
    };
    let host = if request.host.contains(':') {
        format!("[{}]", request.host)
    } else {
        request.host.to_owned()
    };
    let url = format!("{scheme}://{host}:{}{}", request.port, request.path);
    let mut builder = client
        .get(&url)
        .header(header::USER_AGENT, USER_AGENT)
        .header(header::ACCEPT, "*/*");
    for (name, value) in request.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let mut response = match builder.send().await {
        Ok(response) => response,
        Err(error) => return Outcome::failure(format!("Get {url:?}: {}", chain(&error))),
    };
    let status = response.status();
    let mut body = Vec::new();
    while body.len() < MAX_OUTPUT {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) => break,
            Err(error) => return Outcome::failure(format!("Get {url:?}: {}", chain(&error))),
        }
    }
    verdict(status, &text(&body))
}

fn verdict(status: StatusCode, body: &str) -> Outcome {
    match status.as_u16() {
        200..=299 => Outcome::success(body),
        300..=399 => Outcome::new(
            Result::Warning,
            format!("Probe terminated redirects, Response body: {body}"),
        ),
        code => Outcome::failure(format!("HTTP probe failed with statuscode: {code}")),
    }
}

/// The error and its causes on one line, as Go prints a wrapped error.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
#[path = "http/tests.rs"]
mod tests;
