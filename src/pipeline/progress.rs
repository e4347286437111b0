//! The progress bar on stderr: input shards done (bytes on disk, with ETA when
//! the total is known), files and MB/s of text processed. Hidden when stderr is
//! not a terminal or with `--quiet`.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

pub struct Progress {
    bar: ProgressBar,
    files: AtomicU64,
    bytes: AtomicU64,
    started: Instant,
}

impl Progress {
    /// `total_bytes` is the on-disk size of the input shards to read.
    pub fn new(quiet: bool, total_bytes: Option<u64>) -> Progress {
        let visible = !quiet && std::io::stderr().is_terminal();
        let bar = match total_bytes {
            Some(n) => ProgressBar::new(n),
            None => ProgressBar::no_length(),
        };
        bar.set_draw_target(if visible {
            ProgressDrawTarget::stderr_with_hz(4)
        } else {
            ProgressDrawTarget::hidden()
        });
        let template = match total_bytes {
            Some(_) => "{spinner} [{elapsed_precise}] {wide_bar} {binary_bytes}/{binary_total_bytes} ETA {eta} | {msg}",
            None => "{spinner} [{elapsed_precise}] {msg}",
        };
        bar.set_style(
            ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Progress {
            bar,
            files: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            started: Instant::now(),
        }
    }

    /// Counts records processed and their bytes of text (or announced size).
    pub fn records(&self, files: u64, bytes: u64) {
        let f = self.files.fetch_add(files, Ordering::Relaxed) + files;
        let b = self.bytes.fetch_add(bytes, Ordering::Relaxed) + bytes;
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        self.bar.set_message(format!(
            "{f} files, {:.1} MB, {:.1} MB/s",
            b as f64 / 1e6,
            b as f64 / 1e6 / secs
        ));
    }

    /// Counts an input shard of `bytes` on disk as done (or skipped).
    pub fn shard_done(&self, bytes: u64) {
        self.bar.inc(bytes);
    }

    /// Prints a line above the bar.
    pub fn println(&self, line: &str) {
        self.bar.suspend(|| eprintln!("{line}"));
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// A counter bar for one global step (or any long loop over a known number
/// of units): `label`, units done of `total`, rate and ETA. Hidden when
/// stderr is not a terminal or with `--quiet`, like [`Progress`].
pub struct StepBar {
    bar: ProgressBar,
}

impl StepBar {
    pub fn new(quiet: bool, total: u64, label: &str, unit: &str) -> StepBar {
        let visible = !quiet && std::io::stderr().is_terminal();
        let bar = ProgressBar::new(total);
        bar.set_draw_target(if visible {
            ProgressDrawTarget::stderr_with_hz(4)
        } else {
            ProgressDrawTarget::hidden()
        });
        let template = format!(
            "{{spinner}} [{{elapsed_precise}}] {label:<10} {{wide_bar}} {{human_pos}}/{{human_len}} {unit} {{per_sec}} ETA {{eta}}"
        );
        bar.set_style(
            ProgressStyle::with_template(&template)
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        StepBar { bar }
    }

    pub fn inc(&self, n: u64) {
        self.bar.inc(n);
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
