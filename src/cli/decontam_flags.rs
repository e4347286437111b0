//! Flags of benchmark decontamination (`decontaminate`, and the stage of
//! `curate`), and the `decontaminate` command. See docs/decontamination.md.

use crate::decontam::benchmarks::{default_benchmark_dir, UserBenchmark};
use crate::decontam::report::{flag_line, ReportEntry, ReportWriter, Totals};
use crate::decontam::{
    BenchmarkSource, DecontamConfig, Decontaminator, DEFAULT_MIN_EXACT_LEN, DEFAULT_MIN_MATCHES,
    DEFAULT_NGRAM, DEFAULT_RARE_FRACTION, DEFAULT_STOP_GROUPS,
};
use crate::output::atomic::AtomicFile;
use crate::output::tool_jsonl::{read_tool_jsonl, ToolLine};
use crate::pipeline::messages::note_block;
use crate::pipeline::progress::{plain_input_size, StepBar};
use crate::stats::Stats;
use anyhow::{bail, Context, Result};
use clap::Args;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

/// Decontamination settings shared by `decontaminate` and `curate`.
#[derive(Args, Debug, Clone, PartialEq)]
pub struct DecontamFlags {
    /// Benchmarks to remove, comma-separated [default: all available].
    ///
    /// Built-in: humaneval, humanevalplus, mbpp, mbppplus, ds1000, multipl_e
    /// (aliases like humaneval+, mbpp-plus, ds-1000, multipl-e work). Without
    /// this flag every built-in benchmark found in the benchmark directory is
    /// loaded (with --benchmark-source hub: humaneval, mbpp, ds1000). `none`
    /// loads only the --benchmark-file files.
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        help_heading = "Decontamination"
    )]
    pub benchmarks: Vec<String>,

    /// Directory of local benchmark files.
    ///
    /// Default: $TRITTER_BENCHMARK_DIR, else ../shared/benchmarks when it
    /// exists. Files are recognised by name (HumanEval.jsonl.gz, mbpp.jsonl,
    /// MbppPlus*.jsonl.gz, HumanEvalPlus*.jsonl.gz, ds1000*.jsonl,
    /// humaneval-<lang>.jsonl.gz, also as .parquet).
    #[arg(long, value_name = "DIR", help_heading = "Decontamination")]
    pub benchmark_dir: Option<PathBuf>,

    /// Where the built-in benchmarks come from.
    ///
    /// `local` reads the benchmark directory; `hub` downloads the published
    /// datasets from the Hugging Face Hub (cached; HF_ENDPOINT and HF_TOKEN
    /// are honoured).
    #[arg(long, value_enum, value_name = "SOURCE", default_value_t = BenchmarkSource::Local, help_heading = "Decontamination")]
    pub benchmark_source: BenchmarkSource,

    /// Download cache for --benchmark-source hub [default: the Hub client's].
    #[arg(long, value_name = "DIR", help_heading = "Decontamination")]
    pub benchmark_cache: Option<PathBuf>,

    /// An extra benchmark in JSONL (or .json, .parquet); repeatable.
    ///
    /// `NAME=FILE` names it (drop reasons become decontam_NAME_<tier>);
    /// otherwise the file's stem is the name. Its fields come from --fields.
    #[arg(
        long = "benchmark-file",
        value_name = "[NAME=]FILE",
        help_heading = "Decontamination"
    )]
    pub benchmark_files: Vec<String>,

    /// Fields of --benchmark-file records to match, comma-separated.
    ///
    /// Given once, it applies to every --benchmark-file; given once per file,
    /// the n-th --fields goes with the n-th file. Each field is matched by
    /// both tiers.
    #[arg(long, value_name = "A,B", help_heading = "Decontamination")]
    pub fields: Vec<String>,

    /// Tokens per n-gram of the n-gram tier.
    ///
    /// 13 code tokens are about one line; see docs/decontamination.md for
    /// the measurements behind the default.
    #[arg(id = "decontam_ngram", long = "decontam-ngram", value_name = "N", default_value_t = DEFAULT_NGRAM, help_heading = "Decontamination")]
    pub ngram: usize,

    /// Distinct n-grams a file must share with one benchmark item.
    #[arg(long, value_name = "K", default_value_t = DEFAULT_MIN_MATCHES, help_heading = "Decontamination")]
    pub min_matches: usize,

    /// Shortest benchmark string the exact tier matches, in bytes after
    /// normalisation (lowercase, whitespace removed).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MIN_EXACT_LEN, help_heading = "Decontamination")]
    pub min_exact_len: usize,

    /// Keep contaminated files and mark them instead of removing them.
    ///
    /// A marked record gets one more JSON field, "contamination", after its
    /// own fields; every other byte of the line is unchanged.
    #[arg(long, help_heading = "Decontamination")]
    pub flag_only: bool,

    /// Write a JSONL report of every contaminated file to FILE.
    ///
    /// One line per file: input line, path, repo, bytes, action (dropped or
    /// flagged), drop reason, benchmark items with tier and matched string or
    /// n-gram count.
    #[arg(long, value_name = "FILE", help_heading = "Decontamination")]
    pub report: Option<PathBuf>,

    /// Where built benchmark indexes are kept between runs.
    ///
    /// Default: $XDG_CACHE_HOME/tritter-gpu/decontam-index, else
    /// ~/.cache/tritter-gpu/decontam-index. An entry is keyed by the bytes of
    /// every benchmark file, the index settings and the build of this
    /// program, so it is only read by a run that would build the same index.
    #[arg(long, value_name = "DIR", help_heading = "Decontamination")]
    pub index_cache: Option<PathBuf>,

    /// Build the benchmark index in every run: read and write no index cache.
    #[arg(long, conflicts_with = "index_cache", help_heading = "Decontamination")]
    pub no_index_cache: bool,
}

