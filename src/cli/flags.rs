//! All flags, defined once with their help text. The first line of each doc
//! comment is the `-h` text; the rest is the `--help` paragraph.

use super::decontam_flags::{DecontamFlags, DecontaminateArgs};
use super::near_flags::{DedupArgs, NearDedupFlags};
use super::remote_flags::RemoteFlags;
use crate::backends::BackendKind;
use crate::filters::{FilterConfig, DEFAULT_LICENSES};
use crate::pipeline::shard_spec::ShardSpec;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "tritter-gpu",
    version,
    about = "Turn raw public code into clean LLM training data",
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub global: GlobalFlags,
}

/// Flags every command takes.
#[derive(Args, Debug, Clone)]
pub struct GlobalFlags {
    /// Worker threads (default: all cores).
    ///
    /// Output bytes do not depend on this number.
    #[arg(long, global = true, help_heading = "Execution")]
    pub threads: Option<usize>,
    /// Backend for the heavy kernels (MinHash, LSH bands, n-gram overlap).
    ///
    /// `auto` picks CUDA when a driver and device are present, else a hardware
    /// wgpu adapter, else the CPU, and says which. All give identical results.
    #[arg(long, global = true, value_enum, default_value_t = BackendKind::Auto, help_heading = "Execution")]
    pub backend: BackendKind,
    /// No progress bar and no informational messages: only warnings and errors.
    ///
    /// A successful run prints nothing on stderr (no backend line, retention
    /// table, timings or report-page path). What a command exists to print on
    /// stdout (`subsets`, `backends`, `tokens`, `--plan-only`, `run-step
    /// --plan|--status`, `slurm status`, a submission's job ids, `mix`'s
    /// table) is still printed. Progress bars are drawn only when stderr is a
    /// terminal.
    #[arg(long, short, global = true, help_heading = "Execution")]
    pub quiet: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Download (or read), filter, deduplicate and write curated JSONL.
    Curate(Box<CurateArgs>),
    /// List the catalog of sources and language subsets.
    Subsets,
    /// Finish a run split with --shard: global dedup and output over the work dirs of every slice.
    Merge(MergeArgs),
    /// Remove near-duplicates (MinHash LSH) from a JSONL file in the tool's schema.
    Dedup(DedupArgs),
    /// Remove files that contain evaluation benchmarks.
    Decontaminate(DecontaminateArgs),
    /// Run one task of a planned run (for cluster executors; see `curate --plan-only`).
    #[command(hide = true)]
    RunStep(RunStepArgs),
    /// List the backends (CUDA, wgpu, CPU) and what they can do; --self-test, --bench, --compile-only.
    Backends(super::backends_cmd::BackendsArgs),
    /// Render the HTML report page of a stats file (of any run, old ones too).
    Report(ReportArgs),
    /// Follow or resume a run submitted with `curate --executor slurm`.
    Slurm(super::slurm_flags::SlurmArgs),
    /// Count the tokens of files with a tokenizer (cl100k_base, o200k_base or a tokenizer.json).
    Tokens(super::tokens_flags::TokensArgs),
    /// Build a training mix to a plan's token targets (shuffled Parquet or JSONL shards).
    Mix(super::mix_flags::MixArgs),
}

/// `--report-html`: where a run's HTML page goes.
#[derive(Args, Debug, Clone)]
pub struct ReportHtmlFlag {
    /// The run's HTML report page: `on` (next to the stats, {name}.report.html), `off`, or a file path.
    ///
    /// One self-contained file (inline SVG and CSS, no script, nothing
    /// fetched): the retention funnel against the data plan, near-dedup and
    /// decontamination with samples, where time went, the run's identity.
    #[arg(long = "report-html", value_name = "on|off|PATH", default_value = "on", value_parser = crate::report::PageTarget::parse, help_heading = "Output")]
    pub report_html: crate::report::PageTarget,
}

