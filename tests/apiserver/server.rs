//! The HTTP side: binds a loopback listener, routes every request through one dispatcher
//! (discovery, OpenAPI, health, then resource paths by method), and renders results and
//! `Status` errors as JSON. Holds no API semantics itself.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::pki::{ClientCa, KUBELET_CLIENT_USER, MASTERS_GROUP, kubelet_client};
use super::request::{ResourceRequest, parse_resource_path};
use super::status::{ApiError, ApiResult};
use super::store::Store;
use super::{
    Api, access, authn, authorization, csr, delete, discovery, handlers, list, node_proxy, objects,
    openapi, pod_exec, pod_logs, pod_portforward, protobuf, resources, tables, token, token_review,
    watch,
};

/// Settings of a test API server.
#[derive(Debug, Clone)]
pub struct Config {
    /// How many changes the store keeps for watches to resume from; older versions get 410.
    pub history_limit: usize,
    /// How often a watch with `allowWatchBookmarks` gets a BOOKMARK (real server: about 1 min).
    pub bookmark_interval: Duration,
    /// HS256 key for service account tokens.
    pub token_key: String,
    /// `kid` in the token header.
    pub token_key_id: String,
    /// PEM of the cluster CA published in every namespace's `kube-root-ca.crt`. The server
    /// speaks plain HTTP, so nothing chains to it; it is a real, freshly generated CA.
    pub root_ca_pem: String,
    /// Longest token lifetime issued, in seconds: longer requests get this, as with
    /// kube-apiserver's `--service-account-max-token-expiration` (which takes no less than
    /// an hour there; here it may be seconds, so a test sees a token renewed).
    pub max_token_seconds: Option<i64>,
    /// Node address types tried in order to reach a kubelet, as kube-apiserver's
    /// `--kubelet-preferred-address-types`; the default is k3s' (`InternalIP,ExternalIP,Hostname`).
    pub kubelet_preferred_address_types: Vec<String>,
    /// Lists and watches ignore `fieldSelector` (after validating it), as some third-party
    /// control planes do: a client must check what it is sent.
    pub ignore_field_selectors: bool,
    /// Serve HTTPS with a certificate from the cluster CA and authenticate every request
    /// (client certificate, bootstrap token, service account token; 401 otherwise).
    pub https: bool,
    /// How long certificates the CSR signer issues live at most
    /// (kube-controller-manager's `--cluster-signing-duration`, default a year).
    pub cluster_signing_duration: Duration,
    /// Approve kubelet client CSRs as kube-controller-manager's csrapproving controller does,
    /// and grant what kubeadm binds for it: `create certificatesigningrequests/nodeclient`
    /// to `system:bootstrappers:kubeadm:default-node-token` and `…/selfnodeclient` to
    /// `system:nodes`.
    pub auto_approve_node_client_csrs: bool,
    /// The `pods/log` proxy verifies the kubelet's serving certificate against the cluster
    /// CA and the address it dials (`--kubelet-certificate-authority`).
    pub verify_kubelet_serving_certs: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            history_limit: 10_000,
            bookmark_interval: Duration::from_secs(5),
            token_key: objects::new_uid(),
            token_key_id: objects::new_uid(),
            root_ca_pem: generate_root_ca(),
            max_token_seconds: None,
            kubelet_preferred_address_types: ["InternalIP", "ExternalIP", "Hostname"]
                .map(String::from)
                .to_vec(),
            ignore_field_selectors: false,
            https: false,
            cluster_signing_duration: Duration::from_secs(365 * 24 * 3600),
            auto_approve_node_client_csrs: false,
            verify_kubelet_serving_certs: false,
        }
    }
}

