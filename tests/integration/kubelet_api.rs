//! The kubelet API end to end: the real `systemk` binary runs a static pod in the sandbox
//! with `--client-ca-file` (a test CA made here) and the self-signed serving certificate
//! it makes in its state directory; reqwest with client certificates reads the pod's logs
//! from the journal, the pod list and the health check, and callers without a certificate,
//! with one from another CA or asking for a pod that does not run are turned away. As a
//! node of the test API server, the real `kubectl logs` reaches the agent through the API
//! server (client CA read from `extension-apiserver-authentication`), and other users are
//! allowed or refused by SubjectAccessReview.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::jiff::Timestamp;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use reqwest::StatusCode;
use serde_json::json;

use crate::cluster::harness::{Cluster, pod_manifest};
use crate::static_pods::machine::{Machine, NODE};
use crate::support::{TestContext, free_port, wait_for};

/// How soon the pod runs and the server answers.
const START: Duration = Duration::from_secs(10);

/// How soon a removed pod is gone and its successor runs (a grace period first).
const SLOW: Duration = Duration::from_secs(40);

/// A certificate authority for client certificates.
pub(crate) struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    pub(crate) pem: String,
}

impl TestCa {
    pub(crate) fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Self {
            issuer: Issuer::new(params, key),
            pem: cert.pem(),
        }
    }

    /// A client certificate and its key as reqwest's identity.
    pub(crate) fn client(&self, cn: &str, group: &str) -> reqwest::Identity {
        reqwest::Identity::from_pem(self.client_pem(cn, group).as_bytes()).unwrap()
    }

    /// A client certificate and its key, in one PEM, for user `cn` in group `group`.
    pub(crate) fn client_pem(&self, cn: &str, group: &str) -> String {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params
            .distinguished_name
            .push(DnType::OrganizationName, group);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        format!("{}{}", cert.pem(), key.serialize_pem())
    }
}

/// The test's view of one agent's kubelet API.
pub(crate) struct Kubelet {
    pub(crate) port: u16,
    pub(crate) server_cert: reqwest::Certificate,
    /// A name in the server's certificate.
    pub(crate) host: String,
}

impl Kubelet {
    /// A client trusting only the agent's self-signed certificate, reaching it by the
    /// node's name (one of the certificate's names) on loopback.
    pub(crate) fn client(&self, identity: Option<reqwest::Identity>) -> reqwest::Client {
        let mut builder = reqwest::Client::builder()
            .tls_certs_only([self.server_cert.clone()])
            .resolve(&self.host, SocketAddr::from(([127, 0, 0, 1], self.port)))
            .timeout(Duration::from_secs(20));
        if let Some(identity) = identity {
            builder = builder.identity(identity);
        }
        builder.build().unwrap()
    }

    fn url(&self, path: &str) -> String {
        format!("https://{}:{}{path}", self.host, self.port)
    }

    pub(crate) async fn get(&self, client: &reqwest::Client, path: &str) -> (StatusCode, String) {
        let response = client.get(self.url(path)).send().await.unwrap();
        let status = response.status();
        (status, response.text().await.unwrap())
    }
}

/// Starts the agent with the kubelet API on a free loopback port, trusting `ca`, and
/// waits until the API answers.
async fn start(
    machine: &Machine,
    ca: &TestCa,
    identity: reqwest::Identity,
) -> (crate::static_pods::machine::Agent, Kubelet) {
    // Not in the hostPath directory: systemk refuses a hostPath that holds its keys.
    let ca_file = machine.state_dir().with_file_name("client-ca.pem");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let port = free_port().to_string();
    let agent = machine.start_agent_with(&[
        "--kubelet-port",
        &port,
        "--address",
        "127.0.0.1",
        "--client-ca-file",
        ca_file.to_str().unwrap(),
    ]);
    let cert_path = machine.state_dir().join("pki/kubelet.crt");
    let pem = wait_for(START, "the serving certificate", || async {
        std::fs::read(&cert_path).ok()
    })
    .await;
    let kubelet = Kubelet {
        port: port.parse().unwrap(),
        server_cert: reqwest::Certificate::from_pem(&pem).unwrap(),
        host: NODE.to_owned(),
    };
    let client = kubelet.client(Some(identity));
    wait_for(START, "the kubelet API to answer", || async {
        let response = client.get(kubelet.url("/healthz")).send().await.ok()?;
        (response.status() == StatusCode::OK).then_some(())
    })
    .await;
    (agent, kubelet)
}

