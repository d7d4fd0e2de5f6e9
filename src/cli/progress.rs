//! The progress bars on stderr: one reporter of the runners' [`Event`]s, drawn as a bar over
//! the migrations (`check`), a bar over the cases (`fuzz`) or a spinner naming the migration
//! (`locks`); hidden when stderr is not a terminal or the output is not for a person.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::run::{Event, Phase, Progress};

/// What a bar counts.
#[derive(Clone, Copy)]
enum Counts {
    /// Each migration twice: its golden apply, then its round trip.
    Migrations,
    Cases,
    /// Nothing: a spinner with the current migration.
    Nothing,
}

pub struct Bar {
    bar: Option<ProgressBar>,
    counts: Counts,
}

impl Bar {
    /// A bar over the migrations, as `check` goes through them.
    pub fn migrations(wanted: bool) -> Bar {
        Bar::drawn(wanted, Counts::Migrations, Some(0), "")
    }

    /// A bar over `cases` fuzz cases.
    pub fn cases(wanted: bool, cases: u64) -> Bar {
        Bar::drawn(wanted, Counts::Cases, Some(cases), "cases ")
    }

    /// A spinner naming the migration being traced.
    pub fn spinner(wanted: bool) -> Bar {
        let bar = Bar::drawn(wanted, Counts::Nothing, None, "");
        if let Some(b) = &bar.bar {
            b.enable_steady_tick(Duration::from_millis(120));
        }
        bar
    }

    fn drawn(wanted: bool, counts: Counts, length: Option<u64>, label: &str) -> Bar {
        if !wanted || !std::io::stderr().is_terminal() {
            return Bar { bar: None, counts };
        }
        let bar = match length {
            Some(n) => ProgressBar::new(n).with_style(
                ProgressStyle::with_template(&format!(
                    "{{spinner}} {label}[{{bar:30}}] {{pos}}/{{len}} {{msg}} ({{elapsed}})"
                ))
                .expect("static template")
                .progress_chars("=> "),
            ),
            None => ProgressBar::new_spinner(),
        };
        Bar {
            bar: Some(bar),
            counts,
        }
    }

    /// Removes the bar from the terminal.
    pub fn clear(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Progress for Bar {
    fn event(&self, event: Event<'_>) {
        let Some(bar) = &self.bar else { return };
        match (event, self.counts) {
            (Event::Started { migrations }, Counts::Migrations) => {
                bar.set_length(2 * migrations as u64)
            }
            (Event::Migration { id, phase, .. }, Counts::Migrations) => {
                if matches!(phase, Phase::GoldenApply | Phase::UpWithData) {
                    bar.inc(1);
                }
                bar.set_message(format!("{id}: {}", phase.as_str()));
            }
            (Event::Migration { index, id, phase }, Counts::Nothing) => {
                bar.set_message(format!("{}: {id}: {}", index + 1, phase.as_str()))
            }
            (
                Event::CaseDone {
                    cases,
                    steps,
                    findings,
                },
                Counts::Cases,
            ) => {
                bar.set_position(cases);
                let rate = steps as f64 / bar.elapsed().as_secs_f64().max(1e-3);
                bar.set_message(format!(
                    "{steps} steps ({rate:.1}/s), {findings} finding(s)"
                ));
            }
            (Event::Finished, Counts::Nothing) => bar.finish_and_clear(),
            _ => {}
        }
    }
}
