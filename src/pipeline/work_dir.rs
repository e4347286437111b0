//! The work directory: what makes a run resumable and shardable.
//!
//! ```text
//! WORK/lock                           held by the run working here (see `super::work_lock`)
//! WORK/run.json                       settings that shape the parts (checked on resume)
//! WORK/config.json                    the whole resolved run configuration (for `run-step`)
//! WORK/manifest.json                  finished input shards, for people (rewritten atomically)
//! WORK/parts/part-000042.jsonl.zst    records of input shard 42 that passed the filters
//! WORK/parts/part-000042.frames       byte offset and records of each zstd frame of the part
//! WORK/parts/part-000042.keys         exact-dedup keys (56 B each), sorted by MD5
//! WORK/parts/part-000042.meta         per record: preference fields, text bytes, shingles (40 B)
//! WORK/parts/part-000042.signatures   near dedup: MinHash signatures (num_perm x 4 B), part order
//! WORK/parts/part-000042.bands        near dedup: (band hash, seq) (12 B each), sorted by hash
//! WORK/parts/part-000042.decontam.jsonl  decontamination verdicts of the records that matched
//! WORK/parts/part-000042.rejects.jsonl  what the filters dropped, with reasons
//! WORK/parts/part-000042.failed.json  the input could not be read (--keep-going); removed on success
//! WORK/parts/part-000042.done.json    commit marker: counts and stats of shard 42
//! WORK/global/...                     the global steps (see `super::steps`)
//! ```
//!
//! A shard is finished exactly when its `done.json` exists: that file is
//! renamed into place last, after the part and every sidecar, so killing the
//! run at any moment leaves either a finished shard or none. A rerun skips the
//! finished shards and redoes the rest. The sidecars depend on the near-dedup
//! and decontamination settings, so those are part of the fingerprint.

use crate::filters::FilterConfig;
use crate::output::atomic::write_atomic;
use crate::stats::Stats;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Settings that decide what goes into the parts. A work dir only resumes a
/// run with the same fingerprint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunFingerprint {
    pub format_version: u32,
    pub filters: FilterConfig,
    pub max_samples: Option<u64>,
    /// xxh3 of the sorted input list (paths and sizes): shard ordinals are
    /// positions in that list.
    pub inputs_hash: String,
    pub input_count: u32,
    /// Whether phase 1 records rejects (`--rejects`).
    pub record_rejects: bool,
    /// What decides the near-dedup sidecars; `None` without near dedup.
    pub near_keys: Option<NearKeyFingerprint>,
    /// What decides the decontamination verdicts; `None` without it.
    pub decontam: Option<DecontamFingerprint>,
    /// `--redact`: which texts are redacted before they are hashed.
    #[serde(default)]
    pub redact: crate::redact::RedactMode,
    /// `--tokenizer`, `--tokens`: the shards' stats hold their token counts.
    #[serde(default)]
    pub tokens: Option<crate::tokens::count::TokensConfig>,
}

/// The near-dedup settings that change signatures or band hashes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NearKeyFingerprint {
    pub ngram: usize,
    pub num_perm: usize,
    pub bands: u32,
    pub rows: u32,
    pub minhash_seed: u64,
}

/// The decontamination settings and index that decide a verdict.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DecontamFingerprint {
    pub ngram: usize,
    pub min_matches: usize,
    pub min_exact_len: usize,
    /// Benchmarks, item counts and index sizes.
    pub index: String,
}

pub const FORMAT_VERSION: u32 = 2;

/// Commit record of one finished input shard.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardDone {
    pub ordinal: u32,
    pub input: String,
    pub input_bytes: u64,
    /// Records written to the part.
    pub kept: u64,
    /// Set when `--max-samples` stopped reading this shard early.
    pub stopped_at_row: Option<u64>,
    pub stats: Stats,
    /// Under `--tokens estimate`: the token sums of the shard's stages, to
    /// be merged with the other shards' and estimated once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_tallies: Option<crate::tokens::stage::StageTallies>,
}

impl RunFingerprint {
    /// Which settings differ from `other`, in words.
    pub fn differences(&self, other: &RunFingerprint) -> String {
        let mut d = Vec::new();
        if self.format_version != other.format_version {
            d.push("made by another version of tritter-gpu");
        }
        if self.filters != other.filters {
            d.push("filters");
        }
        if self.max_samples != other.max_samples {
            d.push("--max-samples");
        }
        if self.inputs_hash != other.inputs_hash || self.input_count != other.input_count {
            d.push("inputs");
        }
        if self.record_rejects != other.record_rejects {
            d.push("--rejects");
        }
        if self.near_keys != other.near_keys {
            d.push("near-dedup settings");
        }
        if self.decontam != other.decontam {
            d.push("decontamination settings or benchmarks");
        }
        if self.redact != other.redact {
            d.push("--redact");
        }
        if self.tokens != other.tokens {
            d.push("--tokenizer/--tokens");
        }
        if d.is_empty() {
            "none".to_string()
        } else {
            format!("{} differ", d.join(", "))
        }
    }
}

