//! `grpc` (kubelet `probe/grpc`): one grpc.health.v1 `Health/Check` over plaintext
//! HTTP/2, hand-built (5-byte gRPC framing and the two tiny protobuf messages) so no
//! gRPC stack is needed; `SERVING` passes. Layer 4.

use std::time::Duration;

use reqwest::Client;

use super::outcome::Outcome;

/// `HealthCheckResponse.ServingStatus.SERVING`.
const SERVING: u64 = 1;

/// Far more than a `HealthCheckResponse` needs.
const MAX_RESPONSE: usize = 1024;

/// A plaintext HTTP/2 client for one probe, kept by its worker.
pub fn client(timeout: Duration) -> reqwest::Result<Client> {
    Client::builder()
        .http2_prior_knowledge()
        .pool_max_idle_per_host(0)
        .timeout(timeout)
        .build()
}

/// One attempt against `host:port` asking about `service` (empty: the whole server).
pub async fn probe(client: &Client, host: &str, port: u16, service: &str) -> Outcome {
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    let url = format!("http://{host}:{port}/grpc.health.v1.Health/Check");
    let sent = client
        .post(&url)
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(request(service))
        .send()
        .await;
    let response = match sent {
        Ok(response) => response,
        Err(error) => {
            return Outcome::failure(format!(
                "timeout: failed to connect service \"{host}:{port}\": {error}"
            ));
        }
    };
    // A refusal comes as a trailers-only response: grpc-status in the headers.
    if let Some(code) = response
        .headers()
        .get("grpc-status")
        .filter(|code| code.as_bytes() != b"0")
    {
        let message = response
            .headers()
            .get("grpc-message")
            .map(|m| String::from_utf8_lossy(m.as_bytes()).into_owned())
            .unwrap_or_default();
        let code = String::from_utf8_lossy(code.as_bytes()).into_owned();
        return Outcome::failure(format!("rpc error: code = {code} desc = {message}"));
    }
    let mut response = response;
    let mut body = Vec::new();
    // The answer is a few bytes; a server that sends more is not read further.
    while body.len() < MAX_RESPONSE {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) => break,
            Err(error) => return Outcome::failure(format!("rpc error: {error}")),
        }
    }
    match status(&body) {
        Some(SERVING) => Outcome::success(""),
        other => Outcome::failure(format!(
            "service unhealthy (responded with {:?})",
            name(other.unwrap_or(0))
        )),
    }
}

/// A framed `HealthCheckRequest { service = 1 }`.
fn request(service: &str) -> Vec<u8> {
    let mut message = Vec::new();
    if !service.is_empty() {
        message.push(0x0a);
        varint(service.len() as u64, &mut message);
        message.extend_from_slice(service.as_bytes());
    }
    let mut framed = vec![0];
    framed.extend_from_slice(&(message.len() as u32).to_be_bytes());
    framed.extend_from_slice(&message);
    framed
}

fn varint(mut value: u64, out: &mut Vec<u8>) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// `HealthCheckResponse.status` (field 1, varint) from one framed message; a message
/// without it is `UNKNOWN` (0), as protobuf's default.
fn status(body: &[u8]) -> Option<u64> {
    let (&compressed, rest) = body.split_first()?;
    if compressed != 0 || rest.len() < 4 {
        return None;
    }
    let (length, message) = rest.split_at(4);
    let length = u32::from_be_bytes(length.try_into().ok()?) as usize;
    let mut message = message.get(..length)?;
    let mut status = 0;
    while let Some((&tag, rest)) = message.split_first() {
        let (value, rest) = read_varint(rest)?;
        match tag {
            0x08 => status = value,
            // Unknown varint fields are skipped; any other wire type is not expected here.
            tag if tag & 0x07 == 0 => {}
            _ => return None,
        }
        message = rest;
    }
    Some(status)
}

fn read_varint(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let mut value = 0u64;
    for (index, byte) in bytes.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * index);
        if byte & 0x80 == 0 {
            return Some((value, &bytes[index + 1..]));
        }
    }
    None
}

fn name(status: u64) -> &'static str {
    match status {
        1 => "SERVING",
        2 => "NOT_SERVING",
        3 => "SERVICE_UNKNOWN",
        _ => "UNKNOWN",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_framed_protobuf() {
        assert_eq!(request(""), [0, 0, 0, 0, 0]);
        assert_eq!(request("db"), [0, 0, 0, 0, 4, 0x0a, 2, b'd', b'b']);
        let long = "s".repeat(200);
        assert_eq!(&request(&long)[5..8], [0x0a, 0xc8, 0x01]);
    }

    #[test]
    fn responses_give_the_status() {
        assert_eq!(status(&[0, 0, 0, 0, 2, 0x08, 1]), Some(SERVING));
        assert_eq!(status(&[0, 0, 0, 0, 2, 0x08, 2]), Some(2));
        assert_eq!(status(&[0, 0, 0, 0, 0]), Some(0));
        assert_eq!(status(&[1, 0, 0, 0, 0]), None, "compressed");
        assert_eq!(status(&[0, 0, 0, 0, 9, 0x08]), None, "short");
        assert_eq!(status(&[0, 0, 0, 0, 2, 0x0a, 1]), None, "wrong wire type");
        assert_eq!(name(3), "SERVICE_UNKNOWN");
    }
}