/// `tritter-gpu report`.
#[derive(Args, Debug)]
pub struct ReportArgs {
    /// A stats file written by curate, merge, dedup (--stats) or decontaminate (--stats).
    #[arg(value_name = "STATS.json")]
    pub stats: PathBuf,
    /// Where to write the page (default: next to the stats, {name}.report.html).
    #[arg(long, value_name = "PAGE.html")]
    pub output: Option<PathBuf>,
}

/// On/off switch of an optional stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Toggle {
    On,
    Off,
}

#[derive(Args, Debug)]
pub struct CurateArgs {
    /// Input shards: Parquet or JSONL (.gz, .zst) files or directories, or hf:// datasets (default: hf://bigcode/the-stack-v2-dedup).
    ///
    /// `hf://OWNER/NAME[/PATH]` lists the dataset's Parquet shards of
    /// --language on the Hugging Face Hub and downloads them into the cache
    /// while earlier ones are processed. The schema (The Stack v2, Stack-Edu, The Stack v1, or this tool's
    /// output) is detected from the columns. Directories are searched
    /// recursively and sorted by path.
    #[arg(long = "source", value_name = "PATH|hf://OWNER/NAME", num_args = 1.., help_heading = "Input")]
    pub sources: Vec<String>,
    /// Language to keep (matched case-insensitively: Python, python).
    #[arg(long, default_value = "python", help_heading = "Input")]
    pub language: String,
    /// Where contents live for sources without inline content (The Stack v2, Stack-Edu): a directory, s3://BUCKET/PREFIX or https://PREFIX.
    ///
    /// Blobs are gzip files named by blob_id, the layout of Software
    /// Heritage's bucket. Hub sources of The Stack v2 and Stack-Edu default to
    /// s3://softwareheritage/content.
    #[arg(long, value_name = "DIR|s3://..|https://..", help_heading = "Input")]
    pub content_store: Option<String>,
    /// Print the catalog of sources and subsets and exit.
    #[arg(long, help_heading = "Input")]
    pub list_subsets: bool,
    /// Process only slice I of N of the inputs (0-based), for splitting a run across machines.
    ///
    /// Input k belongs to slice k mod N. Each slice runs phase 1 into its work
    /// directory; `tritter-gpu merge` then dedups across all slices and writes
    /// the output.
    #[arg(long, value_name = "I/N", help_heading = "Input")]
    pub shard: Option<ShardSpec>,

    /// Output directory: writes {language}_curated.jsonl and {language}_curated.stats.json.
    #[arg(long, default_value = "data/curated", help_heading = "Output")]
    pub output: PathBuf,
    /// Stop after this many files passed the filters (the output holds at most this many).
    #[arg(long, value_name = "N", help_heading = "Output")]
    pub max_samples: Option<u64>,
    /// Count everything, write nothing.
    #[arg(long, help_heading = "Output")]
    pub dry_run: bool,
    /// Write every dropped record with its stage and reason to FILE (JSONL).
    #[arg(long, value_name = "FILE", help_heading = "Output")]
    pub rejects: Option<PathBuf>,
    /// Work directory for resumable intermediate parts (default: OUTPUT/.work/LANGUAGE).
    #[arg(long, value_name = "DIR", help_heading = "Output")]
    pub work_dir: Option<PathBuf>,
    /// Discard the work directory's finished shards and start over.
    #[arg(long, help_heading = "Output")]
    pub fresh: bool,
    /// Skip unreadable inputs (reported, exit code 1) instead of stopping.
    #[arg(long, help_heading = "Output")]
    pub keep_going: bool,
    #[command(flatten)]
    pub report_html: ReportHtmlFlag,
    /// Rows per batch (bounds memory per stage in flight).
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..), help_heading = "Output")]
    pub batch_size: u64,

    #[command(flatten)]
    pub filters: FilterFlags,

    #[command(flatten)]
    pub stages: GlobalStageFlags,

    #[command(flatten)]
    pub steps: GlobalStepFlags,

    #[command(flatten)]
    pub remote: RemoteFlags,

    #[command(flatten)]
    pub tokens: super::tokens_flags::TokensFlags,

    #[command(flatten)]
    pub repos: ReposFlags,

    #[command(flatten)]
    pub slurm: super::slurm_flags::SlurmFlags,
}

