//! Message brokers, each checked with its protocol's handshake.

use std::time::Duration;

use super::{Case, Probe, run_case};

/// MQTT 3.1.1 CONNECT (clean session, empty client id) → CONNACK accepted.
#[tokio::test]
#[ignore = "package suite: scripts/package-suite"]
async fn mosquitto_accepts_an_mqtt_connect() {
    run_case(Case::new(
        "suite_mosquitto",
        "mosquitto",
        &["mosquitto"],
        Probe::Tcp {
            port: 1883,
            send: b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00",
            expect: b"\x20\x02\x00\x00",
        },
    ))
    .await;
}

/// The AMQP 0-9-1 protocol header → Connection.Start naming the product.
#[tokio::test]
#[ignore = "package suite: scripts/package-suite"]
async fn rabbitmq_starts_an_amqp_connection() {
    run_case(Case {
        probe_deadline: Duration::from_secs(120),
        ..Case::new(
            "suite_rabbitmq",
            "rabbitmq-server",
            &["rabbitmq-server"],
            Probe::Tcp {
                port: 5672,
                send: b"AMQP\x00\x00\x09\x01",
                expect: b"RabbitMQ",
            },
        )
    })
    .await;
}
