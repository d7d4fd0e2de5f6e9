//! The JUnit XML rendering for CI test reporters: one `<testsuite>` per run, one `<testcase>`
//! per migration checked (passing ones included), one `<failure>` per finding, the notes in the
//! suite's `<system-out>`. Text XML 1.0 cannot carry is replaced, so any message makes a
//! well-formed document.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io;

use quick_xml::events::{BytesDecl, BytesText, Event};
use quick_xml::Writer;

use super::{Finding, Report};

/// The test case of findings that name no migration.
const NO_MIGRATION: &str = "(no migration)";

pub fn render(report: &Report) -> String {
    let mut out = Writer::new_with_indent(Vec::new(), b' ', 2);
    write(&mut out, report).expect("writing to memory does not fail");
    let mut text = String::from_utf8(out.into_inner()).expect("written from UTF-8 strings");
    text.push('\n');
    text
}

fn write(out: &mut Writer<Vec<u8>>, report: &Report) -> io::Result<()> {
    let cases = cases(report);
    let tests =
        (cases.len() + report.skipped.len() + usize::from(report.error.is_some())).to_string();
    let failures = cases
        .iter()
        .filter(|(_, findings)| !findings.is_empty())
        .count()
        .to_string();
    let skipped = report.skipped.len().to_string();
    let errors = usize::from(report.error.is_some()).to_string();
    let time = format!("{:.3}", report.summary.duration_ms as f64 / 1000.0);
    let suite = xml(&format!("migproof {}", report.command)).into_owned();
    let classname = xml(&format!("migproof.{}", report.command)).into_owned();
    let counts = [
        ("tests", tests.as_str()),
        ("failures", &failures),
        ("errors", &errors),
        ("skipped", &skipped),
        ("time", &time),
    ];

    out.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    out.create_element("testsuites")
        .with_attribute(("name", "migproof"))
        .with_attributes(counts)
        .write_inner_content(|out| {
            out.create_element("testsuite")
                .with_attribute(("name", suite.as_str()))
                .with_attributes(counts)
                .write_inner_content(|out| {
                    if let Some(message) = &report.error {
                        out.create_element("testcase")
                            .with_attribute(("classname", classname.as_str()))
                            .with_attribute(("name", "environment"))
                            .write_inner_content(|out| {
                                out.create_element("error")
                                    .with_attribute(("type", "environment_failure"))
                                    .with_attribute(("message", xml(message).as_ref()))
                                    .write_empty()?;
                                Ok(())
                            })?;
                    }
                    for (name, findings) in &cases {
                        let file = report.files.get(*name).map(String::as_str).or_else(|| {
                            findings
                                .iter()
                                .find_map(|f| Some(f.place.as_ref()?.file.as_str()))
                        });
                        let mut case = out
                            .create_element("testcase")
                            .with_attribute(("classname", classname.as_str()))
                            .with_attribute(("name", xml(name).as_ref()));
                        if let Some(file) = file {
                            case = case.with_attribute(("file", xml(file).as_ref()));
                        }
                        if findings.is_empty() {
                            case.write_empty()?;
                        } else {
                            case.write_inner_content(|out| {
                                findings.iter().try_for_each(|f| failure(out, f))
                            })?;
                        }
                    }
                    for name in &report.skipped {
                        let mut case = out
                            .create_element("testcase")
                            .with_attribute(("classname", classname.as_str()))
                            .with_attribute(("name", xml(name).as_ref()));
                        if let Some(file) = report.files.get(name) {
                            case = case.with_attribute(("file", xml(file).as_ref()));
                        }
                        case.write_inner_content(|out| {
                            out.create_element("skipped")
                                .with_attribute((
                                    "message",
                                    "not reached: an earlier migration does not apply on an \
                                     empty database",
                                ))
                                .write_empty()?;
                            Ok(())
                        })?;
                    }
                    if !report.notes.is_empty()
                        || !report.accepted.is_empty()
                        || !report.fixed.is_empty()
                    {
                        out.create_element("system-out")
                            .write_text_content(BytesText::new(&xml(&notes(report))))?;
                    }
                    Ok(())
                })?;
            Ok(())
        })?;
    Ok(())
}

/// The test cases in order: the migrations checked, then any other migration a finding names
/// (one that did not apply, a repeatable), each with its findings.
fn cases(report: &Report) -> Vec<(&str, Vec<&Finding>)> {
    let mut cases: Vec<(&str, Vec<&Finding>)> = report
        .checked
        .iter()
        .map(|id| (id.as_str(), Vec::new()))
        .collect();
    let mut index: HashMap<&str, usize> = cases
        .iter()
        .enumerate()
        .map(|(i, (id, _))| (*id, i))
        .collect();
    for f in &report.findings {
        let name = if f.migration.is_empty() {
            NO_MIGRATION
        } else {
            f.migration.as_str()
        };
        let i = *index.entry(name).or_insert_with(|| {
            cases.push((name, Vec::new()));
            cases.len() - 1
        });
        cases[i].1.push(f);
    }
    cases
}

