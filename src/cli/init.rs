//! `migproof init`: writes a commented migproof.toml beside the migrations, naming the layout
//! it detected and every setting a project may pin, each commented out at its default.

use super::lifecycle::error;
use super::{exit, InitArgs};
use crate::source::{self, config};

pub fn run(args: InitArgs) -> u8 {
    let path = args.migrations.join(config::FILE);
    if path.exists() && !args.force {
        return error(
            exit::USAGE,
            &format!("`{}` exists; pass --force to overwrite it", path.display()),
        );
    }
    let set = match source::load(&args.migrations, args.source) {
        Ok(set) => set,
        Err(e) => return error(exit::USAGE, &e.to_string()),
    };
    if set.format == source::Format::Command {
        return error(
            exit::USAGE,
            &format!(
                "`{}` holds the [command] that applies this project: edit it by hand (the \
                 README's configuration section lists the settings) rather than replace it",
                path.display()
            ),
        );
    }
    let text = template(set.format.name());
    if path.exists() {
        // --force: the old file is kept beside the new one, not lost.
        let backup = path.with_extension("toml.bak");
        if let Err(e) = std::fs::rename(&path, &backup) {
            return error(
                exit::USAGE,
                &format!("failed to move `{}` aside: {e}", path.display()),
            );
        }
        eprintln!("kept the old file as `{}`", backup.display());
    }
    if let Err(e) = std::fs::write(&path, text) {
        return error(
            exit::USAGE,
            &format!("failed to write `{}`: {e}", path.display()),
        );
    }
    eprintln!(
        "wrote `{}`: {} layout, {} migration(s); uncomment what the project needs",
        path.display(),
        set.format.name(),
        set.migrations.len()
    );
    exit::OK
}

/// The file `init` writes for a folder read as `layout`.
pub fn template(layout: &str) -> String {
    format!(
        r#"# migproof.toml: settings of this migrations folder (see migproof's README).
# A command-line flag wins over the setting here. Paths are relative to this folder.

# The layout the folder is written in (detected as {layout}).
source = "{layout}"

[check]
# require_down = true          # a migration without a down fails the run (--require-down)
# strict = true                # column order differences fail the run (--strict)
# allow_destructive = false    # dropping a table or column holding values is a note (--allow-destructive)
# data_dependent = "error"     # "warn": an up failing only on particular rows is a note (--data-dependent)
# compat = "note"              # "error": the previous release breaking after an up fails the run (--compat)
# step_timeout = "2m"          # a step running longer is a `timeout` finding (--step-timeout)
# jobs = 2                     # parts of the history checked at once (--jobs; default: CPUs, at most 8)
# locks = "off"                # "warn" or "error": trace the locks every up takes (--locks)
# lock_rows = 10000            # rows per table for that trace (--lock-rows)
# lock_threshold = "1s"        # a blocking lock held longer is a hazard (--lock-threshold)
# baseline = "../migproof-baseline.json"   # accepted findings (--baseline; `migproof baseline` writes it)

[fuzz]
# duration = "10m"             # the run's length: cases keep coming until it ends (--duration)
# cases = 64                   # or a fixed number of cases (--cases)
# max_steps = 24               # longest sequence of steps in a case (--max-steps)
# jobs = 2                     # cases at once (--jobs; default: CPUs)
# regressions = "../proptest-regressions"  # where shrunk failures are saved (--regressions)

[server]
# version = 16                 # PostgreSQL major version of the docker backend (--pg-version)

[data]
# ignore_tables = ["audit_log"]            # tables never compared (written by triggers, queues)

[data.changes]
# "0005_normalize_emails" = ["users.email"]  # what a migration changes on purpose

[assume]
# "0007_unique_emails" = "production has no duplicate emails (checked 2026-01-10)"

[locks.rows]
# "public.orders" = 5_000_000  # a big table's real size for the lock trace

[compat]
# queries = ["../queries/*.sql", "../.sqlx/query-*.json"]  # the previous release's queries, run after each up

[seed]
# "users.email" = ["ann@example.com", "bob@example.com"]  # values the seeder writes into a column

[setup]
# roles = ["app_readonly"]     # roles the migrations grant to
# migration_role = "owner"     # or "superuser" (--migration-role)
"#
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_template_is_a_valid_migproof_toml_for_every_layout() {
        for format in crate::source::Format::all() {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(
                dir.path().join(crate::source::config::FILE),
                super::template(format.name()),
            )
            .unwrap();
            let layout = crate::source::config::layout(dir.path()).unwrap();
            assert_eq!(layout, Some(format));
            crate::source::config::load(dir.path(), &[]).unwrap();
        }
    }
}
