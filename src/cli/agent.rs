//! `systemk` with no command: the node agent. Wires the static-pod source (and, with a
//! kubeconfig, the cluster: node, lease, pod watch, status reports) to the reconciler,
//! tells systemd when the first sync is done (`Type=notify`), collects unused packages
//! (`gc`), evicts pods under resource pressure (`pod::eviction::monitor`), and stops on
//! SIGTERM/SIGINT without touching the pods, which live in their own
//! units. Every long-lived task is owned by [`tasks::Tasks`], which stops them in order
//! and notices one that ends early.

mod forward;
mod gc;
mod slice;
mod tasks;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use prometheus_client::registry::Registry;
use sd_notify::NotifyState;
use tokio::sync::{mpsc, watch};

use crate::backoff::{LOCAL_SERVICE, RetryLimit};
use crate::config::{
    AgentArgs, KubeconfigChoice, apparmor_enabled, detect_node_ips, hidden_paths, host_addresses,
    restricted_gids,
};
use crate::package::{Installer, InstallerConfig};
use crate::pod::env::NodeAllocatable;
use crate::pod::{self, Context, ObjectLookup, PodDirs, PodMetrics, ProgressSender};
use crate::server::metrics::{OwnMetrics, PodGauges};
use crate::server::{self, Server, tls};
use crate::sources::kube::{self as cluster, NodeConfig};
use crate::sources::{SourceId, SourceUpdate, manifests};
use crate::systemd::Systemd;
use crate::unit::{NodeInfo, NodeSecurity, SystemUsers};
use tasks::{Stage, Tasks};

