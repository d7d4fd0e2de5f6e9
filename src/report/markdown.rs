//! The Markdown rendering, for a pull-request comment or a CI job summary: a heading with the
//! verdict and counts, a table of findings with each one's details folded away, then accepted
//! findings, fixed baseline entries, skipped migrations and the number of notes. Long lists
//! are cut, so that hundreds of findings still make a comment one can read (and post).

use std::fmt::Write as _;

use super::{Finding, Report};

/// The most findings (and accepted findings) listed; the rest are counted.
const MAX_FINDINGS: usize = 50;
/// The most rows, and lines of a diff, shown for one finding.
const MAX_ROWS: usize = 20;
const MAX_DIFF_LINES: usize = 80;

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    heading(&mut out, report);
    if let Some(error) = &report.error {
        let _ = writeln!(
            out,
            "\n### The run failed to execute\n\nmigproof could not run, so nothing was proved: \
             the findings and counts here are empty or partial.\n"
        );
        fenced(&mut out, "text", error);
    }
    findings(&mut out, report);
    accepted(&mut out, report);
    if !report.fixed.is_empty() {
        let _ = writeln!(
            out,
            "\n### Fixed since the baseline ({})\n\nNo finding matches these baseline entries \
             any more: they are fixed since the baseline: remove them with `migproof \
             baseline`.\n",
            report.fixed.len()
        );
        for e in &report.fixed {
            let object = if e.object.is_empty() {
                String::new()
            } else {
                format!(" on {}", code(&e.object))
            };
            let _ = writeln!(
                out,
                "- {} in {} at step {}{object}",
                code(&e.kind),
                code(&e.migration),
                text(&e.step)
            );
        }
    }
    if !report.skipped.is_empty() {
        let _ = writeln!(
            out,
            "\n### Skipped ({})\n\nNot checked: the run stopped before these migrations.\n",
            report.skipped.len()
        );
        for m in &report.skipped {
            let _ = writeln!(out, "- {}", code(m));
        }
    }
    if !report.notes.is_empty() {
        let _ = writeln!(
            out,
            "\n{}: things worth knowing that do not fail the run; the human and JSON outputs \
             list them.",
            count(report.notes.len(), "note")
        );
    }
    out
}

/// `## ✅ migproof check passed: 0 findings, ...`, with the mark of the verdict.
fn heading(out: &mut String, report: &Report) {
    let (mark, outcome) = if report.error.is_some() {
        ("⚠️", "could not run")
    } else if report.findings.is_empty() {
        ("✅", "passed")
    } else {
        ("❌", "failed")
    };
    let s = &report.summary;
    let mut counts = vec![
        count(report.findings.len(), "finding"),
        format!("{} accepted", report.accepted.len()),
        format!(
            "{}/{} migrations checked",
            s.migrations_checked, report.migrations
        ),
    ];
    if let (Some(tested), Some(downs)) = (s.downs_tested, s.downs) {
        counts.push(format!("downs tested {tested}/{downs}"));
    }
    counts.push(format!("{:.1} s", s.duration_ms as f64 / 1000.0));
    let _ = writeln!(
        out,
        "## {mark} migproof {} {outcome}: {}",
        report.command,
        counts.join(", ")
    );
}

fn findings(out: &mut String, report: &Report) {
    if report.findings.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\n### Findings\n\n| kind | migration | step | place | message |\n| --- | --- | --- | --- \
         | --- |"
    );
    let shown = &report.findings[..report.findings.len().min(MAX_FINDINGS)];
    for f in shown {
        let place = f
            .place
            .as_ref()
            .map(|p| cell(&code(&p.to_string())))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {place} | {} |",
            code(f.kind.as_str()),
            cell(&code(&f.migration)),
            text(&f.step),
            text(first_line(&f.message)),
        );
    }
    more(out, report.findings.len() - shown.len(), "finding");
    for f in shown {
        details(out, f);
    }
}

