//! Any other migrator (Flyway or Liquibase CLIs, Rails, Django, Prisma) through commands given
//! in `migproof.toml`: the ordered versions and up/down command templates, run against each
//! scratch database (`{url}` and `DATABASE_URL` name it, `{version}` the migration).

use super::{Detect, Layout};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{read_text, Command, Format, Migration, MigrationSet, Script, SourceError};

pub use super::config::FILE;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    command: CommandConfig,
    /// Read by `config`: a `[command]` project is of the `command` layout whatever it says.
    #[allow(dead_code)]
    source: Option<String>,
    /// Read by `config`, for every layout.
    #[allow(dead_code)]
    data: Option<toml::Table>,
    #[allow(dead_code)]
    setup: Option<toml::Table>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CommandConfig {
    /// Versions in the order they apply.
    versions: Vec<String>,
    /// Argument vector of the up command.
    up: Vec<String>,
    /// Argument vector of the down command, if the tool can roll back.
    down: Option<Vec<String>>,
    /// URL scheme the tool expects (default `postgresql`).
    scheme: Option<String>,
    /// What `{previous}` becomes for the first version: the tool's name for the state before
    /// any migration (`zero` for Django, `base` for Alembic, `0` for Rails).
    before_first: Option<String>,
    /// The tool's own history tables, left out of every snapshot and data check (beside the
    /// usual ones of every tool, `Format::history_tables`).
    #[serde(default)]
    history_tables: Vec<String>,
}

/// True when the folder holds a `migproof.toml` with a `[command]` table.
pub fn matches(entries: &[PathBuf]) -> bool {
    entries.iter().any(|p| {
        p.file_name().is_some_and(|n| n == FILE)
            && std::fs::read_to_string(p).is_ok_and(|t| t.lines().any(|l| l.trim() == "[command]"))
    })
}
/// The command layout, as the registry (`source::LAYOUTS`) knows it.
pub const LAYOUT: Layout = Layout {
    format: Format::Command,
    name: "command",
    load,
    detect: Detect::Config(matches),
    history_tables: &[
        "_sqlx_migrations",
        "__diesel_schema_migrations",
        "schema_migrations",
        "flyway_schema_history",
        "databasechangelog",
        "databasechangeloglock",
        "alembic_version",
        "refinery_schema_history",
        "goose_db_version",
        "gorp_migrations",
        "ar_internal_metadata",
        "django_migrations",
    ],
    marks: ("a [command] migrator", &[]),
    placeholders: false,
};

pub fn load(dir: &Path) -> Result<MigrationSet, SourceError> {
    let path = dir.join(FILE);
    let text = read_text(&path)?;
    let config: Config = super::parse_toml(&path, &text)?;
    let c = config.command;
    if c.versions.is_empty() {
        return Err(SourceError::Empty {
            dir: dir.to_owned(),
            hint: format!(" (`{FILE}` lists no versions)"),
        });
    }
    if c.up.is_empty() || c.down.as_ref().is_some_and(Vec::is_empty) {
        return Err(SourceError::Invalid {
            path,
            message: "`up` and `down` must name a program".into(),
        });
    }
    let uses_previous = |argv: &[String]| argv.iter().any(|a| a.contains("{previous}"));
    if c.before_first.is_none()
        && (uses_previous(&c.up) || c.down.as_deref().is_some_and(uses_previous))
    {
        let line = text
            .lines()
            .position(|l| l.contains("{previous}"))
            .map_or(1, |i| i + 1);
        return Err(SourceError::Invalid {
            path,
            message: format!(
                "line {line}: `{{previous}}` names the version before this one, and the first \
                 version has none: set `before_first` to your tool's name for the state before \
                 any migration (`zero` for Django, `base` for Alembic, `0` for Rails)"
            ),
        });
    }
    let root = dir.canonicalize().unwrap_or_else(|_| dir.to_owned());
    let scheme = c.scheme.unwrap_or_else(|| "postgresql".into());
    let script = |template: &[String], version: &str, previous: &str| Script {
        path: path.clone(),
        text: String::new(),
        blocks: Vec::new(),
        command: Some(Command {
            argv: template
                .iter()
                .map(|a| {
                    a.replace("{version}", version)
                        .replace("{previous}", previous)
                })
                .collect(),
            cwd: root.clone(),
            config: None,
            scheme: scheme.clone(),
        }),
    };
    let mut migrations = Vec::new();
    for (i, version) in c.versions.iter().enumerate() {
        if c.versions[..i].contains(version) {
            return Err(SourceError::Duplicate {
                version: version.clone(),
                first: path.clone(),
                second: path.clone(),
            });
        }
        let previous = match i {
            0 => c.before_first.as_deref().unwrap_or_default(),
            _ => &c.versions[i - 1],
        };
        migrations.push(Migration {
            version: version.clone(),
            description: String::new(),
            up: script(&c.up, version, previous),
            down: c.down.as_deref().map(|d| script(d, version, previous)),
        });
    }
    let mut set = MigrationSet::new(Format::Command, dir, migrations);
    set.history_tables = c.history_tables;
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(toml: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE), toml).unwrap();
        dir
    }

    #[test]
    fn previous_names_the_version_before_and_before_first_the_state_before_any() {
        let dir = project(
            "[command]\nversions = [\"0001_a\", \"0002_b\"]\nup = [\"m\", \"{version}\"]\n\
             down = [\"m\", \"{previous}\"]\nbefore_first = \"zero\"\n\
             history_tables = [\"knex_migrations\"]\n",
        );
        let set = load(dir.path()).unwrap();
        let down = |i: usize| {
            let script = set.migrations[i].down.as_ref().unwrap();
            script.command.as_ref().unwrap().argv.clone()
        };
        assert_eq!(down(0), ["m", "zero"]);
        assert_eq!(down(1), ["m", "0001_a"]);
        assert!(set.history_tables().contains(&"knex_migrations"));
        assert!(set.history_tables().contains(&"django_migrations"));
    }

    #[test]
    fn previous_without_before_first_names_the_line() {
        let dir = project(
            "[command]\nversions = [\"0001_a\"]\nup = [\"m\", \"{version}\"]\n\
             down = [\"m\", \"{previous}\"]\n",
        );
        let e = load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("line 4") && e.contains("before_first"), "{e}");
    }
}
