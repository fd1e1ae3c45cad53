use futures::future::BoxFuture;
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::*;
use crate::pod::hook::container_hooks;

/// Answers every command with a fixed end.
struct Fixed(Ended, &'static str);

impl Runner for Fixed {
    fn run(
        &self,
        _: &str,
        _: &[String],
        _: Duration,
        _: usize,
    ) -> BoxFuture<'static, Result<(Ended, Vec<u8>), String>> {
        let answer = (self.0, self.1.as_bytes().to_vec());
        Box::pin(async move { Ok(answer) })
    }
}

fn hook(lifecycle: serde_json::Value) -> Hook {
    let container = serde_json::from_value(json!({
        "name": "main", "image": "/bin/sleep", "lifecycle": lifecycle,
    }))
    .unwrap();
    container_hooks(&container).unwrap().pre_stop.unwrap()
}

fn pod() -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "shop", "uid": "u-1"},
    }))
    .unwrap()
}

#[tokio::test]
async fn exec_hooks_pass_on_zero_and_fail_in_the_kubelets_words() {
    let hook = hook(json!({"preStop": {"exec": {"command": ["/bin/sh", "-c", "exit 3"]}}}));
    let reach = |runner| Reach {
        runner,
        unit: "u.service",
        pod_ip: "127.0.0.1",
    };
    let ok = Fixed(Ended::Exited(0), "");
    assert_eq!(
        run(&hook, &reach(&ok), Duration::from_secs(1)).await,
        Ok(())
    );
    let bad = Fixed(Ended::Exited(3), "no drain");
    let failed = run(&hook, &reach(&bad), Duration::from_secs(1))
        .await
        .unwrap_err();
    assert_eq!(
        message(&hook, "main", &pod(), &failed),
        "Exec lifecycle hook ([/bin/sh -c exit 3]) for Container \"main\" in Pod \
         \"web_shop(u-1)\" failed - error: command '/bin/sh -c exit 3' exited with 3: , \
         message: \"no drain\""
    );
    let hung = Fixed(Ended::TimedOut, "");
    let failed = run(&hook, &reach(&hung), Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(failed.error.contains("timed out"), "{failed:?}");
}

#[tokio::test]
async fn http_hooks_pass_on_any_answer_and_fail_when_nothing_answers() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut head = vec![0; 4096];
        let read = stream.read(&mut head).await.unwrap();
        stream
            .write_all(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n")
            .await
            .unwrap();
        String::from_utf8_lossy(&head[..read]).into_owned()
    });
    let hook = hook(json!({"preStop": {"httpGet": {"port": port, "path": "/drain"}}}));
    let runner = Fixed(Ended::Exited(0), "");
    let reach = Reach {
        runner: &runner,
        unit: "u.service",
        pod_ip: "127.0.0.1",
    };
    assert_eq!(run(&hook, &reach, Duration::from_secs(5)).await, Ok(()));
    let head = server.await.unwrap();
    assert!(head.starts_with("GET /drain HTTP/1.1"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("user-agent: kube-lifecycle/1.33"),
        "{head}"
    );
    // Nothing listens there any more.
    let failed = run(&hook, &reach, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(
        message(&hook, "main", &pod(), &failed).starts_with("HTTP lifecycle hook (/drain)"),
        "{failed:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn sleep_hooks_end_at_the_timeout() {
    let hook = hook(json!({"preStop": {"sleep": {"seconds": 600}}}));
    let runner = Fixed(Ended::Exited(0), "");
    let reach = Reach {
        runner: &runner,
        unit: "u.service",
        pod_ip: "127.0.0.1",
    };
    let started = tokio::time::Instant::now();
    assert_eq!(run(&hook, &reach, Duration::from_secs(30)).await, Ok(()));
    assert_eq!(started.elapsed(), Duration::from_secs(30));
}
