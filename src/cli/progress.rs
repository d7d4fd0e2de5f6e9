//! The progress of a run on stderr: one reporter of the runners' [`Event`]s. On a terminal, and
//! only for human output, a bar over the migrations (`check`), a bar over the cases (`fuzz`) or
//! a spinner naming the migration (`locks`). Elsewhere (a CI log), whatever the output format,
//! a plain heartbeat line every [`HEARTBEAT`], so that a long run is not killed for silence.

use std::collections::BTreeSet;
use std::io::{IsTerminal, Write as _};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressState, ProgressStyle};

use crate::run::{Event, Phase, Progress};

/// How often the heartbeat line is printed when stderr is not a terminal. The environment
/// variable [`HEARTBEAT_ENV`] (`MIGPROOF_HEARTBEAT_SECS`, whole seconds, at least 1) overrides
/// it, so that a test need not wait this long.
pub const HEARTBEAT: Duration = Duration::from_secs(30);

/// The environment variable that overrides [`HEARTBEAT`], in seconds.
pub const HEARTBEAT_ENV: &str = "MIGPROOF_HEARTBEAT_SECS";

/// What a bar counts.
#[derive(Clone, Copy)]
enum Counts {
    /// Each migration twice: its golden apply, then its round trip.
    Migrations,
    Cases,
    /// Nothing: a spinner with the current migration.
    Nothing,
}

/// What the heartbeat says: the run so far, as the events told it.
#[derive(Default)]
struct Status {
    /// The migrations of the run, or the cases to run (`None`: until a duration ends).
    total: Option<u64>,
    /// The run's duration, for `fuzz --duration`.
    budget: Option<Duration>,
    /// The migrations checked (`check`) or traced (`locks`), by index.
    migrations: BTreeSet<usize>,
    cases: u64,
    findings: usize,
    /// The migration and phase entered last.
    latest: Option<String>,
}

impl Status {
    fn update(&mut self, event: Event<'_>, counts: Counts) {
        match (event, counts) {
            (Event::Started { checked, .. }, Counts::Migrations | Counts::Nothing) => {
                self.total = Some(checked as u64)
            }
            (Event::Migration { index, id, phase }, _) => {
                let counted = match counts {
                    Counts::Migrations => phase == Phase::UpWithData,
                    Counts::Nothing => phase == Phase::LockTrace,
                    Counts::Cases => false,
                };
                if counted {
                    self.migrations.insert(index);
                }
                self.latest = Some(format!("{id}: {}", phase.as_str()));
            }
            (
                Event::CaseDone {
                    cases, findings, ..
                },
                Counts::Cases,
            ) => (self.cases, self.findings) = (cases, findings),
            _ => {}
        }
    }

    /// The heartbeat line after `elapsed`, e.g. `migproof fuzz: 37 cases, 1 finding, 5m00s`.
    fn line(&self, counts: Counts, elapsed: Duration) -> String {
        let of_total = |done: u64| match self.total {
            Some(total) => format!("{done}/{total}"),
            None => done.to_string(),
        };
        let latest = self
            .latest
            .as_deref()
            .map(|l| format!(", latest {l}"))
            .unwrap_or_default();
        let migrations = self.migrations.len() as u64;
        match counts {
            Counts::Migrations => format!(
                "migproof: {} migrations checked, {}{latest}",
                of_total(migrations),
                clock(elapsed)
            ),
            Counts::Nothing => format!(
                "migproof locks: {} migrations traced, {}{latest}",
                of_total(migrations),
                clock(elapsed)
            ),
            Counts::Cases => {
                let findings = match self.findings {
                    1 => "1 finding".to_string(),
                    n => format!("{n} findings"),
                };
                let budget = self
                    .budget
                    .map(|b| format!(" of {}", clock(b)))
                    .unwrap_or_default();
                format!(
                    "migproof fuzz: {} cases, {findings}, {}{budget}",
                    of_total(self.cases),
                    clock(elapsed)
                )
            }
        }
    }
}

/// A duration as a heartbeat shows it: `45s`, `2m30s`, `1h05m00s`.
fn clock(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{}h{:02}m{:02}s", s / 3600, s / 60 % 60, s % 60)
    }
}

