//! Any other migrator (Flyway or Liquibase CLIs, Rails, Django, Prisma) through commands given
//! in `migproof.toml`: the ordered versions and up/down command templates, run against each
//! scratch database (`{url}` and `DATABASE_URL` name it, `{version}` the migration).

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
}

/// True when the folder holds a `migproof.toml` with a `[command]` table.
pub fn matches(entries: &[PathBuf]) -> bool {
    entries.iter().any(|p| {
        p.file_name().is_some_and(|n| n == FILE)
            && std::fs::read_to_string(p).is_ok_and(|t| t.lines().any(|l| l.trim() == "[command]"))
    })
}

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
    let root = dir.canonicalize().unwrap_or_else(|_| dir.to_owned());
    let scheme = c.scheme.unwrap_or_else(|| "postgresql".into());
    let script = |template: &[String], version: &str| Script {
        path: path.clone(),
        text: String::new(),
        blocks: Vec::new(),
        command: Some(Command {
            argv: template
                .iter()
                .map(|a| a.replace("{version}", version))
                .collect(),
            cwd: root.clone(),
            ini: None,
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
        migrations.push(Migration {
            version: version.clone(),
            description: String::new(),
            up: script(&c.up, version),
            down: c.down.as_deref().map(|d| script(d, version)),
        });
    }
    Ok(MigrationSet::new(Format::Command, dir, migrations))
}