fn talker(go: &Path) -> String {
    let dir = go.parent().unwrap().to_str().unwrap();
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: talker
  namespace: {{ns}}
spec:
  volumes:
    - name: signal
      hostPath:
        path: {dir}
        type: Directory
  containers:
    - name: app
      image: /bin/sh
      args:
        - -c
        - "echo one; echo two; while [ ! -e {go} ]; do sleep 0.1; done; echo three; exec sleep infinity"
      volumeMounts:
        - name: signal
          mountPath: {dir}
"#,
        go = go.display()
    )
}

#[tokio::test]
async fn kubectl_logs_reads_the_containers_journal_with_a_client_certificate() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let context = TestContext::new("kubelet_api_logs");
    let machine = Machine::new(&context).await;
    let go = machine.host_dir().join("go");
    machine.write_manifest("talker.yaml", &talker(&go));
    let ca = TestCa::new("test client CA");
    let (agent, kubelet) = start(&machine, &ca, ca.client("admin", "system:masters")).await;
    let client = kubelet.client(Some(ca.client("admin", "system:masters")));
    machine
        .wait_running(START, &machine.unit("talker", "app"))
        .await;
    let pod = Machine::pod_name("talker");
    let logs = format!("/containerLogs/{}/{pod}/app", context.namespace());

    let body = wait_for(START, "both lines in the journal", || async {
        let (status, body) = kubelet.get(&client, &logs).await;
        (status == StatusCode::OK && body == "one\ntwo\n").then_some(body)
    })
    .await;
    assert_eq!(body, "one\ntwo\n");
    assert_eq!(
        kubelet.get(&client, &format!("{logs}?tailLines=1")).await,
        (StatusCode::OK, "two\n".to_owned())
    );
    assert_eq!(
        kubelet.get(&client, &format!("{logs}?limitBytes=5")).await,
        (StatusCode::OK, "one\nt".to_owned())
    );
    let (status, stamped) = kubelet
        .get(&client, &format!("{logs}?timestamps=true"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let lines: Vec<&str> = stamped.lines().collect();
    assert_eq!(lines.len(), 2, "{stamped:?}");
    for (line, text) in lines.iter().zip(["one", "two"]) {
        let (time, rest) = line.split_once(' ').unwrap();
        assert_eq!(rest, text);
        assert!(time.ends_with('Z') && time.len() == 30, "{time:?}");
        time.parse::<Timestamp>().unwrap();
    }
    // It never ended: there is no previous run, and the kubelet's words say so.
    let (status, refused) = kubelet.get(&client, &format!("{logs}?previous=true")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(
        refused.contains("previous terminated container") && refused.contains("not found"),
        "{refused}"
    );

    // Following: the line printed after the request starts arrives on the open stream.
    let response = client
        .get(kubelet.url(&format!("{logs}?follow=true")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut stream = response.bytes_stream();
    let mut seen = Vec::new();
    std::fs::write(&go, "").unwrap();
    tokio::time::timeout(START, async {
        while !seen.ends_with(b"three\n") {
            let chunk = stream.next().await.expect("the stream ended").unwrap();
            seen.extend_from_slice(&chunk);
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "no third line within {START:?}: {:?}",
            String::from_utf8_lossy(&seen)
        )
    });
    assert_eq!(seen, b"one\ntwo\nthree\n");
    drop(stream);
    // The client went away: its journalctl goes too.
    let unit = machine.unit("talker", "app");
    wait_for(START, "the following journalctl to end", || async {
        (!journalctl_runs_for(unit.as_str())).then_some(())
    })
    .await;

    let (status, list) = kubelet.get(&client, "/pods").await;
    assert_eq!(status, StatusCode::OK);
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list["kind"], "PodList");
    let found = list["items"].as_array().unwrap().iter().any(|item| {
        item["metadata"]["name"] == pod.as_str()
            && item["metadata"]["namespace"] == context.namespace()
            && item["status"]["phase"] == "Running"
    });
    assert!(found, "{list:#}");

    let (status, body) = kubelet
        .get(
            &client,
            &format!("/containerLogs/{}/nobody/app", context.namespace()),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = kubelet
        .get(
            &client,
            &format!("/containerLogs/{}/{pod}/Bad_Name", context.namespace()),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // A new pod of the same name (another manifest file, so another UID) shows only its
    // own lines, never the earlier pod's.
    let first_uid = machine.pod("talker").unwrap().1.metadata.uid.unwrap();
    machine.remove_manifest("talker.yaml");
    // Only once the first pod is gone: replacing a pod by one of the same name in one step
    // races in the reconciler (the old pod's clean-up removes the new pod's unit).
    wait_for(SLOW, "the first pod to be gone", || async {
        machine.is_gone(&unit).await.then_some(())
    })
    .await;
    machine.write_manifest("talker-again.yaml", &talker_again());
    wait_for(SLOW, "the new pod's log", || async {
        let (status, body) = kubelet.get(&client, &logs).await;
        let uid = machine.pod("talker")?.1.metadata.uid?;
        (status == StatusCode::OK && uid != first_uid && body == "again\n").then_some(())
    })
    .await;

    agent.terminate().await;
    machine.clean_up().await;
}

/// Whether a `journalctl` process reads the log of `unit`.
fn journalctl_runs_for(unit: &str) -> bool {
    let wanted = format!("_SYSTEMD_UNIT={unit}");
    std::fs::read_dir("/proc").unwrap().flatten().any(|entry| {
        std::fs::read(entry.path().join("cmdline")).is_ok_and(|cmdline| {
            cmdline
                .split(|b| *b == 0)
                .any(|arg| arg == wanted.as_bytes())
        })
    })
}

/// A pod whose first run says so and fails; its second says so and stays.
fn twice(dir: &Path) -> String {
    let ran = dir.join("ran");
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: twice
  namespace: {{ns}}
spec:
  volumes:
    - name: marks
      hostPath:
        path: {dir}
        type: Directory
  containers:
    - name: app
      image: /bin/sh
      args:
        - -c
        - "if [ -e {ran} ]; then echo second run; exec sleep infinity; fi; touch {ran}; echo first run; exit 1"
      volumeMounts:
        - name: marks
          mountPath: {dir}
"#,
        dir = dir.display(),
        ran = ran.display()
    )
}

#[tokio::test]
async fn kubelet_api_logs_previous_shows_the_run_before_even_after_a_restart_of_systemk() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let context = TestContext::new("kubelet_api_previous");
    let machine = Machine::new(&context).await;
    machine.write_manifest("twice.yaml", &twice(&machine.host_dir()));
    let ca = TestCa::new("test client CA");
    let admin = || ca.client("admin", "system:masters");
    let (agent, kubelet) = start(&machine, &ca, admin()).await;
    let client = kubelet.client(Some(admin()));
    let logs = format!(
        "/containerLogs/{}/{}/app",
        context.namespace(),
        Machine::pod_name("twice")
    );
    // The second run starts after the first restart's back-off (10 s).
    wait_for(SLOW, "the second run's line", || async {
        let (status, body) = kubelet.get(&client, &logs).await;
        (status == StatusCode::OK && body.contains("second run")).then_some(())
    })
    .await;
    let previous = format!("{logs}?previous=true");
    let (status, body) = kubelet.get(&client, &previous).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "first run\n"));
    let (_, current) = kubelet
        .get(&client, &format!("{logs}?sinceSeconds=3600"))
        .await;
    assert!(current.contains("second run"), "{current}");

    // A new systemk reads the same run from the container's restart record.
    agent.terminate().await;
    let (agent, kubelet) = start(&machine, &ca, admin()).await;
    let client = kubelet.client(Some(admin()));
    let (status, body) = kubelet.get(&client, &previous).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "first run\n"));
    agent.terminate().await;
    machine.clean_up().await;
}

