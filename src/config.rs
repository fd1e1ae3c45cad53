//! Top layer: the command line and `/etc/default/systemk` (every flag is also read from
//! `SYSTEMK_<FLAG>`), parsed by clap into typed arguments (bad values exit 64). Nothing below this module reads
//! flags or the environment.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::pod::eviction::{DEFAULT_EVICTION_HARD, Reservation, Resources, Thresholds};
use crate::sources::kube::KUBELET_PORT;

mod env_file;
mod kubeconfig;
mod manpage;
mod node_ip;
mod node_security;
mod size;
/// A duration as `<n>` seconds or `<n>` followed by `s`, `m`, `h` or `d`.
fn parse_age(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => text.split_at(at),
        None => (text, "s"),
    };
    let seconds_per = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "{text:?}: expected <n>s, <n>m, <n>h, <n>d or seconds"
            ));
        }
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?}: expected a whole number before the unit"))?;
    n.checked_mul(seconds_per)
        .map(std::time::Duration::from_secs)
        .ok_or_else(|| format!("{text:?} is too long"))
}

/// `--system-reserved` / `--kube-reserved`.
fn parse_reserved(text: &str) -> Result<Resources, String> {
    text.parse()
}

/// `--eviction-hard`.
fn parse_eviction_hard(text: &str) -> Result<Thresholds, String> {
    text.parse()
}

#[cfg(test)]
mod shipped_files;

pub use env_file::{parse_args, usage_exit_code};
pub use kubeconfig::{KubeconfigChoice, choose_kubeconfig};
pub use manpage::manpage;
pub use node_ip::{NodeIps, detect_node_ips, host_addresses};
pub use node_security::{apparmor_enabled, default_node_security, hidden_paths, restricted_gids};

/// Where static pod manifests are read from when `--pod-manifest-path` is not given.
pub const DEFAULT_MANIFEST_DIR: &str = "/etc/systemk/manifests";
/// Where systemk keeps pod directories (emptyDirs, restart bookkeeping).
pub const DEFAULT_STATE_DIR: &str = "/var/lib/systemk";
/// Where systemk keeps what must not outlive a boot or reach a persistent disk (pod
/// environments, secret and token volumes): a tmpfs.
pub const DEFAULT_RUNTIME_DIR: &str = "/run/systemk";
/// Where systemk writes its units: the admin's unit directory, so enabled pods start at
/// boot before systemk itself does.
pub const DEFAULT_UNIT_DIR: &str = "/etc/systemd/system";
/// Where downloaded `.deb` files are cached by content hash.
pub const DEFAULT_CACHE_DIR: &str = "/var/cache/systemk/debs";
/// Groups pods may take only when privileged: they grant host credentials or devices.
/// `@devices` stands for every group that owns a device node under `/dev`.
pub const DEFAULT_RESTRICTED_GROUPS: &str = "root,shadow,disk,adm,sudo,systemd-journal,@devices";
/// systemk's configuration directory, hidden from pods with its manifests.
pub const CONFIG_DIR: &str = "/etc/systemk";
/// The packaged service's settings (`EnvironmentFile=` of systemk.service).
pub const DEFAULT_ENV_FILE: &str = "/etc/default/systemk";
/// Pods the node advertises it can run: the kubelet's default `--max-pods`.
pub const DEFAULT_MAX_PODS: u32 = 110;

/// systemk: run Kubernetes pods as systemd services.
#[derive(Debug, Parser)]
#[command(name = "systemk", version, about, long_about = None)]
pub struct Cli {
    /// What to do; without a command systemk runs as the node agent.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The node agent's settings.
    #[command(flatten)]
    pub agent: AgentArgs,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the unit files a pod becomes, without installing or starting anything.
    Render(RenderArgs),
    /// List the pods on this machine from systemd and systemk's state, like `kubectl get
    /// pods`; needs neither the agent nor an API server.
    Pods(PodsArgs),
    /// Check the node's certificates and kubeconfigs as the agent would use them, one
    /// OK/WARN/FAIL line each; exit 1 when one fails, 2 on a usage error.
    Doctor(Box<DoctorArgs>),
    /// Print the systemk(8) man page in roff (used when building the .deb).
    #[command(hide = true)]
    Manpage,
}

