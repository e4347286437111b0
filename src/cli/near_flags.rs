//! Flags of near-duplicate removal (`dedup`, and the near-dedup stage of
//! `curate`), and the `dedup` command itself: a tool-schema JSONL file in, the
//! same file without near-duplicates out.
//!
//! `dedup` runs as the partitioned steps of [`crate::pipeline::dedup_run`]
//! (phase 1 per byte range of the input, then `curate`'s near-dedup steps and
//! its own output and report), locally or with `--executor slurm`; the
//! hidden `--single-process` runs the former driver, which reads its input
//! once for signatures and once more to write the output (plus once when
//! clusters exist, for the report's sample paths, and per chunk of
//! components with `--verify exact`). Output lines are the input
//! lines byte for byte, in input order. A line that is not a valid record is
//! kept out of the output, counted under `read_bad_json` and listed in the
//! stats file, and the command exits 1.

use crate::backends::BackendKind;
use crate::dedup::near::{
    self, NearDedupConfig, NearDedupOutcome, NearDoc, NearDocSource, VerifyMode,
};
use crate::output::atomic::{write_atomic, AtomicFile};
use crate::output::tool_jsonl::open_maybe_compressed;
use crate::pipeline::messages::note_block;
use crate::pipeline::progress::{plain_input_size, StepBar};
use crate::rank::{repo_path_hash, Preference};
use crate::record::RecordId;
use crate::stats::Stats;
use anyhow::{bail, ensure, Context, Result};
use clap::Args;
use rayon::prelude::*;
use serde::Serialize;
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Stage name in the stats.
pub const STAGE: &str = "near_dedup";
/// Drop reason of a near-duplicate.
pub const DROP_REASON: &str = "minhash_near_duplicate";
/// Drop reason of an input line that is not a valid record.
pub const BAD_JSON: &str = "read_bad_json";
/// Bad lines listed by number in the stats file (all are counted).
const BAD_LINES_LISTED: usize = 1000;

/// Near-dedup settings shared by `dedup` and `curate`.
#[derive(Args, Debug, Clone, PartialEq)]
pub struct NearDedupFlags {
    /// Jaccard similarity at or above which a file is a near-duplicate.
    ///
    /// Similarity is measured on the sets of word n-grams (see --ngram). A
    /// file is removed when a file preferred over it (allowed license, more
    /// stars, stable tie-break) is at least this similar. The data plan asks
    /// for 0.7-0.8; BigCode used 0.7 for The Stack v2.
    #[arg(
        long,
        default_value_t = 0.75,
        value_name = "J",
        help_heading = "Near dedup"
    )]
    pub jaccard: f64,

    /// Words per shingle.
    ///
    /// Texts are lowercased and split on non-word characters; each run of
    /// this many consecutive words is one shingle. Files with fewer words get
    /// one shingle of all their words; files without words are never
    /// near-duplicates.
    #[arg(
        long,
        default_value_t = 5,
        value_name = "N",
        help_heading = "Near dedup"
    )]
    pub ngram: usize,

    /// MinHash permutations per signature.
    ///
    /// More permutations estimate similarity more precisely (standard error
    /// sqrt(J(1-J)/N): 0.027 at 256) and cost proportionally more time.
    #[arg(
        long = "num-perm",
        default_value_t = 256,
        value_name = "N",
        help_heading = "Near dedup"
    )]
    pub num_perm: usize,

    /// LSH bands (default: chosen from --jaccard).
    ///
    /// With --bands alone, rows = num-perm / bands; with neither, bands and
    /// rows minimise the weighted false-positive and false-negative areas of
    /// the S-curve 1 - (1 - s^rows)^bands around --jaccard.
    #[arg(long, value_name = "B", help_heading = "Near dedup")]
    pub bands: Option<u32>,

    /// LSH rows per band (default: chosen from --jaccard).
    #[arg(long, value_name = "R", help_heading = "Near dedup")]
    pub rows: Option<u32>,

    /// How cluster membership is verified: signature or exact.
    ///
    /// `exact` (the default) computes the Jaccard similarity of the shingle
    /// sets of every candidate pair, reading the input once more: on our
    /// quality corpus it keeps precision at 1.000 where `signature`, which
    /// compares MinHash signatures (standard error 0.027 at 256 permutations),
    /// measured 0.963-0.995 across seeds, for about 1.2x the time.
    #[arg(long, value_enum, default_value_t = VerifyMode::Exact, help_heading = "Near dedup")]
    pub verify: VerifyMode,

    /// Memory for signatures, band records and candidate edges, e.g. 2GiB.
    ///
    /// Past it, band records and edges spill to sorted run files and
    /// signatures to a file in the scratch directory; results are identical.
    /// Units: KiB, MiB, GiB, TiB (and K, M, G, T, same), KB, MB, GB, TB
    /// (powers of 1000), or plain bytes. At least 64KiB.
    #[arg(long, default_value = "2GiB", value_parser = parse_memory, value_name = "SIZE", help_heading = "Near dedup")]
    pub memory: u64,

    /// Seed of the MinHash permutations (recorded in the report).
    #[arg(long = "minhash-seed", default_value_t = near::DEFAULT_SEED, value_name = "SEED", help_heading = "Near dedup")]
    pub minhash_seed: u64,

    /// Write one JSON line per cluster of two or more files to FILE.
    ///
    /// Each line names the kept file and the removed ones (key, input line,
    /// path, repo) with each removed file's verified similarity to the kept
    /// one.
    #[arg(long, value_name = "FILE", help_heading = "Near dedup")]
    pub clusters: Option<PathBuf>,
}

