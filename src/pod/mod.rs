//! Layer 4: the reconciler: desired pods versus systemd units, restarts and status.