/// How long the agent's tasks may take to stop after a signal, all stages together: the
/// in-flight passes finish, their statuses go out, the kubelet API closes. Well below
/// systemd's default stop timeout (90 s), after which it would SIGKILL systemk.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Runs the agent until SIGTERM or SIGINT.
pub async fn run(args: AgentArgs) -> anyhow::Result<()> {
    // Shared with the blocking setup of the kubelet API.
    let args = Arc::new(args);
    let node_name = match args.nodename.clone() {
        Some(name) => name,
        None => super::hostname()?,
    };
    let addresses = host_addresses().context("cannot list the host's addresses")?;
    let ips = detect_node_ips(args.node_ip, args.node_external_ip, &addresses)
        .context("the host has no usable address (neither private nor global): set --node-ip")?;
    let security = node_security(&args)?;
    // What `systemk doctor` reads about the certificates; both certificate tasks write it.
    let recorder = cluster::certificates::Recorder::new(&args.cert_dir());
    let api_requests = cluster::ApiRequests::default();
    let (client, kubernetes_service, client_identity) =
        match cluster_client(&args, &node_name, &recorder, &api_requests).await? {
            Some(cluster) => (Some(cluster.client), cluster.api_server, cluster.identity),
            None => (None, None, None),
        };
    let installer = Installer::new(InstallerConfig {
        deb_cache_dir: args.cache_dir.clone(),
        policy: args.image_policy(),
        packages_record: Some(args.paths.state_dir.join("packages")),
        apt_lists_max_age: args.apt_lists_max_age,
        ..InstallerConfig::default()
    })?;
    let collector = installer.clone();
    // D-Bus may come up after systemk at boot.
    let systemd = LOCAL_SERVICE
        .retry(
            "connect to systemd",
            RetryLimit::Forever,
            |err: &crate::systemd::Error| err.is_transient(),
            |_| Systemd::connect(),
        )
        .await
        .context("cannot connect to systemd")?;
    let slices = slice::slices(&args.reservation()).context("cannot render the pods' slices")?;
    systemd
        .write_slices(&args.paths.unit_dir, &slices)
        .await
        .context("cannot write systemk.slice and the BestEffort slice")?;
    PodDirs::new(&args.paths.state_dir, &args.paths.runtime_dir)
        .create_state_dir()
        .context("cannot create the state directory")?;
    // The node as admission sees it; the Node keeper replaces it with the API's Node.
    let (node_view_tx, node_view_rx) = watch::channel(own_node_view(
        &node_name,
        args.max_pods,
        !args.disable_taint,
        args.reservation(),
        &args.paths.state_dir,
    ));
    let ctx = Arc::new(Context {
        installer,
        systemd,
        dirs: PodDirs::new(&args.paths.state_dir, &args.paths.runtime_dir),
        unit_dir: args.paths.unit_dir.clone(),
        node: NodeInfo {
            hostname: node_name.clone(),
            internal_ip: ips.internal.to_string(),
            external_ip: ips.external.to_string(),
        },
        host_ips: if ips.internal == ips.external {
            vec![ips.internal]
        } else {
            vec![ips.internal, ips.external]
        },
        users: Arc::new(SystemUsers),
        objects: client
            .clone()
            .map(|client| Arc::new(cluster::ApiObjects::new(client)) as Arc<dyn ObjectLookup>),
        kubernetes_service,
        allocatable: node_allocatable(),
        security: Arc::new(security),
        node_view: node_view_rx,
        metrics: PodMetrics::default(),
        installing: Arc::default(),
    });
    tracing::info!(node = %node_name, internal_ip = %ips.internal, external_ip = %ips.external,
        manifests = %args.pod_manifest_path.display(), "systemk starting");
    // The serving certificate from the cluster, when the kubelet API serves one.
    let serving_from_cluster =
        args.kubelet_port != 0 && args.serving_from_cluster(client.is_some());
    let (serving_tx, serving_rx) = watch::channel(None);
    let kubelet_api = if args.kubelet_port == 0 {
        tracing::info!("--kubelet-port 0: no kubelet API");
        None
    } else {
        // Reads (or generates and writes) certificates: off the runtime.
        let (bind_args, bind_ctx, client, node_name) =
            (args.clone(), ctx.clone(), client.clone(), node_name.clone());
        let bind = tokio::task::spawn_blocking(move || {
            bind_kubelet_api(&bind_args, &bind_ctx, client, &node_name)
        });
        let server = bind
            .await
            .context("setting up the kubelet API panicked")??;
        let mut registry = Registry::default();
        ctx.metrics.register(&mut registry);
        registry.register(
            "systemk_systemd_daemon_reloads",
            "daemon-reloads systemk had systemd do",
            ctx.systemd.daemon_reloads(),
        );
        registry.register(
            "systemk_systemd_dbus_errors",
            "Failed D-Bus calls to systemd, by operation and D-Bus error name (transport: the bus failed)",
            ctx.systemd.dbus_errors().family(),
        );
        registry.register(
            "systemk_api_requests",
            "Requests to the API server, by verb, resource and HTTP status (error: no response; cancelled: systemk gave up first)",
            api_requests.family(),
        );
        let gauges = PodGauges::default();
        gauges.register(&mut registry);
        let mut probes = Registry::default();
        ctx.metrics.register_probes(&mut probes);
        let server = server.with_metrics(OwnMetrics {
            registry: Arc::new(registry),
            probes: Arc::new(probes),
            gauges,
        });
        Some(if serving_from_cluster {
            server.with_serving_updates(serving_rx)
        } else {
            server
        })
    };

    let mut tasks = Tasks::new();
    if let (Some(client), Some((identity, config))) = (&client, client_identity) {
        let rotation = cluster::certificates::bootstrap::keep_current(
            client.clone(),
            identity,
            config,
            tasks.stop_signal(Stage::Report),
        );
        tasks.spawn("client certificate rotation", Stage::Report, async move {
            rotation.await;
            Ok(())
        });
    }
    let serving_client = client.clone().filter(|_| serving_from_cluster);
    if let Some(kubelet_api) = kubelet_api {
        let stop = tasks.stop_signal(Stage::Serve);
        tasks.spawn("kubelet API", Stage::Serve, async move {
            Ok(kubelet_api.serve(stop).await?)
        });
    }
    let (updates_tx, updates_rx) = mpsc::channel(16);
    let (progress_tx, progress_rx) = pod::progress_channel(pod::EVENT_CAPACITY);
    let mut sources = vec![SourceId::File];
    let mut forward = None;
    let mut node_events = None;
    let (health_tx, health_rx) =
        watch::channel(pod::ReconcilerHealth::new(tokio::time::Instant::now()));
    if let Some(client) = client {
        let runtime_version = match ctx.systemd.version().await {
            Ok(version) => format!("systemd://{version}"),
            Err(err) => {
                tracing::warn!(error = %crate::error_chain::Chain(&err), "cannot read systemd's version");
                "systemd://unknown".to_owned()
            }
        };
        let node = NodeConfig {
            name: node_name.clone(),
            hostname: super::hostname()?,
            internal_ip: ips.internal,
            external_ip: ips.external,
            taint: !args.disable_taint,
            max_pods: args.max_pods,
            runtime_version,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            kubelet_port: args.kubelet_port,
            reservation: args.reservation(),
        };
        sources.push(SourceId::Api);
        let (to_forward, events) = spawn_cluster(
            &mut tasks,
            client,
            node,
            &args,
            updates_tx.clone(),
            health_rx,
            node_view_tx,
        );
        forward = Some(to_forward);
        node_events = Some(events);
    }
    if let (Some(client), Some(events)) = (serving_client, &node_events) {
        let hostname = super::hostname()?;
        let config = cluster::certificates::ServingCertConfig {
            template: cluster::certificates::Template::serving(
                &node_name,
                &[hostname],
                &[ips.internal, ips.external],
            ),
            cert_dir: args.cert_dir(),
            recorder: recorder.clone(),
        };
        let serving = cluster::certificates::serving::keep_current(
            client,
            config,
            serving_tx,
            cluster::certificates::serving::PendingEvents {
                publisher: events.publisher.clone(),
                node_uid: events.node_uid.clone(),
            },
            tasks.stop_signal(Stage::Report),
        );
        tasks.spawn("serving certificate rotation", Stage::Report, async move {
            serving.await;
            Ok(())
        });
    }
    let collect = gc::run(
        collector,
        args.gc_settings(),
        node_events,
        tasks.stop_signal(Stage::Reconcile),
    );
    tasks.spawn("garbage collector", Stage::Reconcile, collect);
    let manifests = manifests::watch(
        args.pod_manifest_path.clone(),
        node_name,
        updates_tx,
        tasks.stop_signal(Stage::Intake),
    );
    tasks.spawn("manifest watch", Stage::Intake, async move {
        Ok(manifests.await?)
    });
    // Ends when the reconciler's sender is gone, after passing the last status on.
    tasks.spawn("progress forwarder", Stage::Report, async move {
        forward::report(progress_rx, forward).await;
        Ok(())
    });
    let thresholds = args.reservation().thresholds;
    if thresholds != pod::eviction::Thresholds::none() {
        let monitor = pod::eviction::monitor::run(
            ctx.clone(),
            thresholds,
            (args.paths.state_dir.clone(), args.cache_dir.clone()),
            pod::eviction::monitor::MONITOR_PERIOD,
            tasks.stop_signal(Stage::Reconcile),
        );
        tasks.spawn("eviction monitor", Stage::Reconcile, async move {
            monitor.await;
            Ok(())
        });
    }
    let reconcile = pod::run(
        ctx,
        sources,
        updates_rx,
        progress_tx,
        health_tx,
        tasks.stop_signal(Stage::Reconcile),
    );
    tasks.spawn("reconciler", Stage::Reconcile, async move {
        Ok(reconcile.await?)
    });
    let failed = tasks.run_until(wait_for_signal()).await;
    let _ = sd_notify::notify(&[NotifyState::Stopping]);
    tracing::info!("systemk stopping; pods keep running in their units");
    tasks.shutdown(SHUTDOWN_GRACE).await;
    match failed {
        // Non-zero, so that systemd (`Restart=on-failure`) starts a fresh systemk.
        Some(ended) => Err(anyhow::anyhow!("{ended}")),
        None => Ok(()),
    }
}

