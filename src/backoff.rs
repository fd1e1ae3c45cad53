//! The one retry schedule used everywhere (apt, D-Bus, watches, container restarts).
//! Layer 0: pure data and arithmetic, no clock and no I/O.
