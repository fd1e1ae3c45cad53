//! A Kubernetes resource `Quantity` parser (`500m`, `1.5Gi`, `2e3`, `128974848`), exact:
//! the value is kept as `mantissa × 10^exp10 × 2^pow2` in integers, so `0.1Gi` or `1.5`
//! CPU convert without floating-point error. Syntax as in apimachinery's
//! `resource.ParseQuantity`: an optionally signed decimal number followed by nothing, a
//! binary-SI suffix (`Ki Mi Gi Ti Pi Ei`), a decimal-SI suffix (`n u m k M G T P E`) or
//! a decimal exponent (`e3`, `E-2`).
//!
//! Layer 2: pure.

use std::str::FromStr;

/// Most significant decimal digits kept: what fits a `u128` (Kubernetes itself keeps
/// fewer, so real quantities never come close).
const MAX_DIGITS: usize = 38;

/// A parsed, non-negative quantity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity {
    mantissa: u128,
    exp10: i32,
    pow2: u32,
}

/// Why a string is not a quantity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// Not in Kubernetes' quantity syntax.
    #[error(
        "not a Kubernetes quantity (a number with an optional suffix such as m, Ki, Mi, Gi, k, M, G or e3)"
    )]
    Syntax,
    /// A negative value, which no resource allows.
    #[error("negative quantities are not allowed")]
    Negative,
    /// More digits than can be represented.
    #[error("too many significant digits")]
    TooPrecise,
}

impl FromStr for Quantity {
    type Err = QuantityError;

    fn from_str(text: &str) -> Result<Self, QuantityError> {
        let (negative, unsigned) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text.strip_prefix('+').unwrap_or(text)),
        };
        let number_end = unsigned
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(unsigned.len());
        let (number, suffix) = unsigned.split_at(number_end);
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
            return Err(QuantityError::Syntax);
        }
        let digits = format!("{whole}{fraction}");
        let digits = digits.trim_start_matches('0');
        if digits.len() > MAX_DIGITS {
            return Err(QuantityError::TooPrecise);
        }
        let mantissa = if digits.is_empty() {
            0
        } else {
            digits.parse().map_err(|_| QuantityError::Syntax)?
        };
        let fraction_digits =
            i32::try_from(fraction.len()).map_err(|_| QuantityError::TooPrecise)?;
        let (exp10, pow2) = suffix_scale(suffix)?;
        if negative && mantissa != 0 {
            return Err(QuantityError::Negative);
        }
        Ok(Self {
            mantissa,
            exp10: exp10 - fraction_digits,
            pow2,
        })
    }
}

/// `(decimal exponent, binary exponent)` of a suffix.
fn suffix_scale(suffix: &str) -> Result<(i32, u32), QuantityError> {
    let scale = match suffix {
        "" => (0, 0),
        "Ki" => (0, 10),
        "Mi" => (0, 20),
        "Gi" => (0, 30),
        "Ti" => (0, 40),
        "Pi" => (0, 50),
        "Ei" => (0, 60),
        "n" => (-9, 0),
        "u" => (-6, 0),
        "m" => (-3, 0),
        "k" => (3, 0),
        "M" => (6, 0),
        "G" => (9, 0),
        "T" => (12, 0),
        "P" => (15, 0),
        "E" => (18, 0),
        _ => {
            let exponent = suffix
                .strip_prefix(['e', 'E'])
                .ok_or(QuantityError::Syntax)?;
            let digits = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(QuantityError::Syntax);
            }
            (exponent.parse().map_err(|_| QuantityError::Syntax)?, 0)
        }
    };
    Ok(scale)
}

impl Quantity {
    /// The value in units of `10^-scale`, rounded up: `ceil_scaled(0)` gives bytes or
    /// whole cores, `ceil_scaled(3)` millicores. `None` when it does not fit a `u64`.
    pub fn ceil_scaled(&self, scale: i32) -> Option<u64> {
        if self.mantissa == 0 {
            return Some(0);
        }
        let value = self.mantissa.checked_mul(1u128.checked_shl(self.pow2)?)?;
        let exponent = self.exp10.checked_add(scale)?;
        let scaled = if exponent >= 0 {
            value.checked_mul(10u128.checked_pow(exponent.unsigned_abs())?)?
        } else {
            match 10u128.checked_pow(exponent.unsigned_abs()) {
                Some(divisor) => value.div_ceil(divisor),
                None => u128::from(value > 0),
            }
        };
        u64::try_from(scaled).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(text: &str) -> Option<u64> {
        text.parse::<Quantity>().unwrap().ceil_scaled(0)
    }

    fn millis(text: &str) -> Option<u64> {
        text.parse::<Quantity>().unwrap().ceil_scaled(3)
    }

    #[test]
    fn binary_and_decimal_suffixes() {
        assert_eq!(bytes("128974848"), Some(128_974_848));
        assert_eq!(bytes("129e6"), Some(129_000_000));
        assert_eq!(bytes("129M"), Some(129_000_000));
        assert_eq!(bytes("123Mi"), Some(128_974_848));
        assert_eq!(bytes("1Ki"), Some(1024));
        assert_eq!(bytes("1.5Gi"), Some(1_610_612_736));
        assert_eq!(bytes("0.1Gi"), Some(107_374_183));
        assert_eq!(bytes("1k"), Some(1000));
        assert_eq!(bytes("2Ti"), Some(2 << 40));
        assert_eq!(bytes("1Ei"), Some(1 << 60));
        assert_eq!(bytes("8Ei"), Some(1 << 63));
        assert_eq!(bytes("16Ei"), None);
        assert_eq!(bytes("1E"), Some(1_000_000_000_000_000_000));
    }

    #[test]
    fn cpu_forms() {
        assert_eq!(millis("500m"), Some(500));
        assert_eq!(millis("0.5"), Some(500));
        assert_eq!(millis("1"), Some(1000));
        assert_eq!(millis("2.25"), Some(2250));
        assert_eq!(millis("100u"), Some(1));
        assert_eq!(millis("1n"), Some(1));
        assert_eq!(millis("0"), Some(0));
        assert_eq!(millis("1e-3"), Some(1));
        assert_eq!(millis("1E2"), Some(100_000));
        assert_eq!(millis("+.5"), Some(500));
        assert_eq!(millis("5."), Some(5000));
        assert_eq!(millis("0e99"), Some(0));
    }

    #[test]
    fn rounding_is_up() {
        assert_eq!(bytes("1m"), Some(1));
        assert_eq!(bytes("1.0001"), Some(2));
        assert_eq!(
            "0.000000000000000000000000000000000000001"
                .parse::<Quantity>()
                .unwrap()
                .ceil_scaled(0),
            Some(1)
        );
    }

    #[test]
    fn invalid_quantities() {
        for bad in [
            "", ".", "m", "1.2.3", "1 Gi", "1GB", "1gi", "1e", "1e+", "0x10", "1Ki2", "--1",
            "1e1.5",
        ] {
            assert_eq!(
                bad.parse::<Quantity>(),
                Err(QuantityError::Syntax),
                "{bad:?}"
            );
        }
        assert_eq!("-1".parse::<Quantity>(), Err(QuantityError::Negative));
        assert_eq!("-0".parse::<Quantity>().unwrap().ceil_scaled(0), Some(0));
        assert_eq!(
            "1".repeat(40).parse::<Quantity>(),
            Err(QuantityError::TooPrecise)
        );
    }
}
