//! Benchmark decontamination: find training files that contain
//! evaluation benchmarks (HumanEval, HumanEval+, MBPP, MBPP+, DS-1000, the
//! MultiPL-E translations of HumanEval, user files) and remove them whole.
//!
//! Whole files, because cutting a benchmark span out of a source file leaves
//! broken code, and a file that holds one benchmark solution often holds more
//! (solution collections).
//!
//! ## Two tiers
//! 1. **Exact** ([`exact`]): each benchmark's prompt/docstring and canonical
//!    solution, normalised (lowercase, all whitespace removed; solutions also
//!    with comments dropped and definition names masked, see [`normalize`]),
//!    searched anywhere in the normalised file by one Aho-Corasick pass per
//!    normal form, whatever the number of strings. Strings shorter than
//!    `min_exact_len` (default [`DEFAULT_MIN_EXACT_LEN`]) normalised bytes
//!    are skipped as trivial. Catches copies verbatim, re-indented, re-cased,
//!    with comments added or the function renamed.
//! 2. **N-gram** ([`ngram`], [`index`]): code-aware tokens, n-grams of
//!    `ngram` tokens (default [`DEFAULT_NGRAM`]) hashed to u64. A file is
//!    contaminated when it shares at least `min_matches` (default
//!    [`DEFAULT_MIN_MATCHES`]) distinct n-grams with ONE benchmark item.
//!    N-grams common in ordinary code never enter the index (a stop-list
//!    learned from the benchmarks, and a rare-token rule). The membership test
//!    runs on the backend ([`crate::backends::Backend::ngram_membership`]),
//!    so CUDA or wgpu can take it.
//!
//! The exact tier runs first; the n-gram tier only sees files it passed.
//!
//! ## Why n = 13, 8 matches and 24 bytes
//! Our tokens include punctuation, so 13 tokens are about one line of code
//! (`for i in range ( len ( arr ) ) : if arr [` is 13 tokens), and 8 distinct
//! shared 13-grams mean at least 20 consecutive shared tokens, or several
//! shorter shared runs. We measured n = 10..13, 3..20 matches and 16..64 bytes
//! on 9,270 planted benchmark files and 25,893 real files
//! (docs/decontamination.md): this setting catches 96.6% of the planted files
//! and flags no real file, with no real file flagged down to 6 matches; 16
//! bytes flags real files (one-line solutions), 32 costs 1.9 points of recall.
//!
//! ## Use
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! use tritter_gpu::decontam::{DecontamConfig, Decontaminator};
//! let (backend, _notes) = tritter_gpu::backends::select(tritter_gpu::backends::BackendKind::Cpu)?;
//! let d = Decontaminator::build(&DecontamConfig::default(), backend)?;
//! eprintln!("{}", d.describe());
//! for (text, verdict) in ["def f(): pass"].iter().zip(d.check_batch(&["def f(): pass"])?) {
//!     if let Some(c) = verdict {
//!         println!("{text:?} dropped: {}", c.reason());
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! Sources: the 13-gram overlap test of GPT-3 (Brown et al. 2020, appendix C)
//! and datatrove's `decont/n_grams.py`; StarCoder's decontamination of
//! HumanEval/MBPP/DS-1000 by exact substring (Li et al. 2023, section 3.6).

pub mod ascii_tokens;
pub mod benchmarks;
pub mod exact;
pub mod filter;
pub mod hub;
pub mod index;
pub mod index_cache;
pub mod lines;
pub mod load;
pub mod ngram;
pub mod normalize;
pub mod prefix_search;
pub mod report;
pub mod rows;
pub mod samples;
pub mod scan;
pub mod swar;
#[cfg(test)]
mod test_bytes;