impl Default for NearDedupFlags {
    fn default() -> Self {
        let c = NearDedupConfig::default();
        NearDedupFlags {
            jaccard: c.jaccard,
            ngram: c.ngram,
            num_perm: c.num_perm,
            bands: None,
            rows: None,
            verify: c.verify,
            memory: c.memory_bytes,
            minhash_seed: c.seed,
            clusters: None,
        }
    }
}

impl NearDedupFlags {
    /// The validated configuration; bad values are errors naming the flag.
    pub fn to_config(&self) -> Result<NearDedupConfig> {
        ensure!(
            self.memory >= MIN_MEMORY,
            "--memory must be at least 64KiB, got {} bytes",
            self.memory
        );
        let cfg = NearDedupConfig {
            jaccard: self.jaccard,
            ngram: self.ngram,
            num_perm: self.num_perm,
            bands: self.bands,
            rows: self.rows,
            verify: self.verify,
            memory_bytes: self.memory,
            seed: self.minhash_seed,
            cluster_paths: self.clusters.is_some(),
            ..NearDedupConfig::default()
        };
        cfg.layout()?;
        Ok(cfg)
    }
}

const MIN_MEMORY: u64 = 64 << 10;

/// Parses a byte size such as `2GiB`, `512MiB`, `1.5GB` or `65536`.
pub fn parse_memory(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size like 2GiB, 512MiB or 1000000"))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kib" => 1024.0,
        "m" | "mib" => 1024.0 * 1024.0,
        "g" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tib" => 1024.0f64.powi(4),
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        other => {
            return Err(format!(
                "unknown size unit {other:?} in {s:?} (use KiB, MiB, GiB, TiB, KB, MB, GB or TB)"
            ))
        }
    };
    let bytes = value * mult;
    if !bytes.is_finite() || bytes < 1.0 || bytes > u64::MAX as f64 {
        return Err(format!("{s:?} is not a usable size"));
    }
    Ok(bytes as u64)
}

/// `tritter-gpu dedup`.
#[derive(Args, Debug)]
pub struct DedupArgs {
    /// JSONL file in the tool's schema (plain, .gz or .zst).
    #[arg(long, value_name = "IN.jsonl")]
    pub input: PathBuf,

    /// Where to write the input without near-duplicates (required unless
    /// --dry-run).
    #[arg(long, value_name = "OUT.jsonl", required_unless_present = "dry_run")]
    pub output: Option<PathBuf>,

    /// Find and report near-duplicates without writing --output.
    #[arg(long)]
    pub dry_run: bool,

    /// Write counters, the near-dedup report and bad input lines to FILE (JSON).
    #[arg(long, value_name = "FILE")]
    pub stats: Option<PathBuf>,

    /// Directory for spill files (default: the output's directory, or the
    /// input's with --dry-run).
    #[arg(long, value_name = "DIR")]
    pub scratch_dir: Option<PathBuf>,

    #[command(flatten)]
    pub near: NearDedupFlags,

    /// Keep the run's work directory in DIR, making it resumable: a killed
    /// run, rerun with the same command, skips what it finished and writes
    /// the same bytes (default: a scratch directory under --scratch-dir,
    /// removed on success).
    #[arg(long, value_name = "DIR", help_heading = "Steps")]
    pub work_dir: Option<PathBuf>,

