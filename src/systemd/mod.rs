//! Layer 3: the systemd D-Bus client (zbus) and unit-file writing. zbus types never
//! leave this module.
