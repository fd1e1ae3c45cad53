//! The client CA when `--client-ca-file` is not given: the `client-ca-file` key of the
//! configMap `kube-system/extension-apiserver-authentication`, where kube-apiserver (and
//! k3s) publish the CA its own kubelet client certificate is signed by. Read at start and
//! every few minutes; a change is put into the running TLS configuration. Until it is
//! read nobody authenticates (every request is 401). Layer 6.

use std::time::Duration;

use axum_server::tls_rustls::RustlsConfig;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use rustls::pki_types::CertificateDer;

use std::sync::Arc;

use super::tls::{ServingResolver, parse_ca_bundle, server_config};
use crate::sources::kube::API_CALL_TIMEOUT;

/// Where kube-apiserver publishes its client CA.
const NAMESPACE: &str = "kube-system";
const CONFIG_MAP: &str = "extension-apiserver-authentication";
const KEY: &str = "client-ca-file";

/// How often the CA is read again (it changes when the cluster's CA is rotated).
const REFRESH: Duration = Duration::from_secs(5 * 60);
/// How soon a failed read is retried.
const RETRY: Duration = Duration::from_secs(10);

/// Reads the client CA from the cluster now and then and puts it into `tls`, until
/// `shutdown`.
pub async fn watch(
    client: kube::Client,
    serving: Arc<ServingResolver>,
    tls: RustlsConfig,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let api = Api::<ConfigMap>::namespaced(client, NAMESPACE);
    let mut current: Option<Vec<CertificateDer<'static>>> = None;
    loop {
        let wait = match read(&api).await {
            Ok(cas) => {
                if current.as_ref() != Some(&cas) {
                    match server_config(serving.clone(), Some(&cas)) {
                        Ok(config) => {
                            tls.reload_from_config(config);
                            tracing::info!(
                                certificates = cas.len(),
                                "client CA loaded from {NAMESPACE}/{CONFIG_MAP}"
                            );
                            current = Some(cas);
                        }
                        Err(err) => {
                            tracing::warn!(error = %crate::error_chain::Chain(&err), "cannot use the cluster's client CA")
                        }
                    }
                }
                REFRESH
            }
            Err(message) => {
                tracing::warn!(error = %message, "cannot read the client CA from {NAMESPACE}/{CONFIG_MAP}; the kubelet API answers 401 until it can");
                RETRY
            }
        };
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

async fn read(api: &Api<ConfigMap>) -> Result<Vec<CertificateDer<'static>>, String> {
    let config_map = tokio::time::timeout(API_CALL_TIMEOUT, api.get(CONFIG_MAP))
        .await
        .map_err(|_| format!("no answer within {API_CALL_TIMEOUT:?}"))?
        .map_err(|err| err.to_string())?;
    let pem = config_map
        .data
        .as_ref()
        .and_then(|data| data.get(KEY))
        .ok_or_else(|| format!("it has no {KEY:?} key"))?;
    parse_ca_bundle(pem.as_bytes(), "cluster client CA").map_err(|err| err.to_string())
}
