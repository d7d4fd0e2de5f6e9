//! The Sqitch layout (PostgreSQL engine): a project root holding `sqitch.conf`, the plan
//! `sqitch.plan`, and one script per change in each of `deploy/`, `revert/` and `verify/`,
//! read the way Sqitch 1.x reads them and run the way its `pg` engine runs them.
//!
//! What Sqitch does, and so what this reader describes (sources: the `sqitch-plan` and
//! `sqitchchanges` manuals, <https://sqitch.org/docs/manual/sqitchchanges/>;
//! `App::Sqitch::Plan::_parse` and `App::Sqitch::Plan::Change::path_segments` in
//! sqitchers/sqitch; `App::Sqitch::Engine::pg::run_file`; the `sqitch-configuration`,
//! `sqitch-engine`, `sqitch-rework` and `sqitch-verify` manuals; the pg templates in
//! `etc/templates`):
//! - **Plan header.** The plan starts with pragmas, `%name=value` lines: `%syntax-version`,
//!   `%project` (required: Sqitch refuses a plan without it) and `%uri`. A blank line ends
//!   them; any other line before it is a syntax error.
//! - **Changes.** Each following line is a change, `name [dependencies] timestamp planner
//!   <email> # note`, with a UTC timestamp `2024-03-01T09:30:00Z`; the timestamp and the
//!   planner are required. Dependencies are `change`, `change@tag`, `@tag`, `project:change`,
//!   or `!change` for a conflict; a required change of the same project must be planned
//!   before the change that requires it, or Sqitch refuses the plan. `#` starts a note to the
//!   end of the line, and blank and comment lines are skipped. A name must not start or end
//!   with punctuation (`_` aside), nor hold blanks, `:`, `@`, `#` or `\`. Changes deploy in
//!   plan order and revert in reverse order; dependencies only check that order.
//! - **Tags.** `@name timestamp planner <email> # note` labels the change above it; a tag
//!   name may not hold `/`, and a tag may not have dependencies.
//! - **Scripts.** Change `a/b` runs `deploy/a/b.sql`, is reverted by `revert/a/b.sql` and
//!   checked by `verify/a/b.sql`. `sqitch.conf` (a git-config file) may move them: `top_dir`
//!   (default `.`), `plan_file` (`$top_dir/sqitch.plan`), `deploy_dir`, `revert_dir`,
//!   `verify_dir` (`$top_dir/deploy`, ...) and `extension` (`sql`), each set under
//!   `[engine "pg"]`, which wins, or `[core]`; paths are relative to the project root.
//!   `core.engine` must be `pg` (or unset: the engine then comes from the command line).
//! - **Reworks.** A change name may appear again after a tag (`sqitch rework`; the new line
//!   usually requires `name@tag`). The latest instance keeps `deploy/name.sql`; an earlier
//!   one is read from `deploy/name@TAG.sql` (and the same name in `revert/` and `verify/`),
//!   where TAG is the first of these tags whose deploy script exists: the tags of the changes
//!   between it and its next instance, latest change first, then its own tags.
//! - **How a script runs.** Through `psql --file <script>` with `ON_ERROR_STOP=1`, on one
//!   session per script. psql sends the statements one by one, so each commits on its own
//!   unless the script itself opens a transaction; the usual pg template wraps the script in
//!   `BEGIN;` ... `COMMIT;`. A script is read here as psql's session runs it: the
//!   statements between the script's own `BEGIN` and `COMMIT` as one transactional block (the
//!   executor sends the `BEGIN` and `COMMIT`, and the `BEGIN`'s options as `SET
//!   TRANSACTION`), every other statement as its own chunk of an autocommit block.
//! - **Verify scripts.** After a deploy (`sqitch deploy --verify`, or `sqitch verify`) Sqitch
//!   runs the change's verify script, if there is one (a missing one is only a warning); it
//!   fails when psql exits non-zero. They usually select from the new objects `WHERE FALSE`,
//!   inside `BEGIN;` ... `ROLLBACK;`. (`sqitch verify` skips the earlier instances of a
//!   reworked change; `deploy --verify` runs each instance's own.) They go to
//!   [`MigrationSet::verify`] by migration id, every instance's, as one autocommit block of
//!   all their statements: the runner runs one in a transaction it rolls back, leaving out
//!   the script's own transaction control, so that it changes nothing whatever it says.
//!
//! What migproof refuses, naming the file and line, and why:
//! - psql meta-commands (`\set`, `\i`, `\gset`, any backslash outside quotes and comments)
//!   and psql variables (`:name`, `:'name'`, `:"name"`, which Sqitch fills from `--set` and
//!   `[deploy.variables]`): psql acts on them before the server sees the script, and
//!   migproof sends the script to the server itself.
//! - a deploy or revert script that opens a transaction (`BEGIN`) and never ends it (psql
//!   ends the session at the end of the file and the server rolls the transaction back),
//!   rolls it back, or prepares it for two-phase commit: Sqitch would record the change while
//!   none of it stays.
//! - a plan Sqitch refuses (a missing `%project`, a line it cannot read, a duplicate change
//!   without a tag in between, a duplicate tag, a dependency not planned earlier), `-change`
//!   lines (planned reverts, which migproof does not read), a missing deploy script, an
//!   engine other than `pg`, and script folders set per target (`[target "..."]`), since the
//!   folder cannot say which target is deployed.
//!
//! A change with no revert script has no down. Migration ids are change names, and
//! `name@TAG` for an earlier instance of a reworked change.

use super::{Detect, Layout};
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;

use super::split::{self, line_of};
use super::{read_text, Block, Chunk, Format, Migration, MigrationSet, Script, SourceError};

/// True when the folder holds a Sqitch project: its plan (or its `sqitch.conf`, for a project
/// whose plan lives under another `top_dir`).
pub fn matches(entries: &[PathBuf]) -> bool {
    entries.iter().any(|p| {
        let name = p.file_name().and_then(|n| n.to_str());
        matches!(name, Some("sqitch.plan" | "sqitch.conf")) && p.is_file()
    })
}
/// The sqitch layout, as the registry (`source::LAYOUTS`) knows it.
pub const LAYOUT: Layout = Layout {
    format: Format::Sqitch,
    name: "sqitch",
    load,
    detect: Detect::OwnFile(matches),
    history_tables: &[],
    marks: ("Sqitch", &[]),
    placeholders: false,
};