/// `--repos`: curated git repositories as a source.
#[derive(Args, Debug, Clone, PartialEq)]
pub struct ReposFlags {
    /// Curated repository list (JSON, schema in data/README.md): each repository is fetched with git at its revision and becomes one input shard.
    ///
    /// Combines with --source: exact and near dedup then run across both.
    /// Without --source only the repositories are read.
    #[arg(long, value_name = "FILE", help_heading = "Repositories")]
    pub repos: Option<PathBuf>,
    /// Where fetched repositories and their shards are kept (default: $XDG_CACHE_HOME/tritter-gpu/repos or ~/.cache/tritter-gpu/repos).
    #[arg(long, value_name = "DIR", help_heading = "Repositories")]
    pub repo_cache: Option<PathBuf>,
    /// Repositories fetched at the same time.
    #[arg(long, value_name = "N", default_value_t = crate::sources::repos::DEFAULT_CONCURRENCY, value_parser = clap::value_parser!(u32).range(1..=64), help_heading = "Repositories")]
    pub repo_concurrency: u32,
    /// Read current star counts from the GitHub REST API (GITHUB_TOKEN when set; GITHUB_API_URL for another host), cached for a day in the repository cache.
    #[arg(long, help_heading = "Repositories")]
    pub refresh_stars: bool,
    /// Replace e-mail addresses, public IP addresses and secrets (API tokens, private keys, passwords) with placeholders, before dedup and decontamination (default: on for --repos shards, off for the others).
    ///
    /// `on` redacts every source, `off` none. Counts per kind are in the
    /// stats' notes (`redacted_email`, `redacted_github_token`, ...).
    #[arg(long, value_name = "on|off", help_heading = "Repositories")]
    pub redact: Option<Toggle>,
}

impl ReposFlags {
    pub fn redact_mode(&self) -> crate::redact::RedactMode {
        match self.redact {
            None => crate::redact::RedactMode::Repos,
            Some(Toggle::On) => crate::redact::RedactMode::On,
            Some(Toggle::Off) => crate::redact::RedactMode::Off,
        }
    }

    pub fn to_config(&self) -> Option<crate::sources::repos::ReposConfig> {
        let list = self.repos.clone()?;
        Some(crate::sources::repos::ReposConfig {
            list,
            cache: self
                .repo_cache
                .clone()
                .unwrap_or_else(crate::sources::repos::ReposConfig::default_cache),
            concurrency: self.repo_concurrency,
            refresh_stars: self.refresh_stars,
        })
    }
}

/// How the global steps are split and written, shared by `curate` and
/// `merge`. None of these changes which files are kept.
#[derive(Args, Debug, Clone, PartialEq)]
pub struct GlobalStepFlags {
    /// Partitions of the global steps (exact dedup, LSH, verification, clusters).
    ///
    /// Each partition is one task that commits on its own, so a killed run
    /// resumes from the last finished task, and a cluster executor can run
    /// the partitions on separate machines. More partitions use less memory
    /// per task; the output is the same for any count.
    #[arg(long, value_name = "P", default_value_t = crate::pipeline::steps::DEFAULT_PARTITIONS, value_parser = clap::value_parser!(u32).range(1..=65536), help_heading = "Global steps")]
    pub partitions: u32,

    /// Write N output files {language}_curated-0000I-of-0000N.jsonl, in parallel.
    ///
    /// The survivors are split into N consecutive runs of (almost) equal
    /// size, in output order: concatenated, the files are the single
    /// {language}_curated.jsonl written without this flag.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=99999), help_heading = "Global steps")]
    pub output_shards: Option<u32>,