impl DecontamFlags {
    /// The resolved configuration (benchmark directory default applied,
    /// --benchmark-file and --fields paired).
    pub fn to_config(&self) -> Result<DecontamConfig> {
        let benchmark_dir = match &self.benchmark_dir {
            Some(d) => Some(d.clone()),
            None => default_benchmark_dir(),
        };
        let field_lists: Vec<Vec<String>> = self
            .fields
            .iter()
            .map(|f| {
                f.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .collect();
        // The decontaminator checks these too, but only once benchmarks are
        // found: checked here, a bad value is a flag error even where
        // `curate` would otherwise skip decontamination for want of them.
        if !(1..=64).contains(&self.ngram) {
            bail!(
                "--decontam-ngram must be between 1 and 64 tokens, not {} (default {DEFAULT_NGRAM})",
                self.ngram
            );
        }
        if self.min_matches == 0 {
            bail!(
                "--min-matches must be at least 1 (a file shares at least one n-gram with an item \
                 it copies; default {DEFAULT_MIN_MATCHES})"
            );
        }
        if self.benchmark_files.is_empty() && !field_lists.is_empty() {
            bail!("--fields needs a --benchmark-file to apply to");
        }
        if field_lists.len() > 1 && field_lists.len() != self.benchmark_files.len() {
            bail!(
                "--fields given {} times for {} --benchmark-file: give it once for all files or \
                 once per file",
                field_lists.len(),
                self.benchmark_files.len()
            );
        }
        let user_files = self
            .benchmark_files
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                let fields = field_lists
                    .get(if field_lists.len() == 1 { 0 } else { i })
                    .cloned()
                    .unwrap_or_default();
                UserBenchmark::parse(spec, fields)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(DecontamConfig {
            benchmarks: self
                .benchmarks
                .iter()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            source: self.benchmark_source,
            benchmark_dir,
            user_files,
            hub_cache: self.benchmark_cache.clone(),
            ngram: self.ngram,
            min_matches: self.min_matches,
            min_exact_len: self.min_exact_len,
            stop_groups: DEFAULT_STOP_GROUPS,
            rare_fraction: DEFAULT_RARE_FRACTION,
            flag_only: self.flag_only,
            report: self.report.clone(),
            index_cache: if self.no_index_cache {
                None
            } else {
                self.index_cache
                    .clone()
                    .or_else(crate::decontam::index_cache::default_dir)
            },
        })
    }
}

/// `tritter-gpu decontaminate`.
#[derive(Args, Debug)]
pub struct DecontaminateArgs {
    /// Input JSONL in the tool's schema (plain, .gz or .zst).
    #[arg(long, value_name = "IN.jsonl")]
    pub input: PathBuf,

    /// Output JSONL: the input lines that are clean (or all, marked, with
    /// --flag-only), byte-identical and in input order.
    #[arg(long, value_name = "OUT.jsonl")]
    pub output: PathBuf,

    #[command(flatten)]
    pub flags: DecontamFlags,

    /// Write counters, totals per benchmark and tier, sampled hits and timings to FILE (JSON).
    #[arg(long, value_name = "FILE")]
    pub stats: Option<PathBuf>,

    #[command(flatten)]
    pub report_html: super::flags::ReportHtmlFlag,
    #[command(flatten)]
    pub tokens: super::tokens_flags::TokensFlags,
}

/// Lines per batch handed to the decontaminator, and the text bound.
const BATCH_LINES: usize = 8192;
const BATCH_BYTES: usize = 64 << 20;
/// Invalid records reported one by one before we only count them.
const MAX_WARNINGS: u64 = 10;

struct Run<'a> {
    input: String,
    dec: &'a Decontaminator,
    flag_only: bool,
    out: AtomicFile,
    report: Option<ReportWriter>,
    stats: Stats,
    totals: Totals,
    samples: crate::decontam::samples::HitSampler,
    invalid: u64,
    /// Tokens in and out of the stage, with `--tokens exact|estimate`.
    tokens: Option<crate::tokens::stage::StageTokens<'a>>,
}

impl Run<'_> {
    fn batch(&mut self, lines: &mut Vec<ToolLine>) -> Result<()> {
        let texts: Vec<&str> = lines
            .iter()
            .filter_map(|l| l.record.as_ref().ok().map(|r| r.text.as_str()))
            .collect();
        let mut verdicts = self.dec.check_batch(&texts)?.into_iter();
        for l in lines.drain(..) {
            let rec = match &l.record {
                Ok(r) => r,
                Err(e) => {
                    self.invalid += 1;
                    if self.invalid <= MAX_WARNINGS {
                        eprintln!(
                            "tritter-gpu: {}: line {}: not a record of the tool's schema ({e}); \
                             dropped",
                            self.input, l.number
                        );
                    }
                    self.stats
                        .drop("decontam", "decontam_invalid_record", l.raw.len() as u64);
                    continue;
                }
            };
            let bytes = rec.text.len() as u64;
            let verdict = verdicts
                .next()
                .context("decontaminator returned fewer verdicts than texts")?;
            if let Some(t) = self.tokens.as_mut() {
                use crate::tokens::stage::Fate;
                let fate = match &verdict {
                    Some(c) if !self.flag_only => Fate::Dropped(c.reason()),
                    _ => Fate::Kept,
                };
                t.push(rec.text.clone(), fate)?;
            }
            let Some(c) = verdict else {
                self.write_line(&l.raw)?;
                self.stats.pass("decontam", bytes);
                continue;
            };
            let reason = c.reason();
            self.totals.add(&c, bytes);
            let action = if self.flag_only { "flagged" } else { "dropped" };
            self.samples
                .offer(self.dec, &rec.text, &rec.repo, &rec.path, &c, action);
            if let Some(r) = &mut self.report {
                r.write(&ReportEntry {
                    line: Some(l.number),
                    path: &rec.path,
                    repo: &rec.repo,
                    bytes,
                    action: if self.flag_only { "flagged" } else { "dropped" },
                    reason: reason.clone(),
                    contamination: &c,
                })?;
            }
            if self.flag_only {
                let mut flagged = flag_line(&l.raw, &c)
                    .with_context(|| format!("{}: line {}", self.input, l.number))?;
                // The line's CR of a CRLF file stays at its end.
                if l.raw.ends_with('\r') {
                    flagged.push('\r');
                }
                self.write_line(&flagged)?;
                self.stats.pass("decontam", bytes);
                self.stats.note(&format!("{reason}_flagged"), 1);
            } else {
                self.stats.drop("decontam", &reason, bytes);
            }
        }
        Ok(())
    }