/// The pod `talker` again, with other output.
fn talker_again() -> String {
    "apiVersion: v1\nkind: Pod\nmetadata:\n  name: talker\n  namespace: {ns}\nspec:\n  \
     containers:\n    - name: app\n      image: /bin/sh\n      args: [\"-c\", \"echo again; exec sleep infinity\"]\n"
        .to_owned()
}

#[tokio::test]
async fn callers_without_a_certificate_of_the_client_ca_are_refused() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let context = TestContext::new("kubelet_api_refused");
    let machine = Machine::new(&context).await;
    let ca = TestCa::new("test client CA");
    let (agent, kubelet) = start(&machine, &ca, ca.client("admin", "system:masters")).await;

    let anonymous = kubelet.client(None);
    for path in ["/healthz", "/pods", "/containerLogs/default/x/y"] {
        let (status, body) = kubelet.get(&anonymous, path).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}: {body}");
    }
    let stranger = TestCa::new("some other CA");
    let outsider = kubelet.client(Some(stranger.client("admin", "system:masters")));
    let refused = outsider.get(kubelet.url("/healthz")).send().await;
    assert!(
        refused.is_err(),
        "a certificate of another CA was accepted: {refused:?}"
    );

    let known = kubelet.client(Some(ca.client("admin", "system:masters")));
    assert_eq!(
        kubelet.get(&known, "/healthz").await,
        (StatusCode::OK, "ok".to_owned())
    );
    assert_eq!(
        kubelet.get(&known, "/nothing").await.0,
        StatusCode::NOT_FOUND
    );
    agent.terminate().await;
    machine.clean_up().await;
}

