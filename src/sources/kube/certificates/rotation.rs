//! When a certificate is renewed: client-go's certificate manager
//! (util/certificate/certificate_manager.go, `nextRotationDeadline`) renews at a random
//! point between 70 % and 90 % of the certificate's lifetime:
//! `notBefore + total × (0.7 + 0.2 × r)`, with `r` uniform in [0, 1), so a fleet of nodes
//! does not renew at once.
//!
//! One deliberate difference: the lifetime starts at the later of `notBefore` and the
//! moment systemk received the certificate. kube-controller-manager backdates `notBefore`
//! by five minutes for clock skew while counting the lifetime from the signing time, so a
//! certificate of a few minutes (`--cluster-signing-duration` in tests, short
//! `expirationSeconds`) would be "due" before it even arrived and rotate in a tight loop.
//! For certificates of days or years the difference is negligible. Pure: the times and
//! the random number come in. Layer 5.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher as _, Hasher as _};
use std::time::Duration;

use k8s_openapi::jiff::{SignedDuration, Timestamp};

/// The earliest point of the lifetime at which the renewal may fall (client-go's 0.7).
pub const EARLIEST: f64 = 0.7;
/// The width of the random window after [`EARLIEST`] (client-go's jitter of 0.2).
pub const WINDOW: f64 = 0.2;

/// When to renew a certificate valid from `not_before` to `not_after` and received at
/// `received` (`None`: unknown, e.g. read from disk); `unit_random` in [0, 1).
pub fn rotation_deadline(
    not_before: Timestamp,
    not_after: Timestamp,
    received: Option<Timestamp>,
    unit_random: f64,
) -> Timestamp {
    let start = match received {
        Some(received) if received > not_before && received < not_after => received,
        _ => not_before,
    };
    let total = not_after.duration_since(start).as_secs_f64().max(0.0);
    let fraction = EARLIEST + WINDOW * unit_random.clamp(0.0, 1.0);
    let offset =
        SignedDuration::try_from_secs_f64(total * fraction).unwrap_or(SignedDuration::ZERO);
    start.checked_add(offset).unwrap_or(not_after)
}

/// How long from `now` until `deadline`: zero when it has passed.
pub fn until(deadline: Timestamp, now: Timestamp) -> Duration {
    Duration::try_from(deadline.duration_since(now)).unwrap_or(Duration::ZERO)
}

/// A number in [0, 1) from the process's random hash keys (no RNG crate needed).
pub fn unit_random() -> f64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(0x5eed);
    // 53 bits: the precision of an f64 mantissa.
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn deadline_is_between_70_and_90_percent_of_the_lifetime() {
        // A year-long certificate, as kube-controller-manager signs by default.
        let (nb, na) = (at("2026-01-01T00:00:00Z"), at("2027-01-01T00:00:00Z"));
        let total = na.duration_since(nb).as_secs_f64();
        let early = rotation_deadline(nb, na, None, 0.0);
        let late = rotation_deadline(nb, na, None, 0.999_999);
        assert_eq!(
            early.duration_since(nb).as_secs_f64().round(),
            (total * 0.7).round()
        );
        assert!((late.duration_since(nb).as_secs_f64() - total * 0.9).abs() < 60.0);
        let middle = rotation_deadline(nb, na, None, 0.5);
        assert_eq!(
            middle.duration_since(nb).as_secs_f64().round(),
            (total * 0.8).round()
        );
    }

    #[test]
    fn a_backdated_short_certificate_counts_from_its_arrival() {
        // Signed at 12:00 for 120 s, backdated five minutes: 12:00 is when it arrived.
        let (nb, na) = (at("2026-01-01T11:55:00Z"), at("2026-01-01T12:02:00Z"));
        let received = at("2026-01-01T12:00:00Z");
        let deadline = rotation_deadline(nb, na, Some(received), 0.0);
        assert_eq!(deadline, at("2026-01-01T12:01:24Z"));
        // Without knowing the arrival (read from disk): client-go's formula as is.
        assert_eq!(
            rotation_deadline(nb, na, None, 0.0),
            at("2026-01-01T11:59:54Z")
        );
        // An arrival outside the validity (clock jump) is ignored.
        assert_eq!(
            rotation_deadline(nb, na, Some(at("2026-01-02T00:00:00Z")), 0.0),
            at("2026-01-01T11:59:54Z")
        );
    }

    #[test]
    fn until_is_zero_once_due() {
        let now = at("2026-01-01T12:00:00Z");
        assert_eq!(
            until(at("2026-01-01T12:00:30Z"), now),
            Duration::from_secs(30)
        );
        assert_eq!(until(at("2026-01-01T11:00:00Z"), now), Duration::ZERO);
    }

    #[test]
    fn unit_random_stays_in_range() {
        for _ in 0..100 {
            let r = unit_random();
            assert!((0.0..1.0).contains(&r), "{r}");
        }
    }
}
