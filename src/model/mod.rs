//! The reference model: pure data and pure functions, with no database, clock or file system.
//! `machine` is the reference state machine that generates step sequences for `fuzz`; `seed`
//! derives adversarial rows from a table's description; `fill` the statement that fills a
//! table with many plausible rows for the lock trace.

pub mod fill;
pub mod machine;
pub mod seed;