/// Arguments of `systemk render`.
#[derive(Debug, Args)]
pub struct RenderArgs {
    /// The pod manifest (YAML, possibly several documents, or JSON).
    #[arg(short = 'f', long = "filename", value_name = "POD.yaml")]
    pub file: PathBuf,
    /// The node's internal IP put into the units' environment.
    #[arg(long, value_name = "IP", default_value = "127.0.0.1")]
    pub node_ip: IpAddr,
    /// The node's external IP put into the units' environment (defaults to --node-ip).
    #[arg(long, value_name = "IP")]
    pub node_external_ip: Option<IpAddr>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = RenderFormat::Units)]
    pub output: RenderFormat,
}

/// How `systemk render` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RenderFormat {
    /// Unit files, each preceded by a `# <unit name>` line.
    Units,
}

/// Arguments of `systemk pods`.
#[derive(Debug, Args)]
pub struct PodsArgs {
    /// Where the agent keeps its state and units (the agent's own settings).
    #[command(flatten)]
    pub paths: Paths,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = PodsFormat::Table)]
    pub output: PodsFormat,
}

/// How `systemk pods` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PodsFormat {
    /// A table like `kubectl get pods -A`.
    Table,
    /// A JSON `List` of Pods with metadata, spec and status.
    Json,
}

/// Arguments of `systemk doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The agent's settings, from the same flags and `SYSTEMK_<FLAG>` variables.
    #[command(flatten)]
    pub agent: AgentArgs,
    /// Also ask the API server whether it accepts the bootstrap token (a harmless
    /// authenticated request); without it, doctor reads only local files.
    #[arg(long)]
    pub online: bool,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = DoctorFormat::Text)]
    pub output: DoctorFormat,
    /// The service's settings, read as systemd's `EnvironmentFile=` reads them; a variable
    /// set in the environment or a flag on the command line wins.
    #[arg(long, value_name = "FILE", default_value = DEFAULT_ENV_FILE)]
    pub env_file: PathBuf,
}

/// How `systemk doctor` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DoctorFormat {
    /// One `OK|WARN|FAIL <check>: <message>` line per check.
    Text,
    /// `{"status": ..., "checks": [{"check", "status", "message"}]}`.
    Json,
}

/// Where systemk keeps pod state and unit files: shared by the agent and the commands that
/// read what it left there, so both always agree.
#[derive(Debug, Clone, Args)]
pub struct Paths {
    /// Where systemk keeps pod directories and its own state.
    #[arg(long, env = "SYSTEMK_STATE_DIR", value_name = "DIR", default_value = DEFAULT_STATE_DIR)]
    pub state_dir: PathBuf,
    /// Where systemk keeps pod files that must stay off persistent disk (a tmpfs).
    #[arg(long, env = "SYSTEMK_RUNTIME_DIR", value_name = "DIR", default_value = DEFAULT_RUNTIME_DIR)]
    pub runtime_dir: PathBuf,
    /// Where systemk writes pod units.
    #[arg(long, env = "SYSTEMK_UNIT_DIR", value_name = "DIR", default_value = DEFAULT_UNIT_DIR)]
    pub unit_dir: PathBuf,
}

