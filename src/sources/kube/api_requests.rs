//! The requests systemk sends to the API server, counted for `/metrics`
//! (`systemk_api_requests_total{verb, resource, code}`): a tower layer under the
//! `kube::Client`, so every call counts (watches, leases, status patches, events,
//! certificate requests). `verb` and `resource` are the API server's names for the request
//! (`list`/`watch`/`get`/`create`/`update`/`patch`/`delete`; `pods`, `pods/status`,
//! `leases`…), `code` the HTTP status, `error` when no response came (the connection
//! failed), `cancelled` when systemk gave up first (its call timeout). API errors are the
//! series whose code is not 2xx. Layer 5.

use std::task::{Context, Poll};

use futures::future::BoxFuture;
use http::{Method, Request, Response, Uri};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use tower::{Layer, Service};

/// One series.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RequestLabels {
    /// The API verb: `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`,
    /// `deletecollection`, or the lower-case HTTP method of anything else.
    pub verb: &'static str,
    /// The resource with its subresource (`pods/status`); for a path outside the API
    /// groups, its first segment (`version`).
    pub resource: String,
    /// The HTTP status code, `error` or `cancelled`.
    pub code: String,
}

/// The counts, and the layer that keeps them; clones share the counts.
#[derive(Debug, Clone, Default)]
pub struct ApiRequests(Family<RequestLabels, Counter>);

impl ApiRequests {
    /// The family to register.
    pub fn family(&self) -> Family<RequestLabels, Counter> {
        self.0.clone()
    }

    fn count(&self, verb: &'static str, resource: String, code: &str) {
        self.0
            .get_or_create(&RequestLabels {
                verb,
                resource,
                code: code.to_owned(),
            })
            .inc();
    }
}

impl<S> Layer<S> for ApiRequests {
    type Service = Counted<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Counted {
            inner,
            requests: self.clone(),
        }
    }
}

/// A service whose requests are counted in [`ApiRequests`].
#[derive(Debug, Clone)]
pub struct Counted<S> {
    inner: S,
    requests: ApiRequests,
}

impl<S, B, R> Service<Request<B>> for Counted<S>
where
    S: Service<Request<B>, Response = Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let (verb, resource) = classify(request.method(), request.uri());
        let mut pending = Pending {
            requests: self.requests.clone(),
            verb,
            resource: Some(resource),
        };
        let response = self.inner.call(request);
        Box::pin(async move {
            let result = response.await;
            match &result {
                Ok(response) => pending.finish(response.status().as_str()),
                Err(_) => pending.finish("error"),
            }
            result
        })
    }
}

/// A request without its answer yet: counted as `cancelled` if dropped so.
struct Pending {
    requests: ApiRequests,
    verb: &'static str,
    resource: Option<String>,
}

