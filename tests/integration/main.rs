//! The integration test binary: every test here runs against real parts — a real systemd
//! booted for the test run by `scripts/systemd-sandbox`, real apt/dpkg, real HTTPS.
//! Run it with `scripts/test`, which builds this binary and runs it inside the sandbox one
//! test at a time; outside the sandbox every test fails with a message saying so.

mod harness;
mod support;
mod systemd;
