//! The human rendering: findings grouped by migration with their step, message, sample rows
//! and diff; then notes and a one-line summary. Colours only when asked (a terminal).

use std::fmt::Write;

use super::Report;
use crate::report::paint;

const MAX_ROWS: usize = 10;

pub fn render(report: &Report, colour: bool) -> String {
    let c = |text: &str, code: &str| paint(text, code, colour);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "migproof {}: {} migration(s) in {} ({} layout), {} backend",
        report.command, report.migrations, report.source.dir, report.source.format, report.backend
    );
    if let Some(trace) = &report.locks {
        out.push_str(&super::locks::render_human(trace, colour));
    }
    for f in &report.findings {
        let _ = writeln!(
            out,
            "\n{} {}  {}  [{}]",
            c("✗", "1;31"),
            c(f.kind.as_str(), "1;31"),
            c(&f.migration, "1"),
            f.step
        );
        for line in f.message.lines() {
            let _ = writeln!(out, "  {line}");
        }
        let facts = f.lock_facts();
        if !facts.is_empty() {
            let _ = writeln!(out, "  {}", facts.join(" · "));
        }
        if let Some(lock) = &f.lock {
            let _ = writeln!(out, "  {} {}", c("fix:", "1;32"), lock.hint);
        }
        for row in f.rows.iter().take(MAX_ROWS) {
            let _ = writeln!(out, "    {row}");
        }
        if f.rows.len() > MAX_ROWS {
            let _ = writeln!(out, "    ... and {} more", f.rows.len() - MAX_ROWS);
        }
        if let Some(case) = &f.case {
            let _ = writeln!(out, "  shrunk sequence (seed {}):", case.seed);
            for step in &case.sequence {
                let _ = writeln!(out, "    {step}");
            }
        }
        if let Some(diff) = &f.diff {
            for line in diff.lines() {
                let coloured = if line.starts_with('+') && !line.starts_with("+++") {
                    c(line, "32")
                } else if line.starts_with('-') && !line.starts_with("---") {
                    c(line, "31")
                } else {
                    line.to_string()
                };
                let _ = writeln!(out, "    {coloured}");
            }
        }
    }
    for f in &report.findings {
        if let Some(case) = &f.case {
            let _ = writeln!(out, "\n  replay {}: {}", f.migration, case.replay);
        }
    }
    if !report.notes.is_empty() {
        let _ = writeln!(out, "\n{}", c("notes:", "1;33"));
        for n in &report.notes {
            let _ = writeln!(
                out,
                "  {}{}: {}",
                c(n.kind.as_str(), "33"),
                n.place(),
                n.message
            );
        }
    }
    let s = &report.summary;
    let verdict = if s.passed {
        c("PASS", "1;32")
    } else {
        c("FAIL", "1;31")
    };
    let kinds: Vec<String> = s.by_kind.iter().map(|(k, n)| format!("{k} {n}")).collect();
    let kinds = if kinds.is_empty() {
        String::new()
    } else {
        format!(" ({})", kinds.join(", "))
    };
    let seconds = s.duration_ms as f64 / 1000.0;
    let work = if report.command == "locks" {
        format!(
            "traced {}/{} migrations, {} statements, {} rows filled",
            s.migrations_checked, report.migrations, s.steps, s.rows_seeded
        )
    } else {
        let downs = match (s.downs_tested, s.downs) {
            (Some(tested), Some(downs)) => format!(", downs tested {tested}/{downs}"),
            _ => String::new(),
        };
        format!(
            "{}/{} migrations checked{downs}, {} steps, {} rows seeded ({} rejected by \
             constraints)",
            s.migrations_checked, report.migrations, s.steps, s.rows_seeded, s.rows_skipped
        )
    };
    let _ = writeln!(
        out,
        "\n{verdict}: {} finding(s){kinds}, {} note(s); {work} in {seconds:.1}s",
        s.findings, s.notes,
    );
    if let (Some(cases), Some(rate)) = (s.cases, s.steps_per_second) {
        let _ = writeln!(out, "{cases} case(s), {rate} steps per second");
    }
    out
}
