//! Base64 encodings the API uses: standard with padding (Secret `data`, `binaryData`) and
//! URL-safe without padding (JWT segments). Pure.

const STANDARD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn encode(bytes: &[u8], alphabet: &[u8; 64], pad: bool) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let word = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for index in 0..=chunk.len() {
            out.push(alphabet[((word >> (18 - 6 * index)) & 63) as usize] as char);
        }
        if pad {
            out.push_str(&"=="[..3 - chunk.len()]);
        }
    }
    out
}

/// Standard alphabet, padded.
pub fn standard(bytes: &[u8]) -> String {
    encode(bytes, STANDARD, true)
}

/// URL-safe alphabet, unpadded.
pub fn url_safe(bytes: &[u8]) -> String {
    encode(bytes, URL_SAFE, false)
}

/// Decodes URL-safe unpadded base64.
pub fn decode_url_safe(text: &str) -> Option<Vec<u8>> {
    let (mut bits, mut count, mut bytes) = (0u32, 0, Vec::new());
    for ch in text.bytes() {
        let value = URL_SAFE.iter().position(|c| *c == ch)? as u32;
        bits = (bits << 6) | value;
        count += 6;
        if count >= 8 {
            count -= 8;
            bytes.push((bits >> count) as u8);
        }
    }
    Some(bytes)
}

/// Decodes standard base64, padded or not (Secret `data`, CSR `request`).
pub fn decode_standard(text: &str) -> Option<Vec<u8>> {
    let url_safe: String = text
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            other => other,
        })
        .collect();
    decode_url_safe(&url_safe)
}

#[cfg(test)]
mod unit_tests {
    use super::*;

    #[test]
    fn rfc4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
        ];
        for (plain, encoded) in cases {
            assert_eq!(standard(plain.as_bytes()), encoded);
            assert_eq!(
                decode_url_safe(&url_safe(plain.as_bytes())).unwrap(),
                plain.as_bytes()
            );
            assert_eq!(decode_standard(encoded).unwrap(), plain.as_bytes());
        }
    }
}