/// The heartbeat's period: [`HEARTBEAT_ENV`] if it holds a whole number of seconds above 0.
fn heartbeat_period(env: Option<&str>) -> Duration {
    env.and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|&s| s > 0)
        .map_or(HEARTBEAT, Duration::from_secs)
}

/// The thread that prints the heartbeat line until it is told to stop.
struct Heartbeat {
    /// Dropping it stops the thread at once.
    stop: Mutex<Option<mpsc::Sender<()>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Heartbeat {
    fn start(status: Arc<Mutex<Status>>, counts: Counts, period: Duration) -> Heartbeat {
        let (stop, stopped) = mpsc::channel::<()>();
        let started = Instant::now();
        let thread = std::thread::spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(period) {
                let line = status
                    .lock()
                    .expect("not poisoned")
                    .line(counts, started.elapsed());
                let _ = writeln!(std::io::stderr().lock(), "{line}");
            }
        });
        Heartbeat {
            stop: Mutex::new(Some(stop)),
            thread: Mutex::new(Some(thread)),
        }
    }

    fn stop(&self) {
        self.stop.lock().expect("not poisoned").take();
        if let Some(thread) = self.thread.lock().expect("not poisoned").take() {
            let _ = thread.join();
        }
    }
}

pub struct Bar {
    bar: Option<ProgressBar>,
    counts: Counts,
    status: Arc<Mutex<Status>>,
    heartbeat: Option<Heartbeat>,
}

impl Bar {
    /// A bar over the migrations, as `check` goes through them.
    pub fn migrations(wanted: bool) -> Bar {
        Bar::drawn(wanted, Counts::Migrations, Status::default(), || {
            ProgressBar::new(0).with_style(style(BAR, None))
        })
    }

    /// A bar over `cases` fuzz cases, or (`None`) a count of the cases run until `duration`
    /// ends; with a `duration`, the time left too.
    pub fn cases(wanted: bool, cases: Option<u64>, duration: Option<Duration>) -> Bar {
        let status = Status {
            total: cases,
            budget: duration,
            ..Status::default()
        };
        Bar::drawn(wanted, Counts::Cases, status, || match cases {
            Some(n) => ProgressBar::new(n).with_style(style(&format!("cases {BAR}"), duration)),
            None => {
                let bar = ProgressBar::new_spinner().with_style(style("{pos} cases", duration));
                // The time left changes without any event.
                bar.enable_steady_tick(Duration::from_millis(500));
                bar
            }
        })
    }

    /// A spinner naming the migration being traced.
    pub fn spinner(wanted: bool) -> Bar {
        Bar::drawn(wanted, Counts::Nothing, Status::default(), || {
            let bar = ProgressBar::new_spinner();
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        })
    }

    /// A bar made by `make` on a terminal when `wanted`; the heartbeat when stderr is not a
    /// terminal.
    fn drawn(
        wanted: bool,
        counts: Counts,
        status: Status,
        make: impl FnOnce() -> ProgressBar,
    ) -> Bar {
        let status = Arc::new(Mutex::new(status));
        let terminal = std::io::stderr().is_terminal();
        let bar = (wanted && terminal).then(make);
        let heartbeat = (!terminal).then(|| {
            let period = heartbeat_period(std::env::var(HEARTBEAT_ENV).ok().as_deref());
            Heartbeat::start(status.clone(), counts, period)
        });
        Bar {
            bar,
            counts,
            status,
            heartbeat,
        }
    }

    /// Removes the bar from the terminal and stops the heartbeat.
    pub fn clear(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if let Some(heartbeat) = &self.heartbeat {
            heartbeat.stop();
        }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        if let Some(heartbeat) = &self.heartbeat {
            heartbeat.stop();
        }
    }
}

