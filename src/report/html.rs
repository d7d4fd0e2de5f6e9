//! The HTML rendering of a `migproof locks` report: one self-contained page (inline CSS and
//! SVG, no script, font or stylesheet fetched) with the verdict, the findings and notes, and a
//! timeline per migration: the report query, each statement as a bar on a time axis with the
//! locks it held under it (coloured by what they block), and the probe's waiting reads and
//! writes on the same axis; then a table of the per-statement figures. Every text that comes
//! from the project (SQL, names, messages) is escaped.

use std::fmt::Write as _;

use super::locks::{
    blocks_reads, blocks_writes, strongest_per_relation, LockTrace, MigrationTrace, ProbeWait,
    StatementTrace,
};
use super::Report;

/// Width of the drawing, of the label column on its left, and of one row.
const WIDTH: f64 = 1000.0;
const LABEL: f64 = 330.0;
const ROW: f64 = 22.0;
const SUB_ROW: f64 = 15.0;
const AXIS: f64 = 28.0;
/// Characters of SQL shown in a row's label (all of it is in the row's tooltip and the table).
const LABEL_SQL: usize = 44;

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em auto;max-width:1040px;\
color:#222;padding:0 1em}h1{font-size:1.4em}h2{font-size:1.15em;margin-top:2em}\
.pass{color:#1a7f37}.fail{color:#cf222e}code,pre,.sql{font-family:ui-monospace,monospace;\
font-size:12px}pre{white-space:pre-wrap;background:#f6f8fa;padding:.5em}table{border-collapse:\
collapse;margin:.5em 0;font-size:13px}td,th{border:1px solid #d0d7de;padding:2px 6px;\
vertical-align:top;text-align:left}td.n{text-align:right}svg{display:block;margin:.5em 0}\
svg text{font:11px ui-monospace,monospace;fill:#222}.legend span{display:inline-block;\
margin-right:1.2em}.sw{display:inline-block;width:14px;height:10px;margin-right:4px;\
vertical-align:middle}";

/// Colours: statement, lock wait, report query, locks by what they block, probe waits.
const STATEMENT: &str = "#8c959f";
const LOCK_WAIT: &str = "#d4a72c";
const REPORT: &str = "#8250df";
const BLOCKS_READS: &str = "#cf222e";
const BLOCKS_WRITES: &str = "#fb8500";
const BLOCKS_NOTHING: &str = "#2da44e";
const READ_WAIT: &str = "#0969da";
const WRITE_WAIT: &str = "#bc4c00";
const FAILED: &str = "#6e0b0b";

/// Escapes text for HTML content and attribute values.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One line of SQL, at most `width` characters.
fn flat(sql: &str, width: usize) -> String {
    let one: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.chars().count() <= width {
        one
    } else {
        format!("{}…", one.chars().take(width - 1).collect::<String>())
    }
}

fn lock_colour(mode: &str) -> &'static str {
    if blocks_reads(mode) {
        BLOCKS_READS
    } else if blocks_writes(mode) {
        BLOCKS_WRITES
    } else {
        BLOCKS_NOTHING
    }
}

/// The page.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let title = format!("migproof {}: {}", report.command, report.source.dir);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
        esc(&title),
        esc(&title)
    );
    let (class, verdict) = if report.summary.passed && report.error.is_none() {
        ("pass", "PASS")
    } else {
        ("fail", "FAIL")
    };
    let _ = writeln!(
        out,
        "<p><strong class=\"{class}\">{verdict}</strong>: {} finding(s), {} note(s); {} of {} \
         migration(s) traced; {} backend{}.</p>",
        report.findings.len(),
        report.notes.len(),
        report.summary.migrations_checked,
        report.migrations,
        esc(&report.backend),
        if report.server.is_empty() {
            String::new()
        } else {
            format!(", PostgreSQL {}", esc(&report.server))
        }
    );
    if let Some(error) = &report.error {
        let _ = writeln!(
            out,
            "<h2>The run failed to execute</h2>\n<pre>{}</pre>",
            esc(error)
        );
    }
    findings(&mut out, report);
    if let Some(trace) = &report.locks {
        lock_trace(&mut out, trace);
    }
    out.push_str("</body>\n</html>\n");
    out
}

