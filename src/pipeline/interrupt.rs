//! Ctrl-C (SIGINT) and SIGTERM (`kill`, `scancel`, a Slurm time limit's
//! first warning): remove this run's temporary files and scratch
//! directories, then exit with the shell's code for the signal, 128 + its
//! number (130 for SIGINT, 143 for SIGTERM), so a script or Slurm sees the
//! run was stopped, not that it finished.
//!
//! The signals are caught by `signal-hook`'s iterator: its handler only
//! writes to a pipe, and a thread of ours reads the pipe and does the work
//! outside signal context (removing files is not async-signal-safe). What
//! to remove is [`super::cleanup`]'s registry; the committed outputs,
//! parts and markers stay, so a rerun resumes where this one stopped.
//! SIGKILL cannot be caught: what a `kill -9` leaves, the next run sweeps
//! ([`super::cleanup::sweep_once`]).

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use std::io::IsTerminal;

/// Installs the handler for the rest of the process. A failure to install
/// it is not fatal: the run works, only a Ctrl-C leaves its temporary files
/// for the next run to sweep.
pub fn install() {
    let mut signals = match Signals::new([SIGINT, SIGTERM]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tritter-gpu: warning: cannot catch Ctrl-C ({e}); an interrupted run leaves its temporary files for the next run to remove");
            return;
        }
    };
    let spawned = std::thread::Builder::new()
        .name("tritter-signals".into())
        .spawn(move || {
            if let Some(sig) = signals.forever().next() {
                stop(sig);
            }
        });
    if let Err(e) = spawned {
        eprintln!("tritter-gpu: warning: cannot catch Ctrl-C ({e}); an interrupted run leaves its temporary files for the next run to remove");
    }
}

/// Removes the temporary paths and exits; the registry stays held until
/// the exit, so no worker creates a file after the sweep.
fn stop(sig: i32) -> ! {
    let (removed, _held) = super::cleanup::remove_all_and_hold();
    let name = if sig == SIGINT { "SIGINT" } else { "SIGTERM" };
    // A progress bar may be mid-line on the terminal.
    let nl = if std::io::stderr().is_terminal() {
        "\n"
    } else {
        ""
    };
    eprintln!(
        "{nl}tritter-gpu: interrupted by {name}; removed {removed} temporary file(s); finished \
         work is kept and a rerun resumes from it"
    );
    std::process::exit(128 + sig);
}
