//! The async forms of [`PodDirs`]' file work, for the reconciler's passes: each runs the
//! sync method of the same name on the blocking pool ([`off_runtime`]). Layer 4.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

use super::PodDirs;
use crate::pod::blocking::off_runtime;
use crate::pod::error::Result;
use crate::unit::NodeSecurity;

impl PodDirs {
    /// [`PodDirs::prepare`] off the runtime; also says whether the pod's runtime
    /// directory was missing before (a fresh boot emptied the tmpfs).
    pub async fn prepare_async(
        &self,
        pod: &Arc<Pod>,
        uid: &str,
        security: &Arc<NodeSecurity>,
    ) -> Result<bool> {
        let (dirs, pod, uid, security) =
            (self.clone(), pod.clone(), uid.to_owned(), security.clone());
        off_runtime(&self.pod_dir(&uid), move || {
            let runtime_fresh = !dirs.runtime_pod_dir(&uid).is_dir();
            dirs.prepare(&pod, &uid, &security).map(|()| runtime_fresh)
        })
        .await
    }

    /// [`PodDirs::save_pod`] off the runtime.
    pub async fn save_pod_async(&self, uid: &str, pod: Pod) -> Result<()> {
        let (dirs, uid) = (self.clone(), uid.to_owned());
        off_runtime(&self.pod_dir(&uid), move || dirs.save_pod(&uid, &pod)).await
    }

    /// [`PodDirs::remove`] off the runtime.
    pub async fn remove_async(&self, uid: &str) -> Result<()> {
        let (dirs, uid) = (self.clone(), uid.to_owned());
        off_runtime(&self.pod_dir(&uid), move || dirs.remove(&uid)).await
    }

    /// [`PodDirs::list`] off the runtime.
    pub async fn list_async(&self) -> Result<Vec<String>> {
        let dirs = self.clone();
        off_runtime(&self.pods, move || dirs.list()).await
    }
}
