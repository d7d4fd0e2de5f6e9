//! migproof: proves that database migrations are safe to ship, by running them against a real
//! PostgreSQL and comparing schema and data with what must be there after every step.

pub mod source;
pub mod backend;
pub mod observe;
pub mod model;
pub mod executor;
pub mod compare;
pub mod report;
pub mod check;
pub mod locks;
pub mod cli;
pub mod fuzz;