fn findings(out: &mut String, report: &Report) {
    if !report.findings.is_empty() {
        let _ = writeln!(out, "<h2>Findings</h2>\n<ul>");
        for f in &report.findings {
            let _ = writeln!(
                out,
                "<li><code>{}</code> in <code>{}</code> ({}): {}</li>",
                esc(f.kind.as_str()),
                esc(&f.migration),
                esc(&f.step),
                esc(&f.message)
            );
        }
        out.push_str("</ul>\n");
    }
    if !report.notes.is_empty() {
        let _ = writeln!(out, "<h2>Notes</h2>\n<ul>");
        for n in &report.notes {
            let _ = writeln!(
                out,
                "<li><code>{}</code>{}: {}</li>",
                esc(n.kind.as_str()),
                n.migration
                    .as_ref()
                    .map(|m| format!(" in <code>{}</code>", esc(m)))
                    .unwrap_or_default(),
                esc(&n.message)
            );
        }
        out.push_str("</ul>\n");
    }
}

fn swatch(colour: &str, what: &str) -> String {
    format!("<span><i class=\"sw\" style=\"background:{colour}\"></i>{what}</span>")
}

fn lock_trace(out: &mut String, trace: &LockTrace) {
    let _ = writeln!(
        out,
        "<h2>Lock trace</h2>\n<p>At {} rows per table; a lock that blocks the application held \
         longer than {} ms is a hazard. Before each migration a report query opens a \
         REPEATABLE READ transaction, counts the rows of every existing table and stays open \
         up to 200 ms; the probe reads and writes every table the migration locks.</p>",
        trace.rows, trace.lock_threshold_ms
    );
    let _ = writeln!(
        out,
        "<p class=\"legend\">{}{}{}{}{}{}{}{}{}</p>",
        swatch(REPORT, "report query open"),
        swatch(STATEMENT, "statement running"),
        swatch(LOCK_WAIT, "statement waiting for its lock"),
        swatch(BLOCKS_READS, "lock held, blocks reads and writes"),
        swatch(BLOCKS_WRITES, "lock held, blocks writes"),
        swatch(BLOCKS_NOTHING, "lock held, blocks neither"),
        swatch(READ_WAIT, "probe read waiting"),
        swatch(WRITE_WAIT, "probe write waiting"),
        swatch(FAILED, "probe query failed"),
    );
    for m in &trace.migrations {
        migration(out, m);
    }
}

/// The time axis of one migration: ms to x.
struct Axis {
    end_ms: u64,
}

impl Axis {
    fn of(m: &MigrationTrace) -> Axis {
        let statements = m.statements.iter().map(|s| s.start_ms + s.duration_ms);
        let held = m.statements.iter().flat_map(|s| {
            s.locks
                .iter()
                .map(move |l| s.start_ms + s.lock_wait_ms + l.held_ms)
        });
        let waits = m.probe_waits.iter().map(|w| w.start_ms + w.duration_ms);
        let report = m.report_query.iter().map(|r| r.held_ms);
        let end_ms = statements
            .chain(held)
            .chain(waits)
            .chain(report)
            .chain([m.duration_ms, 1])
            .max()
            .unwrap_or(1);
        Axis { end_ms }
    }

    fn x(&self, ms: u64) -> f64 {
        LABEL + (WIDTH - LABEL - 10.0) * (ms.min(self.end_ms) as f64) / (self.end_ms as f64)
    }

    /// Width of a span, at least a visible sliver.
    fn w(&self, from: u64, ms: u64) -> f64 {
        (self.x(from + ms) - self.x(from)).max(1.5)
    }

