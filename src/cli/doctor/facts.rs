//! What `systemk doctor` looks at, as plain data: files as found (content, mode, where a
//! symlink leads) and what is wrong with a key file, kubeconfigs summarised (server, which
//! credentials), and the API server's answer to `--online`. [`read_file`] is the only I/O
//! here; the rest is pure.

use std::io::Read as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use k8s_openapi::jiff::Timestamp;
use kube::config::Kubeconfig;

/// Files larger than this are not certificates or kubeconfigs doctor reads (1 MiB).
const MAX_FILE_BYTES: u64 = 1 << 20;

/// Why a file's content is not there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileProblem {
    /// It does not exist (or a symlink leads nowhere).
    Missing,
    /// It exists but cannot be read.
    Unreadable(String),
    /// Larger than [`MAX_FILE_BYTES`].
    TooLarge,
}

/// A file as doctor found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileFacts {
    /// Where it was looked for.
    pub path: PathBuf,
    /// Its content, or why there is none.
    pub content: Result<Vec<u8>, FileProblem>,
    /// Its permission bits (of the file a symlink leads to).
    pub mode: Option<u32>,
    /// Where it leads, resolved, when it is a symlink.
    pub link_target: Option<PathBuf>,
    /// When it was last written: for a certificate the agent stores, when it arrived.
    pub modified: Option<Timestamp>,
}

impl FileFacts {
    /// A file present with `content` and `mode`, no symlink.
    #[cfg(test)]
    pub fn present(path: impl Into<PathBuf>, content: impl Into<Vec<u8>>, mode: u32) -> Self {
        Self {
            path: path.into(),
            content: Ok(content.into()),
            mode: Some(mode),
            link_target: None,
            modified: None,
        }
    }

    /// A file that is not there.
    #[cfg(test)]
    pub fn missing(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            content: Err(FileProblem::Missing),
            mode: None,
            link_target: None,
            modified: None,
        }
    }

    /// Whether the file is a symlink leading out of `dir` (compared resolved).
    pub fn leads_outside(&self, dir: &Path) -> Option<&Path> {
        let target = self.link_target.as_deref()?;
        (!target.starts_with(dir)).then_some(target)
    }

    /// Whether others than its owner may read or write it.
    pub fn open_to_others(&self) -> Option<u32> {
        self.mode.filter(|mode| mode & 0o077 != 0)
    }
}

/// Reads `path` (bounded), its mode and, for a symlink, where it leads.
pub fn read_file(path: &Path) -> FileFacts {
    let link_target = std::fs::symlink_metadata(path)
        .ok()
        .filter(|meta| meta.file_type().is_symlink())
        .map(|_| {
            std::fs::canonicalize(path)
                .or_else(|_| std::fs::read_link(path))
                .unwrap_or_default()
        });
    let opened = std::fs::File::open(path).and_then(|file| {
        let meta = file.metadata()?;
        let modified = meta
            .modified()
            .ok()
            .and_then(|at| Timestamp::try_from(at).ok());
        let mode = meta.permissions().mode() & 0o7777;
        let mut content = Vec::new();
        file.take(MAX_FILE_BYTES + 1).read_to_end(&mut content)?;
        Ok((mode, modified, content))
    });
    let (content, mode, modified) = match opened {
        Ok((mode, modified, content)) if content.len() as u64 > MAX_FILE_BYTES => {
            (Err(FileProblem::TooLarge), Some(mode), modified)
        }
        Ok((mode, modified, content)) => (Ok(content), Some(mode), modified),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            (Err(FileProblem::Missing), None, None)
        }
        Err(err) => (Err(FileProblem::Unreadable(err.to_string())), None, None),
    };
    FileFacts {
        path: path.to_owned(),
        content,
        mode,
        link_target,
        modified,
    }
}

