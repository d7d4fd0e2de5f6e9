//! Alembic projects, run through the real `alembic` command: `alembic.ini` in the folder, its
//! `script_location`'s `versions/*.py` read for the revision chain (`revision` and
//! `down_revision`); each revision's up is `alembic upgrade <rev>` and its down
//! `alembic downgrade <previous>`, against a temporary copy of the ini pointing at the scratch
//! database (and `DATABASE_URL` set, for env.py files that read it).

use super::{Detect, Layout};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;

use super::{
    list_migrations, read_text, Command, ConfigFile, Format, Migration, MigrationSet, Script,
    SourceError, Want,
};

static REVISION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"(?m)^revision\s*(?::[^=\n]+)?=\s*['"]([^'"]+)['"]"#).unwrap());
static DOWN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"(?m)^down_revision\s*(?::[^=\n]+)?=\s*(.+)$"#).unwrap());
static QUOTED: LazyLock<Regex> = LazyLock::new(|| Regex::new(r#"['"]([^'"]+)['"]"#).unwrap());

/// True when the folder holds an `alembic.ini`.
pub fn matches(entries: &[PathBuf]) -> bool {
    entries
        .iter()
        .any(|p| p.file_name().is_some_and(|n| n == "alembic.ini"))
}

struct Revision {
    id: String,
    down: Vec<String>,
    file: PathBuf,
}
/// The alembic layout, as the registry (`source::LAYOUTS`) knows it.
pub const LAYOUT: Layout = Layout {
    format: Format::Alembic,
    name: "alembic",
    load,
    detect: Detect::Config(matches),
    history_tables: &["alembic_version"],
    marks: ("Alembic", &[]),
    placeholders: false,
};

/// `alembic.ini` pointing at `url`: `%(here)s` (the file's folder) resolved, as the copy
/// lives elsewhere, and `sqlalchemy.url` set.
fn with_url(text: &str, here: &Path, url: &str) -> String {
    let text = text.replace("%(here)s", &here.display().to_string());
    super::ini::with_value(&text, "alembic", "sqlalchemy.url", url)
}

pub fn load(dir: &Path) -> Result<MigrationSet, SourceError> {
    let ini = dir.join("alembic.ini");
    let text = read_text(&ini)?;
    let invalid = |message: String| SourceError::Invalid {
        path: ini.clone(),
        message,
    };
    let (location, _) = super::ini::value(&text, "alembic", "script_location")
        .ok_or_else(|| invalid("has no `script_location` in its [alembic] section".into()))?;
    let location = location.replace("%(here)s/", "").replace("%(here)s", ".");
    let scripts = if Path::new(&location).is_absolute() {
        PathBuf::from(&location)
    } else {
        dir.join(&location)
    };
    let versions = scripts.join("versions");
    let mut revisions = Vec::new();
    let named = |p: &Path| p.extension().is_some_and(|e| e == "py");
    for path in list_migrations(&versions, Want::File, named)? {
        if path.extension().is_none_or(|e| e != "py") || !path.is_file() {
            continue;
        }
        let source = read_text(&path)?;
        let file_err = |message: String| SourceError::Invalid {
            path: path.clone(),
            message,
        };
        let id = REVISION
            .captures(&source)
            .map(|c| c[1].to_string())
            .ok_or_else(|| file_err("has no `revision = '...'` line".into()))?;
        let down_text = DOWN
            .captures(&source)
            .map(|c| c[1].trim().to_string())
            .ok_or_else(|| file_err("has no `down_revision = ...` line".into()))?;
        let down = if down_text.starts_with("None") {
            Vec::new()
        } else {
            QUOTED
                .captures_iter(&down_text)
                .map(|c| c[1].to_string())
                .collect()
        };
        revisions.push(Revision {
            id,
            down,
            file: path,
        });
    }
    if revisions.is_empty() {
        return Err(SourceError::Empty {
            dir: versions,
            hint: " (no revision files)".into(),
        });
    }
    let mut by_id: BTreeMap<String, usize> = BTreeMap::new();
    for (i, r) in revisions.iter().enumerate() {
        if let Some(&j) = by_id.get(&r.id) {
            return Err(SourceError::Duplicate {
                version: r.id.clone(),
                first: revisions[j].file.clone(),
                second: r.file.clone(),
            });
        }
        by_id.insert(r.id.clone(), i);
    }
    let heads: Vec<&str> = revisions
        .iter()
        .filter(|r| !revisions.iter().any(|o| o.down.contains(&r.id)))
        .map(|r| r.id.as_str())
        .collect();
    if heads.len() != 1 {
        return Err(invalid(format!(
            "the revision history has {} heads ({}); merge them (`alembic merge heads`) so it has one",
            heads.len(),
            heads.join(", ")
        )));
    }
    for r in &revisions {
        if let Some(missing) = r.down.iter().find(|d| !by_id.contains_key(*d)) {
            return Err(SourceError::Invalid {
                path: r.file.clone(),
                message: format!(
                    "down_revision `{missing}` is not a revision in `{}`",
                    versions.display()
                ),
            });
        }
    }
    // Order parents before children (ties by file name), as `alembic upgrade` would apply them.
    let mut order: Vec<usize> = Vec::new();
    let mut remaining: Vec<usize> = (0..revisions.len()).collect();
    remaining.sort_by(|a, b| revisions[*a].file.cmp(&revisions[*b].file));
    while !remaining.is_empty() {
        let ready = remaining.iter().position(|&i| {
            revisions[i]
                .down
                .iter()
                .all(|d| order.iter().any(|&o| revisions[o].id == *d))
        });
        let Some(pos) = ready else {
            return Err(invalid("the revision history has a cycle".into()));
        };
        order.push(remaining.remove(pos));
    }
    // Absolute paths: alembic runs in the project folder, with `%(here)s` of the copied ini
    // meaning the original's folder.
    let root = dir.canonicalize().unwrap_or_else(|_| dir.to_owned());
    let command = |args: &[&str]| Command {
        argv: ["alembic", "-c", "{ini}"]
            .iter()
            .chain(args)
            .map(|s| s.to_string())
            .collect(),
        cwd: root.clone(),
        config: Some(ConfigFile {
            path: root.join("alembic.ini"),
            with_url,
        }),
        scheme: "postgresql+psycopg".into(),
    };
    let script = |file: &Path, cmd: Command| -> Result<Script, SourceError> {
        Ok(Script {
            path: file.to_owned(),
            text: read_text(file)?,
            blocks: Vec::new(),
            command: Some(cmd),
        })
    };
    let mut migrations = Vec::new();
    for (n, &i) in order.iter().enumerate() {
        let r = &revisions[i];
        let stem = r
            .file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let description = stem
            .strip_prefix(&format!("{}_", r.id))
            .unwrap_or(&stem)
            .to_string();
        let previous = if n == 0 {
            "base".to_string()
        } else {
            revisions[order[n - 1]].id.clone()
        };
        migrations.push(Migration {
            version: r.id.clone(),
            description,
            up: script(&r.file, command(&["upgrade", &r.id]))?,
            down: Some(script(&r.file, command(&["downgrade", &previous]))?),
        });
    }
    Ok(MigrationSet::new(Format::Alembic, dir, migrations))
}
