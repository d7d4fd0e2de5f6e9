//! The SARIF 2.1.0 rendering for code scanning (GitHub, GitLab, IDEs): one run whose rules are
//! the finding kinds, in `Kind::ALL`'s order, and whose results are the findings, accepted ones
//! suppressed. The words of each rule are `kinds`'; a failed environment is an unsuccessful
//! invocation.

use serde_json::{json, Map, Value};

use super::{kinds, Finding, Kind, Place, Report};

const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// The `partialFingerprints` key of `Finding::fingerprint`; versioned, so that a change to what
/// the fingerprint hashes starts new alerts instead of matching old ones wrongly.
const FINGERPRINT: &str = "migproofFingerprint/v1";

pub fn render(report: &Report) -> String {
    let mut results: Vec<Value> = report
        .findings
        .iter()
        .map(|f| result(f, &f.fingerprint()))
        .collect();
    results.extend(report.accepted.iter().map(|a| {
        let mut result = result(&a.finding, &a.fingerprint);
        result["suppressions"] = json!([{ "kind": "external", "justification": a.accepted_by }]);
        result
    }));
    let mut invocation = json!({ "executionSuccessful": report.error.is_none() });
    if let Some(error) = &report.error {
        invocation["toolExecutionNotifications"] = json!([{
            "level": "error",
            "message": { "text": format!("migproof could not run: {error}") },
        }]);
    }
    let log = json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": driver() },
            "invocations": [invocation],
            "results": results,
        }],
    });
    let mut text = serde_json::to_string_pretty(&log).expect("a SARIF log always serializes");
    text.push('\n');
    text
}

fn driver() -> Value {
    let rules: Vec<Value> = Kind::ALL.into_iter().map(rule).collect();
    let mut driver = json!({
        "name": "migproof",
        "version": env!("CARGO_PKG_VERSION"),
        "rules": rules,
    });
    // Cargo.toml may name neither; SARIF makes the field optional, so leave it out then.
    if let Some(uri) = [env!("CARGO_PKG_HOMEPAGE"), env!("CARGO_PKG_REPOSITORY")]
        .into_iter()
        .find(|uri| !uri.is_empty())
    {
        driver["informationUri"] = json!(uri);
    }
    driver
}

fn rule(kind: Kind) -> Value {
    json!({
        "id": kind.as_str(),
        "name": rule_name(kind),
        "shortDescription": { "text": kinds::title(kind) },
        "fullDescription": { "text": kinds::help(kind) },
        "help": { "text": kinds::help(kind) },
        "defaultConfiguration": { "level": "error" },
    })
}

/// SARIF's `name` is an identifier-like word (`ApplyFailed`), where `id` is the kind itself.
fn rule_name(kind: Kind) -> String {
    kind.as_str()
        .split('_')
        .flat_map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase())
                .into_iter()
                .chain(chars)
        })
        .collect()
}

/// The finding as a result; `fingerprint` is its identity across runs.
fn result(f: &Finding, fingerprint: &str) -> Value {
    let rule_index = Kind::ALL
        .iter()
        .position(|k| *k == f.kind)
        .expect("Kind::ALL holds every kind");
    let mut properties = Map::new();
    properties.insert("migration".into(), json!(f.migration));
    properties.insert("step".into(), json!(f.step));
    if let Some(sqlstate) = f.place.as_ref().and_then(|p| p.sqlstate.as_deref()) {
        properties.insert("sqlstate".into(), json!(sqlstate));
    }
    let object = f.object();
    if !object.is_empty() {
        properties.insert("object".into(), json!(object));
    }
    let mut result = json!({
        "ruleId": f.kind.as_str(),
        "ruleIndex": rule_index,
        "level": "error",
        "message": {
            "text": format!("{}\n\nmigration {}, step {}", f.message, f.migration, f.step),
        },
        "partialFingerprints": { FINGERPRINT: fingerprint },
        "properties": properties,
    });
    if let Some(place) = &f.place {
        result["locations"] = json!([location(place)]);
    }
    result
}

fn location(place: &Place) -> Value {
    let mut physical = json!({ "artifactLocation": { "uri": uri(&place.file) } });
    // SARIF lines count from 1; a line the server could not place is left out, not guessed.
    if let Some(line) = place.line.filter(|&line| line > 0) {
        physical["region"] = json!({ "startLine": line });
    }
    json!({ "physicalLocation": physical })
}

/// A file as the command line gave it, as a repository-relative tool expects it: forward
/// slashes, no leading `./`. Relative paths stay relative. Shared by the CI renderings.
pub(super) fn forward_path(file: &str) -> String {
    let mut path = file.replace('\\', "/");
    while let Some(rest) = path.strip_prefix("./") {
        path = rest.trim_start_matches('/').to_owned();
    }
    path
}

