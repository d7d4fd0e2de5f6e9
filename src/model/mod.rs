//! The reference model: pure data and pure functions, with no database, clock or file system.
//! `seed` derives adversarial rows from a table's description.

pub mod seed;