    /// Partitions of the global steps (LSH, verification, clusters); the
    /// output is the same for any count.
    #[arg(long, value_name = "P", default_value_t = crate::pipeline::steps::DEFAULT_PARTITIONS, value_parser = clap::value_parser!(u32).range(1..=65536), help_heading = "Steps")]
    pub partitions: u32,

    /// Bytes of a plain input per phase-1 shard (a compressed input is one
    /// shard), e.g. 128MiB.
    #[arg(long, value_name = "SIZE", default_value = "128MiB", value_parser = parse_memory, help_heading = "Steps")]
    pub shard_size: u64,

    /// Store the plan in --work-dir and print it (steps and task counts) as
    /// JSON; run nothing (then `tritter-gpu run-step`, as for curate).
    #[arg(long, requires = "work_dir", help_heading = "Steps")]
    pub plan_only: bool,

    /// Start over in --work-dir when it holds a run with other settings or
    /// an input that changed.
    #[arg(long, help_heading = "Steps")]
    pub fresh: bool,

    /// Run near dedup in this one process over the input (the driver
    /// before the partitioned steps; the reference for the tests).
    #[arg(long, hide = true, conflicts_with_all = ["work_dir", "plan_only"])]
    pub single_process: bool,

    #[command(flatten)]
    pub slurm: super::slurm_flags::SlurmFlags,

    #[command(flatten)]
    pub report_html: super::flags::ReportHtmlFlag,
    #[command(flatten)]
    pub tokens: super::tokens_flags::TokensFlags,
}

/// A line of the input that is not a valid record.
#[derive(Clone, Debug, Serialize)]
pub struct BadLine {
    pub line: u64,
    pub reason: &'static str,
    pub error: String,
}

/// A tool-schema JSONL file as a [`NearDocSource`]; the first pass records
/// line numbers, text sizes and bad lines.
pub struct ToolJsonlSource {
    path: PathBuf,
    passes: u32,
    /// Input line number of each key.
    pub lines: Vec<u64>,
    /// Text bytes of each key.
    pub text_bytes: Vec<u64>,
    pub bad: Vec<BadLine>,
    pub bad_bytes: Vec<u64>,
    /// Ticks between the first pass and the end of the search (candidates,
    /// verification, clusters: nothing we can count from here).
    pub between: Option<StepBar>,
}

impl ToolJsonlSource {
    pub fn new(path: &Path) -> ToolJsonlSource {
        ToolJsonlSource {
            path: path.to_path_buf(),
            passes: 0,
            lines: Vec::new(),
            text_bytes: Vec::new(),
            bad: Vec::new(),
            bad_bytes: Vec::new(),
            between: None,
        }
    }
}

pub use crate::pipeline::dedup_shard::license_allowed;