/// A file as SARIF's `uri`: a relative path is a relative reference, an absolute one a `file:`
/// URI, and every character a URI cannot hold as it is (a space, `%`, `:`, `#`, non-ASCII) is
/// percent-encoded.
fn uri(file: &str) -> String {
    let path = forward_path(file);
    let bytes = path.as_bytes();
    let drive = bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':';
    if let Some(rest) = path.strip_prefix('/') {
        format!("file:///{}", encode(rest))
    } else if drive {
        format!("file:///{}{}", &path[..2], encode(&path[2..]))
    } else {
        encode(&path)
    }
}

fn encode(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for &b in path.as_bytes() {
        // RFC 3986 unreserved characters, sub-delimiters, `@` and the path separator. `:` is
        // left out: in a first segment it would read as a scheme.
        let keep = b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=@/".contains(&b);
        if keep {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::report::{Accepted, Source};

    fn report() -> Report {
        Report::new(
            "check",
            Source {
                dir: "migrations".into(),
                format: "sqlx".into(),
            },
            3,
            "local",
        )
    }

    fn finding(kind: Kind, migration: &str, step: &str, message: &str, place: Place) -> Finding {
        let mut f = Finding::new(kind, migration.into(), step.into(), message.into());
        f.place = Some(place);
        f
    }

    /// A report with a finding of each shape: a line, SQLSTATE and object; a whole file with a
    /// Windows path; an accepted one.
    fn full_report() -> Report {
        let mut report = report();
        report.findings.push(finding(
            Kind::ApplyFailed,
            "0002_add_email",
            "up",
            "syntax error at or near \"TABL\"\nLINE 1: CREATE TABL x",
            Place::line(Path::new("./migrations/0002_add_email.up.sql"), 4)
                .sqlstate("42601")
                .object(None, Some("users"), Some("email")),
        ));
        report.findings.push(finding(
            Kind::DataLost,
            "0003_rename",
            "down (round trip)",
            "rows or values were lost in public.customers (6 rows before, 6 after)",
            Place::file(Path::new(r"migrations\0003 rename\down.sql")),
        ));
        let accepted = finding(
            Kind::Destructive,
            "0001_init",
            "up",
            "drops public.legacy holding 3 rows",
            Place::line(Path::new("migrations/0001_init.up.sql"), 9),
        );
        report.accepted.push(Accepted {
            fingerprint: accepted.fingerprint(),
            finding: accepted,
            accepted_by: "baseline migproof-baseline.json".into(),
        });
        report
    }

    fn parse(report: &Report) -> Value {
        let text = render(report);
        assert!(
            text.ends_with("}\n"),
            "not one document ending in a newline"
        );
        serde_json::from_str(&text).expect("the rendering is JSON")
    }

    /// The schema errors of `log`, as `path: message` lines.
    fn schema_errors(log: &Value) -> Vec<String> {
        let schema: Value = serde_json::from_str(include_str!(
            "../../tests/fixtures/sarif/sarif-schema-2.1.0.json"
        ))
        .expect("the vendored schema is JSON");
        let validator = jsonschema::options()
            .should_validate_formats(true)
            .build(&schema)
            .expect("the vendored schema compiles");
        validator
            .iter_errors(log)
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect()
    }

    #[test]
    fn the_log_is_valid_against_the_official_schema() {
        let mut failed = report();
        failed.error = Some("no server reachable at 127.0.0.1:5432".into());
        let mut nowhere = report();
        nowhere.findings.push(Finding::new(
            Kind::Timeout,
            "0004_slow".into(),
            "up".into(),
            "ran past 30s".into(),
        ));
        for report in [report(), full_report(), failed, nowhere] {
            let log = parse(&report);
            assert_eq!(schema_errors(&log), Vec::<String>::new(), "{log:#}");
            assert_eq!(log["$schema"], SCHEMA);
            assert_eq!(log["version"], "2.1.0");
            assert_eq!(log["runs"].as_array().map(Vec::len), Some(1));
        }
    }

    /// The schema check above would pass anything if the validator did not bite.
    #[test]
    fn the_schema_rejects_a_log_it_should() {
        let mut log = parse(&full_report());
        log["runs"][0]["results"][0]["level"] = json!("fatal");
        log["runs"][0]["results"][1]["locations"][0]["physicalLocation"]["region"] =
            json!({ "startLine": 0 });
        log["runs"][0]["results"][2]["locations"][0]["physicalLocation"]["artifactLocation"]
            ["uri"] = json!("migrations/0001 init.up.sql");
        let errors = schema_errors(&log);
        assert_eq!(errors.len(), 3, "{errors:#?}");
    }

    #[test]
    fn one_rule_per_kind_and_results_point_at_theirs() {
        let log = parse(&full_report());
        let run = &log["runs"][0];
        let driver = &run["tool"]["driver"];
        assert_eq!(driver["name"], "migproof");
        assert_eq!(driver["version"], env!("CARGO_PKG_VERSION"));
        let rules = driver["rules"].as_array().expect("rules");
        let ids: Vec<&str> = rules.iter().filter_map(|r| r["id"].as_str()).collect();
        let kinds: Vec<&str> = Kind::ALL.into_iter().map(Kind::as_str).collect();
        assert_eq!(ids, kinds);
        for (rule, kind) in rules.iter().zip(Kind::ALL) {
            assert_eq!(rule["shortDescription"]["text"], kinds::title(kind));
            assert_eq!(rule["fullDescription"]["text"], kinds::help(kind));
            assert_eq!(rule["help"]["text"], kinds::help(kind));
            assert_eq!(rule["defaultConfiguration"]["level"], "error");
        }
        assert_eq!(rules[0]["name"], "ApplyFailed");
        let results = run["results"].as_array().expect("results");
        assert_eq!(results.len(), 3);
        for result in results {
            let index = result["ruleIndex"].as_u64().expect("ruleIndex") as usize;
            assert_eq!(rules[index]["id"], result["ruleId"]);
            assert_eq!(result["level"], "error");
        }
    }

    #[test]
    fn results_carry_the_fingerprint_place_and_properties_of_their_finding() {
        let report = full_report();
        let log = parse(&report);
        let results = log["runs"][0]["results"]
            .as_array()
            .expect("results")
            .clone();
        let findings = report
            .findings
            .iter()
            .chain(report.accepted.iter().map(|a| &a.finding));
        for (result, f) in results.iter().zip(findings) {
            assert_eq!(
                result["partialFingerprints"][FINGERPRINT],
                f.fingerprint(),
                "{result:#}"
            );
            let text = result["message"]["text"].as_str().expect("message");
            assert!(text.starts_with(&f.message), "{text}");
            assert!(
                text.contains(&f.migration) && text.contains(&f.step),
                "{text}"
            );
            assert_eq!(result["properties"]["migration"], f.migration.as_str());
            assert_eq!(result["properties"]["step"], f.step.as_str());
        }

        let apply = &results[0];
        let physical = &apply["locations"][0]["physicalLocation"];
        assert_eq!(
            physical["artifactLocation"]["uri"],
            "migrations/0002_add_email.up.sql"
        );
        assert_eq!(physical["region"]["startLine"], 4);
        assert_eq!(apply["properties"]["sqlstate"], "42601");
        assert_eq!(apply["properties"]["object"], "public.users.email");

        let lost = &results[1];
        let physical = &lost["locations"][0]["physicalLocation"];
        assert_eq!(
            physical["artifactLocation"]["uri"],
            "migrations/0003%20rename/down.sql"
        );
        assert!(physical.get("region").is_none(), "{physical:#}");
        assert!(lost["properties"].get("sqlstate").is_none());
        assert!(lost["properties"].get("object").is_none());
        assert!(lost.get("suppressions").is_none());
    }

    #[test]
    fn accepted_findings_are_suppressed_results() {
        let log = parse(&full_report());
        let accepted = &log["runs"][0]["results"][2];
        assert_eq!(accepted["ruleId"], "destructive");
        assert_eq!(
            accepted["suppressions"],
            json!([{ "kind": "external", "justification": "baseline migproof-baseline.json" }])
        );
        assert_eq!(
            log["runs"][0]["invocations"][0]["executionSuccessful"],
            true
        );
        assert!(log["runs"][0]["invocations"][0]
            .get("toolExecutionNotifications")
            .is_none());
    }

    #[test]
    fn a_failed_environment_is_an_unsuccessful_invocation() {
        let mut report = report();
        report.error = Some("the local cluster did not start: initdb exited 1".into());
        let log = parse(&report);
        let invocation = &log["runs"][0]["invocations"][0];
        assert_eq!(invocation["executionSuccessful"], false);
        let text = invocation["toolExecutionNotifications"][0]["message"]["text"]
            .as_str()
            .expect("a notification");
        assert!(text.contains("initdb exited 1"), "{text}");
        assert_eq!(log["runs"][0]["results"], json!([]));
    }

    #[test]
    fn uris_use_forward_slashes_and_stay_relative() {
        assert_eq!(uri("./migrations/0001_a.sql"), "migrations/0001_a.sql");
        assert_eq!(uri(".//a/./b.sql"), "a/./b.sql");
        assert_eq!(uri(r"db\migrations\0001_a.sql"), "db/migrations/0001_a.sql");
        assert_eq!(uri("../shared/0001_a.sql"), "../shared/0001_a.sql");
        assert_eq!(
            uri("/srv/app/m/0001 a.sql"),
            "file:///srv/app/m/0001%20a.sql"
        );
        assert_eq!(uri(r"C:\app\m\1.sql"), "file:///C:/app/m/1.sql");
        assert_eq!(uri("m/V1__a:b%#é.sql"), "m/V1__a%3Ab%25%23%C3%A9.sql");
        assert_eq!(forward_path(r".\m\0001_a.sql"), "m/0001_a.sql");
    }
}