    /// Format of the curated files: jsonl (the plan's exact schema, the default) or parquet (zstd, the same six columns).
    ///
    /// Parquet suits sources too big for one JSONL file; the files end in
    /// `.parquet` and load with `datasets.load_dataset("parquet", ...)`.
    #[arg(long, value_enum, default_value_t = crate::output::curated_writer::CuratedFormat::Jsonl, help_heading = "Global steps")]
    pub format: crate::output::curated_writer::CuratedFormat,

    /// Store the run's configuration in the work directory and print its plan (steps and task counts) as JSON; run nothing.
    ///
    /// Each task then runs with `tritter-gpu run-step --work-dir DIR --step
    /// NAME --task I`, step after step; any executor (a cluster scheduler's
    /// job arrays) can run the tasks of one step at the same time.
    #[arg(long, help_heading = "Global steps")]
    pub plan_only: bool,
}

/// `tritter-gpu run-step`: one task of a run planned in a work directory.
#[derive(Args, Debug)]
pub struct RunStepArgs {
    /// The work directory (for merge: the first slice's).
    #[arg(long, value_name = "DIR")]
    pub work_dir: PathBuf,
    /// Step name (shards, exact, lsh, verify, components, clusters, output, report).
    #[arg(long, value_name = "NAME", required_unless_present = "plan")]
    pub step: Option<String>,
    /// Task index, 0-based (for step shards: the input shard's ordinal).
    #[arg(long, value_name = "I", required_unless_present = "plan")]
    pub task: Option<u32>,
    /// Only say whether the task is done: prints `done` (exit 0) or `not done` (exit 1).
    #[arg(long, conflicts_with = "plan")]
    pub status: bool,
    /// Print the plan: every step with its task count, as JSON.
    #[arg(long)]
    pub plan: bool,
}

/// The global stages after exact dedup, in `curate`.
#[derive(Args, Debug)]
pub struct GlobalStageFlags {
    /// Near-duplicate removal stage (MinHash LSH).
    #[arg(long, value_enum, default_value_t = Toggle::On, help_heading = "Near dedup")]
    pub near_dedup: Toggle,
    #[command(flatten)]
    pub near: NearDedupFlags,

    /// Benchmark decontamination stage.
    #[arg(long, value_enum, default_value_t = Toggle::On, help_heading = "Decontamination")]
    pub decontaminate: Toggle,
    #[command(flatten)]
    pub decontam: DecontamFlags,
}

