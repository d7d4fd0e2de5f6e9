//! The reference model: pure data and pure functions, with no database, clock or file system.
//! `seed` derives adversarial rows from a table's description; `fill` the statement that
//! fills a table with many plausible rows for the lock trace.

pub mod fill;
pub mod seed;
