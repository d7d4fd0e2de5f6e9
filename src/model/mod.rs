//! The reference model: pure data and pure functions, with no database, clock or file system.
//! `machine` is the reference state machine that generates step sequences for `fuzz`; `seed`
//! derives adversarial rows from a table's description.

pub mod machine;
pub mod seed;