/// How a kubeconfig's current user authenticates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// A client certificate: its file (or `None` when inline data).
    ClientCertificate(Option<PathBuf>),
    /// A bearer token written in the kubeconfig.
    Token(String),
    /// A bearer token in a file.
    TokenFile(PathBuf),
    /// Something else (exec plugin, auth provider, basic auth): its kind.
    Other(&'static str),
    /// No credentials.
    None,
}

/// A kubeconfig's current context, summarised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeconfigSummary {
    /// The API server's URL.
    pub server: Option<String>,
    /// The current user's credentials.
    pub credentials: Credentials,
}

/// Summarises a kubeconfig's text; relative file names are resolved against `dir`, the
/// kubeconfig's directory, as kubectl does.
pub fn summarize_kubeconfig(text: &str, dir: &Path) -> Result<KubeconfigSummary, String> {
    let config = Kubeconfig::from_yaml(text).map_err(|err| format!("does not parse: {err}"))?;
    let current = config
        .current_context
        .as_deref()
        .ok_or("it has no current-context")?;
    let context = config
        .contexts
        .iter()
        .find(|named| named.name == current)
        .and_then(|named| named.context.as_ref())
        .ok_or_else(|| format!("its current-context {current} is missing"))?;
    let server = config
        .clusters
        .iter()
        .find(|named| named.name == context.cluster)
        .and_then(|named| named.cluster.as_ref())
        .and_then(|cluster| cluster.server.clone());
    let user = context.user.as_deref().and_then(|name| {
        config
            .auth_infos
            .iter()
            .find(|named| named.name == name)
            .and_then(|named| named.auth_info.as_ref())
    });
    let credentials = match user {
        None => Credentials::None,
        Some(user) => {
            if let Some(file) = &user.client_certificate {
                Credentials::ClientCertificate(Some(dir.join(file)))
            } else if user.client_certificate_data.is_some() {
                Credentials::ClientCertificate(None)
            } else if user.token.is_some() {
                // kube keeps the token secret; its serialisation is the way to read it.
                let token = serde_json::to_value(user)
                    .ok()
                    .and_then(|value| value["token"].as_str().map(str::to_owned))
                    .unwrap_or_default();
                Credentials::Token(token)
            } else if let Some(file) = &user.token_file {
                Credentials::TokenFile(dir.join(file))
            } else if user.exec.is_some() {
                Credentials::Other("an exec plugin")
            } else if user.auth_provider.is_some() {
                Credentials::Other("an auth provider")
            } else if user.username.is_some() {
                Credentials::Other("basic auth")
            } else {
                Credentials::None
            }
        }
    };
    Ok(KubeconfigSummary {
        server,
        credentials,
    })
}

/// Whether `token` has a bootstrap token's shape, `[a-z0-9]{6}.[a-z0-9]{16}`
/// (k8s.io/cluster-bootstrap/token/api `BootstrapTokenPattern`).
pub fn is_bootstrap_token(token: &str) -> bool {
    let part = |text: &str, len: usize| {
        text.len() == len
            && text
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    token
        .split_once('.')
        .is_some_and(|(id, secret)| part(id, 6) && part(secret, 16))
}

/// The API server's answer to a harmless request with the bootstrap token (`--online`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnlineAnswer {
    /// It answered: the token authenticates.
    Accepted,
    /// 401: the token does not authenticate (expired, deleted, wrong).
    Unauthorized,
    /// 403: it authenticates but may not do the harmless request.
    Forbidden(String),
    /// No answer (network, TLS) or another status.
    Unreachable(String),
}

/// What is wrong with a file holding a private key: a symlink out of `dir`, a mode
/// others may read.
pub fn key_file_warnings(file: &FileFacts, dir: &Path) -> Vec<String> {
    let mut warnings = Vec::new();
    if let Some(target) = file.leads_outside(dir) {
        warnings.push(format!(
            "it is a symlink to {}, outside {}: the agent replaces it with a file at the next renewal; keep the node's keys in its certificate directory",
            target.display(),
            dir.display()
        ));
    }
    if let Some(mode) = file.open_to_others() {
        warnings.push(format!(
            "its private key is readable by others ({}): the kubelet keeps keys 0600 (chmod 0600 {})",
            mode_text(Some(mode)),
            file.path.display()
        ));
    }
    warnings
}

