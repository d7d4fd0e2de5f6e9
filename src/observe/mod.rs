//! Read-only observation of a live database: the schema snapshot, the tables as the seeder and
//! the data checks see them, table contents compared across a step, and the lock trace with its
//! probe and the report query held beside it. Queries live in `queries/*.sql`; judging what was observed is left to `compare` and
//! `locks::rules`.

pub mod catalog;
pub mod data;
pub mod globals;
pub mod history;
pub mod locks;
pub mod probe;
pub mod readable;
pub mod report_query;
pub mod sequences;
pub mod snapshot;

/// Quotes an SQL identifier.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes an SQL string literal.
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}