/// Settings of the node agent. Each flag can also be set in the environment as
/// `SYSTEMK_<FLAG>` (for `/etc/default/systemk`).
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// Directory of static pod manifests (*.yaml, *.yml, *.json), watched for changes.
    #[arg(long, env = "SYSTEMK_POD_MANIFEST_PATH", value_name = "DIR", default_value = DEFAULT_MANIFEST_DIR)]
    pub pod_manifest_path: PathBuf,
    /// The node's name (default: the host name).
    #[arg(long, env = "SYSTEMK_NODENAME", value_name = "NAME")]
    pub nodename: Option<String>,
    /// The node's internal IP (default: the first private address of the host).
    #[arg(long, env = "SYSTEMK_NODE_IP", value_name = "IP")]
    pub node_ip: Option<IpAddr>,
    /// The node's external IP (default: the first global address of the host).
    #[arg(long, env = "SYSTEMK_NODE_EXTERNAL_IP", value_name = "IP")]
    pub node_external_ip: Option<IpAddr>,
    /// Where systemk keeps its state and writes pod units.
    #[command(flatten)]
    pub paths: Paths,
    /// Where downloaded .deb files are cached.
    #[arg(long, env = "SYSTEMK_CACHE_DIR", value_name = "DIR", default_value = DEFAULT_CACHE_DIR)]
    pub cache_dir: PathBuf,
    /// Whether pods may name packages from the apt sources as images.
    #[arg(long, env = "SYSTEMK_IMAGE_APT", value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub image_apt: bool,
    /// Hosts https .deb images may come from: `*` any, a comma-separated list of host
    /// names or IPs (exact, case-insensitive), or an empty value for none.
    #[arg(
        long,
        env = "SYSTEMK_IMAGE_HTTPS_HOSTS",
        value_name = "HOSTS",
        default_value = "*"
    )]
    pub image_https_hosts: String,
    /// Refuse https images without a `@sha256:` pin (default: allowed, with a warning).
    #[arg(long, env = "SYSTEMK_IMAGE_REQUIRE_SHA256")]
    pub image_require_sha256: bool,
    /// `apt-get update` runs (when a package or version is not found, or an
    /// `imagePullPolicy: Always` image asks for the newest version) only when the package
    /// lists are older than this: `<n>s`, `<n>m`, `<n>h`, `<n>d` or seconds; 0 refreshes
    /// at every such request.
    #[arg(long, env = "SYSTEMK_APT_LISTS_MAX_AGE", value_name = "DURATION", default_value = "1h", value_parser = parse_age)]
    pub apt_lists_max_age: std::time::Duration,
    /// Packages systemk installed are removed once no container used them for this long
    /// (`<n>s`, `<n>m`, `<n>h`, `<n>d` or seconds); 0 removes none. Never a package
    /// systemk did not install, or one another installed package depends on.
    #[arg(long, env = "SYSTEMK_IMAGE_MINIMUM_GC_AGE", value_name = "DURATION", default_value = "1h", value_parser = parse_age)]
    pub image_minimum_gc_age: std::time::Duration,
    /// The downloaded `.deb` cache is trimmed to this size, least recently used first:
    /// bytes, or a number followed by K, M, G or T (powers of 1024).
    #[arg(long, env = "SYSTEMK_DEB_CACHE_MAX_SIZE", value_name = "SIZE", default_value = "1G", value_parser = size::parse_size)]
    pub deb_cache_max_size: u64,
    /// Groups (names, numbers, or @devices for every group owning a device node) that a
    /// pod may take as runAsGroup, supplementalGroups or fsGroup only when privileged.
    #[arg(long, env = "SYSTEMK_RESTRICTED_GROUPS", value_name = "GROUPS", value_delimiter = ',', default_value = DEFAULT_RESTRICTED_GROUPS)]
    pub restricted_groups: Vec<String>,
    /// Kubeconfig of this node's identity (default: $KUBECONFIG, then ~/.kube/config, when
    /// the file exists). Without one systemk runs only static pods and joins no cluster.
    #[arg(long, env = "SYSTEMK_KUBECONFIG", value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig holding a bootstrap token (TLS bootstrap, as the kubelet's flag): when
    /// the node has no valid client certificate in --cert-dir, systemk requests one for
    /// system:node:<name> with it, writes --kubeconfig (default <state dir>/kubeconfig) to
    /// use it, and renews it before it expires.
    #[arg(long, env = "SYSTEMK_BOOTSTRAP_KUBECONFIG", value_name = "FILE")]
    pub bootstrap_kubeconfig: Option<PathBuf>,
    /// Where the node's certificates and keys are kept (0700): the client certificate
    /// (kubelet-client-current.pem), the serving certificate from the cluster
    /// (kubelet-server-current.pem). Default: <state dir>/pki.
    #[arg(long, env = "SYSTEMK_CERT_DIR", value_name = "DIR")]
    pub cert_dir: Option<PathBuf>,
    /// Request the kubelet API's serving certificate from the cluster (signer
    /// kubernetes.io/kubelet-serving; someone must approve it) and renew it; the self-signed
    /// one is served until then. Default: true when the node joins a cluster;
    /// --tls-cert-file turns it off.
    #[arg(long, env = "SYSTEMK_ROTATE_SERVER_CERTIFICATES", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub rotate_server_certificates: Option<bool>,
    /// Do not taint the node with virtual-kubelet.io/provider=systemk:NoSchedule.
    #[arg(long, env = "SYSTEMK_DISABLE_TAINT")]
    pub disable_taint: bool,
    /// How many pods the node advertises it can run.
    #[arg(long, env = "SYSTEMK_MAX_PODS", value_name = "N", default_value_t = DEFAULT_MAX_PODS)]
    pub max_pods: u32,
    /// Port of the kubelet API (HTTPS: logs, pods, health), advertised in the Node; 0
    /// runs no server.
    #[arg(long, env = "SYSTEMK_KUBELET_PORT", value_name = "PORT", default_value_t = KUBELET_PORT)]
    pub kubelet_port: u16,
    /// Address the kubelet API listens on (`::` for every IPv6 and IPv4 address).
    #[arg(
        long,
        env = "SYSTEMK_ADDRESS",
        value_name = "IP",
        default_value = "0.0.0.0"
    )]
    pub address: IpAddr,
    /// The kubelet API's serving certificate (PEM, leaf first). Default: a self-signed one
    /// for the node's name and IPs, made once in <state dir>/pki/kubelet.crt.
    #[arg(
        long,
        env = "SYSTEMK_TLS_CERT_FILE",
        value_name = "FILE",
        requires = "tls_private_key_file"
    )]
    pub tls_cert_file: Option<PathBuf>,
    /// The private key of --tls-cert-file (PEM).
    #[arg(
        long,
        env = "SYSTEMK_TLS_PRIVATE_KEY_FILE",
        value_name = "FILE",
        requires = "tls_cert_file"
    )]
    pub tls_private_key_file: Option<PathBuf>,
    /// CA bundle (PEM) that signs the client certificates of kubelet API callers. Default:
    /// the cluster's, from configMap kube-system/extension-apiserver-authentication; with
    /// neither, every kubelet API request is refused (401).
    #[arg(long, env = "SYSTEMK_CLIENT_CA_FILE", value_name = "FILE")]
    pub client_ca_file: Option<PathBuf>,
    /// Also authenticate kubelet API callers by bearer token (e.g. a service account's),
    /// asking the API server with a TokenReview, as the kubelet's flag of this name. Needs
    /// a cluster; the node must be allowed to create tokenreviews.
    #[arg(long, env = "SYSTEMK_AUTHENTICATION_TOKEN_WEBHOOK", value_name = "BOOL", default_value_t = false, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub authentication_token_webhook: bool,
    /// Resources kept for the operating system's daemons (sshd, journald, …), in the
    /// kubelet's syntax: `cpu=100m,memory=1Gi,ephemeral-storage=1Gi,pid=1000`. Subtracted
    /// from the node's allocatable and from the limits of systemk.slice, where pods run.
    #[arg(long, env = "SYSTEMK_SYSTEM_RESERVED", value_name = "RESOURCES", default_value = "", value_parser = parse_reserved)]
    pub system_reserved: Resources,
    /// Resources kept for systemk itself, as --system-reserved.
    #[arg(long, env = "SYSTEMK_KUBE_RESERVED", value_name = "RESOURCES", default_value = "", value_parser = parse_reserved)]
    pub kube_reserved: Resources,
    /// Hard eviction thresholds in the kubelet's syntax (`<signal><<quantity or
    /// percentage>`, comma-separated; signals memory.available, nodefs.available,
    /// nodefs.inodesFree, imagefs.available, imagefs.inodesFree, pid.available). Below one,
    /// pods are evicted and the node reports pressure; memory.available and
    /// nodefs.available are also subtracted from allocatable. An empty value sets none.
    #[arg(long, env = "SYSTEMK_EVICTION_HARD", value_name = "THRESHOLDS", default_value = DEFAULT_EVICTION_HARD, value_parser = parse_eviction_hard)]
    pub eviction_hard: Thresholds,
    /// How long the API server's answer about a bearer token is reused (the kubelet's
    /// default, 2m); 0 asks every time.
    #[arg(long, env = "SYSTEMK_AUTHENTICATION_TOKEN_WEBHOOK_CACHE_TTL", value_name = "DURATION", default_value = "2m", value_parser = parse_age)]
    pub authentication_token_webhook_cache_ttl: std::time::Duration,
}

