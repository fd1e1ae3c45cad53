use flate2::{Compress, Compression, FlushCompress};

use super::*;
use crate::server::stream::spdy::frame::{self, Frame};
use crate::server::stream::spdy::testing::go_frames;

fn go_header_blocks(name: &str) -> Vec<(String, Vec<u8>)> {
    go_frames(name)
        .into_iter()
        .filter_map(
            |(comment, bytes)| match frame::decode(&bytes, frame::MAX_LENGTH) {
                Ok(Some((Frame::SynStream { header_block, .. }, _))) => {
                    Some((comment, header_block))
                }
                _ => None,
            },
        )
        .collect()
}

#[test]
fn the_dictionary_is_the_one_go_names_in_its_zlib_header() {
    // DICTID in the zlib header of Go's first block: the dictionary's Adler-32.
    let (_, first) = &go_header_blocks("exec")[0];
    let mut adler = flate2::Decompress::new(true);
    let err = adler.decompress_vec(first, &mut Vec::with_capacity(64), FlushDecompress::Sync);
    assert_eq!(
        err.err().and_then(|e| e.needs_dictionary()),
        Some(0xe3c6_a7c2)
    );
    assert_eq!(DICTIONARY.len(), 1423);
}

#[test]
fn go_header_blocks_inflate_in_order_on_one_stream() {
    let mut inflater = Inflater::new(64 << 10);
    let types: Vec<String> = go_header_blocks("exec")
        .iter()
        .map(|(comment, block)| {
            let headers = inflater.inflate(block).expect(comment);
            headers.get("streamType").expect(comment).to_owned()
        })
        .collect();
    assert_eq!(types, ["error", "stdin", "stdout", "stderr"]);
}

#[test]
fn go_port_forward_headers_read_as_the_kubelet_reads_them() {
    let mut inflater = Inflater::new(64 << 10);
    let blocks = go_header_blocks("portforward");
    let error = inflater
        .inflate(&blocks[0].1)
        .expect("error stream headers");
    let data = inflater.inflate(&blocks[1].1).expect("data stream headers");
    assert_eq!(
        [
            error.get("streamtype"),
            error.get("port"),
            error.get("requestid")
        ],
        [Some("error"), Some("8080"), Some("0")]
    );
    assert_eq!(
        [data.get("streamType"), data.get("requestID")],
        [Some("data"), Some("0")]
    );
}

#[test]
fn blocks_round_trip_across_one_connection() {
    let mut deflater = Deflater::new().expect("deflater");
    let mut inflater = Inflater::new(64 << 10);
    let blocks = [
        Headers::new(),
        Headers::new().with("streamType", "stdout"),
        Headers::new().with("a", "1").with("a", "2").with("b", ""),
        Headers::new().with("x-big", &"v".repeat(20_000)),
    ];
    let interleaved = Headers::new().with("a", "1").with("b", "").with("a", "2");
    let compressed = deflater.deflate(&interleaved).expect("deflates");
    let expected = Headers::new().with("a", "1").with("a", "2").with("b", "");
    assert_eq!(
        inflater.inflate(&compressed),
        Ok(expected),
        "one name, once, NUL-joined"
    );
    for headers in &blocks {
        let compressed = deflater.deflate(headers).expect("deflates");
        assert_eq!(&inflater.inflate(&compressed).expect("inflates"), headers);
    }
}

#[test]
fn attack_a_decompression_bomb_stops_at_the_limit() {
    let bomb = Headers::new().with("x", &"a".repeat(4 << 20));
    let compressed = Deflater::new()
        .expect("deflater")
        .deflate(&bomb)
        .expect("deflates");
    assert!(
        compressed.len() < 16 << 10,
        "4 MiB of one byte compresses to a few KiB"
    );
    assert_eq!(
        Inflater::new(64 << 10).inflate(&compressed),
        Err(ProtocolError::HeaderBlockTooLarge { max: 64 << 10 })
    );
}

#[test]
fn attack_garbage_and_foreign_dictionaries_do_not_inflate() {
    assert_eq!(
        Inflater::new(1024).inflate(b"not zlib at all"),
        Err(ProtocolError::HeaderCompression)
    );
    // A valid zlib stream, but without the SPDY dictionary.
    let mut plain = Compress::new(Compression::default(), true);
    let mut out = Vec::with_capacity(256);
    plain
        .compress_vec(&[0, 0, 0, 0], &mut out, FlushCompress::Sync)
        .expect("compresses");
    let inflated = Inflater::new(1024)
        .inflate(&out)
        .expect("a dictionary-less stream still inflates");
    assert_eq!(inflated, Headers::new());
    let mut other_dict = Compress::new(Compression::default(), true);
    other_dict
        .set_dictionary(b"some other dictionary")
        .expect("dictionary");
    let mut out = Vec::with_capacity(256);
    other_dict
        .compress_vec(&[0, 0, 0, 0], &mut out, FlushCompress::Sync)
        .expect("compresses");
    assert_eq!(
        Inflater::new(1024).inflate(&out),
        Err(ProtocolError::HeaderCompression)
    );
}

#[test]
fn attack_malformed_blocks_are_refused() {
    let cases: [(&[u8], &str); 7] = [
        (&[0, 0], "truncated length"),
        (&[0xff, 0xff, 0xff, 0xff], "more pairs than bytes"),
        (
            &[0, 0, 0, 1, 0, 0, 0, 9, b'a', 0, 0, 0, 0],
            "length past the end",
        ),
        (
            &[0, 0, 0, 1, 0, 0, 0, 1, b'A', 0, 0, 0, 0],
            "empty or uppercase name",
        ),
        (
            &[0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0],
            "empty or uppercase name",
        ),
        (&[0, 0, 0, 1, 0, 0, 0, 1, 0xff, 0, 0, 0, 0], "not UTF-8"),
        (&[0, 0, 0, 0, 1], "bytes after the last pair"),
    ];
    for (block, why) in cases {
        assert_eq!(
            Headers::from_block(block),
            Err(ProtocolError::MalformedHeaders(why)),
            "{block:?}"
        );
    }
    let twice = [
        0, 0, 0, 2, 0, 0, 0, 1, b'a', 0, 0, 0, 0, 0, 0, 0, 1, b'a', 0, 0, 0, 0,
    ];
    assert_eq!(
        Headers::from_block(&twice),
        Err(ProtocolError::MalformedHeaders("duplicate name"))
    );
}

#[test]
fn nul_separated_values_are_several_values() {
    let block = [0, 0, 0, 1, 0, 0, 0, 1, b'a', 0, 0, 0, 3, b'x', 0, b'y'];
    let headers = Headers::from_block(&block).expect("parses");
    assert_eq!(headers, Headers::new().with("a", "x").with("a", "y"));
    assert_eq!(headers.get("A"), Some("x"));
}