    /// Records checked and matched so far, for the progress bar.
    fn progress(&self) -> String {
        let s = self.stats.get("decontam").cloned().unwrap_or_default();
        let hits: u64 = self.totals.benchmarks.values().map(|t| t.files).sum();
        format!(
            "{} records, {hits} {}",
            s.files_in,
            if self.flag_only { "flagged" } else { "removed" }
        )
    }

    fn write_line(&mut self, line: &str) -> Result<()> {
        self.out
            .write_all(line.as_bytes())
            .and_then(|_| self.out.write_all(b"\n"))
            .with_context(|| format!("cannot write {}", self.out.target().display()))
    }
}

pub fn run_decontaminate(
    args: DecontaminateArgs,
    backend: crate::backends::BackendKind,
) -> anyhow::Result<i32> {
    let cfg = args.flags.to_config()?;
    let started_at = crate::output::run_report::now_rfc3339();
    let run_start = Instant::now();
    let (backend, notes) = crate::backends::select(backend)?;
    for n in notes {
        crate::note!("tritter-gpu: decontam: {n}");
    }
    crate::note!("tritter-gpu: decontam: backend {}", backend.describe());
    let build_clock = crate::usage::StepClock::start();
    let building = StepBar::spinner(false, "decontam: building the benchmark index");
    let dec = Decontaminator::build(&cfg, backend)?;
    building.finish();
    let build_step = build_clock.finish("build_index");
    let check_clock = crate::usage::StepClock::start();
    for line in dec.describe().lines() {
        crate::note!("tritter-gpu: decontam: {line}");
    }
    let started = Instant::now();
    let input = args.input.display().to_string();
    let lines = read_tool_jsonl(&args.input)?;
    let token_counter = args.tokens.to_config().counter()?;
    let mut run = Run {
        input,
        dec: &dec,
        flag_only: cfg.flag_only,
        out: AtomicFile::create(&args.output)?,
        report: cfg
            .report
            .as_deref()
            .map(ReportWriter::create)
            .transpose()?,
        stats: Stats::default(),
        totals: Totals::default(),
        samples: crate::decontam::samples::HitSampler::new(),
        invalid: 0,
        tokens: token_counter
            .as_ref()
            .map(|c| crate::tokens::stage::StageTokens::new(c, "decontam")),
    };
    let bar = StepBar::bytes(false, plain_input_size(&args.input), "decontam: checking");
    let mut batch: Vec<ToolLine> = Vec::new();
    let mut batch_bytes = 0usize;
    for line in lines {
        let line = line?;
        batch_bytes += line.raw.len();
        bar.inc(line.raw.len() as u64 + 1);
        batch.push(line);
        if batch.len() >= BATCH_LINES || batch_bytes >= BATCH_BYTES {
            run.batch(&mut batch)?;
            batch_bytes = 0;
            bar.message(run.progress());
        }
    }
    run.batch(&mut batch)?;
    bar.finish();
    let Run {
        out,
        report,
        stats,
        totals,
        samples,
        invalid,
        tokens,
        ..
    } = run;
    let mut stats = stats;
    if let Some(t) = tokens {
        t.finish(&mut stats, &[])?;
    }
    out.commit()?;
    if let Some(r) = report {
        r.commit()?;
    }
    let check_step = check_clock.finish("check");
    let file = serde_json::json!({
        "tool": format!("tritter-gpu {}", env!("CARGO_PKG_VERSION")),
        "command": "decontaminate",
        "argv": crate::output::run_report::argv(),
        "started_at": started_at,
        "backend": dec.backend_description(),
        "input": args.input.display().to_string(),
        "output": args.output.display().to_string(),
        "stats": stats.with_retention(),
        "decontam": {
            "benchmarks": dec.describe(),
            "flag_only": cfg.flag_only,
            "report": cfg.report.as_ref().map(|p| p.display().to_string()),
            "totals": totals,
            "samples": samples.finish(),
        },
        "invalid_records": invalid,
        "elapsed_seconds": (run_start.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
        "steps": [build_step, check_step],
        "resources": crate::usage::Usage::now().rounded(),
    });
    if let Some(path) = &args.stats {
        let mut bytes = serde_json::to_vec_pretty(&file)?;
        bytes.push(b'\n');
        crate::output::atomic::write_atomic(path, &bytes)?;
    }
    if let Some(page) = crate::report::write_page_or(
        &args.report_html.report_html,
        &file,
        args.stats.as_deref(),
        Some(&args.output),
    )? {
        crate::note!("tritter-gpu: report page {}", page.display());
    }
    let secs = started.elapsed().as_secs_f64();
    let s = stats.get("decontam").cloned().unwrap_or_default();
    note_block(&stats.retention_table());
    note_block(&totals.table());
    crate::note!(
        "tritter-gpu: decontam: {} files ({:.1} MB) checked in {secs:.2}s ({:.1} MB/s), {} {}",
        s.files_in,
        s.bytes_in as f64 / 1e6,
        s.bytes_in as f64 / 1e6 / secs.max(1e-9),
        totals.benchmarks.values().map(|t| t.files).sum::<u64>(),
        if cfg.flag_only { "flagged" } else { "removed" }
    );
    if invalid > 0 {
        eprintln!(
            "tritter-gpu: {}: {invalid} lines were not records of the tool's schema and were dropped",
            args.input.display()
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
    struct T {
        #[command(flatten)]
        f: DecontamFlags,
    }

    fn parse(args: &[&str]) -> DecontamFlags {
        let mut v = vec!["t"];
        v.extend_from_slice(args);
        T::try_parse_from(v).unwrap().f
    }

    #[test]
    fn defaults() {
        let f = parse(&[]);
        assert!(f.benchmarks.is_empty());
        assert_eq!(f.benchmark_source, BenchmarkSource::Local);
        assert_eq!(
            (f.ngram, f.min_matches, f.min_exact_len),
            (DEFAULT_NGRAM, DEFAULT_MIN_MATCHES, DEFAULT_MIN_EXACT_LEN)
        );
        assert!(!f.flag_only && f.report.is_none());
    }

    #[test]
    fn every_flag_is_under_the_decontamination_heading() {
        use clap::CommandFactory;
        let cmd = T::command();
        let args: Vec<_> = cmd
            .get_arguments()
            .filter(|a| a.get_id() != "help")
            .collect();
        assert_eq!(args.len(), 13);
        for a in args {
            assert_eq!(
                a.get_help_heading(),
                Some("Decontamination"),
                "{}",
                a.get_id()
            );
        }
    }

    #[test]
    fn benchmarks_flag_is_a_comma_list() {
        let f = parse(&["--benchmarks", "humaneval,mbpp", "--benchmarks", "ds1000"]);
        assert_eq!(f.benchmarks, vec!["humaneval", "mbpp", "ds1000"]);
    }

    #[test]
    fn each_flag_parses() {
        let f = parse(&[
            "--benchmark-dir",
            "b",
            "--benchmark-source",
            "hub",
            "--benchmark-cache",
            "c",
            "--decontam-ngram",
            "10",
            "--min-matches",
            "4",
            "--min-exact-len",
            "50",
            "--flag-only",
            "--report",
            "r.jsonl",
        ]);
        let cfg = f.to_config().unwrap();
        assert_eq!(cfg.benchmark_dir, Some(PathBuf::from("b")));
        assert_eq!(cfg.source, BenchmarkSource::Hub);
        assert_eq!(cfg.hub_cache, Some(PathBuf::from("c")));
        assert_eq!((cfg.ngram, cfg.min_matches, cfg.min_exact_len), (10, 4, 50));
        assert!(cfg.flag_only);
        assert_eq!(cfg.report, Some(PathBuf::from("r.jsonl")));
        assert!(T::try_parse_from(["t", "--benchmark-source", "ftp"]).is_err());
        assert!(T::try_parse_from(["t", "--min-matches", "x"]).is_err());
    }

    #[test]
    fn benchmark_files_pair_with_fields() {
        let cfg = parse(&[
            "--benchmark-file",
            "apps=a.jsonl",
            "--benchmark-file",
            "b.jsonl",
            "--fields",
            "question,solution",
        ])
        .to_config()
        .unwrap();
        assert_eq!(cfg.user_files.len(), 2);
        assert_eq!(cfg.user_files[0].name, "apps");
        assert_eq!(cfg.user_files[1].fields, vec!["question", "solution"]);
        let cfg = parse(&[
            "--benchmark-file",
            "a.jsonl",
            "--fields",
            "x",
            "--benchmark-file",
            "b.jsonl",
            "--fields",
            "y,z",
        ])
        .to_config()
        .unwrap();
        assert_eq!(cfg.user_files[1].fields, vec!["y", "z"]);
        let e = parse(&["--benchmark-file", "a.jsonl"])
            .to_config()
            .unwrap_err();
        assert!(e.to_string().contains("--fields"), "{e}");
        let e = parse(&["--fields", "a"]).to_config().unwrap_err();
        assert!(e.to_string().contains("--benchmark-file"), "{e}");
    }

    #[test]
    fn decontaminate_needs_input_and_output() {
        #[derive(Parser, Debug)]
        struct D {
            #[command(flatten)]
            a: DecontaminateArgs,
        }
        assert!(D::try_parse_from(["d", "--input", "i.jsonl"]).is_err());
        let d = D::try_parse_from(["d", "--input", "i", "--output", "o", "--flag-only"]).unwrap();
        assert!(d.a.flags.flag_only);
    }
}