pub struct WorkDir {
    pub root: PathBuf,
}

/// Removes what a run killed during `--fresh` left half deleted
/// (`WORK/.trash-*`); called with the work dir locked, so no live run owns
/// them.
fn sweep_trash(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with(".trash-") {
            std::fs::remove_dir_all(e.path()).ok();
        }
    }
}

impl WorkDir {
    /// Opens (creating if needed) a work dir for a run with `fingerprint`.
    /// An existing dir made with other settings is an error unless `fresh`,
    /// which clears it.
    pub fn open(root: &Path, fingerprint: &RunFingerprint, fresh: bool) -> Result<WorkDir> {
        let run_json = root.join("run.json");
        if fresh && root.exists() {
            // The old run goes first, in one rename each: a run killed while
            // deleting must not leave a `done.json` whose part is gone.
            std::fs::remove_file(&run_json).ok();
            std::fs::remove_file(root.join("config.json")).ok();
            std::fs::remove_file(root.join("manifest.json")).ok();
            for dir in ["parts", "global"] {
                let trash = root.join(format!(".trash-{dir}-{}", std::process::id()));
                if std::fs::rename(root.join(dir), &trash).is_ok() {
                    std::fs::remove_dir_all(&trash).ok();
                }
            }
        }
        sweep_trash(root);
        super::cleanup::create_dir_all(&root.join("parts"))
            .with_context(|| format!("cannot create work directory {}", root.display()))?;
        if run_json.exists() {
            let existing: RunFingerprint = match serde_json::from_slice(&std::fs::read(&run_json)?) {
                Ok(fp) => fp,
                Err(_) => bail!(
                    "work directory {} was made by another version of tritter-gpu; pass --fresh to start over",
                    root.display()
                ),
            };
            if &existing != fingerprint {
                bail!(
                    "work directory {} holds a run with other settings ({}); rerun with the original settings to resume, or pass --fresh to start over",
                    root.display(),
                    existing.differences(fingerprint)
                );
            }
        } else {
            write_atomic(&run_json, &serde_json::to_vec_pretty(fingerprint)?)?;
        }
        Ok(WorkDir {
            root: root.to_path_buf(),
        })
    }

