//! The progress bar on stderr, drawn from the runner's progress events; hidden when stderr is
//! not a terminal or the output is JSON.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::run::Progress;

pub struct Bar(Option<ProgressBar>);

impl Bar {
    pub fn new(wanted: bool) -> Bar {
        if !wanted || !std::io::stderr().is_terminal() {
            return Bar(None);
        }
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} {msg} ({elapsed})")
                .expect("static template")
                .progress_chars("=> "),
        );
        Bar(Some(bar))
    }

    pub fn clear(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

impl Progress for Bar {
    fn start(&self, total: usize) {
        if let Some(bar) = &self.0 {
            // each migration is counted twice: golden apply, then its stairway
            bar.set_length(2 * total as u64);
        }
    }

    fn migration(&self, _index: usize, id: &str, phase: &str) {
        if let Some(bar) = &self.0 {
            if phase == "golden apply" || phase == "up with data" {
                bar.inc(1);
            }
            bar.set_message(format!("{id}: {phase}"));
        }
    }
}