use crate::backends::{Backend, NGRAM_MISS};
use anyhow::{ensure, Result};
use benchmarks::{BenchmarkItem, UserBenchmark};
use exact::{ExactIndex, Form};
use index::{NgramIndex, NgramParams};
use index_cache::{CachedIndex, IndexCache, Lookup};
pub use load::{LoadedBenchmark, NoBenchmarks};
use ngram::NgramHasher;
use rayon::prelude::*;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Default n-gram length, in tokens.
pub const DEFAULT_NGRAM: usize = 13;
/// Default number of distinct n-grams shared with one item.
pub const DEFAULT_MIN_MATCHES: usize = 8;
/// Default minimum normalised length of an exact-tier string, in bytes.
pub const DEFAULT_MIN_EXACT_LEN: usize = 24;
/// Default stop-list threshold: n-grams in this many problems are dropped.
pub const DEFAULT_STOP_GROUPS: usize = 3;
/// Default rare-token threshold: identifiers in at most this fraction of the
/// problems make an n-gram specific.
pub const DEFAULT_RARE_FRACTION: f64 = 0.05;
/// Most items listed in one [`Contamination`].
pub const MAX_REPORTED_ITEMS: usize = 32;
/// Longest matched string quoted in a report, in bytes.
pub const MAX_QUOTED: usize = 160;

/// Where the built-in benchmarks come from.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum BenchmarkSource {
    /// The benchmark directory.
    #[default]
    Local,
    /// The Hugging Face Hub (downloaded and cached).
    Hub,
}

/// Everything decontamination needs to know.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct DecontamConfig {
    /// Built-in benchmarks by name (see [`benchmarks::Builtin`]); empty means
    /// every benchmark available from `source`; `none` loads user files only.
    pub benchmarks: Vec<String>,
    pub source: BenchmarkSource,
    /// Directory of local benchmark files.
    pub benchmark_dir: Option<PathBuf>,
    pub user_files: Vec<UserBenchmark>,
    /// Hub download cache (`None`: the Hub client's default).
    pub hub_cache: Option<PathBuf>,
    pub ngram: usize,
    pub min_matches: usize,
    pub min_exact_len: usize,
    pub stop_groups: usize,
    pub rare_fraction: f64,
    /// Keep contaminated files and mark them instead of dropping them.
    pub flag_only: bool,
    /// JSONL report of every contaminated file.
    pub report: Option<PathBuf>,
    /// Directory of built indexes kept between runs ([`index_cache`]);
    /// `None` builds the index every time.
    #[serde(default)]
    pub index_cache: Option<PathBuf>,
}

impl Default for DecontamConfig {
    fn default() -> DecontamConfig {
        DecontamConfig {
            benchmarks: Vec::new(),
            source: BenchmarkSource::Local,
            benchmark_dir: benchmarks::default_benchmark_dir(),
            user_files: Vec::new(),
            hub_cache: None,
            ngram: DEFAULT_NGRAM,
            min_matches: DEFAULT_MIN_MATCHES,
            min_exact_len: DEFAULT_MIN_EXACT_LEN,
            stop_groups: DEFAULT_STOP_GROUPS,
            rare_fraction: DEFAULT_RARE_FRACTION,
            flag_only: false,
            report: None,
            index_cache: None,
        }
    }
}

/// Which tier found the benchmark.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Exact,
    Ngram,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Exact => "exact",
            Tier::Ngram => "ngram",
        }
    }
}

/// One benchmark item found in a file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ItemMatch {
    pub benchmark: String,
    pub id: String,
    /// Exact tier: the benchmark field that matched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Exact tier: the normal form it matched in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub form: Option<Form>,
    /// Exact tier: the normalised matched string, cut to [`MAX_QUOTED`]
    /// bytes (ending in `...` when cut).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matched: Option<String>,
    /// Exact tier: length of the whole normalised matched string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matched_len: Option<usize>,
    /// N-gram tier: distinct n-grams shared with the item.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ngrams: Option<u32>,
}

/// Why a file is contaminated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Contamination {
    /// Benchmark of the strongest match (longest exact string, or most shared
    /// n-grams; ties go to the benchmark loaded first).
    pub benchmark: String,
    pub tier: Tier,
    /// Matched items, strongest first, at most [`MAX_REPORTED_ITEMS`].
    pub items: Vec<ItemMatch>,
    /// Number of matched items before the cut.
    pub items_total: usize,
}