/// Why a file's content is missing, in words.
pub fn problem_text(problem: &FileProblem) -> String {
    match problem {
        FileProblem::Missing => "missing".to_owned(),
        FileProblem::Unreadable(err) => format!("unreadable: {err}"),
        FileProblem::TooLarge => "larger than 1 MiB: not a certificate or kubeconfig".to_owned(),
    }
}

pub fn mode_text(mode: Option<u32>) -> String {
    mode.map_or_else(
        || "mode unknown".to_owned(),
        |mode| format!("mode {mode:04o}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_token_shape() {
        assert!(is_bootstrap_token("abcdef.0123456789abcdef"));
        for bad in [
            "",
            "abcdef",
            "ABCDEF.0123456789abcdef",
            "abcde.0123456789abcdef",
            "abcdef.0123456789abcde",
            "abcdef.0123456789abcdef.x",
            "abcdéf.0123456789abcdef",
        ] {
            assert!(!is_bootstrap_token(bad), "{bad}");
        }
    }

    #[test]
    fn kubeconfig_summary_names_server_and_credentials() {
        let text = "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://10.0.0.1:6443\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\ncurrent-context: x\nusers:\n- name: u\n  user:\n    client-certificate: pki/node.pem\n    client-key: pki/node.pem\n";
        let summary = summarize_kubeconfig(text, Path::new("/etc/systemk")).unwrap();
        assert_eq!(summary.server.as_deref(), Some("https://10.0.0.1:6443"));
        assert_eq!(
            summary.credentials,
            Credentials::ClientCertificate(Some("/etc/systemk/pki/node.pem".into()))
        );
        let token = text.replace(
            "    client-certificate: pki/node.pem\n    client-key: pki/node.pem\n",
            "    token: abcdef.0123456789abcdef\n",
        );
        let summary = summarize_kubeconfig(&token, Path::new("/")).unwrap();
        assert_eq!(
            summary.credentials,
            Credentials::Token("abcdef.0123456789abcdef".into())
        );
        assert!(summarize_kubeconfig("{{{", Path::new("/")).is_err());
        let no_context = text.replace("current-context: x\n", "");
        assert!(summarize_kubeconfig(&no_context, Path::new("/")).is_err());
    }

    #[test]
    fn symlinks_and_modes() {
        let dir = tempfile::tempdir().unwrap();
        let inside = dir.path().join("pki");
        std::fs::create_dir(&inside).unwrap();
        let outside = dir.path().join("elsewhere.pem");
        std::fs::write(&outside, "x").unwrap();
        let link = inside.join("kubelet-client-current.pem");
        std::os::unix::fs::symlink(&outside, &link).unwrap();
        let facts = read_file(&link);
        let canonical_dir = std::fs::canonicalize(&inside).unwrap();
        assert_eq!(
            facts.leads_outside(&canonical_dir),
            Some(std::fs::canonicalize(&outside).unwrap().as_path())
        );
        assert_eq!(facts.content, Ok(b"x".to_vec()));
        let dangling = inside.join("dangling.pem");
        std::os::unix::fs::symlink(dir.path().join("gone"), &dangling).unwrap();
        let facts = read_file(&dangling);
        assert_eq!(facts.content, Err(FileProblem::Missing));
        assert!(facts.link_target.is_some());
        assert_eq!(
            read_file(&inside.join("none")).content,
            Err(FileProblem::Missing)
        );
        assert_eq!(
            FileFacts::present("/k", "", 0o644).open_to_others(),
            Some(0o644)
        );
        assert_eq!(FileFacts::present("/k", "", 0o600).open_to_others(), None);
    }
}