    /// A round tick step giving about five ticks.
    fn step(&self) -> u64 {
        let rough = (self.end_ms / 5).max(1);
        let mut unit = 1;
        while unit * 10 <= rough {
            unit *= 10;
        }
        [1, 2, 5, 10]
            .into_iter()
            .map(|k| k * unit)
            .find(|s| *s >= rough)
            .unwrap_or(10 * unit)
    }
}

/// Rows of the drawing, each a label and its marks, drawn once all are known.
struct Rows {
    svg: String,
    y: f64,
}

impl Rows {
    fn label(&mut self, text: &str, tooltip: &str, height: f64, indent: f64) {
        let _ = write!(
            self.svg,
            "<text x=\"{:.1}\" y=\"{:.1}\"><title>{}</title>{}</text>",
            4.0 + indent,
            self.y + height * 0.7,
            esc(tooltip),
            esc(text)
        );
    }

    /// A bar on the row from `start_ms` for `ms`, on `axis`.
    fn bar(
        &mut self,
        axis: &Axis,
        (start_ms, ms): (u64, u64),
        height: f64,
        colour: &str,
        tooltip: &str,
    ) {
        let (x, w) = (axis.x(start_ms), axis.w(start_ms, ms));
        let _ = write!(
            self.svg,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{:.1}\" fill=\"{colour}\">\
             <title>{}</title></rect>",
            self.y + 3.0,
            height - 6.0,
            esc(tooltip)
        );
    }
}

fn migration(out: &mut String, m: &MigrationTrace) {
    let axis = Axis::of(m);
    let _ = writeln!(
        out,
        "<section id=\"{}\">\n<h2>{}</h2>\n<p><code>{}</code>: {} ms{}</p>",
        esc(&m.migration),
        esc(&m.migration),
        esc(&m.file),
        m.duration_ms,
        if m.filled.is_empty() {
            String::new()
        } else {
            format!("; filled first: {}", esc(&m.filled.join(", ")))
        }
    );
    if let Some(e) = &m.error {
        let _ = writeln!(out, "<p class=\"fail\">stopped: {}</p>", esc(e));
    }
    let mut rows = Rows {
        svg: String::new(),
        y: 0.0,
    };
    if let Some(r) = &m.report_query {
        let what = format!(
            "report query: REPEATABLE READ, count(*) of {}; open {} ms after the migration started",
            r.tables.join(", "),
            r.held_ms
        );
        rows.label("report query (REPEATABLE READ)", &what, ROW, 0.0);
        rows.bar(&axis, (0, r.held_ms), ROW, REPORT, &what);
        rows.y += ROW;
    }
    for s in &m.statements {
        statement_rows(&mut rows, &axis, s);
    }
    probe_rows(&mut rows, &axis, &m.probe_waits);
    // the axis
    let top = rows.y + 4.0;
    let _ = write!(
        rows.svg,
        "<line x1=\"{:.1}\" y1=\"{top:.1}\" x2=\"{:.1}\" y2=\"{top:.1}\" stroke=\"#57606a\"/>",
        axis.x(0),
        axis.x(axis.end_ms)
    );
    let step = axis.step();
    let mut tick = 0;
    while tick <= axis.end_ms {
        let x = axis.x(tick);
        let _ = write!(
            rows.svg,
            "<line x1=\"{x:.1}\" y1=\"0\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#d0d7de\" \
             stroke-dasharray=\"2,3\"/><text x=\"{x:.1}\" y=\"{:.1}\" \
             text-anchor=\"middle\">{tick} ms</text>",
            top,
            top + 16.0
        );
        tick += step;
    }
    let height = top + AXIS;
    let _ = writeln!(
        out,
        "<svg width=\"{WIDTH}\" height=\"{height:.0}\" \
         viewBox=\"0 0 {WIDTH} {height:.0}\" role=\"img\" aria-label=\"timeline of {}\">{}</svg>",
        esc(&m.migration),
        rows.svg
    );
    statement_table(out, m);
    out.push_str("</section>\n");
}