/// A pod from the API on `node` whose container prints two lines and stays.
fn api_talker(namespace: &str, node: &str) -> String {
    let spec = json!({
        "automountServiceAccountToken": false,
        "terminationGracePeriodSeconds": 2,
        "containers": [{
            "name": "app",
            "image": "/bin/sh",
            "args": ["-c", "echo one; echo two; exec sleep infinity"],
        }],
    });
    pod_manifest("talker", namespace, node, spec).to_string()
}

#[tokio::test]
async fn kubectl_logs_goes_through_the_api_server_with_its_client_ca_and_reviews() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let Some(mut cluster) = Cluster::new("kubelet_api_kubectl_logs").await else {
        return;
    };
    cluster.start_agent().await;
    let (namespace, node) = (cluster.namespace().to_owned(), cluster.node().to_owned());
    cluster.apply(&api_talker(&namespace, &node)).await;
    cluster
        .wait_for_pod("talker", "Running", |pod| {
            pod["status"]["phase"] == "Running"
        })
        .await;

    // The real kubectl → the API server (its kubelet client certificate, O=system:masters,
    // signed by the client CA it publishes) → systemk's kubelet API.
    let logs = cluster
        .wait_until(START, "kubectl logs to show both lines", || async {
            let (ok, stdout, _) = cluster
                .try_kubectl(&["logs", "talker", "-n", &namespace])
                .await;
            (ok && stdout == "one\ntwo\n").then_some(stdout)
        })
        .await;
    assert_eq!(logs, "one\ntwo\n");
    assert_eq!(
        cluster
            .kubectl(&["logs", "talker", "-n", &namespace, "--tail=1"])
            .await,
        "two\n"
    );
    // `kubectl logs --previous` of a container that never ended: the kubelet's error.
    let (ok, _, stderr) = cluster
        .try_kubectl(&["logs", "talker", "-n", &namespace, "--previous"])
        .await;
    assert!(
        !ok && stderr.contains("previous terminated container"),
        "{stderr}"
    );

    // Users of the cluster's client CA are asked about with a SubjectAccessReview.
    let pem = std::fs::read(cluster.state_dir().join("pki/kubelet.crt")).unwrap();
    let kubelet = Kubelet {
        port: cluster.kubelet_port(),
        server_cert: reqwest::Certificate::from_pem(&pem).unwrap(),
        host: node.clone(),
    };
    let user = |name: &str| {
        let (cert, key) = cluster.server.issue_client_cert(name, &["dev"]);
        kubelet.client(Some(
            reqwest::Identity::from_pem(format!("{cert}{key}").as_bytes()).unwrap(),
        ))
    };
    cluster.server.grant("alice", "get", "nodes", "proxy");
    let path = format!("/containerLogs/{namespace}/talker/app");
    assert_eq!(
        kubelet.get(&user("alice"), &path).await,
        (StatusCode::OK, "one\ntwo\n".to_owned())
    );
    let (status, body) = kubelet.get(&user("bob"), &path).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body.contains("user=bob, verb=get, resource=nodes, subresource=proxy"),
        "{body}"
    );
    cluster.teardown().await;
}