impl NearDocSource for ToolJsonlSource {
    fn for_each(&mut self, f: &mut dyn FnMut(NearDoc<'_>) -> Result<()>) -> Result<()> {
        let first = self.passes == 0;
        self.passes += 1;
        self.between = None;
        let bar = StepBar::bytes(
            false,
            plain_input_size(&self.path),
            if first {
                "near dedup: signatures"
            } else {
                "near dedup: rereading"
            },
        );
        let mut key = 0u64;
        // PERF: JSON parsing is most of a pass's cost and was done on the
        // reading thread, one line after another, so `dedup` used about one
        // core. Lines are now read in blocks of about 8 MiB and parsed in
        // parallel; the callback still sees them one by one, in order.
        let reader = std::io::BufReader::with_capacity(1 << 20, open_maybe_compressed(&self.path)?);
        let mut raw = crate::output::tool_jsonl::raw_lines(reader);
        let mut last = 0u64;
        loop {
            let mut block: Vec<(u64, Vec<u8>)> = Vec::new();
            let mut block_bytes = 0usize;
            while block_bytes < PARSE_BLOCK_BYTES {
                match raw.next() {
                    None => break,
                    Some(Err(e)) => {
                        bail!("{}: line {}: {e}", self.path.display(), last + 1)
                    }
                    Some(Ok((number, bytes))) => {
                        last = number;
                        if crate::output::tool_jsonl::is_blank(&bytes) {
                            continue;
                        }
                        block_bytes += bytes.len();
                        block.push((number, bytes));
                    }
                }
            }
            if block.is_empty() {
                break;
            }
            bar.inc(block.iter().map(|(_, b)| b.len() as u64 + 1).sum());
            let parsed: Vec<crate::output::tool_jsonl::ToolLine> = block
                .into_par_iter()
                .with_min_len(64)
                .map(|(number, bytes)| crate::output::tool_jsonl::parse_tool_line(number, bytes))
                .collect();
            for line in parsed {
                self.visit(line, first, &mut key, f)?;
            }
            bar.message(format!("{key} records"));
        }
        ensure!(
            key as usize == self.lines.len(),
            "{} changed while it was being read ({} records, then {key})",
            self.path.display(),
            self.lines.len()
        );
        bar.finish();
        self.between = Some(StepBar::spinner(
            false,
            "near dedup: candidates, verification, clusters",
        ));
        Ok(())
    }

    fn for_each_of(
        &mut self,
        keys: &[u64],
        f: &mut dyn FnMut(NearDoc<'_>) -> Result<()>,
    ) -> Result<()> {
        if self.passes == 0 {
            // The first pass learns where the records are: read them all.
            return self.for_each(&mut |doc| {
                if keys.binary_search(&doc.key).is_ok() {
                    f(doc)
                } else {
                    Ok(())
                }
            });
        }
        self.for_each_of_keys(keys, f)
    }
}

impl ToolJsonlSource {
    /// A later pass over the records with the given keys: every line is
    /// read, but only theirs are parsed (in parallel blocks), and the file is
    /// read only up to the last of them.
    fn for_each_of_keys(
        &mut self,
        keys: &[u64],
        f: &mut dyn FnMut(NearDoc<'_>) -> Result<()>,
    ) -> Result<()> {
        self.passes += 1;
        let want: Vec<u64> = keys
            .iter()
            .map(|&k| {
                self.lines.get(k as usize).copied().with_context(|| {
                    format!("internal: record {k} of {} asked for", self.lines.len())
                })
            })
            .collect::<Result<_>>()?;
        let changed = |number: u64| {
            anyhow::anyhow!(
                "{} changed while it was being read (line {number} is no longer the record it was)",
                self.path.display()
            )
        };
        let reader = std::io::BufReader::with_capacity(1 << 20, open_maybe_compressed(&self.path)?);
        let mut raw = crate::output::tool_jsonl::raw_lines(reader);
        let mut next = 0usize;
        while next < want.len() {
            let mut block: Vec<(usize, u64, Vec<u8>)> = Vec::new();
            let mut block_bytes = 0usize;
            while block_bytes < PARSE_BLOCK_BYTES && next < want.len() {
                match raw.next() {
                    None => return Err(changed(want[next])),
                    Some(Err(e)) => bail!("{}: cannot read: {e}", self.path.display()),
                    Some(Ok((number, bytes))) if number == want[next] => {
                        block_bytes += bytes.len();
                        block.push((next, number, bytes));
                        next += 1;
                    }
                    Some(Ok(_)) => {}
                }
            }
            let parsed: Vec<(usize, crate::output::tool_jsonl::ToolLine)> = block
                .into_par_iter()
                .with_min_len(64)
                .map(|(i, number, bytes)| {
                    (i, crate::output::tool_jsonl::parse_tool_line(number, bytes))
                })
                .collect();
            for (i, line) in parsed {
                let rec = line.record.map_err(|_| changed(line.number))?;
                f(NearDoc {
                    key: keys[i],
                    pref: preference_of(&rec, line.number),
                    text: &rec.text,
                    path: &rec.path,
                    repo: &rec.repo,
                })?;
            }
        }
        Ok(())
    }
}

/// A record's survivor preference (see [`crate::rank`]).
fn preference_of(rec: &crate::record::OutputRecord, line: u64) -> Preference {
    Preference {
        license_allowed: license_allowed(&rec.license),
        stars: rec.stars,
        tiebreak: repo_path_hash(&rec.repo, &rec.path),
        id: RecordId {
            shard: 0,
            row: line,
        },
    }
}

/// Raw bytes of input read per block before the block is parsed in parallel.
const PARSE_BLOCK_BYTES: usize = 8 << 20;

impl ToolJsonlSource {
    /// Hands one parsed line to `f` (a record) or records it as bad (on the
    /// first pass).
    fn visit(
        &mut self,
        line: crate::output::tool_jsonl::ToolLine,
        first: bool,
        key: &mut u64,
        f: &mut dyn FnMut(NearDoc<'_>) -> Result<()>,
    ) -> Result<()> {
        match line.record {
            Err(e) => {
                if first {
                    self.bad.push(BadLine {
                        line: line.number,
                        reason: BAD_JSON,
                        error: e,
                    });
                    self.bad_bytes.push(line.raw.len() as u64);
                }
            }
            Ok(rec) => {
                if first {
                    self.lines.push(line.number);
                    self.text_bytes.push(rec.text.len() as u64);
                } else {
                    ensure!(
                        self.lines.get(*key as usize) == Some(&line.number),
                        "{} changed while it was being read (record {} moved to line {})",
                        self.path.display(),
                        key,
                        line.number
                    );
                }
                f(NearDoc {
                    key: *key,
                    pref: preference_of(&rec, line.number),
                    text: &rec.text,
                    path: &rec.path,
                    repo: &rec.repo,
                })?;
                *key += 1;
            }
        }
        Ok(())
    }
}

#[derive(Serialize)]
struct StatsFile<'a> {
    tool: String,
    command: &'static str,
    argv: Vec<String>,
    started_at: String,
    backend: String,
    input: String,
    output: Option<String>,
    dry_run: bool,
    stats: &'a Stats,
    near_dedup: &'a near::NearDedupReport,
    bad_lines: &'a [BadLine],
    bad_lines_total: usize,
    elapsed_seconds: f64,
    steps: Vec<crate::usage::StepTiming>,
    resources: crate::usage::Usage,
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// `--output`, required unless `--dry-run`, and never the input itself.
fn checked_output(args: &DedupArgs) -> Result<Option<PathBuf>> {
    let output = match (&args.output, args.dry_run) {
        (Some(o), _) => Some(o.clone()),
        (None, true) => None,
        (None, false) => bail!("--output is required unless --dry-run"),
    };
    if let Some(o) = &output {
        ensure!(
            !same_file(&args.input, o),
            "--output {} is the input file; write to another file",
            o.display()
        );
    }
    Ok(output)
}

/// `tritter-gpu dedup`: the partitioned steps ([`crate::pipeline::dedup_run`]),
/// locally or on Slurm.
pub fn run_dedup(args: DedupArgs, backend: BackendKind, quiet: bool) -> Result<i32> {
    if args.single_process {
        return run_dedup_single_process(args, backend);
    }
    let mut near = args.near.to_config()?;
    near.cluster_paths = args.near.clusters.is_some();
    let output = checked_output(&args)?;
    let scratch_dir = default_scratch(&args, output.as_deref());
    let cfg = crate::pipeline::dedup_run::DedupRunConfig {
        input: args.input.clone(),
        output: if args.dry_run { None } else { output },
        dry_run: args.dry_run,
        stats: args.stats.clone(),
        scratch_dir,
        work_dir: args.work_dir.clone(),
        near,
        clusters: args.near.clusters.clone(),
        partitions: args.partitions,
        shard_bytes: args.shard_size,
        backend,
        report_html: args.report_html.report_html.clone(),
        tokens: Some(args.tokens.to_config()).filter(|t| t.mode != crate::tokens::TokensMode::Off),
        fresh: args.fresh,
        plan_only: args.plan_only,
        quiet,
    };
    use super::slurm_flags::Executor;
    if args.slurm.executor == Executor::Local && args.slurm.wait {
        bail!(
            "--wait waits for cluster jobs: it needs --executor slurm (a local run always waits)"
        );
    }
    if args.slurm.executor == Executor::Slurm {
        let slurm = args.slurm.to_config(backend)?;
        return crate::executor::slurm::dedup(&cfg, &slurm, args.slurm.wait, quiet);
    }
    if let Some(w) = &cfg.work_dir {
        crate::executor::slurm::refuse_local_run_while_jobs_are_live(w)?;
    }
    crate::pipeline::dedup_run::run(&cfg)
}

/// The scratch directory: --scratch-dir, else the output's directory, or
/// the input's with --dry-run.
fn default_scratch(args: &DedupArgs, output: Option<&Path>) -> PathBuf {
    match &args.scratch_dir {
        Some(d) => d.clone(),
        None => output
            .unwrap_or(&args.input)
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from(".")),
    }
}

/// `dedup --single-process`: every step in this process over a
/// [`ToolJsonlSource`] ([`near::find_near_duplicates`]).
fn run_dedup_single_process(args: DedupArgs, backend: BackendKind) -> Result<i32> {
    let start = Instant::now();
    let started_at = crate::output::run_report::now_rfc3339();
    let mut steps: Vec<crate::usage::StepTiming> = Vec::new();
    let cfg = args.near.to_config()?;
    ensure!(
        args.input.is_file(),
        "--input {} is not a readable file",
        args.input.display()
    );
    let output = checked_output(&args)?;
    let scratch = default_scratch(&args, output.as_deref());

    let (backend, notes) = crate::backends::select(backend)?;
    for n in &notes {
        crate::note!("tritter-gpu: {n}");
    }
    crate::note!("tritter-gpu: backend: {}", backend.describe());

    let mut source = ToolJsonlSource::new(&args.input);
    let clock = crate::usage::StepClock::start();
    let outcome: NearDedupOutcome =
        near::find_near_duplicates(&mut source, &cfg, backend.as_ref(), &scratch)
            .with_context(|| format!("near dedup of {}", args.input.display()))?;
    source.between = None;
    steps.push(clock.finish("near_dedup"));
    for (name, took) in &outcome.timings {
        steps.push(crate::usage::StepTiming::wall(
            format!("near_dedup/{}", name.trim()),
            *took,
        ));
    }
    let clock = crate::usage::StepClock::start();

    // Final pass: copy kept lines byte for byte (no JSON parsing needed: we
    // know which line numbers are records and which records were removed).
    let t = Instant::now();
    let mut stats = Stats::default();
    let token_counter = args.tokens.to_config().counter()?;
    let mut tokens = token_counter
        .as_ref()
        .map(|c| crate::tokens::stage::StageTokens::new(c, STAGE));
    let mut out = match &output {
        Some(o) if !args.dry_run => Some(AtomicFile::create(o)?),
        _ => None,
    };
    let reader = BufReader::with_capacity(1 << 20, open_maybe_compressed(&args.input)?);
    let (mut next_good, mut next_bad, mut next_removed) = (0usize, 0usize, 0usize);
    let bar = StepBar::new(
        false,
        (source.lines.len() + source.bad.len()) as u64,
        "dedup: writing",
        "records",
    );
    // Raw lines: CRLF and bytes that are not UTF-8 are copied as they are.
    for line in crate::output::tool_jsonl::raw_lines(reader) {
        let (number, raw) =
            line.with_context(|| format!("{}: cannot read", args.input.display()))?;
        if crate::output::tool_jsonl::is_blank(&raw) {
            continue;
        }
        bar.inc(1);
        if source.bad.get(next_bad).map(|b| b.line) == Some(number) {
            stats.drop("read", BAD_JSON, source.bad_bytes[next_bad]);
            next_bad += 1;
            continue;
        }
        ensure!(
            source.lines.get(next_good) == Some(&number),
            "{} changed while it was being read (line {number})",
            args.input.display()
        );
        let key = next_good as u64;
        let bytes = source.text_bytes[next_good];
        next_good += 1;
        stats.pass("read", bytes);
        let removed = outcome.removed.get(next_removed) == Some(&key);
        if let Some(tokens) = tokens.as_mut() {
            use crate::tokens::stage::Fate;
            let text = serde_json::from_slice::<crate::record::OutputRecord>(&raw)
                .map(|r| r.text)
                .with_context(|| format!("{}: line {number}", args.input.display()))?;
            tokens.push(
                text,
                if removed {
                    Fate::Dropped(DROP_REASON.to_string())
                } else {
                    Fate::Kept
                },
            )?;
        }
        if removed {
            next_removed += 1;
            stats.drop(STAGE, DROP_REASON, bytes);
            continue;
        }
        stats.pass(STAGE, bytes);
        if let Some(w) = out.as_mut() {
            w.write_all(&raw)
                .and_then(|_| w.write_all(b"\n"))
                .with_context(|| format!("cannot write {}", w.target().display()))?;
        }
    }
    ensure!(
        next_good == source.lines.len() && next_removed == outcome.removed.len(),
        "{} changed while it was being read",
        args.input.display()
    );
    bar.finish();
    if let Some(tokens) = tokens {
        tokens.finish(&mut stats, &["read"])?;
    }
    if let Some(w) = out {
        w.commit()?;
    }
    let write_time = t.elapsed();
    if !source.bad.is_empty() {
        stats.note("bad_lines", source.bad.len() as u64);
    }

    if let Some(path) = &args.near.clusters {
        outcome.write_clusters_jsonl(path, Some(&source.lines))?;
    }
    steps.push(clock.finish("write"));
    let listed = source.bad.len().min(BAD_LINES_LISTED);
    let stats_file = stats.with_retention();
    let file = StatsFile {
        tool: format!("tritter-gpu {}", env!("CARGO_PKG_VERSION")),
        command: "dedup",
        argv: crate::output::run_report::argv(),
        started_at,
        backend: backend.describe(),
        input: args.input.display().to_string(),
        output: output.as_ref().map(|o| o.display().to_string()),
        dry_run: args.dry_run,
        stats: &stats_file,
        near_dedup: &outcome.report,
        bad_lines: &source.bad[..listed],
        bad_lines_total: source.bad.len(),
        elapsed_seconds: (start.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
        steps,
        resources: crate::usage::Usage::now().rounded(),
    };
    if let Some(path) = &args.stats {
        let mut bytes = serde_json::to_vec_pretty(&file)?;
        bytes.push(b'\n');
        write_atomic(path, &bytes)?;
    }
    // Next to the stats, else next to the output; a dry run writes a page
    // only when given a path.
    let target = &args.report_html.report_html;
    if !args.dry_run || matches!(target, crate::report::PageTarget::Path(_)) {
        let value = serde_json::to_value(&file)?;
        if let Some(page) =
            crate::report::write_page_or(target, &value, args.stats.as_deref(), output.as_deref())?
        {
            crate::note!("tritter-gpu: report page {}", page.display());
        }
    }

    note_block(&outcome.report.summary());
    for (name, d) in &outcome.timings {
        crate::note!("  time {name:<22} {:>9.3} s", d.as_secs_f64());
    }
    crate::note!("  time {:<22} {:>9.3} s", "write", write_time.as_secs_f64());
    crate::note!(
        "  time {:<22} {:>9.3} s",
        "total",
        start.elapsed().as_secs_f64()
    );
    note_block(&stats.retention_table());
    if !source.bad.is_empty() {
        eprintln!(
            "tritter-gpu: {}: {} lines are not valid records (first: line {}: {}); they are left out and listed in the stats",
            args.input.display(),
            source.bad.len(),
            source.bad[0].line,
            source.bad[0].error
        );
        return Ok(1);
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        near: NearDedupFlags,
    }

    fn parse(args: &[&str]) -> Result<NearDedupFlags, clap::Error> {
        let mut v = vec!["t"];
        v.extend_from_slice(args);
        Cli::try_parse_from(v).map(|c| c.near)
    }

    /// (key, text, path, stars) of every document a pass hands over.
    fn collect(
        src: &mut ToolJsonlSource,
        keys: Option<&[u64]>,
    ) -> Result<Vec<(u64, String, String, u64)>> {
        let mut seen = Vec::new();
        let mut f = |d: NearDoc<'_>| {
            seen.push((d.key, d.text.to_string(), d.path.to_string(), d.pref.stars));
            Ok(())
        };
        match keys {
            Some(k) => src.for_each_of(k, &mut f)?,
            None => src.for_each(&mut f)?,
        }
        Ok(seen)
    }

    #[test]
    fn a_later_pass_over_some_keys_sees_what_a_full_pass_sees() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.jsonl");
        // Enough records for several parse blocks, with blank, bad and CRLF
        // lines between them (keys count records only).
        let mut text = String::new();
        for i in 0..3000u64 {
            let body = "x".repeat((i as usize * 37) % 9000);
            text.push_str(&format!(
                "{{\"text\":\"f{i} {body}\",\"language\":\"rust\",\"license\":\"mit\",\"stars\":{i},\"path\":\"p{i}.rs\",\"repo\":\"o/r\"}}"
            ));
            text.push_str(match i % 7 {
                0 => "\n\n",
                1 => "\r\n",
                2 => "\nnot json\n",
                _ => "\n",
            });
        }
        std::fs::write(&path, text).unwrap();
        let mut src = ToolJsonlSource::new(&path);
        let all = collect(&mut src, None).unwrap();
        assert_eq!(all.len(), 3000);
        assert!(!src.bad.is_empty());
        let keys: Vec<u64> = (0..3000).filter(|k| k % 5 == 1 || *k == 2999).collect();
        let want: Vec<_> = all
            .iter()
            .filter(|d| keys.binary_search(&d.0).is_ok())
            .cloned()
            .collect();
        assert_eq!(collect(&mut src, Some(&keys)).unwrap(), want);
        assert_eq!(collect(&mut src, Some(&[])).unwrap(), vec![]);
        // A file that lost its tail is an error naming it, not a short pass.
        std::fs::write(&path, &std::fs::read(&path).unwrap()[..1000]).unwrap();
        let e = collect(&mut src, Some(&keys)).unwrap_err();
        assert!(
            e.to_string().contains("changed while it was being read"),
            "{e}"
        );
    }

    #[test]
    fn defaults_match_the_config_defaults() {
        let f = parse(&[]).unwrap();
        assert_eq!(f, NearDedupFlags::default());
        let c = f.to_config().unwrap();
        assert_eq!(c.memory_bytes, 2 << 30);
        assert_eq!(c.layout().unwrap(), near::LshParams { bands: 28, rows: 9 });
    }

    #[test]
    fn jaccard_flag_parses_and_is_validated() {
        assert_eq!(parse(&["--jaccard", "0.8"]).unwrap().jaccard, 0.8);
        let e = parse(&["--jaccard", "1.5"])
            .unwrap()
            .to_config()
            .unwrap_err();
        assert!(e.to_string().contains("--jaccard"), "{e}");
        assert!(parse(&["--jaccard", "x"]).is_err());
    }

    #[test]
    fn ngram_and_num_perm_are_validated() {
        assert_eq!(parse(&["--ngram", "3"]).unwrap().ngram, 3);
        let e = parse(&["--ngram", "0"]).unwrap().to_config().unwrap_err();
        assert!(e.to_string().contains("--ngram"), "{e}");
        assert_eq!(parse(&["--num-perm", "128"]).unwrap().num_perm, 128);
        let e = parse(&["--num-perm", "0"])
            .unwrap()
            .to_config()
            .unwrap_err();
        assert!(e.to_string().contains("--num-perm"), "{e}");
    }

    #[test]
    fn bands_and_rows_resolve_and_must_fit() {
        let c = parse(&["--bands", "16"]).unwrap().to_config().unwrap();
        assert_eq!(
            c.layout().unwrap(),
            near::LshParams {
                bands: 16,
                rows: 16
            }
        );
        let c = parse(&["--rows", "5"]).unwrap().to_config().unwrap();
        assert_eq!(c.layout().unwrap(), near::LshParams { bands: 51, rows: 5 });
        let e = parse(&["--bands", "20", "--rows", "20"])
            .unwrap()
            .to_config()
            .unwrap_err();
        assert!(e.to_string().contains("exceeds --num-perm"), "{e}");
        let e = parse(&["--bands", "0"]).unwrap().to_config().unwrap_err();
        assert!(e.to_string().contains("at least 1"), "{e}");
    }

    #[test]
    fn verify_parses_both_modes() {
        assert_eq!(
            parse(&["--verify", "exact"]).unwrap().verify,
            VerifyMode::Exact
        );
        assert_eq!(
            parse(&["--verify", "signature"]).unwrap().verify,
            VerifyMode::Signature
        );
        assert!(parse(&["--verify", "fuzzy"]).is_err());
    }

    #[test]
    fn memory_sizes_parse_with_units() {
        assert_eq!(parse_memory("2GiB"), Ok(2 << 30));
        assert_eq!(parse_memory("512MiB"), Ok(512 << 20));
        assert_eq!(parse_memory("1.5GB"), Ok(1_500_000_000));
        assert_eq!(parse_memory("64k"), Ok(64 << 10));
        assert_eq!(parse_memory("4096"), Ok(4096));
        assert!(parse_memory("lots").is_err());
        assert!(parse_memory("2XB").is_err());
        assert!(parse_memory("0").is_err());
        assert_eq!(parse(&["--memory", "1GiB"]).unwrap().memory, 1 << 30);
        let e = parse(&["--memory", "1KiB"])
            .unwrap()
            .to_config()
            .unwrap_err();
        assert!(e.to_string().contains("--memory"), "{e}");
    }

    #[test]
    fn seed_and_clusters_parse() {
        let f = parse(&["--minhash-seed", "7", "--clusters", "c.jsonl"]).unwrap();
        assert_eq!(f.minhash_seed, 7);
        let c = f.to_config().unwrap();
        assert_eq!(c.seed, 7);
        assert!(c.cluster_paths);
    }

    #[test]
    fn licenses_other_than_none_are_allowed() {
        assert!(license_allowed("mit"));
        assert!(license_allowed("apache-2.0 AND mit"));
        assert!(!license_allowed(""));
        assert!(!license_allowed("no_license"));
    }
}
