//! Layer 1: image reference → installed Debian package and its vendor units
//! (apt, https `.deb`, plain path). Knows nothing of units, systemd or pods.
