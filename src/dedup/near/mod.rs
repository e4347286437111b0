//! Near-duplicate removal with MinHash LSH and verified star clusters
//! (docs/near-dedup.md).
//!
//! Exact dedup removes byte-identical files; this stage removes files that are
//! *almost* the same: copies with renamed identifiers, reformatting, changed
//! comments or a minority of lines edited. Similarity is the Jaccard index of
//! the files' sets of word 5-grams, `J(A, B) = |A ∩ B| / |A ∪ B|`, and a file
//! is removed when a file preferred over it (allowed license, more stars,
//! stable tie-break) is at least `--jaccard` similar (0.75 by default, inside
//! the 0.7-0.8 the data plan asks for; BigCode used 0.7 for The Stack v2).
//!
//! ## Steps
//! 1. **Shingles** ([`shingle`]): lowercase, split on non-word characters,
//!    word `--ngram`-grams (5), each hashed to a well-mixed u32, as a set.
//! 2. **Signatures** ([`signature`]): MinHash (Broder 1997) with
//!    `--num-perm` (256) permutations `h_i(x) = a_i x + b_i mod 2^32`, `a_i`
//!    odd, from splitmix64 of `--minhash-seed`; 32-bit arithmetic only so
//!    that CUDA and WGSL reproduce it bit for bit
//!    ([`crate::backends::ops`]). This and the band hashes run on the
//!    selected [`crate::backends::Backend`].
//! 3. **Bands** ([`params`]): `b` bands of `r` rows, from `--bands/--rows`
//!    or chosen for the threshold from the S-curve `1 - (1 - s^r)^b`
//!    (Leskovec, Rajaraman, Ullman, *Mining of Massive Datasets*, §3.4.2).
//! 4. **Candidates** ([`lsh`], [`spill`]): one 12-byte record (band hash,
//!    key) per band and document, sorted (spilling sorted runs to disk past
//!    the memory budget and merging them), each bucket linked to its most
//!    preferred member.
//! 5. **Verification** ([`verify`]): each distinct candidate edge is checked
//!    on the signatures before union-find may join its ends.
//! 6. **Clusters** ([`cluster`]): union-find components, then greedy stars:
//!    the best unassigned member is kept and removes every member verified
//!    similar *to it* (exact Jaccard of the shingle sets by default, the
//!    signature estimate with `--verify signature`), so weak chains never
//!    merge unrelated files.
//! 7. **Report** ([`report`]): clusters, removals, size histogram, the ten
//!    largest clusters with sample paths, parameters including seeds and the
//!    S-curve, eight sampled clusters with their texts (for the HTML page);
//!    optionally one JSON line per cluster (`--clusters`).
//!
//! ## Scale: The Stack v2 Python (57M files) on one 24 GB machine
//! With the defaults (256 permutations, 28 bands x 9 rows) and
//! `--memory 16GiB`, which is split half for signatures, a quarter for band
//! records and a quarter for candidate edges:
//!
//! | structure | arithmetic | size | where |
//! |---|---|---|---|
//! | band records | 57M x 28 bands x 12 B | 19.2 GB | 5 sorted runs of 4 GiB on disk, one 5-way merge |
//! | signatures | 57M x 256 x 4 B | 58.4 GB | over the 8 GiB share: a file read by `pread` |
//! | preferences | 57M x 40 B | 2.3 GB | memory |
//! | shingle counts | 57M x 4 B | 0.23 GB | memory |
//! | union-find | 57M x (4 B parent + 4 B size) | 0.46 GB | memory |
//! | candidate edges | 8 B per distinct (head, member) pair | ~0.8 GB at 100M | memory, spills past 4 GiB |
//! | components | 8 B per document in a component | <= 0.46 GB | memory |
//!
//! Peak resident memory is therefore about 16 GiB of budget plus 3.5 GB of
//! per-document arrays, under 24 GB; the scratch directory needs about 80 GB
//! (signatures plus runs). Keys are u32, so one run handles up to
//! 4,294,967,295 documents. Exact verification re-reads the input once per
//! chunk of components whose shingle sets fit in half the budget.
//!
//! ## Two drivers
//! `curate`, `merge` and `dedup` run the steps as partitioned, resumable
//! tasks ([`crate::pipeline::steps`], docs/global-phase.md): signatures and
//! band hashes in phase 1 per input shard ([`shard_keys`]; for `dedup`, per
//! byte range of its JSONL, [`crate::pipeline::dedup_shard`]), then LSH per
//! band-hash range, verification per edge bucket, components, and stars per
//! component, calling the functions of [`lsh`], [`verify`] and [`cluster`].
//! [`find_near_duplicates`] runs every step in one process over a
//! [`NearDocSource`]; it is kept as the reference the steps are tested
//! against (`dedup --single-process`, `tests/dedup_steps.rs`) and for the
//! library's in-memory sources.
//!
//! DETERMINISM: the removed set and the clusters depend only on the documents'
//! texts and preferences and on the flags, never on thread count, batch size,
//! backend, memory budget (spilling) or input order (see each step's notes).
//! The one exception is a tie of every preference field but the record id,
//! i.e. two copies with the same repository and path, where the input
//! position decides.