impl AgentArgs {
    /// The node's image policy from the `--image-*` flags.
    pub fn image_policy(&self) -> crate::package::ImagePolicy {
        crate::package::ImagePolicy {
            allow_apt: self.image_apt,
            https_hosts: crate::package::ImagePolicy::parse_https_hosts(&self.image_https_hosts),
            require_sha256: self.image_require_sha256,
        }
    }

    /// What garbage collection may remove, from `--image-minimum-gc-age` and
    /// `--deb-cache-max-size`.
    pub fn gc_settings(&self) -> crate::package::GcSettings {
        crate::package::GcSettings {
            unused_package_age: (!self.image_minimum_gc_age.is_zero())
                .then_some(self.image_minimum_gc_age),
            deb_cache_max_bytes: self.deb_cache_max_size,
        }
    }

    /// The certificate directory: `--cert-dir`, else `<state dir>/pki`.
    pub fn cert_dir(&self) -> PathBuf {
        self.cert_dir
            .clone()
            .unwrap_or_else(|| self.paths.state_dir.join("pki"))
    }

    /// The node's kubeconfig under TLS bootstrap: `--kubeconfig`, else
    /// `<state dir>/kubeconfig`; `None` without `--bootstrap-kubeconfig`.
    pub fn bootstrapped_kubeconfig(&self) -> Option<PathBuf> {
        self.bootstrap_kubeconfig.as_ref()?;
        Some(
            self.kubeconfig
                .clone()
                .unwrap_or_else(|| self.paths.state_dir.join("kubeconfig")),
        )
    }

