//! systemk's integration tests: real apt/dpkg, real HTTPS, real systemd. They need root
//! and network access to the Debian mirrors, change the host's dpkg database (every test
//! purges what it installed) and must run one at a time: `--test-threads=1`.

#[path = "../apiserver/mod.rs"]
mod apiserver;
mod package;