pub mod cluster;
pub mod lsh;
pub mod params;
pub mod report;
pub mod shard_keys;
pub mod shingle;
pub mod signature;
pub mod spill;
pub mod star_index;
pub mod store;
pub mod verify;

pub use params::LshParams;
pub use report::{Cluster, ClusterMember, DocRef, NearDedupReport};
pub use verify::VerifyMode;

use crate::backends::{Backend, BandLayout, Permutations};
use crate::rank::Preference;
use anyhow::{bail, ensure, Context, Result};
use rayon::prelude::*;
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// The default `--minhash-seed`, recorded in every report.
pub const DEFAULT_SEED: u64 = 42;

/// Near-dedup settings (see [`crate::cli::near_flags::NearDedupFlags`]).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NearDedupConfig {
    /// Jaccard similarity at or above which a file is a near-duplicate.
    pub jaccard: f64,
    /// Words per shingle.
    pub ngram: usize,
    /// MinHash permutations.
    pub num_perm: usize,
    /// LSH bands and rows; chosen from `jaccard` when both are `None`.
    pub bands: Option<u32>,
    pub rows: Option<u32>,
    pub verify: VerifyMode,
    /// Budget for signatures, band records and edges before spilling.
    pub memory_bytes: u64,
    pub seed: u64,
    /// Documents per backend batch (at most).
    pub batch_docs: usize,
    /// Text bytes per backend batch (about).
    pub batch_bytes: usize,
    /// Collect path and repository of every cluster member (for `--clusters`),
    /// not only of the report's samples.
    pub cluster_paths: bool,
}

impl Default for NearDedupConfig {
    fn default() -> Self {
        NearDedupConfig {
            jaccard: 0.75,
            ngram: 5,
            num_perm: 256,
            bands: None,
            rows: None,
            verify: VerifyMode::Exact,
            memory_bytes: 2 << 30,
            seed: DEFAULT_SEED,
            batch_docs: 8192,
            batch_bytes: 16 << 20,
            cluster_paths: false,
        }
    }
}

impl NearDedupConfig {
    /// Checks the values and resolves bands and rows.
    pub fn layout(&self) -> Result<LshParams> {
        ensure!(
            self.jaccard > 0.0 && self.jaccard <= 1.0,
            "--jaccard must be in (0, 1], got {}",
            self.jaccard
        );
        ensure!(
            (1..=64).contains(&self.ngram),
            "--ngram must be between 1 and 64, got {}",
            self.ngram
        );
        ensure!(
            (1..=4096).contains(&self.num_perm),
            "--num-perm must be between 1 and 4096, got {}",
            self.num_perm
        );
        ensure!(
            self.batch_docs >= 1,
            "batch size must be at least 1 document"
        );
        let n = self.num_perm as u32;
        let p = match (self.bands, self.rows) {
            (None, None) => LshParams::optimal(self.jaccard, self.num_perm),
            (Some(b), Some(r)) => LshParams { bands: b, rows: r },
            (Some(b), None) => LshParams {
                bands: b,
                rows: n.checked_div(b).unwrap_or(0),
            },
            (None, Some(r)) => LshParams {
                bands: n.checked_div(r).unwrap_or(0),
                rows: r,
            },
        };
        ensure!(
            p.bands >= 1 && p.rows >= 1,
            "--bands and --rows must be at least 1 (got {} bands x {} rows for {} permutations)",
            p.bands,
            p.rows,
            self.num_perm
        );
        ensure!(
            p.bands as u64 * p.rows as u64 <= n as u64,
            "--bands {} x --rows {} = {} exceeds --num-perm {}",
            p.bands,
            p.rows,
            p.bands as u64 * p.rows as u64,
            self.num_perm
        );
        Ok(p)
    }
}

