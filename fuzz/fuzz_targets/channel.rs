//! Arbitrary WebSocket message payloads through every channel protocol's decoder, and what
//! decodes back through its encoder.
#![no_main]

use libfuzzer_sys::fuzz_target;
use systemk::server::stream::channel::{ChannelProtocol, Inbound, Outbound};

fuzz_target!(|data: &[u8]| {
    for name in [
        "v5.channel.k8s.io",
        "v4.base64.channel.k8s.io",
        "channel.k8s.io",
    ] {
        let Some(protocol) = ChannelProtocol::negotiate(Some(name)) else {
            continue;
        };
        if let Ok(Some(Inbound::Data { channel, data })) = protocol.decode(data) {
            let payload = match protocol
                .encode(channel, &data)
                .expect("decoded data encodes")
            {
                Outbound::Binary(bytes) => bytes,
                Outbound::Text(text) => text.into_bytes(),
            };
            let again = protocol
                .decode(&payload)
                .expect("re-encoded message decodes");
            assert_eq!(again, Some(Inbound::Data { channel, data }));
        }
    }
});