/// Reads `dir`, a Sqitch project root, as migrations: one per change, in plan order.
pub fn load(dir: &Path) -> Result<MigrationSet, SourceError> {
    let mut notes = Vec::new();
    let layout = Project::read(dir, &mut notes)?;
    if std::fs::symlink_metadata(&layout.plan).is_err() {
        return Err(SourceError::Invalid {
            path: layout.plan.clone(),
            message: "does not exist; a Sqitch project needs its plan (`sqitch init` writes \
                      one)"
                .to_owned(),
        });
    }
    let text = read_text(&layout.plan)?;
    let plan = parse_plan(&layout.plan, &text)?;
    let mut migrations = Vec::new();
    let mut verify = BTreeMap::new();
    for change in &plan.changes {
        let (suffix, deploy) = layout.deploy_script(change).map_err(|tried| {
            invalid(
                &layout.plan,
                change.line,
                missing_deploy(&change.name, !change.rework_tags.is_empty(), &tried),
            )
        })?;
        let file = |folder: &Path| layout.script_path(folder, &change.name, suffix.as_deref());
        let up = script(&deploy, Role::Change)?;
        let revert = file(&layout.revert);
        let down = if exists(&revert) {
            Some(script(&revert, Role::Change)?)
        } else {
            None
        };
        let migration = Migration {
            version: match &suffix {
                Some(tag) => format!("{}@{tag}", change.name),
                None => change.name.clone(),
            },
            description: String::new(),
            up,
            down,
        };
        let check = file(&layout.verify);
        if exists(&check) {
            verify.insert(migration.id(), script(&check, Role::Verify)?);
        }
        migrations.push(migration);
    }
    if migrations.is_empty() {
        return Err(SourceError::Empty {
            dir: dir.to_owned(),
            hint: format!(" (`{}` plans no change)", layout.plan.display()),
        });
    }
    let mut set = MigrationSet::new(Format::Sqitch, dir, migrations);
    set.verify = verify;
    set.notes = notes;
    Ok(set)
}

fn invalid(path: &Path, line: usize, message: String) -> SourceError {
    SourceError::Invalid {
        path: path.to_owned(),
        message: format!("line {line}: {message}"),
    }
}

fn exists(path: &Path) -> bool {
    // A dangling symlink exists: reading it then says what is wrong.
    std::fs::symlink_metadata(path).is_ok()
}

fn missing_deploy(name: &str, reworked: bool, tried: &[PathBuf]) -> String {
    let shown: Vec<String> = tried.iter().map(|p| format!("`{}`", p.display())).collect();
    if !reworked {
        return format!(
            "change `{name}` has no deploy script: {} does not exist",
            shown.join(", ")
        );
    }
    format!(
        "change `{name}` is reworked later in the plan, so Sqitch reads this instance from \
         `{name}@<tag>` scripts, and none of {} exists (`sqitch rework` copies the earlier \
         scripts there, named after the tag before the rework)",
        shown.join(", ")
    )
}

// ---------------------------------------------------------------------------------------------
// sqitch.conf

/// The keys that move a project's plan and scripts.
const LAYOUT_KEYS: &[&str] = &[
    "top_dir",
    "plan_file",
    "deploy_dir",
    "revert_dir",
    "verify_dir",
    "extension",
];

/// Where the plan and the scripts are, from `sqitch.conf`.
#[derive(Debug)]
struct Project {
    plan: PathBuf,
    deploy: PathBuf,
    revert: PathBuf,
    verify: PathBuf,
    extension: String,
}

impl Project {
    fn read(dir: &Path, notes: &mut Vec<String>) -> Result<Project, SourceError> {
        let conf = dir.join("sqitch.conf");
        let settings = if exists(&conf) {
            read_conf(&conf, &read_text(&conf)?)?
        } else {
            notes.push(format!(
                "`{}` has no sqitch.conf: read as a PostgreSQL project with Sqitch's default \
                 layout (the plan `sqitch.plan`, scripts in `deploy/`, `revert/`, `verify/`)",
                dir.display()
            ));
            Vec::new()
        };
        let last = |section: &str, sub: Option<&str>, key: &str| {
            settings
                .iter()
                .rev()
                .find(|s| s.section == section && s.subsection.as_deref() == sub && s.key == key)
        };
        match last("core", None, "engine") {
            Some(s) if s.value != "pg" => {
                return Err(invalid(
                    &conf,
                    s.line,
                    format!(
                        "the project's engine is `{}`; migproof checks PostgreSQL migrations \
                         only (engine `pg`)",
                        s.value
                    ),
                ));
            }
            Some(_) => {}
            None if !settings.is_empty() => notes.push(format!(
                "`{}` sets no `core.engine`: read as a PostgreSQL (`pg`) project",
                conf.display()
            )),
            None => {}
        }
        if let Some(s) = settings
            .iter()
            .find(|s| s.section == "target" && LAYOUT_KEYS.contains(&s.key.as_str()))
        {
            return Err(invalid(
                &conf,
                s.line,
                format!(
                    "sets `{}` for target `{}`; migproof reads the layout set under [core] and \
                     [engine \"pg\"] only, as a folder cannot say which target is deployed: \
                     move the setting there",
                    s.key,
                    s.subsection.as_deref().unwrap_or_default()
                ),
            ));
        }
        let value = |key: &str| {
            last("engine", Some("pg"), key)
                .or_else(|| last("core", None, key))
                .map(|s| s.value.clone())
        };
        let top = under(dir, value("top_dir").as_deref().unwrap_or("."));
        let folder = |key: &str, default: &str| match value(key) {
            Some(v) => under(dir, &v),
            None => top.join(default),
        };
        Ok(Project {
            plan: match value("plan_file") {
                Some(v) => under(dir, &v),
                None => top.join("sqitch.plan"),
            },
            deploy: folder("deploy_dir", "deploy"),
            revert: folder("revert_dir", "revert"),
            verify: folder("verify_dir", "verify"),
            extension: value("extension").unwrap_or_else(|| "sql".to_owned()),
        })
    }

    /// The script of `change` in `folder`: `a/b.sql`, or `a/b@TAG.sql` for an earlier
    /// instance of a reworked change.
    fn script_path(&self, folder: &Path, name: &str, suffix: Option<&str>) -> PathBuf {
        let file = match suffix {
            Some(tag) => format!("{name}@{tag}.{}", self.extension),
            None => format!("{name}.{}", self.extension),
        };
        folder.join(file)
    }

    /// The deploy script of `change` and the tag its file name carries, chosen as
    /// `Change::path_segments` does; else every path tried.
    fn deploy_script(&self, change: &Change) -> Result<(Option<String>, PathBuf), Vec<PathBuf>> {
        if change.rework_tags.is_empty() {
            let path = self.script_path(&self.deploy, &change.name, None);
            return if exists(&path) {
                Ok((None, path))
            } else {
                Err(vec![path])
            };
        }
        let tried: Vec<(String, PathBuf)> = change
            .rework_tags
            .iter()
            .map(|tag| {
                let path = self.script_path(&self.deploy, &change.name, Some(tag));
                (tag.clone(), path)
            })
            .collect();
        match tried.iter().find(|(_, p)| p.exists()) {
            Some((tag, path)) => Ok((Some(tag.clone()), path.clone())),
            None => Err(tried.into_iter().map(|(_, p)| p).collect()),
        }
    }
}

/// `value` (a path from sqitch.conf) under the project root, without `./` noise.
fn under(dir: &Path, value: &str) -> PathBuf {
    let relative: PathBuf = Path::new(value)
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect();
    dir.join(relative)
}

