//! Which kubeconfig systemk joins the cluster with: an explicit `--kubeconfig` must load;
//! the defaults (`$KUBECONFIG`, then `~/.kube/config`) are used only when the file exists,
//! so a machine without a cluster runs its static pods without complaint. Pure: the
//! environment and the file system come in as values and a predicate.

use std::path::{Path, PathBuf};

/// The outcome of looking for a kubeconfig.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KubeconfigChoice {
    /// Given with `--kubeconfig`/`SYSTEMK_KUBECONFIG`: failing to load it is an error.
    Explicit(PathBuf),
    /// Found at a default place.
    Default(PathBuf),
    /// None: run static pods only.
    None,
}

impl KubeconfigChoice {
    /// The chosen file, if any.
    pub fn path(&self) -> Option<&Path> {
        match self {
            KubeconfigChoice::Explicit(path) | KubeconfigChoice::Default(path) => Some(path),
            KubeconfigChoice::None => None,
        }
    }
}

/// Picks the kubeconfig: the flag, else `$KUBECONFIG` (its first entry: kubectl accepts a
/// colon-separated list), else `<home>/.kube/config`; defaults only when `exists` says so.
pub fn choose_kubeconfig(
    flag: Option<&Path>,
    kubeconfig_env: Option<&str>,
    home: Option<&Path>,
    exists: impl Fn(&Path) -> bool,
) -> KubeconfigChoice {
    if let Some(path) = flag {
        return KubeconfigChoice::Explicit(path.to_owned());
    }
    let from_env = kubeconfig_env
        .and_then(|list| list.split(':').find(|entry| !entry.is_empty()))
        .map(PathBuf::from);
    let from_home = home.map(|home| home.join(".kube").join("config"));
    from_env
        .into_iter()
        .chain(from_home)
        .find(|path| exists(path))
        .map_or(KubeconfigChoice::None, KubeconfigChoice::Default)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none_exist(_: &Path) -> bool {
        false
    }

    fn all_exist(_: &Path) -> bool {
        true
    }

    #[test]
    fn flag_wins_even_when_missing() {
        let choice = choose_kubeconfig(Some(Path::new("/etc/k")), Some("/x"), None, none_exist);
        assert_eq!(choice, KubeconfigChoice::Explicit("/etc/k".into()));
    }

    #[test]
    fn env_before_home() {
        let choice = choose_kubeconfig(None, Some("/a:/b"), Some(Path::new("/root")), all_exist);
        assert_eq!(choice, KubeconfigChoice::Default("/a".into()));
    }

    #[test]
    fn home_when_env_file_is_missing() {
        let choice = choose_kubeconfig(None, Some("/missing"), Some(Path::new("/root")), |p| {
            p == Path::new("/root/.kube/config")
        });
        assert_eq!(
            choice,
            KubeconfigChoice::Default("/root/.kube/config".into())
        );
    }

    #[test]
    fn nothing_found_is_static_only() {
        let choice = choose_kubeconfig(None, None, Some(Path::new("/root")), none_exist);
        assert_eq!(choice, KubeconfigChoice::None);
        assert_eq!(choice.path(), None);
    }
}