/// The rest of what a finding says, folded: the whole message, the lock facts, the rows, the
/// fuzz case and the diff. Nothing when the table row said it all.
fn details(out: &mut String, f: &Finding) {
    let mut body = String::new();
    if f.message.lines().nth(1).is_some() {
        let _ = writeln!(body, "{}", f.message);
    }
    let facts = f.lock_facts();
    if !facts.is_empty() {
        let _ = writeln!(body, "{}", facts.join(" · "));
    }
    if let Some(lock) = &f.lock {
        let _ = writeln!(body, "fix: {}", lock.hint);
    }
    for row in f.rows.iter().take(MAX_ROWS) {
        let _ = writeln!(body, "{row}");
    }
    if f.rows.len() > MAX_ROWS {
        let _ = writeln!(body, "... and {} more rows", f.rows.len() - MAX_ROWS);
    }
    if let Some(case) = &f.case {
        let _ = writeln!(body, "shrunk sequence (seed {}):", case.seed);
        for step in &case.sequence {
            let _ = writeln!(body, "  {step}");
        }
        let _ = writeln!(body, "replay: {}", case.replay);
    }
    if body.is_empty() && f.diff.is_none() {
        return;
    }
    let _ = writeln!(
        out,
        "\n<details><summary><code>{}</code> in <code>{}</code> [{}]</summary>\n",
        f.kind.as_str(),
        html(&f.migration),
        html(&f.step)
    );
    if !body.is_empty() {
        fenced(out, "text", &body);
    }
    if let Some(diff) = &f.diff {
        let lines: Vec<&str> = diff.lines().collect();
        let mut shown = lines[..lines.len().min(MAX_DIFF_LINES)].join("\n");
        if lines.len() > MAX_DIFF_LINES {
            let _ = write!(
                shown,
                "\n... and {} more lines",
                lines.len() - MAX_DIFF_LINES
            );
        }
        fenced(out, "diff", &shown);
    }
    let _ = writeln!(out, "</details>");
}

fn accepted(out: &mut String, report: &Report) {
    if report.accepted.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\n### Accepted ({})\n\nThe project accepted these findings: they do not fail the \
         run.\n",
        report.accepted.len()
    );
    let shown = &report.accepted[..report.accepted.len().min(MAX_FINDINGS)];
    for a in shown {
        let f = &a.finding;
        let place = f
            .place
            .as_ref()
            .map(|p| format!(" at {}", code(&p.to_string())))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "- {} in {} [{}]{place}: {} (accepted by {})",
            code(f.kind.as_str()),
            code(&f.migration),
            text(&f.step),
            text(first_line(&f.message)),
            text(&a.accepted_by),
        );
    }
    more(out, report.accepted.len() - shown.len(), "accepted finding");
}

fn more(out: &mut String, left_out: usize, noun: &str) {
    if left_out > 0 {
        let _ = writeln!(
            out,
            "\n*... and {}, not listed here: the JSON or SARIF output has them all.*",
            count(left_out, &format!("more {noun}"))
        );
    }
}

fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn first_line(message: &str) -> &str {
    message.lines().next().unwrap_or_default()
}

/// `body` in a fenced code block whose fence is longer than any run of backticks inside it.
fn fenced(out: &mut String, info: &str, body: &str) {
    let fence = "`".repeat(longest_backtick_run(body).max(2) + 1);
    let body = body.strip_suffix('\n').unwrap_or(body);
    let _ = writeln!(out, "{fence}{info}\n{body}\n{fence}\n");
}

/// `s` as a code span on one line: delimited by more backticks than any run inside it, padded
/// when it starts or ends with one.
fn code(s: &str) -> String {
    let s = s.replace(['\r', '\n'], " ");
    if s.is_empty() {
        return String::new();
    }
    let ticks = "`".repeat(longest_backtick_run(&s) + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{ticks}{pad}{s}{pad}{ticks}")
}

/// A code span made fit for a table cell: a `|` would end the cell even inside the span.
fn cell(span: &str) -> String {
    span.replace('|', "\\|")
}

/// Text shown as it is, on one line: Markdown's and HTML's punctuation escaped, `|` included,
/// so that neither a table cell nor the page's markup can break.
fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\r' | '\n' => out.push(' '),
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '~' | '&' | '#' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// Text inside an HTML element (`<summary>`).
fn html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace(['\r', '\n'], " ")
}

