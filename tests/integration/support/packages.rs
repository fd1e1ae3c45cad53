//! Real packages for tests: building a `.deb` with `dpkg-deb`, serving `.deb` files over
//! HTTPS on loopback with a CA of the test's own, asking dpkg what is installed, and
//! purging what a test installed, also when it fails.

use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Purges the packages when dropped, so a failing test leaves the host as it found it.
pub struct Purge(pub Vec<&'static str>);

impl Drop for Purge {
    fn drop(&mut self) {
        let known: Vec<_> = self.0.iter().filter(|p| known_to_dpkg(p)).collect();
        if known.is_empty() {
            return;
        }
        // Other test runs may hold the dpkg lock: wait for it rather than fail.
        let status = Command::new("apt-get")
            .args(["purge", "-y", "-q", "-o", "DPkg::Lock::Timeout=300"])
            .args(&known)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(std::process::Stdio::null())
            .status();
        // No assert: a panic while the test already panics would abort the test binary.
        if !status.is_ok_and(|s| s.success()) {
            eprintln!("purging {:?} failed: clean up by hand", self.0);
        }
        // systemd-tmpfiles in uptimed's postinst makes /run/uptimed, which purge keeps.
        for package in &self.0 {
            let _ = std::fs::remove_dir(Path::new("/run").join(package));
        }
    }
}

/// dpkg has a record of it (installed, half-installed or config files left).
pub fn known_to_dpkg(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", package])
        .output()
        .is_ok_and(|out| out.status.success())
}

/// The installed version of `package`, if it is installed.
pub fn installed_version(package: &str) -> Option<String> {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${Status}\t${Version}", package])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let (status, version) = text.split_once('\t')?;
    status.ends_with(" installed").then(|| version.to_owned())
}

/// Fails the test when one of `packages` is installed.
pub fn assert_not_installed(packages: &[&str]) {
    for package in packages {
        assert_eq!(
            installed_version(package),
            None,
            "{package} must not be installed before the test"
        );
    }
}

/// One file a test package ships.
pub struct DebFile<'a> {
    /// Absolute path on the target system.
    pub path: &'a str,
    /// Its content.
    pub content: &'a str,
    /// Its mode.
    pub mode: u32,
}

/// Builds `<package>` version `1.0-1` for all architectures with dpkg-deb in `dir`,
/// shipping `files`, and returns the `.deb`'s bytes.
pub fn build_deb(dir: &Path, package: &str, depends: Option<&str>, files: &[DebFile]) -> Vec<u8> {
    let root = dir.join(package);
    std::fs::create_dir_all(root.join("DEBIAN")).unwrap();
    let depends = depends
        .map(|d| format!("Depends: {d}\n"))
        .unwrap_or_default();
    std::fs::write(
        root.join("DEBIAN/control"),
        format!(
            "Package: {package}\nVersion: 1.0-1\nArchitecture: all\nMaintainer: systemk tests <t@example.invalid>\n\
             {depends}Description: systemk integration test package\n"
        ),
    )
    .unwrap();
    for file in files {
        let path = root.join(file.path.trim_start_matches('/'));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, file.content).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(file.mode)).unwrap();
    }
    let deb = dir.join(format!("{package}.deb"));
    let status = Command::new("dpkg-deb")
        .args(["--root-owner-group", "--build"])
        .arg(&root)
        .arg(&deb)
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    std::fs::read(deb).unwrap()
}

/// An HTTPS server on 127.0.0.1 with a certificate from its own CA, counting requests.
/// It serves the body of the first route whose key the request path contains, else
/// the default body.
pub struct DebServer {
    addr: SocketAddr,
    ca_pem: String,
    requests: Arc<AtomicUsize>,
    handle: axum_server::Handle<SocketAddr>,
}