/// Opens the kubelet API's socket with its certificates; any failure stops systemk at
/// start, where it is plain to see.
fn bind_kubelet_api(
    args: &AgentArgs,
    ctx: &Context,
    client: Option<kube::Client>,
    node_name: &str,
) -> anyhow::Result<Server> {
    let serving = match (&args.tls_cert_file, &args.tls_private_key_file) {
        (Some(cert), Some(key)) => tls::read_serving_cert(cert, key)?,
        _ => {
            let mut names = vec![node_name.to_owned()];
            let hostname = super::hostname()?;
            if hostname != node_name {
                names.push(hostname);
            }
            let ips: Vec<_> = ctx.host_ips.clone();
            tls::self_signed_cert(&args.paths.state_dir, &names, &ips)
                .context("cannot set up the kubelet API's serving certificate")?
        }
    };
    let client_ca = match &args.client_ca_file {
        Some(path) => {
            let pem = std::fs::read(path)
                .with_context(|| format!("cannot read --client-ca-file {}", path.display()))?;
            Some(tls::parse_ca_bundle(
                &pem,
                &format!("--client-ca-file {}", path.display()),
            )?)
        }
        None => None,
    };
    let settings = server::Settings {
        address: SocketAddr::new(args.address, args.kubelet_port),
        serving,
        client_ca,
        limits: server::Limits::default(),
        token_webhook_cache_ttl: args
            .authentication_token_webhook
            .then_some(args.authentication_token_webhook_cache_ttl),
    };
    Server::bind(
        settings,
        ctx.systemd.clone(),
        ctx.dirs.clone(),
        ctx.unit_dir.clone(),
        client,
        node_name.to_owned(),
    )
    .context("cannot start the kubelet API (--kubelet-port 0 turns it off)")
}

