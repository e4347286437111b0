//! What the process has used so far: CPU time (user and system, all threads)
//! and peak resident memory, read with `getrusage(RUSAGE_SELF)` (POSIX; the
//! kernel keeps both counters, so reading them costs one system call and no
//! sampling thread). [`StepClock`] turns two readings into the wall and CPU
//! time of one step of a run, for the stats file's `steps` list.
//!
//! CPU time of a step is the process's CPU time spent between its start and
//! its end. Steps of a run are sequential (each may use every core inside),
//! so the difference is the step's own work plus whatever a background
//! thread (a prefetcher) did meanwhile; a CPU/wall ratio near the thread
//! count means the step kept every core busy.

use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// One reading of the process's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    pub user_cpu_seconds: f64,
    pub system_cpu_seconds: f64,
    /// Largest resident set size the process has had, in bytes.
    pub peak_rss_bytes: u64,
}

impl Usage {
    /// The counters now; zeros where the platform has no `getrusage`.
    pub fn now() -> Usage {
        read().unwrap_or_default()
    }

    pub fn cpu_seconds(&self) -> f64 {
        self.user_cpu_seconds + self.system_cpu_seconds
    }

    /// Rounded to the millisecond, as the stats file writes times.
    pub fn rounded(self) -> Usage {
        Usage {
            user_cpu_seconds: round_ms(self.user_cpu_seconds),
            system_cpu_seconds: round_ms(self.system_cpu_seconds),
            peak_rss_bytes: self.peak_rss_bytes,
        }
    }
}

#[cfg(unix)]
fn read() -> Option<Usage> {
    // SAFETY: `getrusage` only writes into the struct we pass, which is
    // zero-initialised plain data of the right type.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut ru) != 0 {
            return None;
        }
        ru
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    // Linux and the BSDs report ru_maxrss in KiB, macOS in bytes.
    let rss_unit: u64 = if cfg!(target_os = "macos") { 1 } else { 1024 };
    Some(Usage {
        user_cpu_seconds: secs(ru.ru_utime),
        system_cpu_seconds: secs(ru.ru_stime),
        peak_rss_bytes: (ru.ru_maxrss.max(0) as u64).saturating_mul(rss_unit),
    })
}

#[cfg(not(unix))]
fn read() -> Option<Usage> {
    None
}

/// Wall and CPU time of one step of a run, for the stats file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepTiming {
    /// `per_shard`, `exact_dedup`, `near_dedup`, ...; a sub-step's name is
    /// `step/part` (`near_dedup/clusters`).
    pub step: String,
    pub wall_seconds: f64,
    /// `None` for sub-steps timed by wall clock only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_seconds: Option<f64>,
    /// Files and bytes the step took in, when it has a natural count (for
    /// throughput).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
}

impl StepTiming {
    /// A sub-step measured elsewhere by wall clock only.
    pub fn wall(step: impl Into<String>, wall: Duration) -> StepTiming {
        StepTiming {
            step: step.into(),
            wall_seconds: round_ms(wall.as_secs_f64()),
            cpu_seconds: None,
            files: None,
            bytes: None,
        }
    }

    /// Records what the step took in.
    pub fn with_input(mut self, files: u64, bytes: u64) -> StepTiming {
        self.files = Some(files);
        self.bytes = Some(bytes);
        self
    }
}

/// Started at the beginning of a step; [`StepClock::finish`] gives its
/// [`StepTiming`].
#[derive(Clone, Copy, Debug)]
pub struct StepClock {
    wall: Instant,
    cpu: f64,
}

impl StepClock {
    pub fn start() -> StepClock {
        StepClock {
            wall: Instant::now(),
            cpu: Usage::now().cpu_seconds(),
        }
    }

    pub fn finish(&self, step: impl Into<String>) -> StepTiming {
        let cpu = (Usage::now().cpu_seconds() - self.cpu).max(0.0);
        StepTiming {
            step: step.into(),
            wall_seconds: round_ms(self.wall.elapsed().as_secs_f64()),
            cpu_seconds: Some(round_ms(cpu)),
            files: None,
            bytes: None,
        }
    }
}

fn round_ms(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_and_peak_memory_grow_with_work() {
        let before = Usage::now();
        let clock = StepClock::start();
        // Touch 64 MiB so the peak resident size is at least that, and burn
        // some CPU so the step's CPU time is measurable.
        let mut v = vec![1u8; 64 << 20];
        let mut acc = 0u64;
        for round in 0..20u64 {
            for (i, b) in v.iter_mut().enumerate().step_by(4096) {
                *b = b.wrapping_add((i as u64 ^ round) as u8);
                acc = acc.wrapping_add(*b as u64);
            }
        }
        // Spin until the counter itself shows 50 ms more CPU (the machine
        // may be shared, so wall time says little about CPU time).
        let mut x = acc;
        let t = Instant::now();
        while Usage::now().cpu_seconds() - before.cpu_seconds() < 0.05
            && t.elapsed() < Duration::from_secs(20)
        {
            for _ in 0..10_000 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            }
        }
        std::hint::black_box((x, &v));
        let step = clock.finish("busy");
        let after = Usage::now();
        if cfg!(unix) {
            assert!(after.peak_rss_bytes >= 64 << 20, "{after:?}");
            assert!(after.cpu_seconds() > before.cpu_seconds());
            let cpu = step.cpu_seconds.unwrap();
            assert!(cpu >= 0.05, "{step:?}");
            assert!(step.wall_seconds > 0.0, "{step:?}");
        }
        assert_eq!(step.step, "busy");
    }
}