impl DebServer {
    /// Starts serving `default` at every path, except paths containing a route's key.
    pub async fn start(default: Vec<u8>, routes: Vec<(String, Vec<u8>)>) -> Self {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "systemk test CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let server_key = rcgen::KeyPair::generate().unwrap();
        let mut server_params =
            rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        server_params
            .subject_alt_names
            .push(rcgen::SanType::IpAddress(Ipv4Addr::LOCALHOST.into()));
        let server_cert = server_params.signed_by(&server_key, &issuer).unwrap();
        let tls = axum_server::tls_rustls::RustlsConfig::from_pem(
            server_cert.pem().into_bytes(),
            server_key.serialize_pem().into_bytes(),
        )
        .await
        .unwrap();

        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        let (default, routes) = (Arc::new(default), Arc::new(routes));
        let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
            let (counter, default, routes) = (counter.clone(), default.clone(), routes.clone());
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                routes
                    .iter()
                    .find(|(key, _)| uri.path().contains(key.as_str()))
                    .map_or_else(|| default.as_ref().clone(), |(_, body)| body.clone())
            }
        });
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = axum_server::Handle::new();
        let server = axum_server::from_tcp_rustls(listener, tls)
            .unwrap()
            .handle(handle.clone());
        tokio::spawn(server.serve(app.into_make_service()));
        Self {
            addr,
            ca_pem: ca_cert.pem(),
            requests,
            handle,
        }
    }

    /// Serves `deb` of `package` (as built by [`build_deb`]) and returns the server with
    /// the `@sha256:`-pinned image a pod names it by.
    pub async fn pinned(package: &str, deb: Vec<u8>) -> (Self, String) {
        let sha = hex_sha256(&deb);
        let server = Self::start(deb, Vec::new()).await;
        let url = server.url(&format!("{package}_1.0-1_all.deb"));
        (server, format!("{url}@sha256:{sha}"))
    }

    /// The URL of `file` on this server.
    pub fn url(&self, file: &str) -> String {
        format!("https://{}/pool/{file}", self.addr)
    }

    /// The PEM of the CA that signed the server's certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// How many requests the server answered so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for DebServer {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

/// The lowercase hex sha256 of `bytes`.
pub fn hex_sha256(bytes: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes))
}

/// The names in `dir`, sorted.
pub fn dir_entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Installs an image as a container of one test pod would, with `IfNotPresent`: the
/// package layer's tests need no pod, only a holder.
pub trait InstallOnce {
    /// `install(image, IfNotPresent, test holder)`.
    fn install_one(
        &self,
        image: &systemk::package::ImageRef,
    ) -> impl std::future::Future<Output = Result<systemk::package::Installed, systemk::package::Error>>;
}

impl InstallOnce for systemk::package::Installer {
    async fn install_one(
        &self,
        image: &systemk::package::ImageRef,
    ) -> Result<systemk::package::Installed, systemk::package::Error> {
        self.install(
            image,
            systemk::package::PullPolicy::IfNotPresent,
            &test_holder("test-pod"),
        )
        .await
    }
}

/// A holder named `default/<pod>`, keyed by the pod's name.
pub fn test_holder(pod: &str) -> systemk::package::Holder {
    systemk::package::Holder {
        owner: format!("uid-{pod}"),
        slot: "c".into(),
        name: format!("default/{pod}"),
    }
}

/// Holds the dpkg frontend lock the way apt does (a POSIX record lock, here from a child
/// process) until dropped.
pub struct AdminHoldsLock(std::process::Child);

impl AdminHoldsLock {
    pub fn start() -> Self {
        let mut child = Command::new("python3")
            .args([
                "-c",
                "import fcntl,os,sys\nfd=os.open('/var/lib/dpkg/lock-frontend',os.O_RDWR)\n\
                 fcntl.lockf(fd,fcntl.LOCK_EX)\nprint('held',flush=True)\nsys.stdin.read()\n",
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(line.trim(), "held");
        Self(child)
    }
}

impl Drop for AdminHoldsLock {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
}