/// One `key = value` of a git-config file.
#[derive(Debug)]
struct Setting {
    /// Lowercased, as git-config section names are case-insensitive.
    section: String,
    /// As written for `[section "sub"]`; lowercased for the old `[section.sub]`.
    subsection: Option<String>,
    /// Lowercased, as keys are case-insensitive.
    key: String,
    value: String,
    line: usize,
}

/// Reads `sqitch.conf` the way Config::GitLike reads git-config files: `[section]` and
/// `[section "subsection"]` headers, `key = value` lines (a bare `key` means `true`), values
/// in double quotes with `\` escapes, `#` and `;` comments outside quotes.
fn read_conf(path: &Path, text: &str) -> Result<Vec<Setting>, SourceError> {
    let mut settings = Vec::new();
    let mut section: Option<(String, Option<String>)> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let mut rest = raw.trim();
        if let Some(header) = rest.strip_prefix('[') {
            let Some(end) = header.find(']') else {
                return Err(invalid(
                    path,
                    line,
                    "a section header without its closing `]`".to_owned(),
                ));
            };
            section = Some(parse_header(header[..end].trim()).ok_or_else(|| {
                invalid(
                    path,
                    line,
                    format!(
                        "cannot read the section header `[{}]`",
                        header[..end].trim()
                    ),
                )
            })?);
            // git-config allows a setting after the header on the same line.
            rest = header[end + 1..].trim();
        }
        if rest.is_empty() || rest.starts_with(['#', ';']) {
            continue;
        }
        let Some((name, sub)) = &section else {
            return Err(invalid(
                path,
                line,
                "a setting before any `[section]` header".to_owned(),
            ));
        };
        let (key, value) = match rest.split_once('=') {
            Some((key, value)) => (key.trim(), unquote(value)),
            None => (rest, "true".to_owned()),
        };
        let key_ok = key.starts_with(|c: char| c.is_ascii_alphabetic())
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !key_ok {
            return Err(invalid(
                path,
                line,
                format!("cannot read `{rest}` as a `key = value` setting"),
            ));
        }
        settings.push(Setting {
            section: name.clone(),
            subsection: sub.clone(),
            key: key.to_ascii_lowercase(),
            value,
            line,
        });
    }
    Ok(settings)
}

fn parse_header(inner: &str) -> Option<(String, Option<String>)> {
    match inner.split_once(char::is_whitespace) {
        Some((name, sub)) => {
            let sub = sub.trim().strip_prefix('"')?.strip_suffix('"')?;
            let sub = sub.replace("\\\"", "\"").replace("\\\\", "\\");
            Some((name.to_ascii_lowercase(), Some(sub)))
        }
        None => match inner.split_once('.') {
            Some((name, sub)) => Some((name.to_ascii_lowercase(), Some(sub.to_ascii_lowercase()))),
            None if !inner.is_empty() => Some((inner.to_ascii_lowercase(), None)),
            None => None,
        },
    }
}

/// A git-config value: quotes removed, escapes applied, a comment outside quotes cut off,
/// blanks around it trimmed.
fn unquote(raw: &str) -> String {
    let mut out = String::new();
    let mut quoted = false;
    // Length of `out` up to its last character that was quoted or not blank.
    let mut kept = 0;
    let mut chars = raw.trim_start().chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quoted = !quoted;
                kept = out.len();
                continue;
            }
            '\\' => {
                let escaped = match chars.next() {
                    Some('n') => '\n',
                    Some('t') => '\t',
                    Some('b') => '\u{8}',
                    Some(other) => other,
                    None => break,
                };
                out.push(escaped);
                kept = out.len();
                continue;
            }
            '#' | ';' if !quoted => break,
            _ => out.push(c),
        }
        if quoted || !c.is_whitespace() {
            kept = out.len();
        }
    }
    out.truncate(kept);
    out
}

// ---------------------------------------------------------------------------------------------
// sqitch.plan

/// The changes of a plan, in plan order.
#[derive(Debug)]
struct Plan {
    changes: Vec<Change>,
}

#[derive(Debug)]
struct Change {
    name: String,
    /// The plan line that declares it.
    line: usize,
    tags: Vec<String>,
    /// For an earlier instance of a reworked change, the tags its scripts may be named with,
    /// in the order Sqitch looks for them; empty for the latest instance.
    rework_tags: Vec<String>,
}

static PRAGMA: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[ \t]*%[ \t]*([^ \t=]+)(?:[ \t]*=[ \t]*(.+?))?[ \t]*$")
        .expect("the pattern is valid")
});

/// A change or tag line, its note removed: sigil, name, dependencies, timestamp, planner.
static ENTRY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?x)^[\ \t]*
          (?: (?P<tag>@) | (?P<op>[+-])[\ \t]* )?
          (?P<name>[^\ \t\[]+) [\ \t]*
          (?: \[ (?P<deps>[^\]]*) \] [\ \t]* )?
          (?: (?P<ts>[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z) [\ \t]* )?
          (?: (?P<planner>[^<]+?) [\ \t]+ < [^>]+ > )?
          [\ \t]*$",
    )
    .expect("the pattern is valid")
});

const ENTRY_SYNTAX: &str = "a change is `name [dependencies] 2024-03-01T09:30:00Z Planner Name \
                            <planner@example.com> # note`, a tag `@name 2024-03-01T09:30:00Z \
                            Planner Name <planner@example.com> # note`";

/// `line` without its `# note` and trailing blanks.
fn strip_note(line: &str) -> &str {
    line.split('#').next().unwrap_or_default().trim_end()
}

fn is_blank_line(line: &str) -> bool {
    let t = line.trim_start_matches([' ', '\t']);
    t.is_empty() || t.starts_with('#')
}