/// A self-signed CA certificate, as a cluster's root CA is.
fn generate_root_ca() -> String {
    let key = rcgen::KeyPair::generate().expect("generate a CA key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "kubernetes");
    params.self_signed(&key).expect("self-sign the CA").pem()
}

/// A running server; dropping it stops it.
pub struct TestApiServer {
    pub(super) api: Arc<Api>,
    /// The serving task; `None` while stopped.
    task: Option<JoinHandle<()>>,
}

impl Drop for TestApiServer {
    fn drop(&mut self) {
        self.api.stopped.send_replace(true);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Serves `api` on `listener` until `api.stopped` turns true; then every connection is
/// closed (watches end themselves on the same signal).
fn serve(api: Arc<Api>, listener: TcpListener) -> JoinHandle<()> {
    let mut stopped = api.stopped.subscribe();
    let https = api.config.https;
    let app = Router::new().fallback(dispatch).with_state(api.clone());
    if https {
        return super::https::serve(&api, listener, app);
    }
    tokio::spawn(async move {
        let shutdown = async move {
            // An error means the handle is gone, which is a stop too.
            let _ = stopped.wait_for(|stopped| *stopped).await;
        };
        // Serving errors end the task; tests see them as refused connections.
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await;
    })
}

/// Namespaces every cluster starts with.
const INITIAL_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

impl TestApiServer {
    /// Starts a server with default settings; returns the handle and `http://127.0.0.1:<port>`.
    pub async fn start() -> (TestApiServer, String) {
        Self::start_with(Config::default()).await
    }

    /// Starts a server with `config`.
    pub async fn start_with(mut config: Config) -> (TestApiServer, String) {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let address = listener.local_addr().expect("listener address").to_string();
        let client_ca = ClientCa::generate();
        let (cert_pem, key_pem) = client_ca.issue(KUBELET_CLIENT_USER, &[MASTERS_GROUP]);
        if config.https {
            // kubeadm: one cluster CA, which is also what pods find in kube-root-ca.crt.
            config.root_ca_pem = client_ca.pem.clone();
        }
        let verify_with = config
            .verify_kubelet_serving_certs
            .then_some(client_ca.pem.as_str());
        let api = Arc::new(Api {
            store: Store::new(config.history_limit),
            kubelet_client: kubelet_client(&format!("{cert_pem}{key_pem}"), verify_with),
            client_verifier: super::https::client_verifier(&client_ca.pem),
            config,
            client_ca,
            grants: authorization::Grants::default(),
            audit: super::audit::Audit::default(),
            token_reviews: std::sync::atomic::AtomicUsize::new(0),
            address: address.clone(),
            stopped: tokio::sync::watch::Sender::new(false),
        });
        for namespace in INITIAL_NAMESPACES {
            let request = internal_request(resources::core("namespaces"));
            handlers::create(&api, &request, json!({"metadata": {"name": namespace}}))
                .expect("create initial namespace");
        }
        publish_client_ca(&api);
        if api.config.auto_approve_node_client_csrs {
            let csrs = "certificatesigningrequests";
            let bootstrappers = "system:bootstrappers:kubeadm:default-node-token";
            api.grants
                .add_group(bootstrappers, "create", csrs, "nodeclient");
            api.grants
                .add_group("system:nodes", "create", csrs, "selfnodeclient");
        }
        let scheme = if api.config.https { "https" } else { "http" };
        let task = Some(serve(api.clone(), listener));
        (TestApiServer { api, task }, format!("{scheme}://{address}"))
    }

    /// Stops serving, as an API server outage: the port refuses connections and open
    /// connections and watches are closed. The objects are kept for `resume`.
    pub async fn stop(&mut self) {
        self.api.stopped.send_replace(true);
        if let Some(task) = self.task.take() {
            // In-flight requests are short; a stuck connection must not hang the test.
            let drained = tokio::time::timeout(Duration::from_secs(5), task).await;
            assert!(
                drained.is_ok(),
                "server connections did not close within 5 s"
            );
        }
    }

    /// Serves the kept objects again on the same address after `stop`.
    pub async fn resume(&mut self) {
        if self.task.is_some() {
            return;
        }
        let listener = TcpListener::bind(&self.api.address)
            .await
            .expect("rebind the server address");
        self.api.stopped.send_replace(false);
        self.task = Some(serve(self.api.clone(), listener));
    }

    /// The base URL.
    pub fn url(&self) -> String {
        let scheme = if self.api.config.https {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.api.address)
    }

    /// How many watch streams are open right now.
    pub fn active_watches(&self) -> usize {
        self.api.store.lock().watchers()
    }

    /// Waits until at least `count` watches are open (a client has started watching).
    pub async fn wait_for_watches(&self, count: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while self.active_watches() < count {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no {count} watches opened within 10 s"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// PEM of the cluster's client CA, the one published in
    /// `kube-system/extension-apiserver-authentication` (`client-ca-file`).
    pub fn client_ca_pem(&self) -> String {
        self.api.client_ca.pem.clone()
    }

    /// A client certificate signed by the client CA for user `cn` in `groups` (at most two),
    /// as `(cert_pem, key_pem)`: present it to a kubelet to act as that user.
    pub fn issue_client_cert(&self, cn: &str, groups: &[&str]) -> (String, String) {
        self.api.client_ca.issue(cn, groups)
    }

    /// Lets `user` do `verb` on `resource`/`subresource` (`""` for none; `*` matches any verb
    /// or resource) in SubjectAccessReviews, as an RBAC binding would.
    pub fn grant(&self, user: &str, verb: &str, resource: &str, subresource: &str) {
        self.api.grants.add(user, verb, resource, subresource);
    }

    /// A token for service account `namespace/account` (created before) with `audiences`
    /// (the server's own when empty), expiring in `lifetime` seconds (negative: expired).
    pub fn issue_token(
        &self,
        namespace: &str,
        account: &str,
        audiences: &[&str],
        lifetime: i64,
    ) -> Option<String> {
        token_review::issue(&self.api, namespace, account, audiences, lifetime)
    }

    /// How many TokenReviews were posted so far.
    pub fn token_reviews(&self) -> usize {
        self.api
            .token_reviews
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Writes a kubeconfig for this server into `dir` and returns its path: no auth in
    /// plain-HTTP mode; in HTTPS mode the cluster CA and an admin client certificate
    /// (`kubernetes-admin`, `system:masters`), as kubeadm's admin.conf.
    pub fn write_kubeconfig(&self, dir: &Path) -> PathBuf {
        if self.api.config.https {
            return super::https::write_admin_kubeconfig(&self.api, dir);
        }
        let path = dir.join("kubeconfig");
        let config = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {}\ncontexts:\n- name: test\n  context:\n    cluster: test\n    user: test\n    namespace: default\nusers:\n- name: test\n  user: {{}}\ncurrent-context: test\n",
            self.url()
        );
        std::fs::write(&path, config).expect("write kubeconfig");
        path
    }
}

/// Publishes the client CA as kube-apiserver does, for kubelets and aggregated servers to
/// authenticate callers with: `kube-system/extension-apiserver-authentication`.
fn publish_client_ca(api: &Api) {
    let mut request = internal_request(resources::core("configmaps"));
    request.namespace = Some("kube-system".to_string());
    let config_map = json!({
        "metadata": {"name": "extension-apiserver-authentication", "namespace": "kube-system"},
        "data": {"client-ca-file": api.client_ca.pem},
    });
    handlers::create(api, &request, config_map).expect("publish the client CA");
}

/// Creates `object` as the server itself (a controller, kubeadm): no authentication.
pub(super) fn create_internal(
    api: &Api,
    resource: &'static resources::Resource,
    namespace: &str,
    object: Value,
) -> Value {
    let mut request = internal_request(resource);
    request.namespace = (!namespace.is_empty()).then(|| namespace.to_owned());
    handlers::create(api, &request, object)
        .expect("create an object as the server")
        .1
}

fn internal_request(resource: &'static resources::Resource) -> ResourceRequest {
    ResourceRequest {
        resource,
        namespace: None,
        name: None,
        subresource: None,
        query: Default::default(),
    }
}

fn json_response(code: StatusCode, value: &Value) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_default();
    (code, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn error_response(error: &ApiError) -> Response {
    json_response(error.code, &error.to_status())
}

/// The most a request body may hold (axum's `Bytes` default).
const MAX_BODY: usize = 2 << 20;

async fn dispatch(State(api): State<Arc<Api>>, request: axum::extract::Request) -> Response {
    let (mut parts, body) = request.into_parts();
    // Taken before the body is read: `pods/exec` passes the connection on to the kubelet.
    let upgrade = parts.extensions.remove::<hyper::upgrade::OnUpgrade>();
    let tls = parts
        .extensions
        .get::<Arc<axum_server::tls::TlsInfo>>()
        .cloned();
    let (method, uri, headers) = (parts.method, parts.uri, parts.headers);
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(body) => body,
        Err(err) => {
            let error = ApiError::bad_request(format!("error reading the request body: {err}"));
            return error_response(&error);
        }
    };
    let path = uri.path();
    let public = matches!(
        path,
        "/version" | "/version/" | "/healthz" | "/readyz" | "/livez"
    );
    let user = if api.config.https && !public {
        let certs = tls.as_ref().map(|tls| tls.peer_certificates.as_slice());
        match authn::authenticate(&api, certs.unwrap_or_default(), &headers) {
            Ok(user) => {
                super::audit::request(&api, &user, method.as_str(), path, uri.query());
                Some(user)
            }
            Err(error) => return error_response(&error),
        }
    } else {
        None
    };
    let result = match (path, &method) {
        ("/version" | "/version/", &Method::GET) => {
            Ok(json_response(StatusCode::OK, &discovery::version()))
        }
        ("/healthz" | "/readyz" | "/livez", &Method::GET) => {
            Ok((StatusCode::OK, "ok").into_response())
        }
        ("/api" | "/api/", &Method::GET) => Ok(json_response(
            StatusCode::OK,
            &discovery::core_versions(&api.address),
        )),
        ("/apis" | "/apis/", &Method::GET) => {
            Ok(json_response(StatusCode::OK, &discovery::groups()))
        }
        ("/openapi/v3" | "/openapi/v3/", &Method::GET) => {
            Ok(json_response(StatusCode::OK, &openapi::index()))
        }
        _ => {
            let http = (&method, &uri, &headers, &body);
            route(&api, user.as_ref(), http, upgrade).await
        }
    };
    result.unwrap_or_else(|error| error_response(&error))
}

async fn route(
    api: &Arc<Api>,
    user: Option<&authn::User>,
    (method, uri, headers, body): (&Method, &Uri, &HeaderMap, &Bytes),
    upgrade: Option<hyper::upgrade::OnUpgrade>,
) -> ApiResult<Response> {
    let path = uri.path().trim_end_matches('/');
    if method == Method::GET {
        if let Some(document) = path.strip_prefix("/openapi/v3/") {
            return openapi::group_version_document(document)
                .map(|doc| json_response(StatusCode::OK, &doc))
                .ok_or_else(ApiError::no_route);
        }
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let document = match segments.as_slice() {
            ["api", version] => Some(discovery::resource_list("", version)),
            ["apis", group] => Some(discovery::group(group)),
            ["apis", group, version] => Some(discovery::resource_list(group, version)),
            _ => None,
        };
        if let Some(document) = document {
            return document
                .map(|doc| json_response(StatusCode::OK, &doc))
                .ok_or_else(ApiError::no_route);
        }
    }
    if let Some((node, below)) = node_proxy::split(path) {
        return node_proxy::proxy(api, user, method, node, below, uri.query()).await;
    }
    let request = parse_resource_path(path, uri.query()).ok_or_else(ApiError::no_route)??;
    if request.resource.namespaced && request.namespace.is_none() && request.name.is_some() {
        return Err(ApiError::no_route());
    }
    if let Some(user) = user {
        access::authorize_resource(user, method, &request)?;
    }
    match (
        method,
        request.resource.plural,
        request.subresource.as_deref(),
    ) {
        (&Method::GET, "pods", Some("log")) => pod_logs::logs(api, &request).await,
        (&Method::GET | &Method::POST, "pods", Some(sub @ ("exec" | "attach"))) => {
            let connect = pod_exec::Connect {
                method,
                query: uri.query().unwrap_or(""),
                headers,
                upgrade,
            };
            let endpoint = if sub == "exec" { "exec" } else { "attach" };
            pod_exec::connect(api, &request, connect, endpoint).await
        }
        (&Method::GET | &Method::POST, "pods", Some("portforward")) => {
            let connect = pod_exec::Connect {
                method,
                query: uri.query().unwrap_or(""),
                headers,
                upgrade,
            };
            pod_portforward::port_forward(api, &request, connect).await
        }
        (&Method::POST, "certificatesigningrequests", None) => {
            let created = csr::create(api, &request, parse_body(headers, body)?, user)?;
            Ok(json_response(created.0, &created.1))
        }
        (&Method::PUT, "certificatesigningrequests", Some(sub @ ("approval" | "status"))) => {
            let body = parse_body(headers, body)?;
            let updated = csr::update_status(api, &request, body, sub == "approval")?;
            Ok(json_response(StatusCode::OK, &updated))
        }
        _ => resource_verb(api, method, headers, body, &request),
    }
}

/// Decodes a create/update body: JSON, or protobuf for the kinds `protobuf` knows.
fn parse_body(headers: &HeaderMap, body: &Bytes) -> ApiResult<Value> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.starts_with("application/vnd.kubernetes.protobuf") {
        return protobuf::decode(body)
            .map_err(|why| ApiError::unsupported_body(content_type, &why));
    }
    serde_json::from_slice(body)
        .map_err(|err| ApiError::bad_request(format!("error decoding request body: {err}")))
}

fn resource_verb(
    api: &Arc<Api>,
    method: &Method,
    headers: &HeaderMap,
    body: &Bytes,
    req: &ResourceRequest,
) -> ApiResult<Response> {
    let sub = req.subresource.as_deref();
    let as_table = tables::wants_table(headers);
    if req.query.contains_key("dryRun") {
        // Not published in /openapi/v3 either, so kubectl --dry-run=server refuses up front.
        return Err(ApiError::bad_request(
            "dryRun is not supported by the test API server",
        ));
    }
    let parse_body = |body| parse_body(headers, body);
    let ok = |value: Value| json_response(StatusCode::OK, &value);
    let created = |(code, value): (StatusCode, Value)| json_response(code, &value);
    if req.resource.plural == "subjectaccessreviews" {
        return match (method.clone(), req.name.is_some()) {
            (Method::POST, false) => {
                authorization::review(&api.grants, req.resource, parse_body(body)?).map(created)
            }
            _ => Err(ApiError::method_not_allowed()),
        };
    }
    if req.resource.plural == "tokenreviews" {
        return match (method.clone(), req.name.is_some()) {
            (Method::POST, false) => {
                token_review::review(api, req.resource, parse_body(body)?).map(created)
            }
            _ => Err(ApiError::method_not_allowed()),
        };
    }
    match (method.clone(), req.name.is_some(), sub) {
        // Watching one object by its path is the deprecated form; the name filters the stream.
        (Method::GET, _, None) if req.flag("watch") => {
            let stream: Body = watch::watch(api, req, as_table)?;
            Ok(([(header::CONTENT_TYPE, "application/json")], stream).into_response())
        }
        (Method::GET, false, None) if as_table => {
            let list = list::list(api, req)?;
            let items = list["items"].as_array().cloned().unwrap_or_default();
            Ok(ok(tables::table(
                req.resource,
                &items,
                list["metadata"].clone(),
            )))
        }
        (Method::GET, false, None) => list::list(api, req).map(ok),
        (Method::GET, true, None | Some("status" | "approval")) if as_table => {
            let object = handlers::get(api, req)?;
            let metadata = json!({"resourceVersion": object["metadata"]["resourceVersion"]});
            Ok(ok(tables::table(req.resource, &[object], metadata)))
        }
        (Method::GET, true, None | Some("status" | "approval")) => handlers::get(api, req).map(ok),
        (Method::POST, false, None) => handlers::create(api, req, parse_body(body)?).map(created),
        (Method::POST, true, Some("binding")) => {
            handlers::bind(api, req, parse_body(body)?).map(created)
        }
        (Method::POST, true, Some("token")) => {
            token::create_token(api, req, parse_body(body)?).map(created)
        }
        (Method::PUT, true, None | Some("status")) => {
            handlers::update(api, req, parse_body(body)?).map(ok)
        }
        (Method::PATCH, true, None | Some("status")) => {
            let content_type = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            handlers::patch(api, req, content_type, body).map(created)
        }
        (Method::DELETE, true, None) => delete::delete(api, req, body).map(ok),
        (Method::DELETE, false, None) => delete::delete_collection(api, req, body).map(ok),
        _ => Err(ApiError::method_not_allowed()),
    }
}
