//! Byte sizes on the command line: `<n>` bytes, or `<n>` followed by `K`, `M`, `G` or
//! `T` (powers of 1024, also written `Ki`, `Mi`, `Gi`, `Ti` as Kubernetes quantities
//! are). Layer 7.

/// Parses a size; see the module documentation.
pub(super) fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => text.split_at(at),
        None => (text, ""),
    };
    let shift = match unit {
        "" => 0,
        "K" | "Ki" => 10,
        "M" | "Mi" => 20,
        "G" | "Gi" => 30,
        "T" | "Ti" => 40,
        _ => {
            return Err(format!(
                "{text:?}: expected bytes, or a whole number followed by K, M, G or T (KiB…)"
            ));
        }
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?}: expected a whole number before the unit"))?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("{text:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_units() {
        for (text, bytes) in [
            ("0", 0),
            ("512", 512),
            ("4K", 4096),
            ("1Mi", 1 << 20),
            ("1G", 1 << 30),
            ("2Ti", 2 << 40),
        ] {
            assert_eq!(parse_size(text), Ok(bytes), "{text}");
        }
        for bad in ["", "G", "1.5G", "-1", "1GB", "99999999999T"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