/// Parses a plan with the checks Sqitch makes when it reads one.
fn parse_plan(path: &Path, text: &str) -> Result<Plan, SourceError> {
    let err = |line: usize, message: String| invalid(path, line, message);
    let mut lines = (1..).zip(text.lines());
    let mut project = None;
    // The pragmas, up to the first blank line.
    for (n, line) in lines.by_ref() {
        if line.trim_matches([' ', '\t']).is_empty() {
            break;
        }
        if is_blank_line(line) {
            continue;
        }
        let Some(caps) = PRAGMA.captures(strip_note(line)) else {
            return Err(err(
                n,
                "invalid pragma; a blank line must come between the pragmas (`%project=...`) \
                 and the changes"
                    .to_owned(),
            ));
        };
        if &caps[1] == "project" {
            let value = caps.get(2).map(|m| m.as_str()).unwrap_or_default();
            if let Some(why) = bad_name(value, false) {
                return Err(err(n, format!("invalid project name `{value}`: {why}")));
            }
            project = Some(value.to_owned());
        }
    }
    let Some(project) = project else {
        return Err(SourceError::Invalid {
            path: path.to_owned(),
            message: "has no `%project=<name>` pragma before its first blank line; Sqitch \
                      refuses a plan without one"
                .to_owned(),
        });
    };
    let mut changes: Vec<Change> = Vec::new();
    // Latest instance of each change name, by index into `changes`.
    let mut latest: BTreeMap<String, usize> = BTreeMap::new();
    // Changes declared since the last tag, with their lines.
    let mut since_tag: BTreeMap<String, usize> = BTreeMap::new();
    // Tags, with their line and the number of changes planned before them.
    let mut tags: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for (n, line) in lines {
        if is_blank_line(line) {
            continue;
        }
        let entry = strip_note(line);
        let Some(caps) = ENTRY.captures(entry) else {
            return Err(err(
                n,
                format!("cannot read `{}`: {ENTRY_SYNTAX}", entry.trim()),
            ));
        };
        let name = &caps["name"];
        let tag = caps.name("tag").is_some();
        let missing = match (caps.name("ts").is_some(), caps.name("planner").is_some()) {
            (true, true) => None,
            (false, false) => Some("timestamp and planner name and email"),
            (false, true) => Some("timestamp"),
            (true, false) => Some("planner name and email"),
        };
        if let Some(what) = missing {
            return Err(err(n, format!("missing {what}; {ENTRY_SYNTAX}")));
        }
        if let Some(why) = bad_name(name, tag) {
            let kind = if tag { "tag" } else { "change" };
            return Err(err(n, format!("invalid {kind} name `{name}`: {why}")));
        }
        if tag {
            let Some(last) = changes.last_mut() else {
                return Err(err(
                    n,
                    format!(
                        "tag `@{name}` comes before any change; a tag labels the change above it"
                    ),
                ));
            };
            if let Some((at, _)) = tags.get(name) {
                return Err(err(
                    n,
                    format!("tag `@{name}` duplicates the one on line {at}"),
                ));
            }
            if caps.name("deps").is_some() {
                return Err(err(
                    n,
                    format!("tag `@{name}` has dependencies; tags may not"),
                ));
            }
            last.tags.push(name.to_owned());
            tags.insert(name.to_owned(), (n, changes.len()));
            since_tag.clear();
            continue;
        }
        if caps.name("op").is_some_and(|m| m.as_str() == "-") {
            return Err(err(
                n,
                format!(
                    "`-{name}` plans a revert of `{name}`; migproof reads plans of changes to \
                     deploy only: remove the line, or revert the change in a new one"
                ),
            ));
        }
        if let Some(at) = since_tag.get(name) {
            return Err(err(
                n,
                format!(
                    "change `{name}` duplicates the one on line {at}; a change may be planned \
                     again only after a tag (`sqitch rework`)"
                ),
            ));
        }
        let deps = caps.name("deps").map(|m| m.as_str()).unwrap_or_default();
        for dep in deps.split([' ', '\t']).filter(|d| !d.is_empty()) {
            if let Some(why) = unmet(dep, &project, &latest, &changes, &tags) {
                return Err(err(n, format!("change `{name}` requires `{dep}`, {why}")));
            }
        }
        if let Some(&earlier) = latest.get(name) {
            // `App::Sqitch::Plan::_parse`: the tags of the changes in between, latest first,
            // then the earlier instance's own.
            let mut rework_tags: Vec<String> = changes[earlier + 1..]
                .iter()
                .rev()
                .flat_map(|c| c.tags.iter().cloned())
                .collect();
            rework_tags.extend(changes[earlier].tags.iter().cloned());
            changes[earlier].rework_tags = rework_tags;
        }
        latest.insert(name.to_owned(), changes.len());
        since_tag.insert(name.to_owned(), n);
        changes.push(Change {
            name: name.to_owned(),
            line: n,
            tags: Vec::new(),
            rework_tags: Vec::new(),
        });
    }
    Ok(Plan { changes })
}

/// Why dependency `dep` is not met by what the plan declared before it, if it is not.
/// Conflicts, other projects' changes and change ids are Sqitch's business at deploy time.
fn unmet(
    dep: &str,
    project: &str,
    latest: &BTreeMap<String, usize>,
    changes: &[Change],
    tags: &BTreeMap<String, (usize, usize)>,
) -> Option<String> {
    if dep.starts_with('!') {
        return None;
    }
    let dep = match dep.split_once(':') {
        Some((other, _)) if other != project => return None,
        Some((_, dep)) => dep,
        None => dep,
    };
    if dep.len() >= 40 && dep.bytes().take(40).all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let first = |change: &str| changes.iter().position(|c| c.name == change);
    match dep.split_once('@') {
        Some(("", tag)) if tags.contains_key(tag) => None,
        Some(("", tag)) => Some(format!("but no tag `@{tag}` is planned before it")),
        Some((change, tag)) => match (tags.get(tag), first(change)) {
            (None, _) => Some(format!("but no tag `@{tag}` is planned before it")),
            (Some(&(_, before)), Some(i)) if i < before => None,
            (Some(_), _) => Some(format!("but `{change}` is not planned before tag `@{tag}`")),
        },
        None if latest.contains_key(dep) => None,
        None => Some(
            "which is not planned before it; Sqitch refuses a plan whose changes come before \
             the changes they require"
                .to_owned(),
        ),
    }
}

/// Why `name` is not a valid Sqitch change (or tag) name, if it is not.
fn bad_name(name: &str, tag: bool) -> Option<&'static str> {
    let punct = |c: char| c.is_ascii_punctuation() && c != '_';
    let (Some(first), Some(last)) = (name.chars().next(), name.chars().last()) else {
        return Some("a name must not be empty");
    };
    if punct(first) || punct(last) {
        return Some("names must not begin or end with punctuation");
    }
    if name
        .chars()
        .any(|c| c.is_whitespace() || matches!(c, ':' | '@' | '#' | '\\'))
    {
        return Some("names must not contain blanks, `:`, `@`, `#` or `\\`");
    }
    let digits = name.trim_end_matches(|c: char| c.is_ascii_digit());
    if digits.len() < name.len() && digits.ends_with(['~', '^', '/', '=', '%']) {
        return Some("names must not end in `~`, `^`, `/`, `=` or `%` followed by digits");
    }
    if matches!(name, "ROOT" | "HEAD" | "FIRST" | "LAST") {
        return Some("it is a name Sqitch reserves");
    }
    if name.len() >= 40
        && name
            .bytes()
            .take(40)
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Some("it could be confused with a change id (a SHA-1)");
    }
    if tag && name.contains('/') {
        return Some("tag names must not contain `/`");
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Scripts

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// A deploy or revert script: what it does must commit.
    Change,
    /// A verify script: run in a transaction that is rolled back, whatever it says.
    Verify,
}