    /// Whether the serving certificate comes from the cluster: `--rotate-server-certificates`,
    /// by default whenever the node `joined` a cluster; never with `--tls-cert-file`.
    pub fn serving_from_cluster(&self, joined: bool) -> bool {
        joined && self.tls_cert_file.is_none() && self.rotate_server_certificates.unwrap_or(true)
    }

    /// What the node keeps from its pods: `--system-reserved`, `--kube-reserved`,
    /// `--eviction-hard`.
    pub fn reservation(&self) -> Reservation {
        Reservation {
            system: self.system_reserved,
            kube: self.kube_reserved,
            thresholds: self.eviction_hard.clone(),
        }
    }

    /// The kubeconfig to join the cluster with, from `--kubeconfig`, else `$KUBECONFIG`,
    /// else `$HOME/.kube/config`; `env` reads the process environment (a map in tests).
    pub fn kubeconfig_choice(&self, env: impl Fn(&str) -> Option<String>) -> KubeconfigChoice {
        choose_kubeconfig(
            self.kubeconfig.as_deref(),
            env("KUBECONFIG").as_deref(),
            env("HOME").as_deref().map(Path::new),
            |path| path.is_file(),
        )
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[test]
    fn cluster_flags_parse_with_defaults() {
        let cli = Cli::try_parse_from(["systemk"]).unwrap();
        assert_eq!(cli.agent.max_pods, DEFAULT_MAX_PODS);
        assert!(!cli.agent.disable_taint);
        assert_eq!(cli.agent.kubeconfig, None);
        assert_eq!(cli.agent.kubelet_port, KUBELET_PORT);
        assert_eq!(cli.agent.address, IpAddr::from([0, 0, 0, 0]));
        let cli = Cli::try_parse_from([
            "systemk",
            "--disable-taint",
            "--max-pods",
            "7",
            "--kubeconfig",
            "/etc/systemk/kubeconfig",
        ])
        .unwrap();
        assert!(cli.agent.disable_taint);
        assert_eq!(cli.agent.max_pods, 7);
        let choice = cli.agent.kubeconfig_choice(|_| None);
        assert_eq!(
            choice,
            KubeconfigChoice::Explicit("/etc/systemk/kubeconfig".into())
        );
    }

    #[test]
    fn certificate_flags_parse_with_defaults() {
        let cli = Cli::try_parse_from(["systemk"]).unwrap();
        assert_eq!(cli.agent.cert_dir(), Path::new("/var/lib/systemk/pki"));
        assert_eq!(cli.agent.bootstrapped_kubeconfig(), None);
        assert!(cli.agent.serving_from_cluster(true));
        assert!(!cli.agent.serving_from_cluster(false));
        let cli = Cli::try_parse_from([
            "systemk",
            "--bootstrap-kubeconfig",
            "/etc/systemk/bootstrap-kubeconfig",
            "--cert-dir",
            "/var/lib/systemk/certs",
            "--rotate-server-certificates=false",
        ])
        .unwrap();
        assert_eq!(cli.agent.cert_dir(), Path::new("/var/lib/systemk/certs"));
        assert_eq!(
            cli.agent.bootstrapped_kubeconfig().as_deref(),
            Some(Path::new("/var/lib/systemk/kubeconfig"))
        );
        assert!(!cli.agent.serving_from_cluster(true));
        let cli = Cli::try_parse_from([
            "systemk",
            "--rotate-server-certificates",
            "--tls-cert-file",
            "/k.crt",
            "--tls-private-key-file",
            "/k.key",
        ])
        .unwrap();
        // A given certificate wins.
        assert!(!cli.agent.serving_from_cluster(true));
    }

    #[test]
    fn reservation_flags_parse_with_the_kubelets_defaults() {
        use crate::pod::eviction::Signal;
        let cli = Cli::try_parse_from(["systemk"]).unwrap();
        let reservation = cli.agent.reservation();
        assert_eq!(reservation.system, Resources::default());
        assert_eq!(reservation.kube, Resources::default());
        assert_eq!(
            reservation.thresholds,
            DEFAULT_EVICTION_HARD.parse().unwrap()
        );
        let cli = Cli::try_parse_from([
            "systemk",
            "--system-reserved",
            "cpu=100m,memory=1Gi,ephemeral-storage=1Gi,pid=1000",
            "--kube-reserved=memory=256Mi",
            "--eviction-hard",
            "memory.available<500Mi,pid.available<5%",
        ])
        .unwrap();
        let reservation = cli.agent.reservation();
        assert_eq!(reservation.system.pids, 1000);
        assert_eq!(reservation.kube.memory, 256 << 20);
        assert!(reservation.thresholds.get(Signal::PidAvailable).is_some());
        assert!(
            reservation
                .thresholds
                .get(Signal::NodeFsAvailable)
                .is_none()
        );
        let cli = Cli::try_parse_from(["systemk", "--eviction-hard="]).unwrap();
        assert_eq!(cli.agent.reservation().thresholds, Thresholds::none());
        for bad in [
            &["systemk", "--system-reserved", "gpu=1"][..],
            &["systemk", "--kube-reserved", "memory=-1"][..],
            &["systemk", "--eviction-hard", "memory.available>1Gi"][..],
        ] {
            assert!(Cli::try_parse_from(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn apt_lists_max_age_parses_units() {
        let cli = Cli::try_parse_from(["systemk"]).unwrap();
        assert_eq!(cli.agent.apt_lists_max_age.as_secs(), 3600);
        for (text, secs) in [
            ("0", 0),
            ("90", 90),
            ("90s", 90),
            ("15m", 900),
            ("2d", 172_800),
        ] {
            let cli = Cli::try_parse_from(["systemk", "--apt-lists-max-age", text]).unwrap();
            assert_eq!(cli.agent.apt_lists_max_age.as_secs(), secs, "{text}");
        }
        for bad in ["", "1x", "h", "-1s", "1.5h"] {
            assert!(
                Cli::try_parse_from(["systemk", "--apt-lists-max-age", bad]).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn gc_flags_parse_with_defaults() {
        let cli = Cli::try_parse_from(["systemk"]).unwrap();
        assert_eq!(
            cli.agent.gc_settings(),
            crate::package::GcSettings {
                unused_package_age: Some(std::time::Duration::from_secs(3600)),
                deb_cache_max_bytes: 1 << 30,
            }
        );
        let cli = Cli::try_parse_from([
            "systemk",
            "--image-minimum-gc-age",
            "0",
            "--deb-cache-max-size",
            "200M",
        ])
        .unwrap();
        assert_eq!(cli.agent.gc_settings().unused_package_age, None);
        assert_eq!(cli.agent.gc_settings().deb_cache_max_bytes, 200 << 20);
    }

    #[test]
    fn image_policy_flags_parse() {
        let cli = Cli::try_parse_from(["systemk"]).unwrap();
        assert_eq!(
            cli.agent.image_policy(),
            crate::package::ImagePolicy::default()
        );
        let cli = Cli::try_parse_from([
            "systemk",
            "--image-apt=false",
            "--image-https-hosts",
            "debs.example,127.0.0.1",
            "--image-require-sha256",
        ])
        .unwrap();
        let policy = cli.agent.image_policy();
        assert!(!policy.allow_apt && policy.require_sha256);
        assert_eq!(
            policy.https_hosts,
            Some(vec!["debs.example".to_owned(), "127.0.0.1".to_owned()])
        );
        let cli = Cli::try_parse_from(["systemk", "--image-https-hosts="]).unwrap();
        assert_eq!(cli.agent.image_policy().https_hosts, Some(Vec::new()));
    }

    #[test]
    fn kubelet_api_flags_parse() {
        let cli = Cli::try_parse_from([
            "systemk",
            "--kubelet-port",
            "0",
            "--address",
            "::",
            "--tls-cert-file",
            "/etc/systemk/kubelet.crt",
            "--tls-private-key-file",
            "/etc/systemk/kubelet.key",
            "--client-ca-file",
            "/etc/systemk/client-ca.crt",
        ])
        .unwrap();
        assert_eq!(cli.agent.kubelet_port, 0);
        assert!(cli.agent.address.is_unspecified() && cli.agent.address.is_ipv6());
        assert_eq!(
            cli.agent.client_ca_file.as_deref(),
            Some(Path::new("/etc/systemk/client-ca.crt"))
        );
        assert!(!cli.agent.authentication_token_webhook);
        assert_eq!(
            cli.agent.authentication_token_webhook_cache_ttl,
            crate::server::token::DEFAULT_CACHE_TTL
        );
        for args in [
            &["systemk", "--authentication-token-webhook"][..],
            &["systemk", "--authentication-token-webhook=true"][..],
            &["systemk", "--authentication-token-webhook", "true"][..],
        ] {
            let cli = Cli::try_parse_from(args).unwrap();
            assert!(cli.agent.authentication_token_webhook, "{args:?}");
        }
        let cli = Cli::try_parse_from([
            "systemk",
            "--authentication-token-webhook=false",
            "--authentication-token-webhook-cache-ttl",
            "30s",
        ])
        .unwrap();
        assert!(!cli.agent.authentication_token_webhook);
        assert_eq!(
            cli.agent.authentication_token_webhook_cache_ttl.as_secs(),
            30
        );
        // A certificate without its key (or the other way round) is a usage error.
        assert!(Cli::try_parse_from(["systemk", "--tls-cert-file", "/x.crt"]).is_err());
        assert!(Cli::try_parse_from(["systemk", "--tls-private-key-file", "/x.key"]).is_err());
    }
}
