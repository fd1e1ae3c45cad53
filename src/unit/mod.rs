//! Layer 2: the unit-file model: names, escaping, parsing, rendering, and building a
//! unit from a container spec. Pure: no I/O, no D-Bus.

mod name;

pub use name::{NameError, UNIT_NAME_MAX, UNIT_PREFIX, UnitName};
