//! Which migrations a run checks: all of them, those from one migration on (`--since`), or
//! those a git working tree added or modified since a ref (`--changed-from`), with the
//! released ones that were edited. Reads the folder and asks `git`; never a database.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::MigrationSet;

/// The migrations in scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// Per migration of the set, in order: whether it is checked.
    pub selected: Vec<bool>,
    /// Migrations present at the ref whose files changed since (index in the set, file).
    pub edited: Vec<(usize, PathBuf)>,
}

impl Scope {
    /// How many migrations are in scope.
    pub fn count(&self) -> usize {
        self.selected.iter().filter(|s| **s).count()
    }
}

/// `name` (a version or a full migration name, as `[data.changes]` names them) and every
/// migration after it.
pub fn since(set: &MigrationSet, name: &str) -> Result<Scope, String> {
    let Some(at) = set
        .migrations
        .iter()
        .position(|m| m.version == name || m.id() == name)
    else {
        let last = set.migrations.last().map(|m| m.id()).unwrap_or_default();
        return Err(format!(
            "--since `{name}`: no migration of `{}` has that version or name (the last one is \
             `{last}`)",
            set.dir.display()
        ));
    };
    Ok(Scope {
        selected: (0..set.migrations.len()).map(|i| i >= at).collect(),
        edited: Vec::new(),
    })
}

/// The migrations whose files the working tree added or modified since `git_ref` (untracked
/// files count as added), and among them those present at the ref: edited after release.
pub fn changed_from(set: &MigrationSet, git_ref: &str) -> Result<Scope, String> {
    let flag = format!("--changed-from `{git_ref}`");
    let dir = set
        .dir
        .canonicalize()
        .map_err(|e| format!("{flag}: failed to read `{}`: {e}", set.dir.display()))?;
    let top = git(&dir, &["rev-parse", "--show-toplevel"]).map_err(|e| {
        format!(
            "{flag}: `{}` is not in a git repository ({e})",
            dir.display()
        )
    })?;
    let top = PathBuf::from(top.trim_end_matches('\n'));
    let top = top.canonicalize().unwrap_or(top);
    let commit = format!("{git_ref}^{{commit}}");
    git(&top, &["rev-parse", "--verify", "--quiet", &commit]).map_err(|_| {
        format!(
            "{flag}: no such commit in the repository at `{}`; fetch it first (for example \
             `git fetch origin main`, and a checkout with enough history)",
            top.display()
        )
    })?;
    let folder = dir
        .strip_prefix(&top)
        .map_err(|_| format!("{flag}: `{}` is outside `{}`", dir.display(), top.display()))?
        .to_string_lossy()
        .into_owned();
    let folder = if folder.is_empty() {
        ".".to_owned()
    } else {
        folder
    };
    let list = |args: &[&str]| -> Result<BTreeSet<String>, String> {
        let out = git(&top, args).map_err(|e| format!("{flag}: {e}"))?;
        Ok(out
            .split('\0')
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect())
    };
    let released = list(&["ls-tree", "-r", "-z", "--name-only", git_ref, "--", &folder])?;
    let mut changed = list(&["diff", "-z", "--name-only", git_ref, "--", &folder])?;
    changed.extend(list(&[
        "ls-files",
        "-z",
        "--others",
        "--exclude-standard",
        "--",
        &folder,
    ])?);
    let relative = |path: &Path| -> Option<String> {
        let full = path.canonicalize().ok()?;
        Some(full.strip_prefix(&top).ok()?.to_string_lossy().into_owned())
    };
    let mut scope = Scope {
        selected: Vec::new(),
        edited: Vec::new(),
    };
    for (i, m) in set.migrations.iter().enumerate() {
        let files: Vec<(&Path, Option<String>)> = std::iter::once(&m.up)
            .chain(&m.down)
            .map(|s| (s.path.as_path(), relative(&s.path)))
            .collect();
        let touched = files
            .iter()
            .filter(|(_, rel)| rel.as_ref().is_some_and(|r| changed.contains(r)));
        let mut selected = false;
        for (path, rel) in touched {
            selected = true;
            if rel.as_ref().is_some_and(|r| released.contains(r))
                && !scope.edited.iter().any(|(e, _)| *e == i)
            {
                scope.edited.push((i, path.to_path_buf()));
            }
        }
        scope.selected.push(selected);
    }
    Ok(scope)
}

/// Runs `git` in `dir`; its stdout, or its stderr's first line as the error.
fn git(dir: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .map_err(|e| format!("failed to run git: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        Err(err.lines().next().unwrap_or("git failed").to_owned())
    }
}
