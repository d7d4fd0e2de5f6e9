//! The GitLab Code Quality rendering: a JSON array with one entry per finding (accepted ones
//! are left out: they do not fail the run), or one `environment_failure` entry when the
//! environment failed, so that the merge request still shows the run did not happen.

use serde::Serialize;

use super::{sarif, Finding, Report};

/// The `check_name` of the entry for a run whose environment failed.
const ENVIRONMENT_FAILURE: &str = "environment_failure";

#[derive(Serialize)]
struct Issue {
    description: String,
    check_name: &'static str,
    fingerprint: String,
    severity: &'static str,
    location: Location,
}

#[derive(Serialize)]
struct Location {
    path: String,
    lines: Lines,
}

#[derive(Serialize)]
struct Lines {
    begin: usize,
}

pub fn render(report: &Report) -> String {
    let issues: Vec<Issue> = match &report.error {
        Some(error) => vec![Issue {
            description: format!("migproof could not run: {error}"),
            check_name: ENVIRONMENT_FAILURE,
            fingerprint: environment_fingerprint(report),
            severity: "blocker",
            location: Location {
                path: sarif::forward_path(&report.source.dir),
                lines: Lines { begin: 1 },
            },
        }],
        None => report
            .findings
            .iter()
            .map(|f| issue(f, &report.source.dir))
            .collect(),
    };
    let mut text = serde_json::to_string_pretty(&issues).expect("issues always serialize");
    text.push('\n');
    text
}

/// `f` as an issue; one without a place is shown at the migrations folder `dir`.
fn issue(f: &Finding, dir: &str) -> Issue {
    let (path, line) = match &f.place {
        Some(place) => (sarif::forward_path(&place.file), place.line),
        None => (sarif::forward_path(dir), None),
    };
    Issue {
        description: format!("{} [{}]: {}", f.migration, f.step, f.message),
        check_name: f.kind.as_str(),
        fingerprint: f.fingerprint(),
        severity: super::kinds::severity(f.kind),
        location: Location {
            path,
            // GitLab requires a line; a finding about a whole file points at its first.
            lines: Lines {
                begin: line.filter(|&l| l > 0).unwrap_or(1),
            },
        },
    }
}

/// The same for every failed run of one migrations folder, so that GitLab shows one issue
/// that persists until the environment works, shaped like `Finding::fingerprint`.
fn environment_fingerprint(report: &Report) -> String {
    use sha2::{Digest, Sha256};
    let key = format!("migproof/1\0{ENVIRONMENT_FAILURE}\0{}", report.source.dir);
    let digest = Sha256::digest(key.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::path::Path;

    use serde_json::Value;

    use crate::report::Kind;

    use super::*;
    use crate::report::{Accepted, Place, Source};

    const SEVERITIES: [&str; 5] = ["info", "minor", "major", "critical", "blocker"];

    fn report() -> Report {
        Report::new(
            "check",
            Source {
                dir: "./db/migrations".into(),
                format: "sqlx".into(),
            },
            4,
            "local",
        )
    }

    fn finding(kind: Kind, migration: &str, step: &str, place: Place) -> Finding {
        let mut f = Finding::new(kind, migration.into(), step.into(), "it broke".into());
        f.place = Some(place);
        f
    }

    fn entries(report: &Report) -> Vec<Value> {
        let text = render(report);
        assert!(text.ends_with("]\n"));
        let doc: Value = serde_json::from_str(&text).expect("JSON");
        let entries = doc.as_array().expect("an array").clone();
        for e in &entries {
            for key in ["description", "check_name", "fingerprint"] {
                let value = e[key].as_str().unwrap_or_else(|| panic!("no {key} in {e}"));
                assert!(!value.is_empty(), "empty {key} in {e}");
            }
            let severity = e["severity"].as_str().expect("severity");
            assert!(SEVERITIES.contains(&severity), "{severity}");
            assert!(e["location"]["path"].is_string(), "{e}");
            assert!(
                e["location"]["lines"]["begin"]
                    .as_u64()
                    .is_some_and(|l| l >= 1),
                "{e}"
            );
        }
        entries
    }

    #[test]
    fn every_entry_has_what_gitlab_requires_and_a_fingerprint_of_its_own() {
        let mut report = report();
        let file = Path::new("./db/migrations/0002_b.up.sql");
        let findings = [
            finding(Kind::ApplyFailed, "0002_b", "up", Place::line(file, 7)),
            finding(
                Kind::SchemaMismatch,
                "0002_b",
                "down (round trip)",
                Place::file(file),
            ),
            finding(Kind::LockHazard, "0002_b", "up", Place::line(file, 3)),
            finding(
                Kind::ApplyFailed,
                "0002_b",
                "up with data",
                Place::line(file, 7).object(None, Some("users"), None),
            ),
            finding(Kind::ApplyFailed, "0003_c", "up", Place::line(file, 7)),
        ];
        report.findings.extend(findings.iter().cloned());
        let entries = entries(&report);
        assert_eq!(entries.len(), findings.len());
        let fingerprints: HashSet<&str> = entries
            .iter()
            .filter_map(|e| e["fingerprint"].as_str())
            .collect();
        assert_eq!(fingerprints.len(), findings.len());
        for (e, f) in entries.iter().zip(&findings) {
            assert_eq!(e["fingerprint"], f.fingerprint());
            assert_eq!(e["check_name"], f.kind.as_str());
            assert_eq!(e["location"]["path"], "db/migrations/0002_b.up.sql");
        }
        assert_eq!(entries[0]["severity"], "critical");
        assert_eq!(entries[0]["location"]["lines"]["begin"], 7);
        assert_eq!(entries[1]["severity"], "major");
        assert_eq!(entries[1]["location"]["lines"]["begin"], 1);
        assert!(entries[1]["description"]
            .as_str()
            .is_some_and(|d| d.contains("0002_b") && d.contains("down (round trip)")));
    }

    #[test]
    fn severities_follow_the_kind() {
        for kind in Kind::ALL {
            let expected = match kind {
                Kind::ApplyFailed | Kind::DataLost | Kind::Destructive | Kind::GlobalSideEffect => {
                    "critical"
                }
                _ => "major",
            };
            assert_eq!(
                super::super::kinds::severity(kind),
                expected,
                "{}",
                kind.as_str()
            );
        }
    }

    #[test]
    fn accepted_findings_are_left_out() {
        let mut report = report();
        let f = finding(
            Kind::Destructive,
            "0001_a",
            "up",
            Place::line(Path::new("m/0001_a.sql"), 2),
        );
        report.accepted.push(Accepted {
            fingerprint: f.fingerprint(),
            finding: f,
            accepted_by: "baseline migproof-baseline.json".into(),
        });
        assert_eq!(render(&report), "[]\n");
    }

    #[test]
    fn a_failed_environment_is_one_blocker_at_the_migrations_folder() {
        let mut report = report();
        report.error = Some("no server reachable".into());
        let first = entries(&report);
        assert_eq!(first.len(), 1);
        let e = &first[0];
        assert_eq!(e["check_name"], "environment_failure");
        assert_eq!(e["severity"], "blocker");
        assert_eq!(e["location"]["path"], "db/migrations");
        assert!(e["description"]
            .as_str()
            .is_some_and(|d| d.contains("no server reachable")));
        assert_eq!(
            e["fingerprint"],
            entries(&report)[0]["fingerprint"],
            "stable across runs"
        );
    }
}
