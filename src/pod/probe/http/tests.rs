use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::*;

/// A one-connection-per-answer HTTP/1.1 server: sends each canned answer in turn and
/// passes on each request head it read.
async fn server(answers: Vec<String>) -> (u16, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (heads, seen) = mpsc::channel(8);
    tokio::spawn(async move {
        for answer in answers {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut head = vec![0; 4096];
            let read = stream.read(&mut head).await.unwrap();
            let _ = heads
                .send(String::from_utf8_lossy(&head[..read]).into())
                .await;
            let answer = answer.replace("{port}", &port.to_string());
            stream.write_all(answer.as_bytes()).await.unwrap();
        }
    });
    (port, seen)
}

fn answer(status: &str, extra: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

async fn get(port: u16, path: &str, headers: &[(String, String)]) -> Outcome {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = client(Duration::from_secs(2)).unwrap();
    let request = Request {
        scheme: Scheme::Http,
        host: "127.0.0.1",
        port,
        path,
        headers,
    };
    probe(&client, &request).await
}

#[tokio::test]
async fn success_sends_the_kubelets_user_agent_and_the_headers() {
    let (port, mut heads) = server(vec![answer("200 OK", "", "fine")]).await;
    let headers = [("X-Probe".to_string(), "yes".to_string())];
    let outcome = get(port, "/healthz?x=1", &headers).await;
    assert_eq!(outcome, Outcome::success("fine"));
    let head = heads.recv().await.unwrap().to_lowercase();
    assert!(head.starts_with("get /healthz?x=1 http/1.1\r\n"), "{head}");
    assert!(head.contains("user-agent: kube-probe/1.33\r\n"), "{head}");
    assert!(head.contains("x-probe: yes\r\n"), "{head}");
}

#[tokio::test]
async fn status_400_and_above_fails_with_the_kubelets_message() {
    let (port, _heads) = server(vec![answer("503 Service Unavailable", "", "down")]).await;
    let outcome = get(port, "/", &[]).await;
    assert_eq!(
        outcome,
        Outcome::failure("HTTP probe failed with statuscode: 503")
    );
}

#[tokio::test]
async fn same_host_redirects_are_followed_other_hosts_end_with_a_warning() {
    let (port, _heads) = server(vec![
        answer(
            "302 Found",
            "Location: http://127.0.0.1:{port}/next\r\n",
            "",
        ),
        answer("200 OK", "", "arrived"),
    ])
    .await;
    assert_eq!(get(port, "/", &[]).await, Outcome::success("arrived"));
    let (port, _heads) = server(vec![answer(
        "302 Found",
        "Location: http://example.invalid/\r\n",
        "moved",
    )])
    .await;
    let outcome = get(port, "/", &[]).await;
    assert_eq!(outcome.result, Result::Warning);
    assert!(outcome.passed());
    assert_eq!(
        outcome.output,
        "Probe terminated redirects, Response body: moved"
    );
}

#[tokio::test]
async fn the_body_is_bounded_and_a_closed_port_fails() {
    let (port, _heads) = server(vec![answer("200 OK", "", &"x".repeat(3 * MAX_OUTPUT))]).await;
    assert_eq!(get(port, "/", &[]).await.output.len(), MAX_OUTPUT);
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let outcome = get(port, "/", &[]).await;
    assert_eq!(outcome.result, Result::Failure);
    assert!(
        outcome.output.starts_with("Get \"http://127.0.0.1:"),
        "{}",
        outcome.output
    );
}