fn longest_backtick_run(s: &str) -> usize {
    s.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::report::{Accepted, BaselineEntry, Kind, Note, NoteKind, Place, Source};

    fn report() -> Report {
        let mut report = Report::new(
            "check",
            Source {
                dir: "migrations".into(),
                format: "sqlx".into(),
            },
            12,
            "local",
        );
        report.summary.migrations_checked = 11;
        report.summary.duration_ms = 1400;
        report
    }

    fn finding(kind: Kind, migration: &str, step: &str, message: &str) -> Finding {
        let mut f = Finding::new(kind, migration.into(), step.into(), message.into());
        f.place = Some(Place::line(
            Path::new(&format!("migrations/{migration}.up.sql")),
            4,
        ));
        f
    }

    /// The table's rows, header and separator left out.
    fn table_rows(doc: &str) -> Vec<&str> {
        doc.lines()
            .filter(|l| l.starts_with("| ") && !l.starts_with("| kind ") && !l.starts_with("| ---"))
            .collect()
    }

    /// The cells of a table row, split where GFM splits them: at every `|` not escaped.
    fn cells(row: &str) -> Vec<String> {
        let mut cells = vec![String::new()];
        let mut chars = row.trim().chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' if chars.peek() == Some(&'|') => {
                    cells.last_mut().expect("a cell").push('|');
                    chars.next();
                }
                '|' => cells.push(String::new()),
                c => cells.last_mut().expect("a cell").push(c),
            }
        }
        cells[1..cells.len() - 1]
            .iter()
            .map(|c| c.trim().to_owned())
            .collect()
    }

    #[test]
    fn a_clean_run_is_one_heading() {
        let mut report = report();
        report.summary.downs = Some(12);
        report.summary.downs_tested = Some(10);
        assert_eq!(
            render(&report),
            "## ✅ migproof check passed: 0 findings, 0 accepted, 11/12 migrations checked, \
             downs tested 10/12, 1.4 s\n"
        );
    }

    #[test]
    fn findings_are_table_rows_with_their_details_folded() {
        let mut report = report();
        let mut lost = finding(
            Kind::DataLost,
            "0003_rename",
            "down (round trip)",
            "rows or values were lost in public.customers",
        );
        lost.rows = (0..25)
            .map(|i| format!("public.customers(id={i})"))
            .collect();
        let mut mismatch = finding(
            Kind::SchemaMismatch,
            "0004_index",
            "down",
            "schema differs\nsecond line",
        );
        mismatch.diff = Some("--- golden\n+++ after\n-a\n+b\n```\nnot a fence end".into());
        report.findings = vec![
            finding(Kind::ApplyFailed, "0002_add", "up", "syntax error"),
            lost,
            mismatch,
        ];
        let doc = render(&report);
        assert!(doc.starts_with("## ❌ migproof check failed: 3 findings, 0 accepted, "));
        let rows = table_rows(&doc);
        assert_eq!(rows.len(), 3, "{doc}");
        assert_eq!(
            cells(rows[0]),
            [
                "`apply_failed`",
                "`0002_add`",
                "up",
                "`migrations/0002_add.up.sql:4`",
                "syntax error"
            ]
        );
        assert_eq!(cells(rows[2])[4], "schema differs", "first line only");

        assert_eq!(doc.matches("<details>").count(), 2, "{doc}");
        assert_eq!(doc.matches("</details>").count(), 2);
        assert!(doc.contains("public.customers(id=19)\n... and 5 more rows"));
        assert!(!doc.contains("id=20)"));
        // The diff holds a line of three backticks: the fence around it must be longer.
        assert!(doc.contains("````diff\n--- golden\n"), "{doc}");
        assert!(doc.contains("not a fence end\n````\n"), "{doc}");
        assert!(
            doc.contains("```text\nschema differs\nsecond line\n```"),
            "{doc}"
        );
    }

    #[test]
    fn pipes_and_markup_are_escaped_in_cells() {
        let mut report = report();
        report.findings.push(finding(
            Kind::DataChanged,
            "0005_a|b",
            "up | data",
            "values changed in a|b <script> *x*\nsecond | line",
        ));
        let doc = render(&report);
        let rows = table_rows(&doc);
        assert_eq!(rows.len(), 1);
        let cells = cells(rows[0]);
        assert_eq!(cells.len(), 5, "{}", rows[0]);
        assert_eq!(cells[1], "`0005_a|b`");
        assert_eq!(cells[2], "up | data");
        assert_eq!(cells[4], r"values changed in a|b \<script\> \*x\*");
        assert!(rows[0].contains(r"a\|b"));
        assert!(!rows[0].contains("<script>"));
        assert!(doc.contains(
            "<summary><code>data_changed</code> in <code>0005_a|b</code> [up | data]</summary>"
        ));
    }

    #[test]
    fn the_table_stops_at_fifty_rows_and_counts_the_rest() {
        let mut report = report();
        report.findings = (0..230)
            .map(|i| {
                let mut f = finding(Kind::LockHazard, &format!("{i:04}_m"), "up", "lock");
                f.diff = Some("-a\n+b".into());
                f
            })
            .collect();
        let doc = render(&report);
        assert_eq!(table_rows(&doc).len(), 50);
        assert_eq!(doc.matches("<details>").count(), 50);
        assert!(
            doc.contains("... and 180 more findings, not listed here"),
            "{doc}"
        );
        assert!(doc.contains("`0049_m`") && !doc.contains("`0050_m`"));
        assert!(doc.starts_with("## ❌ migproof check failed: 230 findings"));
    }

    #[test]
    fn accepted_fixed_skipped_and_notes_have_their_sections() {
        let mut report = report();
        let f = finding(Kind::Destructive, "0001_init", "up", "drops public.legacy");
        report.fixed.push(BaselineEntry::of(&finding(
            Kind::DataLost,
            "0003_x",
            "down",
            "gone",
        )));
        report.accepted.push(Accepted {
            fingerprint: f.fingerprint(),
            finding: f,
            accepted_by: "allow at migrations/0001_init.up.sql:3: legacy is empty".into(),
        });
        report.skipped = vec!["0011_a".into(), "0012_b".into()];
        report.notes.push(Note {
            kind: NoteKind::Irreversible,
            migration: Some("0001_init".into()),
            step: None,
            message: "no down".into(),
            diff: None,
        });
        let doc = render(&report);
        assert!(doc.starts_with("## ✅ migproof check passed: 0 findings, 1 accepted"));
        assert!(doc.contains("### Accepted (1)"));
        assert!(doc.contains(
            "- `destructive` in `0001_init` [up] at `migrations/0001_init.up.sql:4`: drops \
             public.legacy (accepted by allow at migrations/0001\\_init.up.sql:3: legacy is \
             empty)"
        ));
        assert!(doc.contains("### Fixed since the baseline (1)"));
        assert!(doc.contains("remove them with `migproof baseline`"));
        assert!(doc.contains("- `data_lost` in `0003_x` at step down\n"));
        assert!(doc.contains("### Skipped (2)"));
        assert!(doc.contains("- `0011_a`\n- `0012_b`\n"));
        assert!(doc.contains("\n1 note: "));
        assert!(table_rows(&doc).is_empty());
    }

    #[test]
    fn a_failed_environment_says_the_run_did_not_execute() {
        let mut report = report();
        report.summary = Default::default();
        report.error = Some("no server reachable at 127.0.0.1:5432\n```\ntail".into());
        let doc = render(&report);
        assert!(
            doc.starts_with("## ⚠️ migproof check could not run: 0 findings"),
            "{doc}"
        );
        assert!(doc.contains("### The run failed to execute"));
        assert!(doc.contains("````text\nno server reachable at 127.0.0.1:5432\n```\ntail\n````"));
    }

    #[test]
    fn code_spans_outlast_the_backticks_inside() {
        assert_eq!(code("a"), "`a`");
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("`a"), "`` `a ``");
        assert_eq!(code(""), "");
        assert_eq!(text("a_b|c\nd"), r"a\_b\|c d");
    }
}