/// Reads a script as psql runs it on its one session: statements one by one. For a deploy or
/// revert, statements between the script's own `BEGIN` and `COMMIT` form a transactional
/// block (the executor sends the `BEGIN` and `COMMIT`; options of the `BEGIN` become `SET
/// TRANSACTION`), and the others autocommit blocks, so that each unit that commits is one
/// the executor knows. A verify script stays one autocommit block of all its statements: the
/// runner wraps it in a transaction it rolls back and leaves out its transaction control.
fn script(path: &Path, role: Role) -> Result<Script, SourceError> {
    let text = read_text(path)?;
    if let Some((offset, what)) = psql_only(&text) {
        return Err(invalid(
            path,
            line_of(&text, offset),
            format!(
                "{what} is for psql, which Sqitch runs scripts through: psql acts on it before \
                 the server sees the script, and migproof sends scripts to the server itself; \
                 write the SQL it stands for instead, or remove it if it only sets psql up"
            ),
        ));
    }
    let statements = split::split(&text).map_err(|e| SourceError::Invalid {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    let blocks = match role {
        Role::Change => blocks(path, &text, statements)?,
        Role::Verify => vec![Block {
            transactional: false,
            chunks: statements.into_iter().map(chunk).collect(),
        }],
    };
    Ok(Script {
        path: path.to_owned(),
        text,
        blocks,
        command: None,
    })
}

fn chunk(st: split::Statement) -> Chunk {
    Chunk {
        offset: st.offset,
        sql: st.sql,
    }
}

/// What a statement does to the session's transaction.
#[derive(Debug, PartialEq, Eq)]
enum Control {
    /// `BEGIN` or `START TRANSACTION`, with its transaction modes (`ISOLATION LEVEL ...`),
    /// if any.
    Begin(Option<String>),
    /// `COMMIT` or `END`; `chain` for `AND CHAIN`, which opens the next transaction at once.
    Commit { chain: bool },
    /// `ROLLBACK` or `ABORT` of the whole transaction.
    Rollback,
    /// `PREPARE TRANSACTION`: two-phase commit.
    Prepare,
    /// Anything else, savepoints and `COMMIT PREPARED` included.
    None,
}

/// The words of `sql` with the byte offset each starts at.
fn words(sql: &str) -> Vec<(usize, String)> {
    let mut words = Vec::new();
    let mut start = None;
    for (i, c) in sql.char_indices().chain(std::iter::once((sql.len(), ' '))) {
        match (c.is_whitespace() || c == ';', start) {
            (true, Some(s)) => {
                words.push((s, sql[s..i].to_ascii_lowercase()));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    words
}

fn control(sql: &str) -> Control {
    let words = words(sql);
    let w: Vec<&str> = words.iter().map(|(_, w)| w.as_str()).collect();
    // The transaction modes after `BEGIN [WORK | TRANSACTION]` or `START TRANSACTION`.
    let modes = |skip: usize| {
        words.get(skip).map(|&(at, _)| {
            sql[at..]
                .trim_end_matches([';', ' ', '\t', '\r', '\n'])
                .to_owned()
        })
    };
    let chain = || {
        w.windows(2).any(|p| p == ["and", "chain"]) && !w.windows(2).any(|p| p == ["no", "chain"])
    };
    match w.as_slice() {
        ["begin", "work" | "transaction", ..] => Control::Begin(modes(2)),
        ["begin", ..] => Control::Begin(modes(1)),
        ["start", "transaction", ..] => Control::Begin(modes(2)),
        ["commit" | "rollback" | "abort" | "end", "prepared", ..] => Control::None,
        ["rollback" | "abort", "to", ..] | ["rollback" | "abort", _, "to", ..] => Control::None,
        ["commit" | "end", ..] => Control::Commit { chain: chain() },
        ["rollback" | "abort", ..] => Control::Rollback,
        ["prepare", "transaction", ..] => Control::Prepare,
        _ => Control::None,
    }
}

/// The blocks of a deploy or revert script; see [`script`]. A script that leaves its
/// transaction open, rolls it back or prepares it is refused: under psql the change would not
/// stay although Sqitch records it.
fn blocks(
    path: &Path,
    text: &str,
    statements: Vec<split::Statement>,
) -> Result<Vec<Block>, SourceError> {
    let mut blocks: Vec<Block> = Vec::new();
    // The offset of the `BEGIN` of the transaction open at this point of the script.
    let mut open: Option<usize> = None;
    let begin = |blocks: &mut Vec<Block>, modes: Option<String>, offset: usize| {
        let chunks = modes
            .map(|m| Chunk {
                offset,
                sql: format!("SET TRANSACTION {m}"),
            })
            .into_iter()
            .collect();
        blocks.push(Block {
            transactional: true,
            chunks,
        });
    };
    for st in statements {
        match (control(&st.sql), open) {
            (Control::Begin(modes), None) => {
                open = Some(st.offset);
                begin(&mut blocks, modes, st.offset);
            }
            (Control::Commit { chain }, Some(_)) => {
                open = None;
                if chain {
                    open = Some(st.offset);
                    begin(&mut blocks, None, st.offset);
                }
            }
            (Control::Rollback, Some(at)) => {
                return Err(invalid(
                    path,
                    line_of(text, st.offset),
                    format!(
                        "rolls back the transaction opened at line {}, so none of its \
                         statements stay while Sqitch records the change; end it with \
                         `COMMIT;`",
                        line_of(text, at)
                    ),
                ));
            }
            (Control::Prepare, _) => {
                return Err(invalid(
                    path,
                    line_of(text, st.offset),
                    "prepares a transaction for two-phase commit, which migproof does not run; \
                     end the transaction with `COMMIT;`"
                        .to_owned(),
                ));
            }
            // Inside the transaction (a second `BEGIN` only draws a warning from the server).
            (_, Some(_)) => {
                if let Some(block) = blocks.last_mut() {
                    block.chunks.push(chunk(st));
                }
            }
            // Autocommit (a `COMMIT` with no transaction only draws a warning).
            (_, None) => match blocks.last_mut() {
                Some(block) if !block.transactional => block.chunks.push(chunk(st)),
                _ => blocks.push(Block {
                    transactional: false,
                    chunks: vec![chunk(st)],
                }),
            },
        }
    }
    if let Some(at) = open {
        return Err(invalid(
            path,
            line_of(text, at),
            "opens a transaction that the script never ends: psql closes the session at the \
             end of the file and the server rolls the transaction back, so Sqitch records the \
             change while none of it stays; end the script with `COMMIT;`"
                .to_owned(),
        ));
    }
    Ok(blocks)
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

fn is_ident_byte(b: u8) -> bool {
    is_ident_start(b) || b.is_ascii_digit() || b == b'$'
}

/// The first thing in `text` that only psql understands, outside comments, strings, quoted
/// identifiers and dollar quotes, with its offset: a backslash (a meta-command, wherever it
/// stands on its line) or a variable reference (`:name`, `:'name'`, `:"name"`, `:{?name}`).
/// `::` casts and `:=` are SQL; `[1:n]` array slices too, so `:name` inside brackets is left
/// alone. An unterminated quote or comment ends the search: the splitter reports it.
fn psql_only(text: &str) -> Option<(usize, String)> {
    let b = text.as_bytes();
    let at = |i: usize| b.get(i).copied();
    let mut i = 0;
    let mut brackets = 0usize;
    // Where the last identifier ended, and whether it was `E` (an escape string may follow).
    let mut ident_end = usize::MAX;
    let mut ident_is_e = false;
    while let Some(c) = at(i) {
        match c {
            b'-' if at(i + 1) == Some(b'-') => {
                i = text[i..].find('\n').map_or(b.len(), |n| i + n);
                continue;
            }
            b'/' if at(i + 1) == Some(b'*') => {
                let mut depth = 0usize;
                loop {
                    match (at(i), at(i + 1)) {
                        (Some(b'/'), Some(b'*')) => (depth, i) = (depth + 1, i + 2),
                        (Some(b'*'), Some(b'/')) => {
                            (depth, i) = (depth - 1, i + 2);
                            if depth == 0 {
                                break;
                            }
                        }
                        (Some(_), _) => i += 1,
                        (None, _) => return None,
                    }
                }
                continue;
            }
            b'\'' => {
                let escapes = ident_end == i && ident_is_e;
                i += 1;
                loop {
                    match at(i)? {
                        b'\\' if escapes => i += 2,
                        b'\'' if at(i + 1) == Some(b'\'') => i += 2,
                        b'\'' => break,
                        _ => i += 1,
                    }
                }
            }
            b'"' => {
                i += 1;
                loop {
                    match at(i)? {
                        b'"' if at(i + 1) == Some(b'"') => i += 2,
                        b'"' => break,
                        _ => i += 1,
                    }
                }
            }
            b'$' => {
                let mut end = i + 1;
                if at(end).is_some_and(is_ident_start) {
                    while at(end).is_some_and(|c| is_ident_byte(c) && c != b'$') {
                        end += 1;
                    }
                }
                if at(end) == Some(b'$') {
                    let tag = &text[i..=end];
                    let close = text[end + 1..].find(tag)?;
                    i = end + 1 + close + tag.len();
                    continue;
                }
            }
            b'[' => brackets += 1,
            b']' => brackets = brackets.saturating_sub(1),
            b'\\' => {
                let end = (i + 1..b.len())
                    .find(|&j| b[j].is_ascii_whitespace())
                    .unwrap_or(b.len());
                let command = text.get(i..end).unwrap_or("\\");
                return Some((i, format!("the psql meta-command `{command}`")));
            }
            b':' => match at(i + 1) {
                Some(b':') => {
                    i += 2;
                    continue;
                }
                Some(b'\'' | b'"') => {
                    let quote = b[i + 1];
                    let end = (i + 2..b.len())
                        .find(|&j| b[j] == quote || b[j] == b'\n')
                        .map_or(b.len(), |j| j + 1);
                    let var = text.get(i..end).unwrap_or(":");
                    return Some((i, format!("the psql variable `{var}`")));
                }
                Some(b'{') if at(i + 2) == Some(b'?') => {
                    let end = text[i..].find('}').map_or(b.len(), |n| i + n + 1);
                    let var = text.get(i..end).unwrap_or(":");
                    return Some((i, format!("the psql variable test `{var}`")));
                }
                Some(n) if is_ident_start(n) && brackets == 0 => {
                    let end = (i + 1..b.len())
                        .find(|&j| !(is_ident_byte(b[j]) && b[j] != b'$'))
                        .unwrap_or(b.len());
                    let var = text.get(i..end).unwrap_or(":");
                    return Some((i, format!("the psql variable `{var}`")));
                }
                _ => {}
            },
            _ if is_ident_start(c) => {
                let start = i;
                while at(i).is_some_and(is_ident_byte) {
                    i += 1;
                }
                ident_end = i;
                ident_is_e = i - start == 1 && matches!(c, b'e' | b'E');
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::list_dir;

    const HEAD: &str = "%syntax-version=1.0.0\n%project=shop\n%uri=https://example.com/shop/\n\n";
    const WHO: &str = "2024-03-01T09:30:00Z Ada Lovelace <ada@example.com>";

    fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, body) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, body).unwrap();
        }
        dir
    }

    fn plan(body: &str) -> Result<Plan, SourceError> {
        parse_plan(Path::new("sqitch.plan"), &format!("{HEAD}{body}"))
    }

    fn plan_error(body: &str) -> String {
        plan(body).unwrap_err().to_string()
    }

    const CONF: &str = "[core]\n\tengine = pg\n";
    const DEPLOY: &str =
        "-- Deploy shop:x to pg\n\nBEGIN;\n\nCREATE TABLE x (id int);\n\nCOMMIT;\n";

    #[test]
    fn reads_pragmas_changes_tags_and_notes() {
        let plan = plan(&format!(
            "# a comment\n\
             users {WHO} # Creates users.\n\
             \n\
             orders [users] {WHO}\n\
             @v1.0 {WHO} # Release 1.0.\n\
             +functions/price  [orders !legacy other:thing] {WHO}#no space before the note\n"
        ))
        .unwrap();
        let names: Vec<&str> = plan.changes.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["users", "orders", "functions/price"]);
        assert_eq!(plan.changes[1].tags, ["v1.0"]);
        assert_eq!(plan.changes[0].line, 6);
        assert!(plan.changes.iter().all(|c| c.rework_tags.is_empty()));
    }

    #[test]
    fn plan_syntax_errors_name_the_line() {
        let err = plan_error(&format!("users {WHO}\nusers {WHO}\n"));
        assert!(
            err.contains("line 6") && err.contains("duplicates the one on line 5"),
            "{err}"
        );
        let err = plan_error("users\n");
        assert!(
            err.contains("line 5") && err.contains("missing timestamp and planner"),
            "{err}"
        );
        let err = plan_error("users Ada <ada@example.com>\n");
        assert!(err.contains("missing timestamp;"), "{err}");
        let err = plan_error("users 2024-03-01T09:30:00Z\n");
        assert!(err.contains("missing planner name and email"), "{err}");
        let err = plan_error(&format!("@v1 {WHO}\n"));
        assert!(err.contains("before any change"), "{err}");
        let err = plan_error(&format!("a {WHO}\n@v1 {WHO}\nb {WHO}\n@v1 {WHO}\n"));
        assert!(err.contains("line 8") && err.contains("line 6"), "{err}");
        let err = plan_error(&format!("orders [users] {WHO}\nusers {WHO}\n"));
        assert!(
            err.contains("requires `users`") && err.contains("line 5"),
            "{err}"
        );
        let err = plan_error(&format!("users. {WHO}\n"));
        assert!(err.contains("invalid change name `users.`"), "{err}");
        let err = plan_error(&format!("-users {WHO}\n"));
        assert!(err.contains("plans a revert"), "{err}");
        let err = plan_error(&format!("users {WHO} extra\n"));
        assert!(
            err.contains("line 5") && err.contains("cannot read"),
            "{err}"
        );
        let err = parse_plan(Path::new("sqitch.plan"), &format!("users {WHO}\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("invalid pragma"), "{err}");
        let err = parse_plan(
            Path::new("sqitch.plan"),
            &format!("%syntax-version=1.0.0\n\nusers {WHO}\n"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("%project"), "{err}");
    }

    #[test]
    fn dependencies_on_tags_and_other_projects() {
        assert!(plan(&format!(
            "a {WHO}\n@v1 {WHO}\nb [a@v1 @v1 other:zzz] {WHO}\n"
        ))
        .is_ok());
        let err = plan_error(&format!("a {WHO}\nb [a@v2] {WHO}\n"));
        assert!(err.contains("no tag `@v2`"), "{err}");
        let err = plan_error(&format!("a {WHO}\n@v1 {WHO}\nb [c@v1] {WHO}\n"));
        assert!(err.contains("`c` is not planned before tag `@v1`"), "{err}");
        // Same project named explicitly: checked like a plain name.
        let err = plan_error(&format!("b [shop:zzz] {WHO}\n"));
        assert!(err.contains("requires `shop:zzz`"), "{err}");
    }

    #[test]
    fn reworks_collect_the_tags_sqitch_searches() {
        let plan = plan(&format!(
            "users {WHO}\n@alpha {WHO}\n@beta {WHO}\norders {WHO}\n@gamma {WHO}\n\
             users [users@gamma] {WHO}\n@delta {WHO}\nusers [users@delta] {WHO}\n"
        ))
        .unwrap();
        // Latest change first, then the earlier instance's own tags.
        assert_eq!(plan.changes[0].rework_tags, ["gamma", "alpha", "beta"]);
        assert_eq!(plan.changes[2].rework_tags, ["delta"]);
        assert!(plan.changes[3].rework_tags.is_empty());
    }

    #[test]
    fn reworked_scripts_are_read_from_their_tagged_names() {
        let dir = project(&[
            ("sqitch.conf", CONF),
            (
                "sqitch.plan",
                &format!("{HEAD}users {WHO}\n@v1 {WHO}\n@v2 {WHO}\nusers [users@v2] {WHO}\n"),
            ),
            // `sqitch rework` names the copies after the last tag, `v2`; `v1` is searched
            // first, has no file, and `v2`'s is used.
            ("deploy/users@v2.sql", "CREATE TABLE users (id int);"),
            ("revert/users@v2.sql", "DROP TABLE users;"),
            ("verify/users@v2.sql", "SELECT id FROM users WHERE FALSE;"),
            ("deploy/users.sql", "ALTER TABLE users ADD email text;"),
            ("revert/users.sql", "ALTER TABLE users DROP email;"),
        ]);
        let set = load(dir.path()).unwrap();
        let ids: Vec<String> = set.migrations.iter().map(|m| m.id()).collect();
        assert_eq!(ids, ["users@v2", "users"]);
        assert!(set.migrations[0].up.path.ends_with("deploy/users@v2.sql"));
        let down = set.migrations[0].down.as_ref().unwrap();
        assert!(down.path.ends_with("revert/users@v2.sql"));
        assert_eq!(set.verify.keys().collect::<Vec<_>>(), ["users@v2"]);
        assert!(set.migrations[1].up.path.ends_with("deploy/users.sql"));
        assert!(set.notes.is_empty(), "{:?}", set.notes);
    }

    #[test]
    fn a_rework_without_its_tagged_script_names_the_plan_line() {
        let dir = project(&[
            ("sqitch.conf", CONF),
            (
                "sqitch.plan",
                &format!("{HEAD}users {WHO}\n@v1 {WHO}\nusers [users@v1] {WHO}\n"),
            ),
            ("deploy/users.sql", "SELECT 1;"),
        ]);
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("sqitch.plan")
                && err.contains("line 5")
                && err.contains("users@v1.sql")
                && err.contains("reworked"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_deploy_script_is_named() {
        let dir = project(&[
            ("sqitch.conf", CONF),
            ("sqitch.plan", &format!("{HEAD}users {WHO}\n")),
        ]);
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("line 5") && err.contains("deploy/users.sql"),
            "{err}"
        );
    }

    #[test]
    fn scripts_run_statement_by_statement_with_their_own_transaction_control() {
        let dir = project(&[
            ("sqitch.conf", CONF),
            ("sqitch.plan", &format!("{HEAD}x {WHO}\ny {WHO}\n")),
            ("deploy/x.sql", DEPLOY),
            ("revert/x.sql", "BEGIN;\nDROP TABLE x;\nCOMMIT;\n"),
            (
                "verify/x.sql",
                "BEGIN;\nSELECT id FROM x WHERE FALSE;\nROLLBACK;\n",
            ),
            ("deploy/y.sql", "CREATE TABLE y ();"),
        ]);
        let set = load(dir.path()).unwrap();
        let x = &set.migrations[0];
        assert_eq!(x.id(), "x");
        // The script's own BEGIN ... COMMIT is one transactional block.
        assert_eq!(x.up.blocks.len(), 1);
        assert!(x.up.blocks[0].transactional);
        let sql: Vec<&str> = x.up.blocks[0]
            .chunks
            .iter()
            .map(|c| c.sql.as_str())
            .collect();
        assert_eq!(sql, ["CREATE TABLE x (id int)"]);
        assert_eq!(x.up.line_of(x.up.blocks[0].chunks[0].offset), 5);
        assert!(x.down.is_some());
        // No revert script: no down; no verify script: no verify.
        assert!(set.migrations[1].down.is_none());
        assert_eq!(set.verify.keys().collect::<Vec<_>>(), ["x"]);
        // A verify keeps every statement, its transaction control included, in one autocommit
        // block: the runner wraps it in a transaction it rolls back.
        let verify = &set.verify["x"];
        assert_eq!(verify.blocks.len(), 1);
        assert!(!verify.blocks[0].transactional);
        let sql: Vec<&str> = verify.blocks[0]
            .chunks
            .iter()
            .map(|c| c.sql.as_str())
            .collect();
        assert_eq!(sql, ["BEGIN", "SELECT id FROM x WHERE FALSE", "ROLLBACK"]);
    }

    fn blocks_of(body: &str) -> Result<Vec<(bool, Vec<String>)>, String> {
        let statements = split::split(body).unwrap();
        blocks(Path::new("deploy/x.sql"), body, statements)
            .map(|blocks| {
                blocks
                    .into_iter()
                    .map(|b| {
                        (
                            b.transactional,
                            b.chunks.into_iter().map(|c| c.sql).collect(),
                        )
                    })
                    .collect()
            })
            .map_err(|e| e.to_string())
    }

    #[test]
    fn each_unit_that_commits_is_a_block() {
        let got = blocks_of(
            "SET search_path = shop;\nCREATE TABLE a ();\n\
             BEGIN ISOLATION LEVEL SERIALIZABLE;\nCREATE TABLE b ();\nCOMMIT;\n\
             CREATE INDEX CONCURRENTLY i ON a ((1));\n\
             start transaction;\nSAVEPOINT s;\nROLLBACK TO SAVEPOINT s;\nEND;\n\
             BEGIN; COMMIT AND CHAIN; CREATE TABLE c (); COMMIT;\n",
        )
        .unwrap();
        let want: Vec<(bool, Vec<&str>)> = vec![
            (false, vec!["SET search_path = shop", "CREATE TABLE a ()"]),
            (
                true,
                vec![
                    "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
                    "CREATE TABLE b ()",
                ],
            ),
            (false, vec!["CREATE INDEX CONCURRENTLY i ON a ((1))"]),
            (true, vec!["SAVEPOINT s", "ROLLBACK TO SAVEPOINT s"]),
            (true, vec![]),
            (true, vec!["CREATE TABLE c ()"]),
        ];
        let got: Vec<(bool, Vec<&str>)> = got
            .iter()
            .map(|(t, c)| (*t, c.iter().map(String::as_str).collect()))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn a_change_that_would_not_stay_is_refused() {
        let err = blocks_of("BEGIN;\nCREATE TABLE a ();\nROLLBACK;\n").unwrap_err();
        assert!(
            err.contains("line 3") && err.contains("opened at line 1"),
            "{err}"
        );
        let err = blocks_of("BEGIN;\nCREATE TABLE a ();\nPREPARE TRANSACTION 'x';\n").unwrap_err();
        assert!(err.contains("line 3") && err.contains("two-phase"), "{err}");
        let err = blocks_of("CREATE TABLE a ();\nBEGIN;\nCREATE TABLE b ();\n").unwrap_err();
        assert!(
            err.contains("line 2") && err.contains("never ends"),
            "{err}"
        );
        // A COMMIT or ROLLBACK with no transaction open only draws a warning from the server.
        assert!(blocks_of("COMMIT;\nROLLBACK;\n").is_ok());
    }

    #[test]
    fn psql_meta_commands_and_variables_are_refused_with_their_line() {
        for (body, line, what) in [
            ("BEGIN;\n\\set ON_ERROR_STOP 1\nCOMMIT;\n", 2, "`\\set`"),
            ("\\i deploy/other.sql\n", 1, "`\\i`"),
            ("SELECT 1 \\gset\n", 1, "`\\gset`"),
            ("CREATE SCHEMA :\"schema\";\n", 1, "`:\"schema\"`"),
            ("\n\nGRANT USAGE ON SCHEMA x TO :role;\n", 3, "`:role`"),
            ("SELECT :'name';", 1, "`:'name'`"),
        ] {
            let dir = project(&[
                ("sqitch.conf", CONF),
                ("sqitch.plan", &format!("{HEAD}x {WHO}\n")),
                ("deploy/x.sql", body),
            ]);
            let err = load(dir.path()).unwrap_err().to_string();
            assert!(
                err.contains("deploy/x.sql")
                    && err.contains(&format!("line {line}:"))
                    && err.contains(what)
                    && err.contains("psql"),
                "{body:?}: {err}"
            );
        }
    }

    #[test]
    fn sql_that_looks_like_psql_syntax_is_left_alone() {
        for sql in [
            "SELECT '10:30'::time, 'a\\b', E'it\\'s :x', \"odd:name\";",
            "SELECT (ARRAY[1,2,3])[1:n] FROM generate_series(1, 2) AS n;",
            "DO $$ DECLARE a int; BEGIN a := 1; RAISE NOTICE '%', :x; END $$;",
            "CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $body$ SELECT ':v \\x' $body$;",
            "-- \\set in a comment\n/* :var /* nested */ \\i */ SELECT 1;",
            "SELECT $1, a$b FROM t;",
        ] {
            assert_eq!(psql_only(sql), None, "{sql}");
        }
    }

    #[test]
    fn a_transaction_left_open_is_refused_but_not_in_a_verify() {
        let body = "BEGIN;\nCREATE TABLE x ();\n";
        let dir = project(&[
            ("sqitch.conf", CONF),
            ("sqitch.plan", &format!("{HEAD}x {WHO}\n")),
            ("deploy/x.sql", body),
        ]);
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("deploy/x.sql") && err.contains("line 1") && err.contains("COMMIT"),
            "{err}"
        );
        let dir = project(&[
            ("sqitch.conf", CONF),
            ("sqitch.plan", &format!("{HEAD}x {WHO}\n")),
            (
                "deploy/x.sql",
                "BEGIN; SAVEPOINT a; ROLLBACK TO a; COMMIT AND NO CHAIN;",
            ),
            ("verify/x.sql", body),
        ]);
        assert!(load(dir.path()).is_ok());
    }

    #[test]
    fn sqitch_conf_moves_the_plan_and_scripts() {
        let dir = project(&[
            (
                "sqitch.conf",
                "[core]\n\tengine = pg\n\ttop_dir = db ; where it all lives\n\
                 [engine \"pg\"]\n\tdeploy_dir = \"db/up\"\n\textension = psql\n",
            ),
            ("db/sqitch.plan", &format!("{HEAD}x {WHO}\n")),
            ("db/up/x.psql", "SELECT 1;"),
            ("db/revert/x.psql", "SELECT 2;"),
        ]);
        let set = load(dir.path()).unwrap();
        let x = &set.migrations[0];
        assert_eq!(x.up.path, dir.path().join("db/up/x.psql"));
        assert_eq!(
            x.down.as_ref().unwrap().path,
            dir.path().join("db/revert/x.psql")
        );
        assert!(matches(&list_dir(dir.path()).unwrap()));
    }

    #[test]
    fn sqitch_conf_refusals_name_the_line() {
        let dir = project(&[
            ("sqitch.conf", "[core]\n  engine = mysql\n"),
            ("sqitch.plan", &format!("{HEAD}x {WHO}\n")),
        ]);
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("sqitch.conf") && err.contains("line 2") && err.contains("mysql"),
            "{err}"
        );
        let dir = project(&[
            (
                "sqitch.conf",
                "[core]\n  engine = pg\n[target \"prod\"]\n  top_dir = prod\n",
            ),
            ("sqitch.plan", &format!("{HEAD}x {WHO}\n")),
        ]);
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("line 4") && err.contains("target `prod`"),
            "{err}"
        );
    }

    #[test]
    fn no_conf_means_defaults_and_a_note() {
        let dir = project(&[
            ("sqitch.plan", &format!("{HEAD}x {WHO}\n")),
            ("deploy/x.sql", DEPLOY),
        ]);
        let set = load(dir.path()).unwrap();
        assert_eq!(set.format, Format::Sqitch);
        assert!(set.notes[0].contains("no sqitch.conf"), "{:?}", set.notes);
    }

    #[test]
    fn git_config_values() {
        assert_eq!(unquote(" pg  # engine"), "pg");
        assert_eq!(unquote("\"a # b\" ; c"), "a # b");
        assert_eq!(unquote("\"with \\\"quote\\\"\"  "), "with \"quote\"");
        assert_eq!(unquote("\" padded \""), " padded ");
        assert_eq!(
            parse_header("engine \"pg\""),
            Some(("engine".into(), Some("pg".into())))
        );
        assert_eq!(parse_header("Core"), Some(("core".into(), None)));
    }

    #[test]
    fn no_panic_on_odd_input() {
        for body in [
            "",
            "%",
            "%project=",
            "\n\n",
            "%project=x\n\n@",
            "%project=x\n\n[",
            "%project=x\n\né 2024-01-01T00:00:00Z é <é>",
        ] {
            let _ = parse_plan(Path::new("p"), body);
        }
        for text in [
            "'", "\"", "$a", "$$", "/*", ":", "E'\\", ":{?", ":'x", "é:é",
        ] {
            let _ = psql_only(text);
        }
    }
}