impl Pending {
    fn finish(&mut self, code: &str) {
        if let Some(resource) = self.resource.take() {
            self.requests.count(self.verb, resource, code);
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.finish("cancelled");
    }
}

/// The API server's verb and resource for a request, from its method and path
/// (`/api/v1/namespaces/{ns}/pods/{name}/status`, `/apis/{group}/{version}/leases`…).
fn classify(method: &Method, uri: &Uri) -> (&'static str, String) {
    let segments: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();
    let in_group = match segments.first() {
        Some(&"api") => segments.get(2..),
        Some(&"apis") => segments.get(3..),
        _ => None,
    };
    let Some(rest) = in_group.filter(|rest| !rest.is_empty()) else {
        let first = segments.first().copied().unwrap_or("");
        return (other_verb(method), first.to_owned());
    };
    let (resource, name, subresource) = match rest {
        ["namespaces", _, resource, tail @ ..] => (*resource, tail.first(), tail.get(1)),
        [resource, tail @ ..] => (*resource, tail.first(), tail.get(1)),
        [] => ("", None, None),
    };
    let resource = match subresource {
        Some(sub) => format!("{resource}/{sub}"),
        None => resource.to_owned(),
    };
    let named = name.is_some();
    let verb = match *method {
        Method::GET if watches(uri) => "watch",
        Method::GET if named => "get",
        Method::GET => "list",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if named => "delete",
        Method::DELETE => "deletecollection",
        _ => other_verb(method),
    };
    (verb, resource)
}

/// A `watch=true` (or `1`) query.
fn watches(uri: &Uri) -> bool {
    uri.query().is_some_and(|query| {
        query
            .split('&')
            .any(|pair| pair == "watch=true" || pair == "watch=1")
    })
}

fn other_verb(method: &Method) -> &'static str {
    match *method {
        Method::GET => "get",
        Method::POST => "post",
        Method::PUT => "put",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use prometheus_client::encoding::prometheus_text::encode;
    use prometheus_client::registry::Registry;
    use tower::ServiceExt as _;

    use super::*;

    fn classified(method: Method, path: &str) -> (&'static str, String) {
        classify(&method, &path.parse().expect("uri"))
    }

    #[test]
    fn verbs_and_resources_are_the_api_servers() {
        let cases = [
            (
                Method::GET,
                "/api/v1/pods?fieldSelector=spec.nodeName%3Dn",
                "list",
                "pods",
            ),
            (
                Method::GET,
                "/api/v1/pods?watch=true&resourceVersion=5",
                "watch",
                "pods",
            ),
            (Method::GET, "/api/v1/nodes/n", "get", "nodes"),
            (
                Method::PATCH,
                "/api/v1/nodes/n/status",
                "patch",
                "nodes/status",
            ),
            (
                Method::PATCH,
                "/api/v1/namespaces/d/pods/p/status",
                "patch",
                "pods/status",
            ),
            (Method::POST, "/api/v1/namespaces/d/pods", "create", "pods"),
            (
                Method::DELETE,
                "/api/v1/namespaces/d/pods/p",
                "delete",
                "pods",
            ),
            (
                Method::POST,
                "/apis/events.k8s.io/v1/namespaces/d/events",
                "create",
                "events",
            ),
            (
                Method::PUT,
                "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n",
                "update",
                "leases",
            ),
            (
                Method::POST,
                "/apis/certificates.k8s.io/v1/certificatesigningrequests",
                "create",
                "certificatesigningrequests",
            ),
            (Method::GET, "/api/v1/namespaces/d", "get", "namespaces"),
            (Method::GET, "/version", "get", "version"),
        ];
        for (method, path, verb, resource) in cases {
            assert_eq!(
                classified(method, path),
                (verb, resource.to_owned()),
                "{path}"
            );
        }
    }

    fn exposition(requests: &ApiRequests) -> String {
        let mut registry = Registry::default();
        registry.register("systemk_api_requests", "h", requests.family());
        let mut text = String::new();
        encode(&mut text, &registry).expect("encodes");
        text
    }

    #[tokio::test]
    async fn answers_failures_and_cancelled_calls_are_counted() {
        let requests = ApiRequests::default();
        let answering = tower::service_fn(|_request: Request<()>| async {
            Ok::<_, Infallible>(Response::builder().status(404).body(()).expect("response"))
        });
        let request = || Request::get("/api/v1/nodes/n").body(()).expect("request");
        requests
            .layer(answering)
            .oneshot(request())
            .await
            .expect("answered");
        let failing = tower::service_fn(|_request: Request<()>| async {
            Err::<Response<()>, _>(std::io::Error::other("refused"))
        });
        let failed = requests.layer(failing).oneshot(request()).await;
        assert!(failed.is_err());
        let hanging = tower::service_fn(|_request: Request<()>| {
            std::future::pending::<Result<Response<()>, Infallible>>()
        });
        let timed_out = tokio::time::timeout(
            std::time::Duration::from_millis(10),
            requests.layer(hanging).oneshot(request()),
        )
        .await;
        assert!(timed_out.is_err());
        let text = exposition(&requests);
        for code in ["404", "error", "cancelled"] {
            let series = format!(
                "systemk_api_requests_total{{verb=\"get\",resource=\"nodes\",code=\"{code}\"}} 1"
            );
            assert!(text.contains(&series), "{series} in {text}");
        }
    }
}