/// What pods are kept from: the agent's own files, the restricted groups.
fn node_security(args: &AgentArgs) -> anyhow::Result<NodeSecurity> {
    let choice = args.kubeconfig_choice(|name| std::env::var(name).ok());
    let cwd = std::env::current_dir().context("cannot read the working directory")?;
    let security = NodeSecurity {
        hidden_paths: hidden_paths(args, choice.path(), &cwd),
        restricted_gids: restricted_gids(&args.restricted_groups, Path::new("/dev")),
        apparmor: apparmor_enabled(),
    };
    tracing::info!(hidden = ?security.hidden_paths, restricted_gids = ?security.restricted_gids,
        apparmor = security.apparmor, "pod confinement");
    Ok(security)
}

/// The node's connection to its cluster.
struct Cluster {
    client: kube::Client,
    /// The API server's host and port.
    api_server: Option<(String, u16)>,
    /// The rotating client certificate, under TLS bootstrap.
    identity: Option<(
        Arc<cluster::certificates::ClientIdentity>,
        cluster::certificates::ClientCertConfig,
    )>,
}

/// The client for the cluster: under TLS bootstrap (`--bootstrap-kubeconfig`) one with
/// the node's own, rotating certificate (bootstrapped first when there is none); else
/// when a kubeconfig is given or found. An explicit one that does not load is an error; a
/// default one is skipped with a warning (static pods only).
async fn cluster_client(
    args: &AgentArgs,
    node_name: &str,
    recorder: &cluster::certificates::Recorder,
    requests: &cluster::ApiRequests,
) -> anyhow::Result<Option<Cluster>> {
    if let (Some(bootstrap), Some(kubeconfig)) =
        (&args.bootstrap_kubeconfig, args.bootstrapped_kubeconfig())
    {
        let config = cluster::certificates::ClientCertConfig {
            node_name: node_name.to_owned(),
            cert_dir: args.cert_dir(),
            kubeconfig,
            bootstrap_kubeconfig: bootstrap.clone(),
            recorder: recorder.clone(),
            requests: requests.clone(),
        };
        let identity = cluster::certificates::bootstrap::load_or_bootstrap(&config)
            .await
            .context(
                "TLS bootstrap: cannot get the node's client certificate (--bootstrap-kubeconfig)",
            )?;
        let (client, api_server) = cluster::certificates::client_identity::connect(
            &config.kubeconfig,
            identity.clone(),
            requests,
        )
        .await
        .context("cannot use the node's kubeconfig written by TLS bootstrap")?;
        tracing::info!(kubeconfig = %config.kubeconfig.display(), cert_dir = %config.cert_dir.display(),
            "joining the cluster with the node's client certificate");
        return Ok(Some(Cluster {
            client,
            api_server,
            identity: Some((identity, config)),
        }));
    }
    let choice = args.kubeconfig_choice(|name| std::env::var(name).ok());
    let Some(path) = choice.path() else {
        tracing::info!("no kubeconfig: running static pods only");
        return Ok(None);
    };
    match cluster::connect(path, requests).await {
        Ok((client, api_server)) => {
            tracing::info!(kubeconfig = %path.display(), "joining the cluster");
            Ok(Some(Cluster {
                client,
                api_server,
                identity: None,
            }))
        }
        Err(err) if matches!(choice, KubeconfigChoice::Explicit(_)) => {
            Err(err).context("cannot use --kubeconfig")
        }
        Err(err) => {
            tracing::warn!(error = %crate::error_chain::Chain(&err), "ignoring the default kubeconfig: running static pods only");
            Ok(None)
        }
    }
}

