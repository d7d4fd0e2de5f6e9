//! The JSON rendering: one document on stdout, `format_version` 1, documented in the README.

use super::Report;

pub fn render(report: &Report) -> String {
    let mut text = serde_json::to_string_pretty(report).expect("a report always serializes");
    text.push('\n');
    text
}