/// `<spinner> <counter> <message> (<elapsed>)`, and the time left of a `duration`.
fn style(counter: &str, duration: Option<Duration>) -> ProgressStyle {
    let left = duration.map_or("", |_| ", {left} left");
    let template = format!("{{spinner}} {counter} {{msg}} ({{elapsed}}{left})");
    let style = ProgressStyle::with_template(&template)
        .expect("static template")
        .progress_chars("=> ");
    match duration {
        Some(d) => style.with_key(
            "left",
            move |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{}", clock(d.saturating_sub(state.elapsed())));
            },
        ),
        None => style,
    }
}

/// The counter of a bar whose length is known.
const BAR: &str = "[{bar:30}] {pos}/{len}";

impl Progress for Bar {
    fn event(&self, event: Event<'_>) {
        self.status
            .lock()
            .expect("not poisoned")
            .update(event, self.counts);
        let Some(bar) = &self.bar else { return };
        match (event, self.counts) {
            (
                Event::Started {
                    migrations,
                    checked,
                },
                Counts::Migrations,
            ) => bar.set_length((migrations + checked) as u64),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bar_template_parses() {
        for duration in [None, Some(Duration::from_secs(60))] {
            let _ = style(BAR, duration);
            let _ = style(&format!("cases {BAR}"), duration);
            let _ = style("{pos} cases", duration);
        }
    }

    #[test]
    fn clock_reads_like_a_log_line() {
        assert_eq!(clock(Duration::from_millis(45_900)), "45s");
        assert_eq!(clock(Duration::from_secs(150)), "2m30s");
        assert_eq!(clock(Duration::from_secs(300)), "5m00s");
        assert_eq!(clock(Duration::from_secs(3900)), "1h05m00s");
    }

    #[test]
    fn the_heartbeat_period_is_30s_unless_the_environment_says_whole_seconds() {
        assert_eq!(heartbeat_period(None), Duration::from_secs(30));
        assert_eq!(heartbeat_period(Some("1")), Duration::from_secs(1));
        assert_eq!(heartbeat_period(Some("0")), HEARTBEAT);
        assert_eq!(heartbeat_period(Some("soon")), HEARTBEAT);
    }

    #[test]
    fn heartbeat_lines_say_how_far_each_command_is() {
        let mut check = Status::default();
        check.update(
            Event::Started {
                migrations: 285,
                checked: 285,
            },
            Counts::Migrations,
        );
        for index in 0..120 {
            let phase = Phase::UpWithData;
            let id = format!("{:04}_m", index + 1);
            check.update(
                Event::Migration {
                    index,
                    id: &id,
                    phase,
                },
                Counts::Migrations,
            );
            // Later phases of a migration do not count it again.
            let phase = Phase::Down;
            check.update(
                Event::Migration {
                    index,
                    id: &id,
                    phase,
                },
                Counts::Migrations,
            );
        }
        assert_eq!(
            check.line(Counts::Migrations, Duration::from_secs(150)),
            "migproof: 120/285 migrations checked, 2m30s, latest 0120_m: down"
        );

        let mut fuzz = Status {
            budget: Some(Duration::from_secs(600)),
            ..Status::default()
        };
        let done = Event::CaseDone {
            cases: 37,
            steps: 400,
            findings: 1,
        };
        fuzz.update(done, Counts::Cases);
        assert_eq!(
            fuzz.line(Counts::Cases, Duration::from_secs(300)),
            "migproof fuzz: 37 cases, 1 finding, 5m00s of 10m00s"
        );
        let bounded = Status {
            total: Some(64),
            ..Status::default()
        };
        assert_eq!(
            bounded.line(Counts::Cases, Duration::from_secs(5)),
            "migproof fuzz: 0/64 cases, 0 findings, 5s"
        );

        let mut locks = Status::default();
        locks.update(
            Event::Started {
                migrations: 40,
                checked: 40,
            },
            Counts::Nothing,
        );
        for phase in [Phase::Fill, Phase::LockTrace, Phase::LockTrace] {
            let event = Event::Migration {
                index: 11,
                id: "0012_x",
                phase,
            };
            locks.update(event, Counts::Nothing);
        }
        assert_eq!(
            locks.line(Counts::Nothing, Duration::from_secs(70)),
            "migproof locks: 1/40 migrations traced, 1m10s, latest 0012_x: lock trace"
        );
    }
}
