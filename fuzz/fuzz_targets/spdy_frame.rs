//! Arbitrary bytes through the SPDY frame decoder, and every frame it accepts back through the
//! encoder: no panic, no frame over the limit, and re-encoding gives bytes that decode to the
//! same frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use systemk::server::stream::spdy::frame;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Ok(Some((decoded, used))) = frame::decode(rest, 1 << 16) {
        assert!(used >= frame::HEADER_LEN && used <= rest.len());
        let mut encoded = Vec::new();
        frame::encode(&decoded, &mut encoded).expect("a decoded frame encodes");
        let again = frame::decode(&encoded, 1 << 16).expect("re-encoded frame decodes");
        assert_eq!(again.map(|(f, _)| f), Some(decoded));
        rest = &rest[used..];
    }
});
