//! What near dedup found: clusters, the stats report and the `--clusters`
//! file.
//!
//! The report goes into the run's stats file (`near_dedup` key) and holds
//! only values that follow from the input and the flags (no timings, no
//! backend name), so two runs that remove the same files write the same
//! report, whatever their thread count or backend. The spill counters are the
//! one part that follows `--memory`.
//!
//! For the run's HTML page the report also carries a few sampled clusters
//! (`samples`): the kept file beside one removed file, both texts cut to
//! [`SAMPLE_TEXT_BYTES`], with their exact Jaccard similarity computed from
//! the whole texts. They are picked from the clusters alone (the largest two,
//! then clusters spread evenly over the preference order; in each, the
//! removed file least similar to the kept one, the case nearest the
//! threshold), so they are as deterministic as the rest of the report.

use super::lsh::LshStats;
use super::params::{LshParams, SCurvePoint};
use super::spill::SpillStats;
use super::verify::{Thresholds, VerifyMode};
use super::NearDedupConfig;
use crate::output::atomic::AtomicFile;
use anyhow::{Context, Result};
use serde::Serialize;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

/// Kept clusters listed in the report, and removed samples per cluster.
pub const LARGEST_CLUSTERS: usize = 10;
pub const SAMPLES_PER_CLUSTER: usize = 5;
/// Clusters whose texts the report carries, and how much of each text.
pub const SAMPLED_CLUSTERS: usize = 8;
pub const SAMPLE_TEXT_BYTES: usize = 4096;

/// Path and repository of a document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DocRef {
    pub path: String,
    pub repo: String,
}

/// A removed document and its verified similarity to the kept one.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClusterMember {
    pub key: u64,
    pub similarity: f64,
}

/// One kept document and the documents removed for it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Cluster {
    pub kept: u64,
    /// In preference order.
    pub removed: Vec<ClusterMember>,
}

impl Cluster {
    pub fn size(&self) -> usize {
        1 + self.removed.len()
    }
}

/// The parameters of the run, seeds included.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ParamsReport {
    pub jaccard: f64,
    pub ngram: usize,
    pub num_perm: usize,
    pub bands: u32,
    pub rows: u32,
    pub verify: VerifyMode,
    pub minhash_seed: u64,
    /// How the permutations derive from the seed.
    pub permutations: &'static str,
    /// Lowered threshold of candidate edges (see [`super::verify`]).
    pub edge_jaccard: f64,
    pub memory_bytes: u64,
    pub s_curve: Vec<SCurvePoint>,
}

/// A bin of the cluster-size histogram.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SizeBin {
    /// `"2"`, `"3"`, `"4"`, `"5-8"`, `"9-16"`, ...
    pub size: String,
    pub clusters: u64,
}

/// One of the largest clusters.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LargeCluster {
    pub size: u64,
    pub kept: Option<DocRef>,
    pub removed_samples: Vec<DocRef>,
    pub min_similarity: f64,
}

/// One document of a sampled cluster.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SampleDoc {
    pub key: u64,
    pub path: String,
    pub repo: String,
    /// The first [`SAMPLE_TEXT_BYTES`] of the text (cut on a character
    /// boundary).
    pub text: String,
    /// Length of the whole text.
    pub text_bytes: u64,
    pub truncated: bool,
}

/// A sampled cluster: its kept document beside one removed document.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClusterSample {
    pub cluster_size: u64,
    pub kept: SampleDoc,
    pub removed: SampleDoc,
    /// The similarity the cluster was built on (exact, or the signature
    /// estimate with `--verify signature`).
    pub similarity: f64,
    /// Exact Jaccard similarity of the two whole texts' shingle sets.
    pub exact_jaccard: f64,
}

/// Spilling, for the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct SpillReport {
    pub signatures_on_disk: bool,
    pub band_runs: u64,
    pub edge_runs: u64,
    pub bytes_spilled: u64,
}

