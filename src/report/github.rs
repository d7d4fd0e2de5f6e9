//! The GitHub Actions rendering: one workflow command per line (`::error` per finding,
//! `::notice` per accepted one, one `::error` when the environment failed), escaped as GitHub's
//! toolkit escapes them, then a plain summary line; and the Markdown of the job summary, which
//! is `markdown`'s. Notes are left out: as annotations they would bury the findings.

use std::fmt::Write as _;

use super::{markdown, sarif, Finding, Report};

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    if let Some(error) = &report.error {
        let _ = writeln!(
            out,
            "::error title=migproof::{}",
            escape_data(&format!("migproof could not run: {error}"))
        );
    }
    for f in &report.findings {
        out.push_str(&command("error", f, &format!("{}: {}", f.step, f.message)));
    }
    for a in &report.accepted {
        let f = &a.finding;
        let message = format!("{}: {}\naccepted: {}", f.step, f.message, a.accepted_by);
        out.push_str(&command("notice", f, &message));
    }
    let outcome = if report.error.is_some() {
        "could not run; "
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "migproof: {outcome}{}, {} accepted, {} of {} migrations checked",
        count(report.findings.len(), "finding"),
        report.accepted.len(),
        report.summary.migrations_checked,
        report.migrations,
    );
    out
}

/// The Markdown for `$GITHUB_STEP_SUMMARY`.
pub fn summary(report: &Report) -> String {
    markdown::render(report)
}

/// `::<level> file=F,line=L,title=T::MESSAGE` and a newline; `file` and `line` only when known.
fn command(level: &str, f: &Finding, message: &str) -> String {
    let mut properties = Vec::new();
    if let Some(place) = &f.place {
        properties.push(format!(
            "file={}",
            escape_property(&sarif::forward_path(&place.file))
        ));
        if let Some(line) = place.line {
            properties.push(format!("line={line}"));
        }
    }
    let title = format!("migproof: {} in {}", f.kind.as_str(), f.migration);
    properties.push(format!("title={}", escape_property(&title)));
    format!(
        "::{level} {}::{}\n",
        properties.join(","),
        escape_data(message)
    )
}

fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// A command's message, as `escapeData` of `@actions/core` escapes it.
fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A command's property value, as `escapeProperty` of `@actions/core` escapes it.
fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use regex::Regex;

    use super::*;
    use crate::report::{Accepted, Kind, Note, NoteKind, Place, Source};

    fn report() -> Report {
        Report::new(
            "check",
            Source {
                dir: "migrations".into(),
                format: "sqlx".into(),
            },
            12,
            "local",
        )
    }

    fn finding(kind: Kind, migration: &str, message: &str, place: Option<Place>) -> Finding {
        let mut f = Finding::new(kind, migration.into(), "up".into(), message.into());
        f.place = place;
        f
    }

    /// The runner's unescaping, the inverse of the toolkit's escaping.
    fn unescape(text: &str) -> String {
        text.replace("%0D", "\r")
            .replace("%0A", "\n")
            .replace("%3A", ":")
            .replace("%2C", ",")
            .replace("%25", "%")
    }

    /// `(level, properties, message)` of a workflow command line, unescaped; panics on
    /// anything else.
    fn parse(line: &str) -> (String, Vec<(String, String)>, String) {
        let re = Regex::new(r"^::(error|notice|warning)( [a-z]+=[^,:]*(,[a-z]+=[^,:]*)*)?::(.*)$")
            .expect("regex");
        let caps = re
            .captures(line)
            .unwrap_or_else(|| panic!("not a workflow command: {line:?}"));
        // A `%` must start one of the toolkit's escapes, or the runner reads the text wrongly.
        for (at, _) in line.match_indices('%') {
            let escape = line.get(at..at + 3).unwrap_or(&line[at..]);
            assert!(
                ["%25", "%0D", "%0A", "%3A", "%2C"].contains(&escape),
                "a raw % at {at} in {line:?}"
            );
        }
        let properties = caps
            .get(2)
            .map(|m| {
                m.as_str()[1..]
                    .split(',')
                    .map(|p| {
                        let (key, value) = p.split_once('=').expect("key=value");
                        (key.to_owned(), unescape(value))
                    })
                    .collect()
            })
            .unwrap_or_default();
        (caps[1].to_owned(), properties, unescape(&caps[4]))
    }

    fn full_report() -> Report {
        let mut report = report();
        report.summary.migrations_checked = 11;
        report.findings.push(finding(
            Kind::ApplyFailed,
            "0002_add_email",
            "syntax error at or near \"TABL\"\nLINE 1: CREATE TABL x",
            Some(Place::line(
                Path::new("./migrations/0002_add_email.up.sql"),
                4,
            )),
        ));
        report.findings.push(finding(
            Kind::DataLost,
            "0003_rename",
            "rows lost",
            Some(Place::file(Path::new("migrations/0003_rename/down.sql"))),
        ));
        report
            .findings
            .push(finding(Kind::Timeout, "0004_slow", "ran past 30s", None));
        let accepted = finding(
            Kind::Destructive,
            "0001_init",
            "drops public.legacy",
            Some(Place::line(Path::new("migrations/0001_init.up.sql"), 9)),
        );
        report.accepted.push(Accepted {
            fingerprint: accepted.fingerprint(),
            finding: accepted,
            accepted_by: "baseline migproof-baseline.json".into(),
        });
        report.notes.push(Note {
            kind: NoteKind::Irreversible,
            migration: Some("0004_slow".into()),
            step: None,
            message: "no down".into(),
            diff: None,
        });
        report
    }

    #[test]
    fn every_line_is_a_workflow_command_or_the_summary() {
        let text = render(&full_report());
        let lines: Vec<&str> = text.lines().collect();
        assert!(text.ends_with('\n'));
        let (summary, commands) = lines.split_last().expect("lines");
        assert_eq!(
            *summary,
            "migproof: 3 findings, 1 accepted, 11 of 12 migrations checked"
        );
        let parsed: Vec<_> = commands.iter().map(|line| parse(line)).collect();
        let levels: Vec<&str> = parsed.iter().map(|(l, _, _)| l.as_str()).collect();
        assert_eq!(levels, ["error", "error", "error", "notice"]);

        let (_, properties, message) = &parsed[0];
        assert_eq!(
            properties,
            &[
                ("file".into(), "migrations/0002_add_email.up.sql".into()),
                ("line".into(), "4".into()),
                (
                    "title".into(),
                    "migproof: apply_failed in 0002_add_email".into()
                ),
            ]
        );
        assert_eq!(
            message,
            "up: syntax error at or near \"TABL\"\nLINE 1: CREATE TABL x"
        );
        let keys =
            |i: usize| -> Vec<&str> { parsed[i].1.iter().map(|(k, _)| k.as_str()).collect() };
        assert_eq!(
            keys(1),
            ["file", "title"],
            "no line= when the line is unknown"
        );
        assert_eq!(keys(2), ["title"], "no file= without a place");
        assert!(parsed[3].2.contains("baseline migproof-baseline.json"));
        assert!(!text.contains("::warning"), "notes are not annotations");
    }

    #[test]
    fn messages_and_file_names_round_trip_through_the_escaping() {
        let mut report = report();
        let file = "migrations/v1,2: 100%\\n.sql";
        let message = "50% done\r\nthen: a, b\n%0A is not a newline";
        report.findings.push(finding(
            Kind::DataChanged,
            "0009_a,b:c",
            message,
            Some(Place::line(Path::new(file), 3)),
        ));
        let text = render(&report);
        let first = text.lines().next().expect("a command");
        let (_, properties, got) = parse(first);
        assert_eq!(got, format!("up: {message}"));
        assert_eq!(properties[0], ("file".into(), file.replace('\\', "/")));
        assert_eq!(
            properties[2],
            (
                "title".into(),
                "migproof: data_changed in 0009_a,b:c".into()
            )
        );
        assert_eq!(text.lines().count(), 2, "a raw newline in {text:?}");
    }

    #[test]
    fn a_failed_environment_is_one_error_and_the_summary_says_so() {
        let mut report = report();
        report.error = Some("no server reachable at 127.0.0.1:5432\nis it running?".into());
        let text = render(&report);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        let (level, properties, message) = parse(lines[0]);
        assert_eq!(level, "error");
        assert_eq!(properties, [("title".into(), "migproof".into())]);
        assert!(
            message.contains("127.0.0.1:5432\nis it running?"),
            "{message}"
        );
        assert_eq!(
            lines[1],
            "migproof: could not run; 0 findings, 0 accepted, 0 of 12 migrations checked"
        );
    }

    #[test]
    fn the_job_summary_is_the_markdown_rendering() {
        let report = full_report();
        assert_eq!(summary(&report), markdown::render(&report));
    }
}
