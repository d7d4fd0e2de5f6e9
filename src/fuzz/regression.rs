//! Saved fuzz failures: the shrunk transitions themselves, as a versioned JSON document, so a
//! case survives changes to the model's generators (proptest's own files keep only a seed).
//! A `migproof.txt` beside them keeps proptest-style `cc <seed>` lines.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::model::machine::Step;
use crate::report::Finding;
use crate::source::MigrationSet;

pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Case {
    pub format_version: u32,
    /// The migrations folder, as given on the command line.
    pub migrations: String,
    /// The layout it was read as.
    pub source: String,
    pub seed: String,
    /// Release ends (versions) of the case.
    pub releases: Vec<usize>,
    pub steps: Vec<Step>,
    /// The steps as the report showed them, numbered from 1 like `finding.step`, with the
    /// values written: for people; `steps` is what runs. Absent from cases saved before it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sequence: Vec<String>,
    /// What the case found when it was saved: kind, migration, step, message.
    pub finding: SavedFinding,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedFinding {
    pub kind: String,
    pub migration: String,
    /// `step 4: migrate down one version (roll back ...)`. Absent from cases saved before it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub step: String,
    pub message: String,
}

fn slug(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// Saves a shrunk case, with `sequence`, its steps as the report shows them; returns its path.
pub fn save(
    dir: &Path,
    set: &MigrationSet,
    seed: u64,
    releases: &[usize],
    steps: &[Step],
    finding: &Finding,
    sequence: &[String],
) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let case = Case {
        format_version: FORMAT_VERSION,
        migrations: set.dir.display().to_string(),
        source: set.format.to_string(),
        seed: format!("{seed:#018x}"),
        releases: releases.to_vec(),
        steps: steps.to_vec(),
        sequence: sequence.to_vec(),
        finding: SavedFinding {
            kind: finding.kind.as_str().to_string(),
            migration: finding.migration.clone(),
            step: finding.step.clone(),
            message: finding.message.clone(),
        },
    };
    let name = format!(
        "{}-{}-{seed:016x}.json",
        finding.kind.as_str(),
        slug(&finding.migration)
    );
    let path = dir.join(name);
    // Write whole or not at all.
    let tmp = path.with_extension("json.tmp");
    std::fs::write(
        &tmp,
        serde_json::to_string_pretty(&case).expect("serializes") + "\n",
    )?;
    std::fs::rename(&tmp, &path)?;
    let mut seeds = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("migproof.txt"))?;
    writeln!(
        seeds,
        "cc {seed:016x} # {} in {}",
        finding.kind.as_str(),
        finding.migration
    )?;
    Ok(path)
}

/// Why a saved case could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("failed to read `{}`: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{}` is not a migproof regression case: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
}

pub fn load(path: &Path) -> Result<Case, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
        path: path.to_owned(),
        source,
    })?;
    let case: Case = serde_json::from_str(&text).map_err(|e| LoadError::Invalid {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    if case.format_version != FORMAT_VERSION {
        return Err(LoadError::Invalid {
            path: path.to_owned(),
            reason: format!(
                "format_version {} is not {FORMAT_VERSION}",
                case.format_version
            ),
        });
    }
    Ok(case)
}

/// The saved cases in `dir` (sorted), or none when it does not exist.
pub fn list(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| LoadError::Io {
            path: dir.to_owned(),
            source,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    Ok(paths)
}
