//! A plain-HTTP client for the test API server's tests: JSON requests with any verb and
//! content type, and watch streams read line by line with a deadline. Test support only.

use std::time::Duration;

use futures::StreamExt;
use reqwest::Method;
use serde_json::Value;

/// How long a test waits for a watch event before failing.
const EVENT_DEADLINE: Duration = Duration::from_secs(5);

/// A plain-HTTP client for one server.
pub struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    /// A client for `base`.
    pub fn new(base: &str) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Self {
            http: reqwest::Client::builder().build().unwrap(),
            base: base.to_string(),
        }
    }

    /// A client for `base` over `http` (HTTPS mode: the cluster CA, a client certificate
    /// or a bearer token configured there).
    pub fn with(http: reqwest::Client, base: &str) -> Self {
        Self {
            http,
            base: base.to_string(),
        }
    }

    /// Sends a request; returns the status code and the JSON body (Null when empty).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request
                .header("content-type", content_type)
                .body(body.to_string());
        }
        let response = request.send().await.unwrap();
        let code = response.status().as_u16();
        let bytes = response.bytes().await.unwrap();
        (code, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// GET.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.send(Method::GET, path, "", None).await
    }

    /// POST a JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send(Method::POST, path, "application/json", Some(body))
            .await
    }

    /// PUT a JSON body.
    pub async fn put(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send(Method::PUT, path, "application/json", Some(body))
            .await
    }

    /// PATCH with the given patch type.
    pub async fn patch(&self, path: &str, content_type: &str, body: &Value) -> (u16, Value) {
        self.send(Method::PATCH, path, content_type, Some(body))
            .await
    }

    /// DELETE with optional DeleteOptions.
    pub async fn delete(&self, path: &str, options: Option<&Value>) -> (u16, Value) {
        self.send(Method::DELETE, path, "application/json", options)
            .await
    }

    /// Opens a watch and returns its event stream.
    pub async fn watch(&self, path: &str) -> Watch {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "watch {path}");
        Watch {
            stream: Box::pin(response.bytes_stream()),
            buffer: Vec::new(),
        }
    }
}

/// Events of one watch.
pub struct Watch {
    stream:
        std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<axum::body::Bytes>> + Send>>,
    buffer: Vec<u8>,
}

impl Watch {
    /// The next event as (type, object), or None when the stream ended.
    pub async fn next(&mut self) -> Option<(String, Value)> {
        tokio::time::timeout(EVENT_DEADLINE, async {
            loop {
                if let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = self.buffer.drain(..=end).collect();
                    let event: Value = serde_json::from_slice(&line).unwrap();
                    return Some((
                        event["type"].as_str().unwrap().to_string(),
                        event["object"].clone(),
                    ));
                }
                match self.stream.next().await {
                    Some(chunk) => self.buffer.extend_from_slice(&chunk.unwrap()),
                    None => return None,
                }
            }
        })
        .await
        .expect("watch event within the deadline")
    }

    /// The next event that is not a BOOKMARK.
    pub async fn next_change(&mut self) -> (String, Value) {
        loop {
            let event = self.next().await.expect("watch still open");
            if event.0 != "BOOKMARK" {
                return event;
            }
        }
    }
}
