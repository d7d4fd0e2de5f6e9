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
        "migproof {}: {} migration(s) in {} ({} layout), {} backend{}",
        report.command,
        report.migrations,
        report.source.dir,
        report.source.format,
        report.backend,
        if report.server.is_empty() {
            String::new()
        } else {
            format!(", PostgreSQL {}", report.server)
        }
    );
    if let Some(trace) = &report.locks {
        out.push_str(&super::locks::render_human(trace, colour));
    }
    for f in &report.findings {
        let _ = writeln!(
            out,
            "\n{} {}  {}  [{}]  {}",
            c("✗", "1;31"),
            c(f.kind.as_str(), "1;31"),
            c(&f.migration, "1"),
            f.step,
            super::kinds::severity(f.kind)
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
    if !report.accepted.is_empty() {
        let _ = writeln!(
            out,
            "\n{}",
            c("accepted (they do not fail the run):", "1;36")
        );
        for a in &report.accepted {
            let f = &a.finding;
            let _ = writeln!(
                out,
                "  {} {} [{}]: {}",
                c(f.kind.as_str(), "36"),
                f.migration,
                f.step,
                a.accepted_by
            );
        }
    }
    if !report.fixed.is_empty() {
        let _ = writeln!(
            out,
            "\n{}",
            c(
                "fixed since the baseline (run `migproof baseline` to drop them):",
                "1;32"
            )
        );
        for e in &report.fixed {
            let _ = writeln!(out, "  {} {} [{}]", e.kind, e.migration, e.step);
        }
    }
    if !report.skipped.is_empty() {
        const SHOWN: usize = 10;
        let mut names = report.skipped[..report.skipped.len().min(SHOWN)].join(", ");
        if report.skipped.len() > SHOWN {
            let _ = write!(names, " and {} more", report.skipped.len() - SHOWN);
        }
        let _ = writeln!(out, "\nnot reached ({}): {names}", report.skipped.len());
    }
    out.push('\n');
    out.push_str(&summary(report, colour));
    out
}

/// The verdict and counts, as the last lines of the human rendering; also what goes to stderr
/// when stdout carries a machine format.
pub fn summary(report: &Report, colour: bool) -> String {
    let c = |text: &str, code: &str| paint(text, code, colour);
    let mut out = String::new();
    if let Some(error) = &report.error {
        let _ = writeln!(out, "{}: {error}", c("ERROR", "1;31"));
        return out;
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
    let accepted = match report.accepted.len() {
        0 => String::new(),
        n => format!(", {n} accepted"),
    };
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
        let scope = match (s.in_scope, &s.scope) {
            (Some(n), Some(why)) => format!(" ({n} in scope: {why})"),
            _ => String::new(),
        };
        format!(
            "{}/{} migrations checked{scope}{downs}, {} steps, {} rows seeded ({} refused by the \
             schema)",
            s.migrations_checked, report.migrations, s.steps, s.rows_seeded, s.rows_skipped
        )
    };
    if let Some(forward_only) = &s.forward_only {
        let _ = writeln!(out, "{forward_only}");
    }
    for said in [&s.stats_from, &s.your_data].into_iter().flatten() {
        let _ = writeln!(out, "{said}");
    }
    let _ = writeln!(
        out,
        "{verdict}: {} finding(s){kinds}{accepted}, {} note(s); {work} in {seconds:.1}s",
        s.findings, s.notes,
    );
    if let (Some(cases), Some(rate)) = (s.cases, s.steps_per_second) {
        let seed = s
            .seed
            .as_deref()
            .map(|seed| format!(", seed {seed}"))
            .unwrap_or_default();
        let _ = writeln!(out, "{cases} case(s), {rate} steps per second{seed}");
    }
    out
}