/// `<failure type="kind" message="step: first line">` with everything the finding says.
fn failure(out: &mut Writer<Vec<u8>>, f: &Finding) -> io::Result<()> {
    let first_line = f.message.lines().next().unwrap_or_default();
    out.create_element("failure")
        .with_attribute(("type", f.kind.as_str()))
        .with_attribute((
            "message",
            xml(&format!("{}: {first_line}", f.step)).as_ref(),
        ))
        .write_text_content(BytesText::new(&xml(&failure_text(f))))?;
    Ok(())
}

fn failure_text(f: &Finding) -> String {
    let mut text = format!("{}\n", f.message);
    let facts = f.lock_facts();
    if !facts.is_empty() {
        let _ = writeln!(text, "{}", facts.join(" · "));
    }
    if let Some(lock) = &f.lock {
        let _ = writeln!(text, "fix: {}", lock.hint);
    }
    if !f.rows.is_empty() {
        let _ = writeln!(text, "\nrows:");
        for row in &f.rows {
            let _ = writeln!(text, "  {row}");
        }
    }
    if let Some(case) = &f.case {
        let _ = writeln!(text, "\nshrunk sequence (seed {}):", case.seed);
        for step in &case.sequence {
            let _ = writeln!(text, "  {step}");
        }
        let _ = writeln!(text, "\nreplay: {}", case.replay);
    }
    if let Some(diff) = &f.diff {
        let _ = write!(text, "\n{diff}");
    }
    text
}

fn notes(report: &Report) -> String {
    let mut text = String::new();
    for a in &report.accepted {
        let f = &a.finding;
        let _ = writeln!(
            text,
            "accepted {} {} [{}]: {} ({})",
            f.kind.as_str(),
            f.migration,
            f.step,
            f.message.lines().next().unwrap_or_default(),
            a.accepted_by
        );
    }
    for e in &report.fixed {
        let _ = writeln!(
            text,
            "fixed since the baseline: {} {} [{}]",
            e.kind, e.migration, e.step
        );
    }
    for n in &report.notes {
        let _ = writeln!(text, "note {}{}: {}", n.kind, n.place(), n.message);
    }
    text
}