    /// Opens an existing work dir for merging, returning its fingerprint.
    pub fn open_existing(root: &Path) -> Result<(WorkDir, RunFingerprint)> {
        let run_json = root.join("run.json");
        let bytes = std::fs::read(&run_json).with_context(|| {
            format!(
                "{} is not a tritter-gpu work directory (no run.json)",
                root.display()
            )
        })?;
        let fp: RunFingerprint = serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "{} is not a run description of this version of tritter-gpu (rerun phase 1 with --fresh)",
                run_json.display()
            )
        })?;
        anyhow::ensure!(
            fp.format_version == FORMAT_VERSION,
            "work directory {} was made by another version of tritter-gpu (format {}, this one reads {FORMAT_VERSION}); rerun phase 1 with --fresh",
            root.display(),
            fp.format_version
        );
        Ok((
            WorkDir {
                root: root.to_path_buf(),
            },
            fp,
        ))
    }

    fn part_base(&self, ordinal: u32) -> PathBuf {
        self.root.join("parts").join(format!("part-{ordinal:06}"))
    }

    pub fn part_path(&self, ordinal: u32) -> PathBuf {
        self.part_base(ordinal).with_extension("jsonl.zst")
    }

    pub fn keys_path(&self, ordinal: u32) -> PathBuf {
        self.part_base(ordinal).with_extension("keys")
    }

    pub fn rejects_path(&self, ordinal: u32) -> PathBuf {
        self.part_base(ordinal).with_extension("rejects.jsonl")
    }

    pub fn frames_path(&self, ordinal: u32) -> PathBuf {
        self.part_base(ordinal).with_extension("frames")
    }

    pub fn meta_path(&self, ordinal: u32) -> PathBuf {
        self.part_base(ordinal).with_extension("meta")
    }

    pub fn signatures_path(&self, ordinal: u32) -> PathBuf {
        self.part_base(ordinal).with_extension("signatures")
    }

    pub fn bands_path(&self, ordinal: u32) -> PathBuf {
        self.part_base(ordinal).with_extension("bands")
    }

    pub fn decontam_path(&self, ordinal: u32) -> PathBuf {
        self.part_base(ordinal).with_extension("decontam.jsonl")
    }

    pub fn failed_path(&self, ordinal: u32) -> PathBuf {
        self.part_base(ordinal).with_extension("failed.json")
    }

    fn done_path(&self, ordinal: u32) -> PathBuf {
        self.part_base(ordinal).with_extension("done.json")
    }

    /// The global steps' directory.
    pub fn global_dir(&self) -> PathBuf {
        self.root.join("global")
    }

    /// The stored run configuration.
    pub fn config_path(&self) -> PathBuf {
        self.root.join("config.json")
    }

    /// Records that input `ordinal` failed (under `--keep-going`).
    pub fn mark_failed(
        &self,
        ordinal: u32,
        failed: &crate::output::run_report::FailedInput,
    ) -> Result<()> {
        write_atomic(&self.failed_path(ordinal), &serde_json::to_vec(failed)?)
    }

    /// Every input that failed and has not finished since, by ordinal.
    pub fn all_failed(&self) -> Result<Vec<crate::output::run_report::FailedInput>> {
        let mut out = Vec::new();
        let dir = self.root.join("parts");
        let mut names: Vec<(u32, PathBuf)> = Vec::new();
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))?
        {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if let Some(ord) = name
                .strip_prefix("part-")
                .and_then(|s| s.strip_suffix(".failed.json"))
                .and_then(|s| s.parse::<u32>().ok())
            {
                names.push((ord, entry.path()));
            }
        }
        names.sort();
        for (ord, path) in names {
            if self.done(ord)?.is_some() {
                continue;
            }
            let bytes =
                std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            out.push(
                serde_json::from_slice(&bytes)
                    .with_context(|| format!("{} is corrupt; delete it", path.display()))?,
            );
        }
        Ok(out)
    }

    /// The commit record of shard `ordinal`, if it finished.
    /// Forgets shard `ordinal`'s commit and failure markers, so that the
    /// next run redoes it (its input changed: a repository's branch moved).
    pub fn discard_shard(&self, ordinal: u32) -> Result<()> {
        for p in [self.done_path(ordinal), self.failed_path(ordinal)] {
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(
                        anyhow::Error::new(e).context(format!("cannot remove {}", p.display()))
                    )
                }
            }
        }
        Ok(())
    }

    pub fn done(&self, ordinal: u32) -> Result<Option<ShardDone>> {
        let p = self.done_path(ordinal);
        match std::fs::read(&p) {
            Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes).with_context(|| {
                format!("{} is corrupt; delete it to redo that shard", p.display())
            })?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", p.display())),
        }
    }

    /// Marks a shard finished (after its part and sidecars are in place).
    pub fn commit(&self, done: &ShardDone) -> Result<()> {
        write_atomic(&self.done_path(done.ordinal), &serde_json::to_vec(done)?)?;
        match std::fs::remove_file(self.failed_path(done.ordinal)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e).with_context(|| {
                format!("cannot remove {}", self.failed_path(done.ordinal).display())
            }),
            _ => Ok(()),
        }
    }

    /// Every finished shard, by ordinal.
    pub fn all_done(&self) -> Result<Vec<ShardDone>> {
        let mut out = Vec::new();
        let dir = self.root.join("parts");
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))?
        {
            let name = entry?.file_name();
            let name = name.to_string_lossy();
            if let Some(ord) = name
                .strip_prefix("part-")
                .and_then(|s| s.strip_suffix(".done.json"))
            {
                if let Ok(ord) = ord.parse::<u32>() {
                    if let Some(d) = self.done(ord)? {
                        out.push(d);
                    }
                }
            }
        }
        out.sort_by_key(|d| d.ordinal);
        Ok(out)
    }

    /// Rewrites the human-readable manifest of finished shards.
    pub fn write_manifest(&self, done: &[ShardDone]) -> Result<()> {
        #[derive(Serialize)]
        struct Entry<'a> {
            ordinal: u32,
            input: &'a str,
            kept: u64,
            stopped_at_row: Option<u64>,
        }
        let entries: Vec<Entry> = done
            .iter()
            .map(|d| Entry {
                ordinal: d.ordinal,
                input: &d.input,
                kept: d.kept,
                stopped_at_row: d.stopped_at_row,
            })
            .collect();
        write_atomic(
            &self.root.join("manifest.json"),
            &serde_json::to_vec_pretty(&serde_json::json!({ "finished_shards": entries }))?,
        )
    }
}