/// The near-dedup report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NearDedupReport {
    pub params: ParamsReport,
    pub docs: u64,
    pub text_bytes: u64,
    /// Documents with fewer words than `ngram` (one whole-text shingle).
    pub docs_short: u64,
    /// Documents without words, left out of LSH.
    pub docs_without_shingles: u64,
    pub lsh: LshStats,
    /// Distinct candidate edges verified.
    pub candidate_edges: u64,
    /// Edges that passed and joined components.
    pub verified_edges: u64,
    pub components: u64,
    pub largest_component: u64,
    /// Clusters of two or more documents (one kept each).
    pub clusters: u64,
    pub files_removed: u64,
    pub bytes_removed: u64,
    pub size_histogram: Vec<SizeBin>,
    pub largest: Vec<LargeCluster>,
    pub spill: SpillReport,
    /// A few clusters with the texts of their kept and one removed document.
    pub samples: Vec<ClusterSample>,
}

/// Everything [`build`] needs.
pub struct ReportInput<'a> {
    pub cfg: &'a NearDedupConfig,
    pub params: LshParams,
    pub thresholds: &'a Thresholds,
    pub docs: u64,
    pub text_bytes: u64,
    pub short_docs: u64,
    pub empty_docs: u64,
    pub lsh: LshStats,
    pub unique_edges: u64,
    pub verified_edges: u64,
    pub components: u64,
    pub largest_component: u64,
    pub clusters: &'a [Cluster],
    pub bytes_removed: u64,
    pub paths: &'a HashMap<u64, DocRef>,
    pub signatures_on_disk: bool,
    pub band_spill: SpillStats,
    pub edge_spill: SpillStats,
    pub sample_texts: SampleTexts,
}

/// Clusters by size (largest first), ties by their order (preference).
fn largest_indices(clusters: &[Cluster]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..clusters.len()).collect();
    idx.sort_by(|&a, &b| clusters[b].size().cmp(&clusters[a].size()).then(a.cmp(&b)));
    idx.truncate(LARGEST_CLUSTERS);
    idx
}

/// The sampled clusters: (cluster index, index of the removed member shown).
/// The two largest clusters, then clusters spread evenly over the list (which
/// is in preference order); in each, the removed member least similar to the
/// kept one (the first such in preference order).
pub fn sampled_pairs(clusters: &[Cluster]) -> Vec<(usize, usize)> {
    let mut picks: Vec<usize> = largest_indices(clusters).into_iter().take(2).collect();
    let n = clusters.len();
    let spread = SAMPLED_CLUSTERS.saturating_sub(picks.len()).max(1);
    for i in 0..spread {
        if picks.len() >= SAMPLED_CLUSTERS.min(n) {
            break;
        }
        let mut ix = i * n / spread;
        // Skip clusters already taken, moving forward (wrapping once).
        for _ in 0..n {
            if !picks.contains(&ix) {
                break;
            }
            ix = (ix + 1) % n;
        }
        if !picks.contains(&ix) {
            picks.push(ix);
        }
    }
    picks
        .into_iter()
        .filter(|&ix| !clusters[ix].removed.is_empty())
        .map(|ix| {
            let removed = &clusters[ix].removed;
            let mut least = 0;
            for (m, member) in removed.iter().enumerate() {
                if member.similarity < removed[least].similarity {
                    least = m;
                }
            }
            (ix, least)
        })
        .collect()
}

/// Texts of the sampled clusters' documents, gathered in the pass that
/// collects paths (see [`SampleTexts::offer`]).
#[derive(Debug, Default)]
pub struct SampleTexts {
    /// Sorted keys wanted.
    wanted: Vec<u64>,
    texts: HashMap<u64, String>,
}

impl SampleTexts {
    pub fn new(clusters: &[Cluster]) -> SampleTexts {
        let mut wanted: Vec<u64> = sampled_pairs(clusters)
            .into_iter()
            .flat_map(|(c, m)| [clusters[c].kept, clusters[c].removed[m].key])
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        SampleTexts {
            wanted,
            texts: HashMap::new(),
        }
    }

    /// The sampled documents' keys, ascending.
    pub fn wanted(&self) -> &[u64] {
        &self.wanted
    }