/// `text` with every character XML 1.0 forbids (control characters other than tab, newline
/// and carriage return; U+FFFE, U+FFFF) replaced by U+FFFD. Escaping is quick-xml's.
fn xml(text: &str) -> Cow<'_, str> {
    let allowed = |c: char| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{FFFD}' | '\u{10000}'..);
    if text.chars().all(allowed) {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(
            text.chars()
                .map(|c| if allowed(c) { c } else { '\u{FFFD}' })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::report::{FuzzCase, NoteKind};
    use quick_xml::escape::resolve_predefined_entity;
    use quick_xml::events::Event;
    use quick_xml::{Reader, XmlVersion};

    use super::*;
    use crate::report::{Kind, Note, Source};

    type Element = (String, Vec<(String, String)>, String);

    /// Every element (name, attributes as a parser reports them, text inside it), in document
    /// order; panics when the document is not well-formed.
    fn parse(doc: &str) -> Vec<Element> {
        // quick-xml does not check characters against the XML 1.0 `Char` production.
        let legal = |c: char| {
            matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}')
                || matches!(c, '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
        };
        assert!(
            doc.chars().all(legal),
            "a character XML 1.0 forbids in\n{doc:?}"
        );
        let mut reader = Reader::from_str(doc);
        reader.config_mut().check_end_names = true;
        let element = |e: &quick_xml::events::BytesStart| -> Element {
            let name = e.name().as_ref().to_owned();
            let attributes = e
                .attributes()
                .map(|a| {
                    let a = a.unwrap();
                    let key = a.key.as_ref().to_owned();
                    (
                        key,
                        a.normalized_value(XmlVersion::Implicit1_0)
                            .unwrap()
                            .into_owned(),
                    )
                })
                .collect();
            (name, attributes, String::new())
        };
        let mut elements = Vec::new();
        let mut open: Vec<usize> = Vec::new();
        loop {
            let event = reader
                .read_event()
                .unwrap_or_else(|e| panic!("not well-formed: {e}\n{doc}"));
            let inside = open.last().copied();
            match event {
                Event::Start(e) => {
                    elements.push(element(&e));
                    open.push(elements.len() - 1);
                }
                Event::Empty(e) => elements.push(element(&e)),
                Event::End(_) => {
                    open.pop();
                }
                Event::Text(t) => {
                    if let Some(i) = inside {
                        elements[i].2.push_str(&t.xml10_content());
                    }
                }
                Event::GeneralRef(r) => {
                    let c = match resolve_predefined_entity(&r) {
                        Some(s) => s.to_owned(),
                        None => r
                            .resolve_char_ref()
                            .unwrap()
                            .expect("a known reference")
                            .to_string(),
                    };
                    elements[inside.expect("a reference inside an element")]
                        .2
                        .push_str(&c);
                }
                Event::Eof => break,
                _ => {}
            }
        }
        assert!(open.is_empty(), "unclosed elements in\n{doc}");
        elements
    }

    fn attr<'a>(element: &'a Element, key: &str) -> &'a str {
        element
            .1
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("<{}> has no {key}", element.0))
    }

    fn report(checked: &[&str]) -> Report {
        let source = Source {
            dir: "migrations".into(),
            format: "sqlx".into(),
        };
        let mut report = Report::new("check", source, checked.len() + 1, "url");
        report.checked = checked.iter().map(|s| s.to_string()).collect();
        report
    }

    fn finding(kind: Kind, migration: &str, message: &str) -> Finding {
        Finding::new(
            kind,
            migration.into(),
            "down (round trip)".into(),
            message.into(),
        )
    }

    #[test]
    fn a_passing_run_has_one_passing_case_per_migration() {
        let mut r = report(&["0001_a", "0002_b"]);
        r.finish(std::time::Duration::from_millis(1500));
        let doc = render(&r);
        assert!(
            doc.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites"),
            "{doc}"
        );
        let elements = parse(&doc);
        let names: Vec<&str> = elements.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(names, ["testsuites", "testsuite", "testcase", "testcase"]);
        let suite = &elements[1];
        assert_eq!(attr(suite, "name"), "migproof check");
        assert_eq!((attr(suite, "tests"), attr(suite, "failures")), ("2", "0"));
        assert_eq!(attr(suite, "time"), "1.500");
        assert_eq!(attr(&elements[2], "classname"), "migproof.check");
        assert_eq!(attr(&elements[3], "name"), "0002_b");
    }

    #[test]
    fn failures_belong_to_their_migration_and_unchecked_ones_get_a_case() {
        let mut r = report(&["0001_a", "0002_b"]);
        let mut lost = finding(Kind::DataLost, "0002_b", "rows were lost\nin public.t");
        lost.rows = vec!["public.t(id=1).v: 'x' -> NULL".into()];
        let mut mismatch = finding(Kind::SchemaMismatch, "0002_b", "schema differs");
        mismatch.diff = Some("--- golden\n+++ after\n-a\n+b\n".into());
        r.findings = vec![
            lost,
            mismatch,
            finding(Kind::ApplyFailed, "0003_c", "did not apply"),
            finding(Kind::Timeout, "", "ran too long"),
        ];
        r.finish(std::time::Duration::ZERO);
        let elements = parse(&render(&r));
        let suite = &elements[1];
        assert_eq!((attr(suite, "tests"), attr(suite, "failures")), ("4", "3"));
        let cases: Vec<&str> = elements
            .iter()
            .filter(|e| e.0 == "testcase")
            .map(|e| attr(e, "name"))
            .collect();
        assert_eq!(cases, ["0001_a", "0002_b", "0003_c", NO_MIGRATION]);
        let failures: Vec<_> = elements.iter().filter(|e| e.0 == "failure").collect();
        assert_eq!(failures.len(), 4);
        assert_eq!(attr(failures[0], "type"), "data_lost");
        assert_eq!(
            attr(failures[0], "message"),
            "down (round trip): rows were lost"
        );
        assert!(
            failures[0].2.contains("rows were lost\nin public.t\n"),
            "{}",
            failures[0].2
        );
        assert!(
            failures[0].2.contains("public.t(id=1).v: 'x' -> NULL"),
            "{}",
            failures[0].2
        );
        assert!(failures[1].2.ends_with("-a\n+b\n"), "{}", failures[1].2);
        assert_eq!(attr(failures[3], "type"), "timeout");
    }

    #[test]
    fn unreached_migrations_are_skipped_cases_with_their_file() {
        let mut r = report(&["0001_a"]);
        r.skipped = vec!["0002_b".into(), "0003_c".into()];
        r.files.insert("0001_a".into(), "m/0001_a.sql".into());
        r.files.insert("0003_c".into(), "m/0003_c.sql".into());
        r.finish(std::time::Duration::ZERO);
        let elements = parse(&render(&r));
        let names: Vec<&str> = elements.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "testsuites",
                "testsuite",
                "testcase",
                "testcase",
                "skipped",
                "testcase",
                "skipped"
            ]
        );
        assert_eq!(
            (attr(&elements[1], "tests"), attr(&elements[1], "skipped")),
            ("3", "2")
        );
        assert_eq!(attr(&elements[2], "file"), "m/0001_a.sql");
        assert_eq!(attr(&elements[5], "name"), "0003_c");
        assert_eq!(attr(&elements[5], "file"), "m/0003_c.sql");
        assert!(attr(&elements[6], "message").starts_with("not reached"));
    }

    #[test]
    fn an_environment_failure_is_an_error_case() {
        let source = Source {
            dir: "migrations".into(),
            format: String::new(),
        };
        let mut r = Report::environment_failed("check", source, "no server".into());
        r.finish(std::time::Duration::ZERO);
        let elements = parse(&render(&r));
        let names: Vec<&str> = elements.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(names, ["testsuites", "testsuite", "testcase", "error"]);
        assert_eq!(
            (attr(&elements[1], "tests"), attr(&elements[1], "errors")),
            ("1", "1")
        );
        assert_eq!(attr(&elements[3], "message"), "no server");
    }

    #[test]
    fn fuzz_failures_carry_the_sequence_and_the_replay_command() {
        let mut r = report(&["0001_a"]);
        let mut f = finding(Kind::RetryFailed, "0001_a", "the retry failed");
        f.case = Some(FuzzCase {
            sequence: vec!["1. interrupt the next migration".into(), "2. retry".into()],
            seed: "0x000000000000002a".into(),
            replay: "migproof replay proptest-regressions/x.json".into(),
        });
        r.findings.push(f);
        let elements = parse(&render(&r));
        let text = &elements.iter().find(|e| e.0 == "failure").unwrap().2;
        assert!(
            text.contains("shrunk sequence (seed 0x000000000000002a):\n  1. interrupt"),
            "{text}"
        );
        assert!(text.contains("  2. retry\n"), "{text}");
        assert!(
            text.contains("replay: migproof replay proptest-regressions/x.json"),
            "{text}"
        );
    }

    #[test]
    fn notes_go_to_system_out() {
        let mut r = report(&["0001_a"]);
        r.notes.push(Note {
            kind: NoteKind::Irreversible,
            migration: Some("0001_a".into()),
            step: Some("down".into()),
            message: "0001_a has no down migration".into(),
            diff: None,
        });
        let elements = parse(&render(&r));
        let out = elements
            .iter()
            .find(|e| e.0 == "system-out")
            .expect("system-out");
        assert_eq!(
            out.2,
            "note irreversible 0001_a [down]: 0001_a has no down migration\n"
        );
    }

    #[test]
    fn nasty_text_makes_well_formed_xml() {
        let nasty =
            "a \"quoted\" 'name' <tag> & ]]> \u{0}\u{1}\u{8}\u{b}\u{c}\u{1b}[31m \u{fffe}\u{ffff} \
                     tab\there\r\nemoji 🐘 \u{7f}\u{85}";
        let mut r = report(&[nasty]);
        let mut f = finding(Kind::DataChanged, nasty, nasty);
        f.step = nasty.into();
        f.diff = Some(nasty.into());
        f.rows = vec![nasty.into()];
        r.findings.push(f);
        let note = Note {
            kind: NoteKind::Source,
            migration: None,
            step: None,
            message: nasty.into(),
            diff: None,
        };
        r.notes.push(note);
        r.command = nasty.into();
        // `parse` fails on a character XML 1.0 forbids and on anything not well-formed.
        let elements = parse(&render(&r));
        let clean =
            "a \"quoted\" 'name' <tag> & ]]> \u{fffd}\u{fffd}\u{fffd}\u{fffd}\u{fffd}\u{fffd}[31m \
                     \u{fffd}\u{fffd} tab\there\r\nemoji 🐘 \u{7f}\u{85}";
        let find = |name: &str| elements.iter().find(|e| e.0 == name).unwrap();
        assert_eq!(attr(find("testsuite"), "name"), format!("migproof {clean}"));
        assert_eq!(
            attr(find("testsuite"), "tests"),
            "1",
            "the finding's migration is the checked one"
        );
        assert_eq!(attr(find("testcase"), "name"), clean);
        assert_eq!(
            attr(find("failure"), "message"),
            format!("{clean}: {}", clean.lines().next().unwrap())
        );
        assert!(
            find("failure").2.starts_with(clean),
            "{:?}",
            find("failure").2
        );
        assert!(
            find("system-out").2.contains(clean),
            "{:?}",
            find("system-out").2
        );
    }
}