impl Contamination {
    /// The stats drop reason: `decontam_<benchmark>_<tier>`.
    pub fn reason(&self) -> String {
        format!("decontam_{}_{}", self.benchmark, self.tier.as_str())
    }
}

/// A built index over the configured benchmarks.
pub struct Decontaminator {
    backend: Arc<dyn Backend>,
    benchmarks: Vec<LoadedBenchmark>,
    /// Per item: benchmark index and id (texts are dropped after the build).
    items: Vec<(u16, String)>,
    exact: ExactIndex,
    ngram: NgramIndex,
    min_matches: u32,
    build_time: Duration,
    /// How the index cache served this build, for the description.
    cache_use: CacheUse,
    /// Items' texts, for the sampled hits of the run's page.
    item_texts: samples::ItemTexts,
}

/// How the index cache served a build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheUse {
    /// No cache configured.
    Off,
    /// Read from this entry.
    Loaded(PathBuf),
    /// Built and stored in this entry.
    Stored(PathBuf),
    /// Built; the cache could not be used, for this reason.
    Failed(String),
}

/// The settings' own checks, before anything is loaded.
fn validate(cfg: &DecontamConfig) -> Result<()> {
    ensure!(
        (1..=64).contains(&cfg.ngram),
        "--decontam-ngram must be between 1 and 64, not {}",
        cfg.ngram
    );
    ensure!(cfg.min_matches >= 1, "--min-matches must be at least 1");
    ensure!(
        cfg.stop_groups >= 2,
        "the stop-list threshold must be at least 2 problems"
    );
    Ok(())
}

/// Bound on the text of one internal batch, so that n-gram queries stay a
/// modest buffer whatever the caller's batch.
const SUB_BATCH_BYTES: usize = 32 << 20;
const SUB_BATCH_TEXTS: usize = 4096;