fn statement_rows(rows: &mut Rows, axis: &Axis, s: &StatementTrace) {
    let tooltip = format!(
        "statement {} (line {}): {} ms, {} ms of it waiting for its lock\n{}",
        s.statement, s.line, s.duration_ms, s.lock_wait_ms, s.sql
    );
    let label = format!("#{} L{} {}", s.statement, s.line, flat(&s.sql, LABEL_SQL));
    rows.label(&label, &tooltip, ROW, 0.0);
    rows.bar(axis, (s.start_ms, s.duration_ms), ROW, STATEMENT, &tooltip);
    if s.lock_wait_ms > 0 {
        let waiting = format!(
            "statement {} waited {} ms for its lock",
            s.statement, s.lock_wait_ms
        );
        rows.bar(axis, (s.start_ms, s.lock_wait_ms), ROW, LOCK_WAIT, &waiting);
    }
    rows.y += ROW;
    let acquired = s.start_ms + s.lock_wait_ms;
    for l in strongest_per_relation(&s.locks) {
        let what = format!("{} {} held {} ms", l.mode, l.relation, l.held_ms);
        rows.label(&format!("{} {}", l.mode, l.relation), &what, SUB_ROW, 16.0);
        rows.bar(
            axis,
            (acquired, l.held_ms),
            SUB_ROW,
            lock_colour(&l.mode),
            &what,
        );
        rows.y += SUB_ROW;
    }
}

fn probe_rows(rows: &mut Rows, axis: &Axis, waits: &[ProbeWait]) {
    let mut streams: Vec<(&str, &str)> = waits
        .iter()
        .map(|w| (w.table.as_str(), w.access.as_str()))
        .collect();
    streams.sort_unstable();
    streams.dedup();
    for (table, access) in streams {
        let label = format!("probe {access} {table}");
        rows.label(&label, &label, ROW, 0.0);
        for w in waits
            .iter()
            .filter(|w| w.table == table && w.access == access)
        {
            let (colour, what) = match &w.failed {
                Some(code) => (
                    FAILED,
                    format!(
                        "probe {access} on {table} failed (SQLSTATE {code}) after {} ms",
                        w.duration_ms
                    ),
                ),
                None => (
                    if access == "read" {
                        READ_WAIT
                    } else {
                        WRITE_WAIT
                    },
                    format!(
                        "probe {access} on {table} waited {} ms (statement {})",
                        w.duration_ms, w.statement
                    ),
                ),
            };
            rows.bar(axis, (w.start_ms, w.duration_ms), ROW, colour, &what);
        }
        rows.y += ROW;
    }
}

