//! Tests of the worker's pure decisions (the prepare decision is tested with its state,
//! in `pod::state`).

use super::stop::parse_seconds;
use super::*;

#[test]
fn a_written_grace_period_is_read_back() {
    assert_eq!(parse_seconds("2s"), Some(Duration::from_secs(2)));
    assert_eq!(parse_seconds("120s"), Some(Duration::from_secs(120)));
}

#[test]
fn other_stop_timeouts_are_not_guessed() {
    for value in ["", "s", "2", "2min", "infinity", "-1s"] {
        assert_eq!(parse_seconds(value), None, "{value:?}");
    }
}
