//! Tests of the reconciler's bookkeeping (dispatch, gating, panic recovery, waiting for
//! another pod's unit names, retries) driven with plain values and explicit instants, and
//! of a pass task that panics.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{
    ConfigMapEnvSource, Container, EnvFromSource, Pod, PodSpec, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use tokio::time::Instant;

use super::bookkeeping::{Bookkeeping, Dispatch};
use super::{Joined, MAX_CONCURRENT_PASSES, Passes};
use crate::pod::container_unit::unit_name;
use crate::pod::desired::{SourceId, SourceUpdate};
use crate::pod::error::Error;
use crate::pod::objects::{ObjectChange, ObjectKind};
use crate::pod::progress::Progress;
use crate::pod::progress_channel::{ProgressReceiver, progress_channel};
use crate::pod::worker::{Pass, PodState};
use crate::unit::UnitName;

/// The first retry of a failed pass: `failure::RETRY` starts at 10 s, without jitter.
const FIRST_RETRY: Duration = Duration::from_secs(10);

/// A pod `default/<name>` with one container `app`.
fn pod(name: &str, uid: &str) -> Arc<Pod> {
    Arc::new(Pod {
        metadata: ObjectMeta {
            namespace: Some("default".to_owned()),
            name: Some(name.to_owned()),
            uid: Some(uid.to_owned()),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "app".to_owned(),
                ..Container::default()
            }],
            ..PodSpec::default()
        }),
        ..Pod::default()
    })
}

/// The unit of the container `app` of `default/<name>`.
fn unit(name: &str) -> UnitName {
    let pod = pod(name, "any");
    let spec = pod.spec.as_ref().expect("the test pod has a spec");
    unit_name(&pod, &spec.containers[0]).expect("a valid unit name")
}

fn set(source: SourceId, pods: &[&Arc<Pod>]) -> SourceUpdate {
    SourceUpdate::set(source, pods.iter().map(|pod| Arc::clone(pod)).collect())
}

fn book(sources: &[SourceId]) -> (Bookkeeping, ProgressReceiver) {
    let (sender, receiver) = progress_channel(16);
    (Bookkeeping::new(sources.to_vec(), sender), receiver)
}

fn uids(dispatched: &[Dispatch]) -> Vec<&str> {
    dispatched.iter().map(|d| d.uid.as_str()).collect()
}

/// A reconcile pass that found nothing to wake for and no new status.
fn ran() -> crate::pod::Result<Option<Pass>> {
    Ok(Some(Pass {
        wake: None,
        status_changed: false,
    }))
}

/// Everything sent so far.
fn sent(progress: &mut ProgressReceiver) -> Vec<Progress> {
    std::iter::from_fn(|| progress.try_recv()).collect()
}

fn transient() -> Error {
    Error::Io {
        path: "/var/lib/systemk/pods/x".into(),
        source: std::io::Error::other("no space left on device"),
    }
}

fn permanent() -> Error {
    Error::InvalidPod {
        why: "it asks for something systemk cannot do".to_owned(),
    }
}

mod admission;
mod changes;
mod dispatch;
mod failures;

/// A node every test pod fits, its Node known.
fn roomy_node() -> crate::pod::admission::NodeView {
    crate::pod::admission::NodeView {
        name: "node".to_owned(),
        allocatable: crate::pod::admission::Allocatable {
            pods: 1000,
            cpu_millis: 64_000,
            memory_bytes: 1 << 40,
            ..Default::default()
        },
        from_api: true,
        ..Default::default()
    }
}

impl Bookkeeping {
    /// Admission, then dispatch: one turn of the reconciler's loop.
    fn dispatch_admitted(&mut self) -> Vec<Dispatch> {
        self.admit_new(&roomy_node(), k8s_openapi::jiff::Timestamp::UNIX_EPOCH);
        self.dispatch(0)
    }
}