/// One document, as a source hands it over.
pub struct NearDoc<'a> {
    /// Dense `0..n` in iteration order.
    pub key: u64,
    pub pref: Preference,
    pub text: &'a str,
    pub path: &'a str,
    pub repo: &'a str,
}

/// Documents to deduplicate. `for_each` may be called more than once and
/// must yield the same documents in the same order each time.
pub trait NearDocSource {
    fn for_each(&mut self, f: &mut dyn FnMut(NearDoc<'_>) -> Result<()>) -> Result<()>;

    /// Like [`NearDocSource::for_each`], but only the documents whose keys
    /// are in `keys` (ascending) need to be handed to `f`, in key order; used
    /// by the passes after the first, which need a minority of the
    /// documents. A source that can skip the others cheaply (`dedup`'s JSONL
    /// reader does not parse them) overrides it.
    fn for_each_of(
        &mut self,
        keys: &[u64],
        f: &mut dyn FnMut(NearDoc<'_>) -> Result<()>,
    ) -> Result<()> {
        self.for_each(&mut |doc| {
            if keys.binary_search(&doc.key).is_ok() {
                f(doc)
            } else {
                Ok(())
            }
        })
    }
}

/// Result of [`find_near_duplicates`].
#[derive(Debug)]
pub struct NearDedupOutcome {
    /// Keys of removed documents, ascending.
    pub removed: Vec<u64>,
    /// Clusters of two or more documents, in preference order of their kept
    /// documents.
    pub clusters: Vec<Cluster>,
    pub report: NearDedupReport,
    /// Path and repository of documents named in the report's samples, or of
    /// every cluster member with [`NearDedupConfig::cluster_paths`].
    pub paths: HashMap<u64, DocRef>,
    /// Wall time per phase (not part of the report: it would make reports of
    /// identical runs differ).
    pub timings: Vec<(&'static str, Duration)>,
}

impl NearDedupOutcome {
    /// Writes the `--clusters` file (see [`report::write_clusters_jsonl`]);
    /// `lines` maps keys to input line numbers when the caller has them.
    pub fn write_clusters_jsonl(&self, target: &Path, lines: Option<&[u64]>) -> Result<()> {
        report::write_clusters_jsonl(
            target,
            &self.clusters,
            &self.paths,
            self.report.params.verify,
            lines,
        )
    }
}

/// Finds near-duplicates among `source`'s documents. Scratch files (spilled
/// runs, signatures) live in a fresh directory under `scratch_dir` that is
/// removed on return.
pub fn find_near_duplicates(
    source: &mut dyn NearDocSource,
    cfg: &NearDedupConfig,
    backend: &dyn Backend,
    scratch_dir: &Path,
) -> Result<NearDedupOutcome> {
    let params = cfg.layout()?;
    let layout = BandLayout {
        bands: params.bands,
        rows: params.rows,
    };
    let perms = Permutations::new(cfg.num_perm, cfg.seed);
    let thresholds = verify::Thresholds::new(cfg.jaccard, cfg.num_perm);
    crate::pipeline::cleanup::create_dir_all(scratch_dir)
        .with_context(|| format!("cannot create scratch directory {}", scratch_dir.display()))?;
    let scratch = crate::pipeline::cleanup::ScratchDir::create(scratch_dir)
        .with_context(|| format!("cannot create scratch files in {}", scratch_dir.display()))?;
    let mut timings: Vec<(&'static str, Duration)> = Vec::new();

    // Pass 1: signatures and band records.
    let store = store::SignatureStore::new(cfg.num_perm, cfg.memory_bytes / 2, scratch.path());
    let bands = spill::ExternalSorter::new(cfg.memory_bytes / 4, false, scratch.path(), "bands");
    let p1 = signature::compute(source, cfg, backend, &perms, layout, store, bands)?;
    timings.push(("shingles+signatures", p1.timings.wall));
    timings.push(("  shingling (worker)", p1.timings.shingling));
    timings.push(("  minhash_signatures", p1.timings.signatures));
    timings.push(("  band_hashes", p1.timings.band_hashes));
    let n = p1.prefs.len();
    ensure!(
        n < u32::MAX as usize,
        "near dedup handles at most 4,294,967,294 documents per run, got {n}"
    );

    // Candidates, verified edges, components.
    let t = Instant::now();
    let linked = link_components(
        &p1.prefs,
        &p1.store,
        p1.bands,
        &thresholds,
        cfg.memory_bytes / 4,
        scratch.path(),
    )?;
    let comps = &linked.components;
    timings.push(("lsh+verify+union-find", t.elapsed()));

    // Stars inside components.
    let t = Instant::now();
    let stars: Vec<Vec<cluster::Star>> = match cfg.verify {
        VerifyMode::Signature => signature_stars(comps, &p1.store, &thresholds)?,
        VerifyMode::Exact => exact_stars(source, cfg, comps, &p1.shingles, &thresholds)?,
    };
    timings.push(("clusters", t.elapsed()));

    let mut clusters: Vec<Cluster> = Vec::new();
    for (c, ss) in comps.iter().zip(&stars) {
        for s in ss {
            clusters.push(Cluster {
                kept: c[s.centre] as u64,
                removed: s
                    .members
                    .iter()
                    .map(|&(m, sim)| ClusterMember {
                        key: c[m] as u64,
                        similarity: sim,
                    })
                    .collect(),
            });
        }
    }
    let mut removed: Vec<u64> = clusters
        .iter()
        .flat_map(|c| c.removed.iter().map(|m| m.key))
        .collect();
    removed.sort_unstable();

    // Paths of the samples (or of every member), and bytes removed.
    let t = Instant::now();
    let samples = report::sample_keys(&clusters, cfg.cluster_paths);
    let mut sample_texts = report::SampleTexts::new(&clusters);
    let (paths, bytes_removed) = if clusters.is_empty() {
        (HashMap::new(), 0)
    } else {
        collect_paths(source, &samples, &removed, n, &mut sample_texts)?
    };
    timings.push(("paths", t.elapsed()));

    let largest_component = comps.iter().map(|c| c.len()).max().unwrap_or(0) as u64;
    let report = report::build(report::ReportInput {
        cfg,
        params,
        thresholds: &thresholds,
        docs: n as u64,
        text_bytes: p1.text_bytes,
        short_docs: p1.short_docs,
        empty_docs: p1.empty_docs,
        lsh: linked.lsh,
        unique_edges: linked.unique_edges,
        verified_edges: linked.verified_edges,
        components: comps.len() as u64,
        largest_component,
        clusters: &clusters,
        bytes_removed,
        paths: &paths,
        signatures_on_disk: p1.store.on_disk(),
        band_spill: linked.band_spill,
        edge_spill: linked.edge_spill,
        sample_texts,
    });
    Ok(NearDedupOutcome {
        removed,
        clusters,
        report,
        paths,
        timings,
    })
}

/// Candidate edges, verified, joined into components.
pub struct Linked {
    /// Components of two or more documents (see [`cluster::UnionFind::components`]).
    pub components: Vec<Vec<u32>>,
    pub lsh: lsh::LshStats,
    pub unique_edges: u64,
    pub verified_edges: u64,
    pub band_spill: spill::SpillStats,
    pub edge_spill: spill::SpillStats,
}

/// Sorts the band records, links each bucket to its head, verifies each
/// distinct edge on the signatures and unions those that pass.
pub fn link_components(
    prefs: &[Preference],
    store: &store::SignatureStore,
    bands: spill::ExternalSorter<lsh::BandRecord>,
    thresholds: &verify::Thresholds,
    edge_memory: u64,
    scratch: &Path,
) -> Result<Linked> {
    let n = prefs.len();
    let num_perm = store.num_perm();
    let mut band_stream = bands.finish()?;
    let band_spill = band_stream.stats();
    let mut edge_sorter = spill::ExternalSorter::<u64>::new(edge_memory, true, scratch, "edges");
    let lsh_stats = lsh::candidate_edges(&mut band_stream, prefs, &mut edge_sorter)?;
    drop(band_stream);
    let mut edges = edge_sorter.finish()?;
    let edge_spill = edges.stats();

    let mut uf = cluster::UnionFind::new(n);
    let mut unique_edges = 0u64;
    let mut verified_edges = 0u64;
    let mut chunk: Vec<u64> = Vec::with_capacity(1 << 16);
    loop {
        chunk.clear();
        while chunk.len() < chunk.capacity() {
            match edges.next()? {
                Some(e) => chunk.push(e),
                None => break,
            }
        }
        if chunk.is_empty() {
            break;
        }
        unique_edges += chunk.len() as u64;
        // PERF: verification is independent per edge, so it runs in
        // parallel; only the unions are sequential (and order-free).
        let ok: Vec<bool> = chunk
            .par_iter()
            .with_min_len(256)
            .map_init(
                || (vec![0u32; num_perm], vec![0u32; num_perm]),
                |(a, b), &e| -> Result<bool> {
                    let (u, v) = lsh::unpack_edge(e);
                    let sa = sig(store, u, a)?;
                    let sb = sig(store, v, b)?;
                    Ok(thresholds.edge_passes(sa, sb))
                },
            )
            .collect::<Result<_>>()?;
        for (&e, &pass) in chunk.iter().zip(&ok) {
            if pass {
                verified_edges += 1;
                let (u, v) = lsh::unpack_edge(e);
                uf.union(u, v);
            }
        }
    }
    drop(edges);
    Ok(Linked {
        components: uf.components(prefs),
        lsh: lsh_stats,
        unique_edges,
        verified_edges,
        band_spill,
        edge_spill,
    })
}

/// Stars of every component, verified on signatures.
pub fn signature_stars(
    comps: &[Vec<u32>],
    store: &store::SignatureStore,
    thresholds: &verify::Thresholds,
) -> Result<Vec<Vec<cluster::Star>>> {
    let np = store.num_perm();
    comps
        .par_iter()
        .map(|c| -> Result<Vec<cluster::Star>> {
            let mut sigs = vec![0u32; c.len() * np];
            for (i, &k) in c.iter().enumerate() {
                store.get(k, &mut sigs[i * np..(i + 1) * np])?;
            }
            Ok(star_index::signature_stars(&sigs, np, thresholds))
        })
        .collect()
}

/// The signature of `key`, borrowed from memory or read into `buf`.
fn sig<'a>(store: &'a store::SignatureStore, key: u32, buf: &'a mut [u32]) -> Result<&'a [u32]> {
    if let Some(s) = store.in_memory(key) {
        return Ok(s);
    }
    store.get(key, buf)?;
    Ok(buf)
}

/// Stars with exact Jaccard: re-reads the source once per chunk of
/// components whose shingle sets fit in half the memory budget.
fn exact_stars(
    source: &mut dyn NearDocSource,
    cfg: &NearDedupConfig,
    comps: &[Vec<u32>],
    shingle_counts: &[u32],
    thresholds: &verify::Thresholds,
) -> Result<Vec<Vec<cluster::Star>>> {
    let budget = (cfg.memory_bytes / 2).max(1);
    let mut out: Vec<Vec<cluster::Star>> = Vec::with_capacity(comps.len());
    let mut start = 0;
    while start < comps.len() {
        // Take components while their shingle sets fit (at least one).
        let mut end = start;
        let mut bytes = 0u64;
        while end < comps.len() {
            let b: u64 = comps[end]
                .iter()
                .map(|&k| shingle_counts[k as usize] as u64 * 4 + 32)
                .sum();
            if end > start && bytes + b > budget {
                break;
            }
            bytes += b;
            end += 1;
        }
        let chunk = &comps[start..end];
        let mut slot: HashMap<u32, usize> = HashMap::new();
        for c in chunk {
            for &k in c {
                let next = slot.len();
                slot.insert(k, next);
            }
        }
        let mut keys: Vec<u64> = slot.keys().map(|&k| k as u64).collect();
        keys.sort_unstable();
        let mut sets: Vec<Vec<u32>> = vec![Vec::new(); slot.len()];
        let mut texts: Vec<(usize, String)> = Vec::new();
        let mut text_bytes = 0usize;
        let ngram = cfg.ngram;
        let flush = |texts: &mut Vec<(usize, String)>, sets: &mut Vec<Vec<u32>>| {
            let done: Vec<(usize, Vec<u32>)> = texts
                .par_iter()
                .map(|(s, t)| (*s, shingle::shingle_set(t, ngram)))
                .collect();
            for (s, set) in done {
                sets[s] = set;
            }
            texts.clear();
        };
        source.for_each_of(&keys, &mut |doc| {
            if let Ok(k) = u32::try_from(doc.key) {
                if let Some(&s) = slot.get(&k) {
                    texts.push((s, doc.text.to_string()));
                    text_bytes += doc.text.len();
                    if text_bytes >= cfg.batch_bytes {
                        flush(&mut texts, &mut sets);
                        text_bytes = 0;
                    }
                }
            }
            Ok(())
        })?;
        flush(&mut texts, &mut sets);
        for &k in chunk.iter().flatten() {
            let s = slot[&k];
            if sets[s].len() != shingle_counts[k as usize] as usize {
                bail!(
                    "document {k} changed between passes ({} shingles, then {}); the input must not change during a run",
                    shingle_counts[k as usize],
                    sets[s].len()
                );
            }
        }
        let part: Vec<Vec<cluster::Star>> = chunk
            .par_iter()
            .map(|c| {
                let members: Vec<&[u32]> = c.iter().map(|k| sets[slot[k]].as_slice()).collect();
                star_index::exact_stars(&members, thresholds)
            })
            .collect();
        out.extend(part);
        start = end;
    }
    Ok(out)
}

/// One pass collecting the paths of `wanted` keys, the text bytes of
/// `removed` keys and the texts of the report's sampled clusters.
fn collect_paths(
    source: &mut dyn NearDocSource,
    wanted: &[u64],
    removed: &[u64],
    n: usize,
    sample_texts: &mut report::SampleTexts,
) -> Result<(HashMap<u64, DocRef>, u64)> {
    let mut paths = HashMap::with_capacity(wanted.len());
    let mut bytes = 0u64;
    let mut seen = 0usize;
    let mut keys: Vec<u64> = wanted
        .iter()
        .chain(removed)
        .chain(sample_texts.wanted())
        .copied()
        .collect();
    keys.sort_unstable();
    keys.dedup();
    source.for_each_of(&keys, &mut |doc| {
        seen += 1;
        if removed.binary_search(&doc.key).is_ok() {
            bytes += doc.text.len() as u64;
        }
        sample_texts.offer(doc.key, doc.text);
        if wanted.binary_search(&doc.key).is_ok() {
            paths.insert(
                doc.key,
                DocRef {
                    path: doc.path.to_string(),
                    repo: doc.repo.to_string(),
                },
            );
        }
        Ok(())
    })?;
    ensure!(
        seen == keys.len() && keys.last().is_none_or(|&k| k < n as u64),
        "the input changed between passes ({n} documents, then {seen} of {} wanted)",
        keys.len()
    );
    Ok((paths, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backends::cpu::CpuBackend;
    use crate::record::RecordId;

    /// Documents held in memory.
    struct VecSource {
        docs: Vec<(String, Preference, String)>,
        passes: usize,
    }

    impl NearDocSource for VecSource {
        fn for_each(&mut self, f: &mut dyn FnMut(NearDoc<'_>) -> Result<()>) -> Result<()> {
            self.passes += 1;
            for (k, (text, pref, path)) in self.docs.iter().enumerate() {
                f(NearDoc {
                    key: k as u64,
                    pref: *pref,
                    text,
                    path,
                    repo: "o/r",
                })?;
            }
            Ok(())
        }
    }

    fn words(seed: u64, n: usize) -> Vec<String> {
        let mut s = seed;
        (0..n)
            .map(|_| format!("w{}", crate::backends::ops::splitmix64(&mut s) % 5000))
            .collect()
    }

    fn pref_of(path: &str, stars: u64) -> Preference {
        Preference {
            license_allowed: true,
            stars,
            tiebreak: crate::rank::repo_path_hash("o/r", path),
            id: RecordId::default(),
        }
    }

    /// 30 base documents of 400 words; each has a copy with `edit` words
    /// replaced, plus 10 unrelated documents, 3 empty and 2 short ones.
    fn corpus(edit: usize) -> Vec<(String, Preference, String)> {
        let mut docs = Vec::new();
        for b in 0..30u64 {
            let base = words(b, 400);
            let mut copy = base.clone();
            for (i, w) in words(1000 + b, edit).into_iter().enumerate() {
                copy[(i * 37) % 400] = format!("x{w}");
            }
            let p = format!("base{b}.py");
            docs.push((base.join(" "), pref_of(&p, b % 3), p));
            let p = format!("copy{b}.py");
            docs.push((copy.join("\n"), pref_of(&p, 0), p));
        }
        for u in 0..10u64 {
            let p = format!("other{u}.py");
            docs.push((words(5000 + u, 300).join(" "), pref_of(&p, 0), p));
        }
        for e in 0..3 {
            let p = format!("empty{e}.py");
            docs.push(("{ } ( ) ;".to_string(), pref_of(&p, 0), p));
        }
        for e in 0..2 {
            let p = format!("short{e}.py");
            docs.push(("x = 1".to_string(), pref_of(&p, 0), p));
        }
        docs
    }

    fn run(docs: Vec<(String, Preference, String)>, cfg: &NearDedupConfig) -> NearDedupOutcome {
        let dir = tempfile::tempdir().unwrap();
        let mut src = VecSource { docs, passes: 0 };
        let out = find_near_duplicates(&mut src, cfg, &CpuBackend::new(), dir.path()).unwrap();
        // The scratch directory is cleaned up.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        out
    }

    fn removed_paths(docs: &[(String, Preference, String)], out: &NearDedupOutcome) -> Vec<String> {
        let mut v: Vec<String> = out
            .removed
            .iter()
            .map(|&k| docs[k as usize].2.clone())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn light_edits_are_removed_and_unrelated_files_kept() {
        // 20 of 400 words replaced: Jaccard of 5-gram sets about 0.6-0.8.
        let docs = corpus(8);
        let out = run(docs.clone(), &NearDedupConfig::default());
        let removed = removed_paths(&docs, &out);
        // Every copy (fewer stars than its base, or losing the hash
        // tie-break) or its base is removed, one per pair, and nothing else
        // but the identical short file.
        assert_eq!(out.clusters.len(), 31, "{:#?}", out.report);
        assert_eq!(removed.len(), 31);
        for c in &out.clusters {
            assert_eq!(c.size(), 2);
            let kept = &docs[c.kept as usize].2;
            let gone = &docs[c.removed[0].key as usize].2;
            if kept.starts_with("short") {
                assert!(gone.starts_with("short"));
                assert_eq!(c.removed[0].similarity, 1.0);
            } else {
                assert_eq!(kept[4..], gone[4..], "{kept} vs {gone}");
            }
        }
        assert_eq!(out.report.docs, 75);
        assert_eq!(out.report.docs_without_shingles, 3);
        assert_eq!(out.report.docs_short, 2);
        assert_eq!(out.report.files_removed, 31);
        assert!(out.report.bytes_removed > 0);
        assert_eq!(out.report.largest.len(), 10);
        assert!(out.report.largest[0].kept.is_some());
    }

    #[test]
    fn heavy_edits_are_not_duplicates() {
        // 200 of 400 words replaced: Jaccard far below 0.75.
        let docs = corpus(200);
        let out = run(docs.clone(), &NearDedupConfig::default());
        // Only one of the two identical short files goes (which one: the
        // repo/path hash decides).
        let removed = removed_paths(&docs, &out);
        assert_eq!(removed.len(), 1, "{removed:?}");
        assert!(removed[0].starts_with("short"));
    }

    #[test]
    fn spilling_batches_and_order_do_not_change_the_result() {
        let docs = corpus(10);
        let base = run(docs.clone(), &NearDedupConfig::default());
        let expect = removed_paths(&docs, &base);

        let tiny = NearDedupConfig {
            memory_bytes: 64 << 10,
            batch_docs: 7,
            ..NearDedupConfig::default()
        };
        let spilled = run(docs.clone(), &tiny);
        assert!(
            spilled.report.spill.band_runs > 1,
            "{:?}",
            spilled.report.spill
        );
        assert!(spilled.report.spill.signatures_on_disk);
        assert_eq!(removed_paths(&docs, &spilled), expect);
        assert_eq!(spilled.clusters, base.clusters);

        // One document per backend batch. (Thread counts are compared by the
        // integration tests through RAYON_NUM_THREADS: the pass-1 worker
        // thread uses the global pool, whatever pool the caller is in.)
        let one_per_batch = run(
            docs.clone(),
            &NearDedupConfig {
                batch_docs: 1,
                ..NearDedupConfig::default()
            },
        );
        assert_eq!(one_per_batch.clusters, base.clusters);
        assert_eq!(one_per_batch.report, base.report);

        let mut shuffled = docs.clone();
        let mut s = 5u64;
        for i in (1..shuffled.len()).rev() {
            let j = (crate::backends::ops::splitmix64(&mut s) % (i as u64 + 1)) as usize;
            shuffled.swap(i, j);
        }
        let sh = run(shuffled.clone(), &NearDedupConfig::default());
        assert_eq!(removed_paths(&shuffled, &sh), expect);
    }

    #[test]
    fn exact_verification_agrees_and_reports_exact_similarity() {
        let docs = corpus(8);
        let cfg = NearDedupConfig {
            verify: VerifyMode::Exact,
            ..NearDedupConfig::default()
        };
        let out = run(docs.clone(), &cfg);
        for c in &out.clusters {
            let a = shingle::shingle_set(&docs[c.kept as usize].0, 5);
            for m in &c.removed {
                let b = shingle::shingle_set(&docs[m.key as usize].0, 5);
                assert_eq!(m.similarity, verify::exact_jaccard(&a, &b));
                assert!(m.similarity >= 0.75);
            }
        }
        // Exact mode in tiny chunks (many passes) gives the same clusters.
        let tiny = NearDedupConfig {
            memory_bytes: 64 << 10,
            ..cfg.clone()
        };
        assert_eq!(run(docs, &tiny).clusters, out.clusters);
    }

    #[test]
    fn report_samples_clusters_with_texts_and_exact_jaccard() {
        let docs = corpus(8);
        let cfg = NearDedupConfig {
            verify: VerifyMode::Signature,
            ..NearDedupConfig::default()
        };
        let out = run(docs.clone(), &cfg);
        let samples = &out.report.samples;
        assert_eq!(samples.len(), report::SAMPLED_CLUSTERS);
        for s in samples {
            let kept = &docs[s.kept.key as usize];
            let removed = &docs[s.removed.key as usize];
            assert_eq!(s.kept.path, kept.2);
            assert_eq!(s.removed.path, removed.2);
            assert!(kept.0.starts_with(&s.kept.text));
            assert_eq!(s.kept.text_bytes, kept.0.len() as u64);
            assert_eq!(s.kept.truncated, kept.0.len() > report::SAMPLE_TEXT_BYTES);
            assert!(s.kept.text.len() <= report::SAMPLE_TEXT_BYTES);
            let exact = verify::exact_jaccard(
                &shingle::shingle_set(&kept.0, 5),
                &shingle::shingle_set(&removed.0, 5),
            );
            assert_eq!(s.exact_jaccard, exact);
            // The cluster's own similarity is the signature estimate here.
            let c = out.clusters.iter().find(|c| c.kept == s.kept.key).unwrap();
            let m = c.removed.iter().find(|m| m.key == s.removed.key).unwrap();
            assert_eq!(s.similarity, m.similarity);
        }
        // Deterministic: the same samples from a run in tiny batches.
        let again = run(
            docs,
            &NearDedupConfig {
                batch_docs: 3,
                ..cfg
            },
        );
        assert_eq!(&again.report.samples, samples);
    }

    #[test]
    fn keys_must_be_dense() {
        struct Bad;
        impl NearDocSource for Bad {
            fn for_each(&mut self, f: &mut dyn FnMut(NearDoc<'_>) -> Result<()>) -> Result<()> {
                for key in [0u64, 2] {
                    f(NearDoc {
                        key,
                        pref: pref_of("a", 0),
                        text: "a b c d e f",
                        path: "a",
                        repo: "r",
                    })?;
                }
                Ok(())
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let e = find_near_duplicates(
            &mut Bad,
            &NearDedupConfig::default(),
            &CpuBackend::new(),
            dir.path(),
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("dense"), "{e:#}");
    }
}