/// Filter thresholds; the defaults are the seed's.
#[derive(Args, Debug, Clone)]
pub struct FilterFlags {
    /// Allowed licenses, SPDX ids compared case-insensitively; every detected license of a file must be allowed.
    #[arg(long, value_delimiter = ',', default_values_t = DEFAULT_LICENSES.iter().map(|s| s.to_string()).collect::<Vec<_>>(), help_heading = "Filters")]
    pub licenses: Vec<String>,
    /// Also keep files with no detected license (license_type no_license); written with license "no_license".
    #[arg(long, help_heading = "Filters")]
    pub allow_no_license: bool,
    /// Minimum repository stars.
    #[arg(long, default_value_t = 100, help_heading = "Filters")]
    pub min_stars: u64,
    /// Drop files whose source has no stars (Stack-Edu) when --min-stars > 0 (default: keep and count them).
    #[arg(long, help_heading = "Filters")]
    pub drop_unknown_stars: bool,
    /// Minimum lines per file.
    #[arg(long, default_value_t = 10, help_heading = "Filters")]
    pub min_lines: u64,
    /// Maximum lines per file.
    #[arg(long, default_value_t = 10_000, help_heading = "Filters")]
    pub max_lines: u64,
    /// Files must be smaller than this many bytes.
    #[arg(long, default_value_t = 500_000, help_heading = "Filters")]
    pub max_bytes: u64,
    /// Alphabetic characters must be more than this fraction of all characters.
    #[arg(long, default_value_t = 0.25, value_parser = fraction, help_heading = "Filters")]
    pub min_alpha: f64,
    /// A line longer than this many characters counts as long.
    #[arg(long, default_value_t = 500, help_heading = "Filters")]
    pub long_line_chars: u64,
    /// Long lines must be fewer than this fraction of all lines.
    #[arg(long, default_value_t = 0.10, value_parser = fraction, help_heading = "Filters")]
    pub max_long_lines: f64,
    /// Keep files with auto-generated markers in their header.
    #[arg(long, help_heading = "Filters")]
    pub keep_autogenerated: bool,
    /// Keep configuration and data files (JSON, YAML, lock files...).
    #[arg(long, help_heading = "Filters")]
    pub keep_config_files: bool,
    /// Keep minified or encoded content.
    #[arg(long, help_heading = "Filters")]
    pub keep_minified: bool,
    /// Ignore the dataset's is_vendor / is_generated flags.
    #[arg(long, help_heading = "Filters")]
    pub ignore_vendor_flags: bool,
    /// Minified: mean line length above this many characters.
    #[arg(long, default_value_t = 100.0, help_heading = "Filters")]
    pub max_mean_line_chars: f64,
    /// Encoded data: a base64/hex-like run longer than this many characters.
    #[arg(long, default_value_t = 1024, help_heading = "Filters")]
    pub max_encoded_run: u64,
    /// Encoded data: base64/hex-like runs covering more than this fraction of the file.
    #[arg(long, default_value_t = 0.5, value_parser = fraction, help_heading = "Filters")]
    pub max_encoded_fraction: f64,
    /// Auto-generated markers are looked for in this many leading lines (the header).
    #[arg(long, default_value_t = 5, help_heading = "Filters")]
    pub autogen_header_lines: u64,
}

fn fraction(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is not a fraction between 0 and 1"))
    }
}

impl FilterFlags {
    pub fn to_config(&self, language: &str) -> FilterConfig {
        FilterConfig {
            language: language.to_string(),
            licenses: self
                .licenses
                .iter()
                .map(|l| l.trim().to_ascii_lowercase())
                .filter(|l| !l.is_empty())
                .collect(),
            allow_no_license: self.allow_no_license,
            min_stars: self.min_stars,
            keep_unknown_stars: !self.drop_unknown_stars,
            min_lines: self.min_lines,
            max_lines: self.max_lines,
            max_bytes: self.max_bytes,
            min_alpha_fraction: self.min_alpha,
            long_line_chars: self.long_line_chars,
            max_long_line_fraction: self.max_long_lines,
            drop_autogenerated: !self.keep_autogenerated,
            drop_config_files: !self.keep_config_files,
            drop_minified: !self.keep_minified,
            drop_flagged_vendor_generated: !self.ignore_vendor_flags,
            max_mean_line_chars: self.max_mean_line_chars,
            max_encoded_run: self.max_encoded_run,
            max_encoded_fraction: self.max_encoded_fraction,
            autogen_header_lines: self.autogen_header_lines,
        }
    }
}

