//! migproof: proves that database migrations are safe to ship, by running them against a real
//! PostgreSQL and comparing schema and data with what must be there after every step.

pub mod backend;
pub mod check;
pub mod cli;
pub mod compare;
pub mod compat;
pub mod data_from;
pub mod executor;
pub mod fuzz;
pub mod golden;
pub mod guard;
pub mod locks;
pub mod model;
pub mod observe;
pub mod report;
pub mod run;
pub mod shrink;
pub mod source;
pub mod stats_from;
