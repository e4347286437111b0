//! What the tool says on stderr besides its errors, and `--quiet`.
//!
//! Three kinds of text leave the process:
//!
//! - **Notes** ([`note!`](crate::note), [`note_block`]): backend lines,
//!   retention tables, timings, "report page ..." and every other line that
//!   says how a successful run went. `--quiet` drops them.
//! - **Warnings and errors** (plain `eprintln!`, always prefixed
//!   `tritter-gpu:`): a skipped input, a stage that could not run, bad lines
//!   counted. `--quiet` keeps them, so a quiet run that prints anything has
//!   something to say.
//! - **Results on stdout** that a command exists to print (`subsets`,
//!   `backends`, `tokens`, `run-step --plan`/`--status`, `--plan-only`,
//!   `slurm status`, the job ids of a submission): kept, since a script that
//!   passes `--quiet` still wants the answer it asked for.
//!
//! The flag is set once, by the command line, before anything runs; every
//! print site reads it here rather than threading a `quiet` argument through
//! each layer (ripgrep's `crates/core/messages.rs` does the same with its
//! message switches).

use std::sync::atomic::{AtomicBool, Ordering};

static QUIET: AtomicBool = AtomicBool::new(false);

/// Sets `--quiet` for the whole process.
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

/// Whether `--quiet` was given: notes and progress bars are off.
pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// Writes `text` (a table or several lines, each ending in a newline) to
/// stderr unless `--quiet`.
pub fn note_block(text: &str) {
    if !quiet() {
        eprint!("{text}");
    }
}

/// `eprintln!` unless `--quiet`: for informational lines only (warnings
/// and errors use `eprintln!` and are always shown).
#[macro_export]
macro_rules! note {
    ($($arg:tt)*) => {
        if !$crate::pipeline::messages::quiet() {
            eprintln!($($arg)*);
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_is_off_until_set() {
        // Unit tests share the process: we only read, so that tests that
        // print notes in parallel are not silenced.
        assert!(!quiet());
    }
}