#[derive(Args, Debug)]
pub struct MergeArgs {
    /// Work directories of the slices (each made by `curate --shard I/N` with the same inputs and filters).
    #[arg(long = "work-dir", value_name = "DIR", required = true, num_args = 1..)]
    pub work_dirs: Vec<PathBuf>,
    /// Output directory.
    #[arg(long, default_value = "data/curated")]
    pub output: PathBuf,
    /// Write every dropped record with its stage and reason to FILE (needs --rejects in the slices).
    #[arg(long, value_name = "FILE")]
    pub rejects: Option<PathBuf>,
    /// Write one JSON line per near-duplicate cluster to FILE.
    ///
    /// Near dedup and decontamination run with the settings the slices were
    /// made with (they shaped the slices' keys and verdicts).
    #[arg(long, value_name = "FILE")]
    pub clusters: Option<PathBuf>,
    /// Write a JSONL report of every contaminated file to FILE.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    #[command(flatten)]
    pub steps: GlobalStepFlags,
    /// Count everything, write nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub report_html: ReportHtmlFlag,
    #[command(flatten)]
    pub tokens: super::tokens_flags::MergeTokensFlags,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("tritter-gpu").chain(args.iter().copied()))
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn quiet_is_global_short_or_long_before_or_after_the_command() {
        for args in [
            &["-q", "dedup", "--input", "a", "--output", "b"][..],
            &["dedup", "--input", "a", "--output", "b", "--quiet"],
            &["mix", "--plan", "p", "--output", "o", "-q"],
        ] {
            assert!(parse(args).unwrap().global.quiet, "{args:?}");
        }
        assert!(
            !parse(&["dedup", "--input", "a", "--output", "b"])
                .unwrap()
                .global
                .quiet
        );
    }

    #[test]
    fn curate_defaults_are_the_seeds() {
        let cli = parse(&["curate", "--source", "x"]).unwrap();
        let Command::Curate(c) = cli.command else {
            panic!()
        };
        let f = c.filters.to_config(&c.language);
        assert_eq!(f, FilterConfig::default());
        assert_eq!(c.output, PathBuf::from("data/curated"));
    }

    #[test]
    fn sources_default_to_the_hub() {
        assert!(parse(&["curate", "--list-subsets"]).is_ok());
        let Command::Curate(c) = parse(&["curate", "--language", "python"]).unwrap().command else {
            panic!()
        };
        assert!(c.sources.is_empty());
        let Command::Curate(c) = parse(&[
            "curate",
            "--source",
            "hf://bigcode/the-stack-dedup",
            "local/dir",
        ])
        .unwrap()
        .command
        else {
            panic!()
        };
        assert_eq!(c.sources, vec!["hf://bigcode/the-stack-dedup", "local/dir"]);
    }

    #[test]
    fn bad_flags_are_rejected() {
        assert!(parse(&["curate", "--source", "x", "--min-alpha", "1.5"]).is_err());
        assert!(parse(&["curate", "--source", "x", "--shard", "4/4"]).is_err());
        assert!(parse(&["curate", "--source", "x", "--batch-size", "0"]).is_err());
        assert!(parse(&["curate", "--source", "x", "--backend", "tpu"]).is_err());
    }

    #[test]
    fn backends_flags_parse() {
        let Command::Backends(b) = parse(&["backends", "--compile-only", "--arch", "sm_90"])
            .unwrap()
            .command
        else {
            panic!()
        };
        assert!(b.compile_only && b.arch.as_deref() == Some("sm_90"));
        // --arch only means something with --compile-only.
        assert!(parse(&["backends", "--arch", "sm_90"]).is_err());
        assert!(parse(&["backends", "--self-test", "--require", "cuda,wgpu"]).is_ok());
        assert!(parse(&["backends", "--bench", "--scale", "0"]).is_err());
    }

    #[test]
    fn licenses_are_lowercased_lists() {
        let cli = parse(&["curate", "--source", "x", "--licenses", "MIT,Apache-2.0"]).unwrap();
        let Command::Curate(c) = cli.command else {
            panic!()
        };
        assert_eq!(
            c.filters.to_config("python").licenses,
            vec!["mit", "apache-2.0"]
        );
    }

    #[test]
    fn report_html_and_report_parse() {
        use crate::report::PageTarget;
        let Command::Curate(c) = parse(&["curate", "--source", "x"]).unwrap().command else {
            panic!()
        };
        assert_eq!(c.report_html.report_html, PageTarget::Beside);
        let Command::Curate(c) = parse(&["curate", "--source", "x", "--report-html", "off"])
            .unwrap()
            .command
        else {
            panic!()
        };
        assert_eq!(c.report_html.report_html, PageTarget::Off);
        let Command::Merge(m) = parse(&["merge", "--work-dir", "w", "--report-html", "p.html"])
            .unwrap()
            .command
        else {
            panic!()
        };
        assert_eq!(m.report_html.report_html, PageTarget::Path("p.html".into()));
        assert!(parse(&["curate", "--source", "x", "--report-html", ""]).is_err());
        let Command::Report(r) = parse(&["report", "s.json", "--output", "p.html"])
            .unwrap()
            .command
        else {
            panic!()
        };
        assert_eq!(r.stats, PathBuf::from("s.json"));
        assert_eq!(r.output, Some(PathBuf::from("p.html")));
        assert!(parse(&["report"]).is_err());
    }

    #[test]
    fn shard_and_threads_parse() {
        let cli = parse(&[
            "--threads",
            "2",
            "curate",
            "--source",
            "x",
            "--shard",
            "1/3",
        ])
        .unwrap();
        assert_eq!(cli.global.threads, Some(2));
        let Command::Curate(c) = cli.command else {
            panic!()
        };
        assert_eq!(c.shard, Some(ShardSpec { index: 1, count: 3 }));
    }

    #[test]
    fn global_step_flags_parse() {
        let Command::Curate(c) = parse(&["curate", "--source", "x"]).unwrap().command else {
            panic!()
        };
        assert_eq!(
            c.steps.partitions,
            crate::pipeline::steps::DEFAULT_PARTITIONS
        );
        assert_eq!(c.steps.output_shards, None);
        let Command::Curate(c) = parse(&[
            "curate",
            "--source",
            "x",
            "--partitions",
            "3",
            "--output-shards",
            "4",
            "--plan-only",
        ])
        .unwrap()
        .command
        else {
            panic!()
        };
        assert_eq!(
            (c.steps.partitions, c.steps.output_shards, c.steps.plan_only),
            (3, Some(4), true)
        );
        assert!(parse(&["curate", "--source", "x", "--partitions", "0"]).is_err());
        assert!(parse(&["curate", "--source", "x", "--output-shards", "0"]).is_err());
        // merge takes the slices' near-dedup settings, not its own.
        assert!(parse(&["merge", "--work-dir", "w", "--jaccard", "0.8"]).is_err());
        assert!(parse(&["merge", "--work-dir", "w", "--clusters", "c.jsonl"]).is_ok());
        let Command::Merge(m) = parse(&[
            "merge",
            "--work-dir",
            "w",
            "--tokenizer",
            "o200k_base",
            "--tokens",
            "estimate",
        ])
        .unwrap()
        .command
        else {
            panic!("not merge")
        };
        assert_eq!(
            m.tokens.tokenizer,
            Some(crate::tokens::TokenizerSpec::O200kBase)
        );
        assert_eq!(m.tokens.tokens, Some(crate::tokens::TokensMode::Estimate));
        let Command::Merge(m) = parse(&["merge", "--work-dir", "w"]).unwrap().command else {
            panic!("not merge")
        };
        assert_eq!(m.tokens.tokenizer, None);
    }

    #[test]
    fn run_step_needs_a_step_and_task_unless_listing_the_plan() {
        assert!(parse(&["run-step", "--work-dir", "w", "--plan"]).is_ok());
        assert!(parse(&["run-step", "--work-dir", "w", "--step", "exact"]).is_err());
        let Command::RunStep(r) = parse(&[
            "run-step",
            "--work-dir",
            "w",
            "--step",
            "exact",
            "--task",
            "2",
            "--status",
        ])
        .unwrap()
        .command
        else {
            panic!()
        };
        assert_eq!(
            (r.step.as_deref(), r.task, r.status),
            (Some("exact"), Some(2), true)
        );
    }
}
