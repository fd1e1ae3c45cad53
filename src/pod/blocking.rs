//! Running blocking file work off the async runtime. The pod layer's file functions
//! (directories, `pod.json`, restart records, environment files) stay plain sync functions,
//! testable without a runtime; the async passes call them through [`off_runtime`], one
//! call per coarse step (a whole pod-directory preparation, not one syscall), so a slow
//! disk never stalls the runtime's worker threads that also serve D-Bus signals and the
//! kubelet API. Layer 4.

use std::path::Path;

use super::error::{Error, Result};

/// Runs `work` on tokio's blocking pool and waits for it. A panic in `work` resumes in
/// the caller, exactly as if `work` had run inline (the reconciler recovers from a
/// panicking pass); a blocking task can only be cancelled when the runtime shuts down,
/// which is reported as an I/O error on `path`.
pub(crate) async fn off_runtime<T, F>(path: &Path, work: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(err) => match err.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(_) => Err(Error::Io {
                path: path.to_owned(),
                source: std::io::Error::other("the runtime is shutting down"),
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn returns_what_the_work_returns() {
        let path = Path::new("/nowhere");
        assert_eq!(off_runtime(path, || Ok(7)).await.unwrap(), 7);
        let err = off_runtime::<(), _>(path, || {
            Err(Error::InvalidPod {
                why: "test".to_owned(),
            })
        })
        .await
        .unwrap_err();
        assert!(matches!(err, Error::InvalidPod { .. }));
    }

    #[tokio::test]
    async fn a_panic_resumes_in_the_caller() {
        let task = tokio::spawn(off_runtime::<(), _>(Path::new("/nowhere"), || {
            panic!("disk on fire")
        }));
        let err = task.await.unwrap_err();
        assert!(err.is_panic());
        let message = err.into_panic();
        assert_eq!(message.downcast_ref::<&str>(), Some(&"disk on fire"));
    }
}