/// Cuts `s` to at most `max` bytes on a char boundary, marking the cut.
fn quote(s: &[u8], max: usize) -> String {
    let s = String::from_utf8_lossy(s);
    if s.len() <= max {
        return s.into_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

impl Decontaminator {
    /// Loads the benchmarks and builds both tiers, or reads them from the
    /// index cache when `cfg` names one and it holds this index.
    pub fn build(cfg: &DecontamConfig, backend: Arc<dyn Backend>) -> Result<Decontaminator> {
        let start = Instant::now();
        validate(cfg)?;
        let planned = load::plan(cfg)?;
        let cache = IndexCache::for_config(cfg, &planned);
        let mut rebuilt_because = None;
        if let Some((cache, key)) = &cache {
            match Self::read_cached(cfg, cache, *key, &backend, start) {
                Ok(Some(d)) => return Ok(d),
                Ok(None) => {}
                Err(why) => rebuilt_because = Some(why),
            }
        }
        let (benchmarks, items) = load::load_planned(cfg, &planned)?;
        let mut d = Self::from_items(cfg, benchmarks, items, backend, start)?;
        if let Some((cache, key)) = &cache {
            d.cache_use = d.store(cfg, &planned, cache, *key, rebuilt_because);
        }
        Ok(d)
    }

    /// The index in `cache` under `key`: `None` when there is no entry, the
    /// reason when the entry cannot be used.
    fn read_cached(
        cfg: &DecontamConfig,
        cache: &IndexCache,
        key: u128,
        backend: &Arc<dyn Backend>,
        start: Instant,
    ) -> std::result::Result<Option<Decontaminator>, String> {
        let path = cache.entry_path(key);
        match cache.get(key) {
            Lookup::Hit(entry) => match Self::from_cached(cfg, *entry, backend.clone(), start) {
                Ok(d) => Ok(Some(Decontaminator {
                    cache_use: CacheUse::Loaded(path),
                    ..d
                })),
                Err(e) => Err(format!("entry {} unusable ({e:#})", path.display())),
            },
            Lookup::Miss => Ok(None),
            Lookup::Unusable(why) => Err(format!("entry unusable ({why})")),
        }
    }

    /// Stores this freshly built index in `cache` under `key`, and says how
    /// that went (`rebuilt_because`: why an entry there was not used).
    fn store(
        &self,
        cfg: &DecontamConfig,
        planned: &[load::PlannedBenchmark],
        cache: &IndexCache,
        key: u128,
        rebuilt_because: Option<String>,
    ) -> CacheUse {
        // A file changed while it was read would have its index stored under
        // its old bytes' key: store only if the key still holds.
        if IndexCache::key(cfg, planned) != Some(key) {
            return CacheUse::Failed(
                "a benchmark file changed while it was read; not stored".into(),
            );
        }
        match (cache.put(&self.to_cached(key)), rebuilt_because) {
            (Ok(path), None) => CacheUse::Stored(path),
            (Ok(path), Some(why)) => {
                CacheUse::Failed(format!("{why}, rebuilt and stored in {}", path.display()))
            }
            (Err(e), why) => CacheUse::Failed(format!(
                "{}not written to {}: {e:#}",
                why.map(|w| format!("{w}, rebuilt; ")).unwrap_or_default(),
                cache.dir().display()
            )),
        }
    }

    /// The index as an index cache entry under `key`.
    fn to_cached(&self, key: u128) -> CachedIndex {
        CachedIndex {
            key,
            benchmarks: self.benchmarks.clone(),
            items: self.items.clone(),
            exact: self.exact.parts(),
            ngram: self.ngram.parts(),
            item_texts: self.item_texts.parts(),
        }
    }

    /// The index of a cache entry, judged by `cfg`'s thresholds.
    fn from_cached(
        cfg: &DecontamConfig,
        entry: CachedIndex,
        backend: Arc<dyn Backend>,
        start: Instant,
    ) -> Result<Decontaminator> {
        let n = entry.items.len();
        let names = entry.names();
        ensure!(
            entry.items.iter().all(|(b, _)| (*b as usize) < names.len()),
            "an item of an unknown benchmark"
        );
        let item_texts = samples::ItemTexts::from_parts(&entry.items, &names, entry.item_texts)?;
        Ok(Decontaminator {
            backend,
            benchmarks: entry.benchmarks,
            exact: ExactIndex::from_parts(entry.exact, n)?,
            ngram: NgramIndex::from_parts(entry.ngram, n)?,
            items: entry.items,
            item_texts,
            min_matches: cfg.min_matches.min(u32::MAX as usize) as u32,
            build_time: start.elapsed(),
            cache_use: CacheUse::Off,
        })
    }

    /// Builds both tiers over already loaded items.
    pub fn from_items(
        cfg: &DecontamConfig,
        benchmarks: Vec<LoadedBenchmark>,
        items: Vec<BenchmarkItem>,
        backend: Arc<dyn Backend>,
        start: Instant,
    ) -> Result<Decontaminator> {
        validate(cfg)?;
        let (exact, ngram) = rayon::join(
            || ExactIndex::build(&items, cfg.min_exact_len),
            || {
                NgramIndex::build(
                    &items,
                    NgramParams {
                        n: cfg.ngram,
                        stop_groups: cfg.stop_groups,
                        rare_fraction: cfg.rare_fraction,
                    },
                )
            },
        );
        let names: Vec<String> = benchmarks.iter().map(|b| b.name.clone()).collect();
        let item_texts = samples::ItemTexts::new(&items, &names);
        Ok(Decontaminator {
            backend,
            benchmarks,
            item_texts,
            items: items.into_iter().map(|it| (it.benchmark, it.id)).collect(),
            exact: exact?,
            ngram,
            min_matches: cfg.min_matches.min(u32::MAX as usize) as u32,
            build_time: start.elapsed(),
            cache_use: CacheUse::Off,
        })
    }

    /// How the index cache served this build.
    pub fn cache_use(&self) -> &CacheUse {
        &self.cache_use
    }

    /// The loaded benchmarks.
    pub fn benchmarks(&self) -> &[LoadedBenchmark] {
        &self.benchmarks
    }

    /// Time taken to load the benchmarks and build both tiers.
    pub fn build_time(&self) -> Duration {
        self.build_time
    }

    /// The n-gram index (for benchmarks and tests).
    pub fn ngram_index(&self) -> &NgramIndex {
        &self.ngram
    }

    /// The backend that runs the n-gram tier, as it describes itself.
    pub fn backend_description(&self) -> String {
        self.backend.describe()
    }

    /// The benchmark items' texts (for sampled hits).
    pub fn item_texts(&self) -> &samples::ItemTexts {
        &self.item_texts
    }

    /// The exact tier (for benchmarks and tests).
    pub fn exact_index(&self) -> &ExactIndex {
        &self.exact
    }

    /// What decides the verdicts: benchmarks, item counts and the size of
    /// both tiers, without timings, backend or cache, so that equal indexes
    /// give equal summaries (work directories record it).
    pub fn index_summary(&self) -> String {
        let list: Vec<String> = self
            .benchmarks
            .iter()
            .map(|b| format!("{} ({} items)", b.name, b.items))
            .collect();
        let (lit, code) = self.exact.pattern_counts();
        let c = &self.ngram.counts;
        format!(
            "benchmarks: {}\nexact tier: {lit} literal + {code} code strings ({} shorter than {} \
             bytes skipped; search tables {:.1} MB)\nn-gram tier: {} {}-grams from {} problems, min {} matches ({} \
             stop-listed, {} without a rare token)",
            list.join(", "),
            self.exact.skipped_short,
            self.exact.min_len,
            self.exact.memory_usage() as f64 / 1e6,
            self.ngram.len(),
            self.ngram.params.n,
            c.problems,
            self.min_matches,
            c.stopped_ngrams,
            c.common_ngrams,
        )
    }

    /// Benchmarks and item counts loaded, the size of both tiers, and how
    /// long the index took and where it came from.
    pub fn describe(&self) -> String {
        let secs = self.build_time.as_secs_f64();
        let backend = self.backend.describe();
        let how = match &self.cache_use {
            CacheUse::Off => format!("built in {secs:.2}s on {backend}"),
            CacheUse::Loaded(p) => {
                format!(
                    "read from the index cache in {secs:.2}s on {backend} ({})",
                    p.display()
                )
            }
            CacheUse::Stored(p) => {
                format!(
                    "built in {secs:.2}s on {backend}; index cached in {}",
                    p.display()
                )
            }
            CacheUse::Failed(why) => {
                format!("built in {secs:.2}s on {backend}; index cache: {why}")
            }
        };
        format!("{}; {how}", self.index_summary())
    }

    fn bench_name(&self, item: u32) -> &str {
        &self.benchmarks[self.items[item as usize].0 as usize].name
    }

    fn exact_verdict(&self, hits: &[exact::ExactHit]) -> Contamination {
        // Per item, its longest matched string.
        let mut best: Vec<(usize, u32, &exact::ExactHit, u16)> = Vec::new();
        for h in hits {
            let len = self.exact.pattern(h).len();
            for o in self.exact.owners(h) {
                best.push((len, o.item, h, o.field));
            }
        }
        // Longest first; then load order (benchmark, item); then form.
        best.sort_by(|a, b| {
            b.0.cmp(&a.0)
                .then(a.1.cmp(&b.1))
                .then(a.2.form.cmp(&b.2.form))
        });
        let mut seen = std::collections::HashSet::new();
        best.retain(|e| seen.insert(e.1));
        let items_total = best.len();
        let items = best
            .iter()
            .take(MAX_REPORTED_ITEMS)
            .map(|&(len, item, h, field)| ItemMatch {
                benchmark: self.bench_name(item).to_string(),
                id: self.items[item as usize].1.clone(),
                field: Some(self.exact.field_name(field).to_string()),
                form: Some(h.form),
                matched: Some(quote(self.exact.pattern(h), MAX_QUOTED)),
                matched_len: Some(len),
                ngrams: None,
            })
            .collect::<Vec<_>>();
        Contamination {
            benchmark: items[0].benchmark.clone(),
            tier: Tier::Exact,
            items,
            items_total,
        }
    }

    fn ngram_verdict(&self, hits: &[u32]) -> Option<Contamination> {
        let mut counts: Vec<(u32, u32)> = self
            .ngram
            .count_per_item(hits)
            .into_iter()
            .filter(|&(_, c)| c >= self.min_matches)
            .collect();
        if counts.is_empty() {
            return None;
        }
        // Most shared n-grams first, then load order.
        counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let items: Vec<ItemMatch> = counts
            .iter()
            .take(MAX_REPORTED_ITEMS)
            .map(|&(item, c)| ItemMatch {
                benchmark: self.bench_name(item).to_string(),
                id: self.items[item as usize].1.clone(),
                field: None,
                form: None,
                matched: None,
                matched_len: None,
                ngrams: Some(c),
            })
            .collect();
        Some(Contamination {
            benchmark: items[0].benchmark.clone(),
            tier: Tier::Ngram,
            items,
            items_total: counts.len(),
        })
    }

    /// One result per text, in order; `None` = clean. Batches internally for
    /// the backend.
    ///
    /// DETERMINISM: each text's verdict depends only on that text and the
    /// index; sub-batch boundaries and thread count change nothing.
    pub fn check_batch(&self, texts: &[&str]) -> Result<Vec<Option<Contamination>>> {
        let mut out: Vec<Option<Contamination>> = Vec::with_capacity(texts.len());
        let mut start = 0;
        while start < texts.len() {
            let mut end = start;
            let mut bytes = 0;
            while end < texts.len()
                && end - start < SUB_BATCH_TEXTS
                && (end == start || bytes + texts[end].len() <= SUB_BATCH_BYTES)
            {
                bytes += texts[end].len();
                end += 1;
            }
            self.check_sub_batch(&texts[start..end], &mut out)?;
            start = end;
        }
        Ok(out)
    }

    fn check_sub_batch(&self, texts: &[&str], out: &mut Vec<Option<Contamination>>) -> Result<()> {
        let n = self.ngram.params.n;
        let use_ngrams = !self.ngram.is_empty();
        // Tier 1 on every text, and the n-gram queries of the texts it passes.
        //
        // PERF: one pass per text makes both normal forms and the token
        // hashes ([`scan`]); the n-gram queries are only the windows the
        // cache-sized filter passes ([`filter`]), so the membership call sees
        // a few hundred queries per MB instead of one per token. Measured
        // side by side with hyperfine (5 runs, load average 8-10 on 2 cores):
        // `wc -w py160.jsonl` 1.76 s wall / 0.80 s user against
        // `tritter-gpu --threads 1 decontaminate --tokens off --backend cpu
        // --input py160.jsonl ...` 4.41 s / 2.68 s user (168.8 MB of Python,
        // index build included): 2.5x wall, 3.4x CPU (8.6x before). `perf
        // record -g` of the same run: this scan 30%, the filtered n-gram
        // loop 16%, JSON reading about 6%, the gram search 5%.
        let first: Vec<std::result::Result<Contamination, Vec<u64>>> = texts
            .par_iter()
            .map_init(
                || (scan::Scanner::new(), NgramHasher::new(n)),
                |(scanner, hasher), text| {
                    let s = scanner.scan(text);
                    let hits = self.exact.find_forms(&s.literal, &s.code);
                    if !hits.is_empty() {
                        return Ok(self.exact_verdict(&hits));
                    }
                    let mut q = Vec::new();
                    if use_ngrams {
                        hasher.filtered_distinct_into(s, self.ngram.filter(), &mut q);
                    }
                    Err(q)
                },
            )
            .collect();
        // Tier 2: one membership call for the whole sub-batch.
        let mut queries: Vec<u64> = Vec::new();
        let mut spans: Vec<(usize, usize)> = Vec::with_capacity(texts.len());
        for r in &first {
            let s = queries.len();
            if let Err(q) = r {
                queries.extend_from_slice(q);
            }
            spans.push((s, queries.len()));
        }
        let found = if queries.is_empty() {
            Vec::new()
        } else {
            self.backend
                .ngram_membership(&queries, self.ngram.table())?
        };
        ensure!(
            found.len() == queries.len(),
            "backend {} returned {} membership results for {} queries",
            self.backend.describe(),
            found.len(),
            queries.len()
        );
        let verdicts: Vec<Option<Contamination>> = first
            .into_par_iter()
            .zip(spans.into_par_iter())
            .map(|(r, (s, e))| match r {
                Ok(c) => Some(c),
                Err(_) => {
                    let hits: Vec<u32> = found[s..e]
                        .iter()
                        .copied()
                        .filter(|&k| k != NGRAM_MISS)
                        .collect();
                    if hits.is_empty() {
                        None
                    } else {
                        self.ngram_verdict(&hits)
                    }
                }
            })
            .collect();
        out.extend(verdicts);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_names_benchmark_and_tier() {
        let c = Contamination {
            benchmark: "humaneval".into(),
            tier: Tier::Ngram,
            items: vec![],
            items_total: 0,
        };
        assert_eq!(c.reason(), "decontam_humaneval_ngram");
    }

    /// The filtered n-gram queries hit exactly the table entries the full
    /// query set hits, on the benchmark texts themselves (every one a hit),
    /// re-indented inside real files, and on real files of this machine.
    #[test]
    fn filtered_ngram_queries_hit_what_all_queries_hit() {
        let Some(dir) = benchmarks::default_benchmark_dir() else {
            eprintln!(
                "filtered_ngram_queries_hit_what_all_queries_hit: skipped (no benchmark dir)"
            );
            return;
        };
        let cfg = DecontamConfig {
            benchmark_dir: Some(dir),
            ..DecontamConfig::default()
        };
        let (_, items) = load::load_planned(&cfg, &load::plan(&cfg).unwrap()).unwrap();
        let idx = NgramIndex::build(
            &items,
            NgramParams {
                n: cfg.ngram,
                stop_groups: cfg.stop_groups,
                rare_fraction: cfg.rare_fraction,
            },
        );
        let host = std::fs::read_to_string("/usr/lib/python3.11/textwrap.py").unwrap_or_default();
        let mut texts: Vec<String> = Vec::new();
        for it in items.iter().step_by(7) {
            for t in &it.ngram_texts {
                texts.push(t.clone());
                let re: String = t.lines().map(|l| format!("\t{l}  # x\n")).collect();
                texts.push(format!("{host}\n{re}\n{host}"));
            }
        }
        if let Ok(rd) = std::fs::read_dir("/usr/lib/python3.11") {
            let mut v: Vec<_> = rd.flatten().map(|e| e.path()).collect();
            v.sort();
            for p in v.into_iter().filter(|p| p.is_file()).take(200) {
                texts.push(String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned());
            }
        }
        let lookup = |q: &[u64]| -> Vec<u32> {
            q.iter()
                .map(|&h| crate::backends::ops::ngram_lookup(h, idx.table().keys()))
                .filter(|&k| k != NGRAM_MISS)
                .collect()
        };
        let mut h = NgramHasher::new(cfg.ngram);
        let mut sc = scan::Scanner::new();
        let (mut with_hits, mut queries_all, mut queries_kept) = (0, 0, 0);
        for t in &texts {
            let mut all = Vec::new();
            h.distinct_into(t, &mut all);
            let mut kept = Vec::new();
            h.filtered_distinct_into(sc.scan(t), idx.filter(), &mut kept);
            let want = lookup(&all);
            assert_eq!(lookup(&kept), want);
            with_hits += usize::from(!want.is_empty());
            queries_all += all.len();
            queries_kept += kept.len();
        }
        assert!(
            with_hits > texts.len() / 3,
            "{with_hits} of {} texts hit",
            texts.len()
        );
        // The filter is worth having: most queries are gone.
        assert!(
            queries_kept * 5 < queries_all,
            "{queries_kept} of {queries_all} queries kept"
        );
    }

    #[test]
    fn quotes_are_cut_on_char_boundaries() {
        assert_eq!(quote(b"abc", 5), "abc");
        assert_eq!(quote("ééé".as_bytes(), 3), "é...");
    }
}
