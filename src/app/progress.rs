//! Progress on stderr while a shell command works. On a terminal, an
//! indicatif bar or spinner redrawn in place and cleared before the result
//! is printed; otherwise (a pipe, a log, CI, `TERM=dumb`) a few complete
//! lines — or none where there is nothing to count — so logs stay readable.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::store::Job;

/// How often a plain line repeats a video job's state.
const PLAIN_EVERY: Duration = Duration::from_secs(10);

/// One command's progress.
pub struct Progress {
    /// Drawn on a terminal; `None` when stderr is not one.
    bar: Option<ProgressBar>,
    /// What is counted or waited for (`images`, a job id).
    what: String,
    started: Instant,
    /// When the last plain line was written.
    last_line: Mutex<Option<Instant>>,
}

impl Progress {
    fn new(what: &str, bar: impl FnOnce() -> ProgressBar) -> Self {
        // A terminal indicatif draws on (not one whose `TERM` is unset or
        // `dumb`: those get the plain lines).
        let terminal = std::io::stderr().is_terminal() && !ProgressDrawTarget::stderr().is_hidden();
        Self {
            bar: terminal.then(bar),
            what: what.to_owned(),
            started: Instant::now(),
            last_line: Mutex::new(None),
        }
    }

    /// Counts `total` items (`what`, e.g. `images`) as they finish: a bar
    /// on a terminal, a line per item otherwise.
    pub fn count(total: usize, what: &str) -> Self {
        Self::new(what, || {
            let bar =
                ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
            bar.set_style(style("[{bar:30}] {pos}/{len} {msg} {elapsed}"));
            bar.set_message(what.to_owned());
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        })
    }

    /// One operation with nothing to count (`what`, e.g. `upscaling
    /// image.png`): a spinner with the time elapsed on a terminal, nothing
    /// otherwise.
    pub fn spinner(what: &str) -> Self {
        Self::new(what, || {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(style("{spinner} {msg} {elapsed}"));
            bar.set_message(what.to_owned());
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        })
    }

    /// A video job being waited for: a bar with the provider's percentage
    /// (a spinner while it gives none) on a terminal, a line every 10 s
    /// otherwise.
    pub fn job(job_id: &str) -> Self {
        let progress = Self::new(job_id, || {
            let bar = ProgressBar::with_draw_target(Some(100), ProgressDrawTarget::stderr());
            bar.set_style(style("{spinner} video {msg} {elapsed}"));
            bar.set_message("queued");
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        if progress.bar.is_some() {
            // Named once here: the bar stays short enough for one line.
            eprintln!("media-gen: waiting for {job_id} (Ctrl-C stops waiting, not the job)");
        }
        progress
    }

    /// `done` of the counted items have finished.
    pub fn done(&self, done: usize, total: usize) {
        match &self.bar {
            Some(bar) => bar.set_position(done as u64),
            None => eprintln!("media-gen: {done}/{total} {} done", self.what),
        }
    }

    /// The waited-for job, as last read.
    pub fn job_state(&self, job: &Job) {
        let state = job.state.as_str();
        let percent = job.progress.map(|p| (p.clamp(0.0, 1.0) * 100.0).round());
        match &self.bar {
            Some(bar) => {
                if let Some(p) = percent {
                    if bar.position() == 0 && p > 0.0 {
                        bar.set_style(style("[{bar:30}] {percent:>3}% video {msg} {elapsed}"));
                    }
                    bar.set_position(p as u64);
                }
                bar.set_message(state);
            }
            None => {
                let Ok(mut last) = self.last_line.lock() else {
                    return;
                };
                if last.is_some_and(|t| t.elapsed() < PLAIN_EVERY) {
                    return;
                }
                *last = Some(Instant::now());
                let secs = self.started.elapsed().as_secs();
                let pct = percent.map(|p| format!(" {p:.0}%")).unwrap_or_default();
                eprintln!(
                    "media-gen: {} {state}{pct} after {}:{:02}",
                    self.what,
                    secs / 60,
                    secs % 60
                );
            }
        }
    }

    /// Removes the bar (before the result is printed).
    pub fn clear(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.clear();
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("#>-")
}