    /// Keeps `text` when `key` is one of the sampled documents.
    pub fn offer(&mut self, key: u64, text: &str) {
        if self.wanted.binary_search(&key).is_ok() {
            self.texts.insert(key, text.to_string());
        }
    }
}

/// Cuts `text` to at most `max` bytes on a character boundary.
pub fn cut_text(text: &str, max: usize) -> (&str, bool) {
    if text.len() <= max {
        return (text, false);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (&text[..end], true)
}

fn sample_doc(key: u64, paths: &HashMap<u64, DocRef>, text: &str) -> SampleDoc {
    let (cut, truncated) = cut_text(text, SAMPLE_TEXT_BYTES);
    let p = paths.get(&key);
    SampleDoc {
        key,
        path: p.map(|d| d.path.clone()).unwrap_or_default(),
        repo: p.map(|d| d.repo.clone()).unwrap_or_default(),
        text: cut.to_string(),
        text_bytes: text.len() as u64,
        truncated,
    }
}

/// The sampled clusters with their texts; `ngram` is the shingle length the
/// exact Jaccard is computed with.
fn cluster_samples(
    clusters: &[Cluster],
    paths: &HashMap<u64, DocRef>,
    texts: &SampleTexts,
    ngram: usize,
) -> Vec<ClusterSample> {
    sampled_pairs(clusters)
        .into_iter()
        .filter_map(|(c, m)| {
            let cluster = &clusters[c];
            let member = &cluster.removed[m];
            let kept = texts.texts.get(&cluster.kept)?;
            let removed = texts.texts.get(&member.key)?;
            let exact = super::verify::exact_jaccard(
                &super::shingle::shingle_set(kept, ngram),
                &super::shingle::shingle_set(removed, ngram),
            );
            Some(ClusterSample {
                cluster_size: cluster.size() as u64,
                kept: sample_doc(cluster.kept, paths, kept),
                removed: sample_doc(member.key, paths, removed),
                similarity: member.similarity,
                exact_jaccard: exact,
            })
        })
        .collect()
}

/// Keys whose paths the report needs (sorted), or every member's.
pub fn sample_keys(clusters: &[Cluster], all: bool) -> Vec<u64> {
    let mut keys: Vec<u64> = if all {
        clusters
            .iter()
            .flat_map(|c| std::iter::once(c.kept).chain(c.removed.iter().map(|m| m.key)))
            .collect()
    } else {
        largest_indices(clusters)
            .into_iter()
            .flat_map(|i| {
                let c = &clusters[i];
                std::iter::once(c.kept)
                    .chain(c.removed.iter().take(SAMPLES_PER_CLUSTER).map(|m| m.key))
            })
            .collect()
    };
    for (c, m) in sampled_pairs(clusters) {
        keys.push(clusters[c].kept);
        keys.push(clusters[c].removed[m].key);
    }
    keys.sort_unstable();
    keys.dedup();
    keys
}

fn size_bin(size: usize) -> (usize, String) {
    if size <= 4 {
        return (size, size.to_string());
    }
    // Power-of-two bins above 4: 5-8, 9-16, ...
    let hi = size.next_power_of_two();
    (hi, format!("{}-{}", hi / 2 + 1, hi))
}

pub fn build(i: ReportInput<'_>) -> NearDedupReport {
    let mut bins: Vec<(usize, String, u64)> = Vec::new();
    for c in i.clusters {
        let (order, label) = size_bin(c.size());
        match bins.iter_mut().find(|b| b.0 == order) {
            Some(b) => b.2 += 1,
            None => bins.push((order, label, 1)),
        }
    }
    bins.sort_by_key(|b| b.0);
    let largest = largest_indices(i.clusters)
        .into_iter()
        .map(|ix| {
            let c = &i.clusters[ix];
            LargeCluster {
                size: c.size() as u64,
                kept: i.paths.get(&c.kept).cloned(),
                removed_samples: c
                    .removed
                    .iter()
                    .take(SAMPLES_PER_CLUSTER)
                    .filter_map(|m| i.paths.get(&m.key).cloned())
                    .collect(),
                min_similarity: c.removed.iter().map(|m| m.similarity).fold(1.0, f64::min),
            }
        })
        .collect();
    NearDedupReport {
        params: ParamsReport {
            jaccard: i.cfg.jaccard,
            ngram: i.cfg.ngram,
            num_perm: i.cfg.num_perm,
            bands: i.params.bands,
            rows: i.params.rows,
            verify: i.cfg.verify,
            minhash_seed: i.cfg.seed,
            permutations: "h_i(x) = a_i*x + b_i mod 2^32; (a_i | 1, b_i) = (low, high) 32 bits of splitmix64 draw i from minhash_seed",
            edge_jaccard: i.thresholds.edge_jaccard(),
            memory_bytes: i.cfg.memory_bytes,
            s_curve: i.params.s_curve(i.cfg.jaccard),
        },
        docs: i.docs,
        text_bytes: i.text_bytes,
        docs_short: i.short_docs,
        docs_without_shingles: i.empty_docs,
        lsh: i.lsh,
        candidate_edges: i.unique_edges,
        verified_edges: i.verified_edges,
        components: i.components,
        largest_component: i.largest_component,
        clusters: i.clusters.len() as u64,
        files_removed: i.clusters.iter().map(|c| c.removed.len() as u64).sum(),
        bytes_removed: i.bytes_removed,
        size_histogram: bins
            .into_iter()
            .map(|(_, size, clusters)| SizeBin { size, clusters })
            .collect(),
        largest,
        spill: SpillReport {
            signatures_on_disk: i.signatures_on_disk,
            band_runs: i.band_spill.runs,
            edge_runs: i.edge_spill.runs,
            bytes_spilled: i.band_spill.bytes_spilled + i.edge_spill.bytes_spilled,
        },
        samples: cluster_samples(i.clusters, i.paths, &i.sample_texts, i.cfg.ngram),
    }
}

impl NearDedupReport {
    /// A few human lines for stderr.
    pub fn summary(&self) -> String {
        let p = &self.params;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "near dedup: jaccard {} | {}-word shingles | {} permutations (seed {}) | {} bands x {} rows | verify {}",
            p.jaccard, p.ngram, p.num_perm, p.minhash_seed, p.bands, p.rows, p.verify
        );
        let _ = writeln!(s, "S-curve (probability that a pair becomes a candidate):");
        s.push_str(&super::params::format_s_curve(&p.s_curve));
        let _ = writeln!(
            s,
            "{} documents ({} short, {} without words) | {} distinct candidate edges, {} verified | {} components (largest {})",
            self.docs,
            self.docs_short,
            self.docs_without_shingles,
            self.candidate_edges,
            self.verified_edges,
            self.components,
            self.largest_component
        );
        let hist: Vec<String> = self
            .size_histogram
            .iter()
            .map(|b| format!("{}:{}", b.size, b.clusters))
            .collect();
        let _ = writeln!(
            s,
            "{} clusters, {} files removed ({} bytes) | cluster sizes {}",
            self.clusters,
            self.files_removed,
            self.bytes_removed,
            if hist.is_empty() {
                "-".to_string()
            } else {
                hist.join(" ")
            }
        );
        if self.spill.band_runs + self.spill.edge_runs > 0 || self.spill.signatures_on_disk {
            let _ = writeln!(
                s,
                "spilled: {} band runs, {} edge runs, {} bytes; signatures on disk: {}",
                self.spill.band_runs,
                self.spill.edge_runs,
                self.spill.bytes_spilled,
                self.spill.signatures_on_disk
            );
        }
        s
    }
}