fn statement_table(out: &mut String, m: &MigrationTrace) {
    out.push_str(
        "<table>\n<tr><th>#</th><th>line</th><th>statement</th><th>duration</th>\
         <th>lock wait</th><th>locks held</th><th>probe queries waited</th><th>p50</th>\
         <th>max</th><th>failed</th><th>queue</th></tr>\n",
    );
    for s in &m.statements {
        let locks: Vec<String> = strongest_per_relation(&s.locks)
            .into_iter()
            .map(|l| {
                format!(
                    "<span style=\"color:{}\">{} {}</span> ({} ms)",
                    lock_colour(&l.mode),
                    esc(&l.mode),
                    esc(&l.relation),
                    l.held_ms
                )
            })
            .collect();
        let t = &s.traffic;
        let _ = writeln!(
            out,
            "<tr><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"sql\">{}{}</td>\
             <td class=\"n\">{} ms</td><td class=\"n\">{} ms</td><td>{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{} ms</td><td class=\"n\">{} ms</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td></tr>",
            s.statement,
            s.line,
            esc(&s.sql),
            s.error
                .as_ref()
                .map(|e| format!("<br><span class=\"fail\">failed: {}</span>", esc(e)))
                .unwrap_or_default(),
            s.duration_ms,
            s.lock_wait_ms,
            if locks.is_empty() {
                "-".to_string()
            } else {
                locks.join("<br>")
            },
            t.waited,
            t.wait_p50_ms,
            t.wait_max_ms,
            t.failed,
            t.queue_max,
        );
    }
    out.push_str("</table>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::locks::{LockTaken, ReportQuery, Traffic};
    use crate::report::{Report, Source};

    fn report() -> Report {
        let mut report = Report::new(
            "locks",
            Source {
                dir: "m<x>".into(),
                format: "sqlx".into(),
            },
            2,
            "url",
        );
        report.locks = Some(LockTrace {
            rows: 100,
            lock_threshold_ms: 1000,
            migrations: vec![MigrationTrace {
                migration: "0002_add".into(),
                file: "m/0002_add.up.sql".into(),
                duration_ms: 210,
                statements: vec![StatementTrace {
                    statement: 1,
                    line: 1,
                    sql: "ALTER TABLE t ADD c text DEFAULT '</svg><script>x</script>'".into(),
                    start_ms: 1,
                    duration_ms: 200,
                    lock_wait_ms: 195,
                    locks: vec![LockTaken {
                        relation: "public.t".into(),
                        kind: "table".into(),
                        mode: "AccessExclusiveLock".into(),
                        held_ms: 6,
                    }],
                    traffic: Traffic {
                        waited: 2,
                        wait_p50_ms: 190,
                        wait_max_ms: 192,
                        failed: 1,
                        queue_max: 3,
                    },
                    ..StatementTrace::default()
                }],
                probe_waits: vec![ProbeWait {
                    table: "public.t".into(),
                    access: "read".into(),
                    start_ms: 4,
                    duration_ms: 190,
                    statement: 1,
                    failed: None,
                }],
                report_query: Some(ReportQuery {
                    tables: vec!["public.t".into()],
                    held_ms: 200,
                }),
                ..MigrationTrace::default()
            }],
            ..LockTrace::default()
        });
        report
    }

    #[test]
    fn sql_and_names_are_escaped_and_nothing_is_fetched() {
        let page = render(&report());
        assert!(page.starts_with("<!DOCTYPE html>"), "{page}");
        assert_eq!(page.matches("<html").count(), 1);
        assert!(!page.contains("<script>"), "{page}");
        assert!(
            page.contains("&lt;/svg&gt;&lt;script&gt;x&lt;/script&gt;"),
            "{page}"
        );
        assert!(page.contains("m&lt;x&gt;"), "{page}");
        for external in ["src=", "href=", "<link", "@import", "url("] {
            assert!(!page.contains(external), "{external} in {page}");
        }
    }

    #[test]
    fn the_timeline_shows_the_statement_its_lock_the_report_query_and_the_probe() {
        let page = render(&report());
        assert!(page.contains("id=\"0002_add\""), "{page}");
        assert!(page.contains("report query (REPEATABLE READ)"), "{page}");
        assert!(
            page.contains("statement 1 waited 195 ms for its lock"),
            "{page}"
        );
        assert!(
            page.contains("AccessExclusiveLock public.t held 6 ms"),
            "{page}"
        );
        assert!(page.contains(&format!("fill=\"{BLOCKS_READS}\"")), "{page}");
        assert!(
            page.contains("probe read on public.t waited 190 ms"),
            "{page}"
        );
        assert!(page.contains("<td class=\"n\">190 ms</td>"), "{page}");
    }

    #[test]
    fn ticks_are_round() {
        let at = |end_ms| Axis { end_ms }.step();
        assert_eq!(at(1), 1);
        assert_eq!(at(210), 50);
        assert_eq!(at(1000), 200);
        assert_eq!(at(7300), 2000);
    }
}
