//! The sbatch script of one step: `#SBATCH` lines from the configuration,
//! then a loop that runs this array task's share of the step's tasks with
//! `tritter-gpu run-step`. The script is written into `W/slurm/` before it
//! is submitted, so a person can read it and rerun exactly what ran
//! (datatrove's Slurm executor does the same with its launch scripts).
//!
//! Tasks are spread by stride: the step's pending tasks are listed in the
//! script, array task `a` of `S` slots runs list entries `a`, `a + S`,
//! `a + 2S`, ... A step with more slots than `MaxArraySize` is submitted as
//! several arrays, each with its `OFFSET` into the slots.

use super::config::SlurmConfig;
use std::fmt::Write;
use std::path::Path;

/// Exit code of an array task that cannot see the work directory.
pub const NOT_SHARED_EXIT: i32 = 3;

/// One array (a chunk of a step's slots).
pub struct ArrayChunk {
    pub offset: u32,
    pub count: u32,
}

/// Splits `slots` array tasks into arrays of at most `max` tasks.
pub fn chunks(slots: u32, max: u32) -> Vec<ArrayChunk> {
    let max = max.max(1);
    (0..slots.div_ceil(max))
        .map(|c| ArrayChunk {
            offset: c * max,
            count: (slots - c * max).min(max),
        })
        .collect()
}

/// Single quotes for bash.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The text of the script for `step`, `tasks` (pending task numbers) over
/// `slots` array tasks, array chunk `chunk`.
pub fn render(
    cfg: &SlurmConfig,
    work_dir: &Path,
    step: &str,
    tasks: &[u32],
    slots: u32,
    chunk: &ArrayChunk,
    gpus: u32,
) -> String {
    let w = work_dir.display().to_string();
    let mut s = String::new();
    let _ = writeln!(s, "#!/bin/bash");
    let _ = writeln!(
        s,
        "# tritter-gpu: step `{step}` of the run in {w}: {} task(s) over {slots} array task(s).",
        tasks.len()
    );
    let _ = writeln!(
        s,
        "# Written by `--executor slurm`; rerun by hand with `sbatch THIS_FILE` once the earlier steps are done."
    );
    let mut sb = |k: &str, v: &str| {
        let _ = writeln!(s, "#SBATCH --{k}={v}");
    };
    sb("job-name", &format!("tritter-{step}"));
    sb("array", &format!("0-{}", chunk.count.saturating_sub(1)));
    sb("output", &format!("{w}/slurm/logs/{step}-%A_%a.out"));
    sb("open-mode", "append");
    if let Some(p) = &cfg.partition {
        sb("partition", p);
    }
    if let Some(a) = &cfg.account {
        sb("account", a);
    }
    if let Some(c) = cfg.cpus_per_task {
        sb("cpus-per-task", &c.to_string());
    }
    if let Some(m) = &cfg.mem {
        sb("mem", m);
    }
    if let Some(t) = &cfg.time {
        sb("time", t);
    }
    if gpus > 0 {
        sb("gres", &format!("gpu:{gpus}"));
    }
    let list: Vec<String> = tasks.iter().map(u32::to_string).collect();
    let exe = cfg.exe.display().to_string();
    let _ = write!(
        s,
        r#"
set -u
WORK={work}
EXE={exe}
STEP={step}
SLOTS={slots}
OFFSET={offset}
TASKS=({list})

# Every node must see the work directory: a node that does not (a local
# disk, a path mounted only on the login node) fails here, before any work.
# (`curate` and `merge` store config.json there, `dedup` dedup.json.)
if [ ! -f "$WORK/config.json" ] && [ ! -f "$WORK/dedup.json" ]; then
  echo "tritter-gpu: node $(hostname) cannot see the work directory $WORK (no config.json or dedup.json there): the work directory must be on a filesystem that every node shares (NFS, Lustre, GPFS, ...); pass a --work-dir on one" >&2
  exit {not_shared}
fi
if [ ! -x "$EXE" ]; then
  echo "tritter-gpu: node $(hostname) cannot run $EXE: put the tritter-gpu binary on the shared filesystem too" >&2
  exit {not_shared}
fi

slot=$((OFFSET + SLURM_ARRAY_TASK_ID))
status=0
for ((i = slot; i < ${{#TASKS[@]}}; i += SLOTS)); do
  task=${{TASKS[$i]}}
  echo "tritter-gpu: step $STEP task $task starts on $(hostname) at $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  "$EXE" ${{SLURM_CPUS_PER_TASK:+--threads "$SLURM_CPUS_PER_TASK"}} run-step --work-dir "$WORK" --step "$STEP" --task "$task"
  rc=$?
  case $rc in
    0) echo "tritter-gpu: step $STEP task $task done" ;;
    1) echo "tritter-gpu: step $STEP task $task: its input failed and is skipped (--keep-going)" ;;
    *) echo "tritter-gpu: step $STEP task $task failed (exit code $rc)" >&2; status=1 ;;
  esac
done
exit $status
"#,
        work = quote(&w),
        exe = quote(&exe),
        step = quote(step),
        offset = chunk.offset,
        list = list.join(" "),
        not_shared = NOT_SHARED_EXIT,
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_split_at_the_maximum() {
        let c = chunks(2500, 1001);
        let got: Vec<(u32, u32)> = c.iter().map(|c| (c.offset, c.count)).collect();
        assert_eq!(got, [(0, 1001), (1001, 1001), (2002, 498)]);
        assert_eq!(chunks(3, 1001).len(), 1);
    }

    #[test]
    fn quoting_survives_single_quotes() {
        assert_eq!(quote("a'b"), r"'a'\''b'");
    }
}