#[derive(Serialize)]
struct ClusterDocLine<'a> {
    key: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    repo: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    similarity: Option<f64>,
}

#[derive(Serialize)]
struct ClusterLine<'a> {
    size: usize,
    similarity: VerifyMode,
    kept: ClusterDocLine<'a>,
    removed: Vec<ClusterDocLine<'a>>,
}

/// Writes one JSON line per cluster of two or more documents (atomically):
/// `{"size", "similarity": "signature"|"exact", "kept": {key, line?, path,
/// repo}, "removed": [{key, line?, path, repo, similarity}]}`, where
/// `similarity` is the verified similarity to the kept document. `lines`
/// maps keys to input line numbers when the caller has them.
pub fn write_clusters_jsonl(
    target: &Path,
    clusters: &[Cluster],
    paths: &HashMap<u64, DocRef>,
    verify: VerifyMode,
    lines: Option<&[u64]>,
) -> Result<()> {
    let doc = |key: u64, similarity: Option<f64>| {
        let p = paths.get(&key);
        ClusterDocLine {
            key,
            line: lines.and_then(|l| l.get(key as usize).copied()),
            path: p.map(|d| d.path.as_str()),
            repo: p.map(|d| d.repo.as_str()),
            similarity,
        }
    };
    let mut f = AtomicFile::create(target)?;
    for c in clusters {
        let line = ClusterLine {
            size: c.size(),
            similarity: verify,
            kept: doc(c.kept, None),
            removed: c
                .removed
                .iter()
                .map(|m| doc(m.key, Some(m.similarity)))
                .collect(),
        };
        serde_json::to_writer(&mut f, &line)
            .with_context(|| format!("cannot write {}", target.display()))?;
        f.write_all(b"\n")
            .with_context(|| format!("cannot write {}", target.display()))?;
    }
    f.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(kept: u64, removed: &[u64]) -> Cluster {
        Cluster {
            kept,
            removed: removed
                .iter()
                .map(|&key| ClusterMember {
                    key,
                    similarity: 0.9,
                })
                .collect(),
        }
    }

    #[test]
    fn size_bins_are_exact_then_powers_of_two() {
        assert_eq!(size_bin(2).1, "2");
        assert_eq!(size_bin(4).1, "4");
        assert_eq!(size_bin(5).1, "5-8");
        assert_eq!(size_bin(8).1, "5-8");
        assert_eq!(size_bin(9).1, "9-16");
    }

    #[test]
    fn samples_come_from_the_largest_clusters() {
        let mut cs: Vec<Cluster> = (0..12).map(|i| cluster(i * 100, &[i * 100 + 1])).collect();
        cs.push(cluster(5000, &(5001..5020).collect::<Vec<_>>()));
        let keys = sample_keys(&cs, false);
        // The big cluster's kept doc and five samples, plus ten kept docs and
        // their one member... but only ten clusters in all.
        assert!(keys.contains(&5000));
        assert_eq!(
            keys.iter().filter(|&&k| k > 5000).count(),
            SAMPLES_PER_CLUSTER
        );
        // ... plus the sampled clusters' pairs: cluster 10 is sampled (spread
        // over the list) but is not among the ten largest.
        assert_eq!(keys.len(), 1 + SAMPLES_PER_CLUSTER + 9 * 2 + 2);
        assert!(keys.contains(&1000) && keys.contains(&1001));
        assert_eq!(sample_keys(&cs, true).len(), 12 * 2 + 20);
    }

    #[test]
    fn clusters_file_names_kept_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("c.jsonl");
        let mut paths = HashMap::new();
        paths.insert(
            3,
            DocRef {
                path: "a.py".into(),
                repo: "o/r".into(),
            },
        );
        let lines = [10u64, 11, 12, 13];
        write_clusters_jsonl(
            &target,
            &[cluster(3, &[1])],
            &paths,
            VerifyMode::Signature,
            Some(&lines),
        )
        .unwrap();
        let text = std::fs::read_to_string(&target).unwrap();
        let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(v["size"], 2);
        assert_eq!(v["kept"]["path"], "a.py");
        assert_eq!(v["kept"]["line"], 13);
        assert_eq!(v["removed"][0]["key"], 1);
        assert_eq!(v["removed"][0]["similarity"], 0.9);
        assert_eq!(v["similarity"], "signature");
    }
}