/// Starts the cluster tasks (node, lease, pod watch, status reports); returns where the
/// reconciler's progress must be forwarded, and where node events go. The node's `Ready`
/// follows the reconciler's `health`.
fn spawn_cluster(
    tasks: &mut Tasks,
    client: kube::Client,
    node: NodeConfig,
    args: &AgentArgs,
    updates: mpsc::Sender<SourceUpdate>,
    health: watch::Receiver<pod::ReconcilerHealth>,
    node_view: watch::Sender<pod::admission::NodeView>,
) -> (ProgressSender, gc::NodeEvents) {
    let (node_uid_tx, node_uid_rx) = watch::channel(None);
    let (store, writer) = kube::runtime::reflector::store();
    let (changed_tx, changed_rx) = cluster::pod_changes::channel();
    let (forward_tx, forward_rx) = pod::progress_channel(pod::EVENT_CAPACITY);
    let node_events = gc::NodeEvents {
        publisher: cluster::EventPublisher::new(client.clone(), &node.name),
        node_name: node.name.clone(),
        node_uid: node_uid_rx.clone(),
    };
    let reporter = cluster::status::Reporter {
        client: client.clone(),
        store,
        node_name: node.name.clone(),
        node_uid: node_uid_rx.clone(),
        events: cluster::EventPublisher::new(client.clone(), &node.name),
    };
    let pod_watch = cluster::pods::run(
        client.clone(),
        node.name.clone(),
        writer,
        updates,
        changed_tx,
        tasks.stop_signal(Stage::Intake),
    );
    tasks.spawn("pod watch", Stage::Intake, async move {
        pod_watch.await;
        Ok(())
    });
    let lease = cluster::lease::run(
        client.clone(),
        node.name.clone(),
        node_uid_rx,
        tasks.stop_signal(Stage::Report),
    );
    tasks.spawn("node lease", Stage::Report, async move {
        lease.await;
        Ok(())
    });
    let node_events_publisher = cluster::EventPublisher::new(client.clone(), &node.name);
    let node_status = cluster::node::run(
        client,
        node,
        (args.paths.state_dir.clone(), args.cache_dir.clone()),
        node_uid_tx,
        node_view,
        health,
        node_events_publisher,
        tasks.stop_signal(Stage::Report),
    );
    tasks.spawn("node status", Stage::Report, async move {
        node_status.await;
        Ok(())
    });
    // No stop signal: it ends when the forwarder is gone, after reporting the last
    // statuses the reconciler's drained passes produced.
    let status = cluster::status::run(reporter, forward_rx, changed_rx, std::future::pending());
    tasks.spawn("status reporter", Stage::Report, async move {
        status.await;
        Ok(())
    });
    (forward_tx, node_events)
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM received"),
                _ = int.recv() => tracing::info!("SIGINT received"),
            }
        }
        (Err(err), _) | (_, Err(err)) => {
            tracing::error!(error = %crate::error_chain::Chain(&err), "cannot listen for signals; stop systemk with SIGKILL");
            std::future::pending::<()>().await;
        }
    }
}

/// The node as admission sees it before (or without) a Node in the API: systemk's own
/// labels and taint, and the host's resources (none, with a warning, when the host
/// cannot be read).
fn own_node_view(
    node_name: &str,
    max_pods: u32,
    taint: bool,
    reservation: pod::eviction::Reservation,
    state_dir: &Path,
) -> pod::admission::NodeView {
    // As the Node keeper reads them: ephemeral storage is the state directory's.
    match cluster::read_facts(state_dir) {
        Ok(facts) => {
            let config = NodeConfig {
                name: node_name.to_owned(),
                hostname: node_name.to_owned(),
                internal_ip: std::net::Ipv4Addr::LOCALHOST.into(),
                external_ip: std::net::Ipv4Addr::LOCALHOST.into(),
                taint,
                max_pods,
                runtime_version: String::new(),
                version: String::new(),
                kubelet_port: 0,
                reservation,
            };
            cluster::admission_view(&config, &facts, None)
        }
        Err(err) => {
            tracing::warn!(error = %crate::error_chain::Chain(&err), "cannot read the host's resources for admission");
            pod::admission::NodeView {
                name: node_name.to_owned(),
                ..pod::admission::NodeView::default()
            }
        }
    }
}

/// The node's cpu and memory, for `resourceFieldRef` of containers without limits; zero
/// (with a warning) when the host cannot be read.
pub(super) fn node_allocatable() -> NodeAllocatable {
    // The root filesystem always exists; only cpu and memory are used.
    match cluster::read_facts(Path::new("/")) {
        Ok(facts) => NodeAllocatable {
            cpu_millis: facts.cpus.saturating_mul(1000),
            memory_bytes: facts.memory_bytes,
        },
        Err(err) => {
            tracing::warn!(error = %crate::error_chain::Chain(&err), "cannot read the host's cpu and memory");
            NodeAllocatable::default()
        }
    }
}
