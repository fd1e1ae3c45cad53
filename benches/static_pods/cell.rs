//! How a figure reads in the printed table, for the report and each phase's rows.

pub fn ms(value: f64) -> String {
    format!("{value:.1} ms")
}

pub fn p50_p99(p50: f64, p99: f64) -> String {
    format!("p50 {p50:.1} ms, p99 {p99:.1} ms")
}
