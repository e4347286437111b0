//! Near dedup's per-file work, done in phase 1 for one input shard:
//! shingles -> MinHash signatures -> band hashes, written beside the shard's
//! part file.
//!
//! Everything here needs one file at a time, so it runs where the file is
//! already in memory (the shard being filtered) and is committed with the
//! shard: a resumed or `--shard I/N` run never shingles a file twice, and the
//! global steps never re-tokenise texts (exact verification excepted, which
//! reads only the candidates' texts).
//!
//! Two sidecars per shard, both fixed-size records:
//! * `signatures`: `num_perm` little-endian u32 per record, in part order
//!   (record `seq` at byte `seq * num_perm * 4`), read back by position when
//!   an edge is verified. Records without shingles get their (unused)
//!   all-`u32::MAX` signature too, so positions stay `seq`-aligned.
//! * `bands`: one [`BandEntry`] `(hash, seq)` per band of every record with
//!   at least one shingle, sorted by `(hash, seq)`, so that an LSH partition
//!   (a range of band hashes, [`crate::partition`]) reads its slice of every
//!   shard with two binary searches. A shard's entries are sorted in at most
//!   [`KeySettings::band_memory`] bytes (an external sort, [`super::spill`]):
//!   past it they spill to sorted runs in a scratch directory beside the
//!   part and are merged into the file at the commit, with the same bytes.
//!
//! DETERMINISM: shingling is on the CPU; the backend returns per-document
//! results in batch order with integer arithmetic only
//! ([`crate::backends::ops`]), so the sidecars are the same for any batch
//! size, thread count or backend.

use super::shingle::{ShingleCount, Shingler};
use super::spill::{ExternalSorter, FixedRecord, SpillStats};
use super::NearDedupConfig;
use crate::backends::{Backend, BandLayout, Permutations, ShingleBuffer};
use crate::output::atomic::AtomicFile;
use crate::partition::SortedFile;
use crate::pipeline::cleanup::ScratchDir;
use anyhow::{ensure, Context, Result};
use rayon::prelude::*;
use std::io::Write;
use std::path::Path;

/// One band of one record of a shard: the band's hash and the record's
/// position in the part. Twelve bytes on disk: hash then seq, little-endian.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct BandEntry {
    pub hash: u64,
    pub seq: u32,
}

impl BandEntry {
    pub const SIZE: usize = 12;

    pub fn write_le(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.hash.to_le_bytes());
        out.extend_from_slice(&self.seq.to_le_bytes());
    }

    pub fn read_le(b: &[u8]) -> BandEntry {
        BandEntry {
            hash: u64::from_le_bytes(b[..8].try_into().expect("eight bytes")),
            seq: u32::from_le_bytes(b[8..12].try_into().expect("four bytes")),
        }
    }

    /// The partition key of a band file record: its hash.
    pub fn partition_key(b: &[u8]) -> u64 {
        u64::from_le_bytes(b[..8].try_into().expect("eight bytes"))
    }
}

impl FixedRecord for BandEntry {
    const SIZE: usize = BandEntry::SIZE;
    fn write_le(&self, out: &mut [u8]) {
        out[..8].copy_from_slice(&self.hash.to_le_bytes());
        out[8..12].copy_from_slice(&self.seq.to_le_bytes());
    }
    fn read_le(bytes: &[u8]) -> Self {
        BandEntry::read_le(bytes)
    }
}

/// Share of `--memory` that one shard's band entries may hold before they
/// spill: phase 1 runs at most 8 shards at once (its lanes), so they hold
/// half of it at most. 128 MiB of the default 2 GiB: 16 bytes an entry, 28
/// bands a file, about 300,000 files a shard before the first run is
/// written.
const BAND_MEMORY_SHARE: u64 = 16;

/// The settings that decide a shard's signatures and bands, resolved once.
pub struct KeySettings {
    pub ngram: usize,
    pub perms: Permutations,
    pub layout: BandLayout,
    /// Bytes of one shard's band entries held in memory (the rest spills).
    pub band_memory: u64,
}

impl KeySettings {
    pub fn new(cfg: &NearDedupConfig) -> Result<KeySettings> {
        let p = cfg.layout()?;
        Ok(KeySettings {
            ngram: cfg.ngram,
            perms: Permutations::new(cfg.num_perm, cfg.seed),
            layout: BandLayout {
                bands: p.bands,
                rows: p.rows,
            },
            band_memory: cfg.memory_bytes / BAND_MEMORY_SHARE,
        })
    }
}

/// Writes one shard's signatures (streamed) and band entries (sorted at the
/// end, spilling past [`KeySettings::band_memory`]).
pub struct ShardKeyWriter<'a> {
    settings: &'a KeySettings,
    backend: &'a dyn Backend,
    signatures: AtomicFile,
    bands: ExternalSorter<BandEntry>,
    /// Where `bands` spills; removed when the writer is dropped.
    _scratch: ScratchDir,
    next_seq: u32,
}

impl<'a> ShardKeyWriter<'a> {
    pub fn create(
        settings: &'a KeySettings,
        backend: &'a dyn Backend,
        signatures_path: &Path,
    ) -> Result<ShardKeyWriter<'a>> {
        let signatures = AtomicFile::create(signatures_path)?;
        let parent = signatures_path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let scratch = ScratchDir::create(parent).with_context(|| {
            format!(
                "cannot create a scratch directory in {} (for the band keys)",
                parent.display()
            )
        })?;
        Ok(ShardKeyWriter {
            settings,
            backend,
            signatures,
            bands: ExternalSorter::new(settings.band_memory, false, scratch.path(), "bands"),
            _scratch: scratch,
            next_seq: 0,
        })
    }

    /// Shingles, signs and bands the next records of the part (`texts` in
    /// part order); returns each record's shingle count.
    pub fn push_batch(&mut self, texts: &[&str]) -> Result<Vec<ShingleCount>> {
        let n = texts.len();
        if n == 0 {
            return Ok(Vec::new());
        }
        let ngram = self.settings.ngram;
        // Contiguous chunks, so that concatenating them keeps part order.
        let chunk = (n / (rayon::current_num_threads() * 8)).clamp(1, 256);
        let parts: Vec<(Vec<u32>, Vec<ShingleCount>)> = texts
            .par_chunks(chunk)
            .map(|c| {
                let mut sh = Shingler::new(ngram);
                let mut hashes = Vec::new();
                let counts = c.iter().map(|d| sh.shingles(d, &mut hashes)).collect();
                (hashes, counts)
            })
            .collect();
        let mut buf = ShingleBuffer::new();
        let mut counts = Vec::with_capacity(n);
        for (hashes, cs) in &parts {
            let mut at = 0usize;
            for c in cs {
                let end = at + c.shingles as usize;
                buf.push_doc(&hashes[at..end]);
                at = end;
                counts.push(*c);
            }
        }
        drop(parts);
        ensure!(
            buf.hashes.len() < u32::MAX as usize,
            "a batch of {n} documents has more than 2^32 shingles; lower the batch size"
        );
        let backend = self.backend;
        let num_perm = self.settings.perms.len();
        let layout = self.settings.layout;
        // One fused call: the signatures stay on the device for the band
        // hashes, and both come back together.
        let (sigs, hashes) = backend
            .signatures_and_bands(buf.as_batch(), &self.settings.perms, layout)
            .with_context(|| format!("{}: signatures_and_bands", backend.describe()))?;
        ensure!(
            sigs.len() == n * num_perm,
            "{} returned {} signature values for {n} documents x {num_perm} permutations",
            backend.describe(),
            sigs.len()
        );
        let b = layout.bands as usize;
        ensure!(
            hashes.len() == n * b,
            "{} returned {} band hashes for {n} documents x {b} bands",
            backend.describe(),
            hashes.len()
        );
        for (d, c) in counts.iter().enumerate() {
            // Wordless documents stay out of LSH (see `super::shingle`).
            if c.shingles == 0 {
                continue;
            }
            let seq = self.next_seq + d as u32;
            for &hash in &hashes[d * b..(d + 1) * b] {
                self.bands.push(BandEntry { hash, seq })?;
            }
        }
        // The file is little-endian: on such a host the values are written
        // as they lie in memory, without a converted copy.
        #[cfg(target_endian = "little")]
        let bytes: &[u8] = bytemuck::cast_slice(&sigs);
        #[cfg(not(target_endian = "little"))]
        let bytes: &[u8] = &sigs
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<u8>>();
        self.signatures
            .write_all(bytes)
            .with_context(|| format!("cannot write {}", self.signatures.target().display()))?;
        self.next_seq += n as u32;
        Ok(counts)
    }

    /// Sorts the band entries and commits both sidecars (signatures first),
    /// unsynced: the caller syncs the shard's files at once. Returns what
    /// the sort spilled, for the shard's stats ([`note_band_spill`]).
    pub fn commit(self, bands_path: &Path) -> Result<SpillStats> {
        self.signatures.commit_unsynced()?;
        let mut sorted = self.bands.finish()?;
        let mut file = AtomicFile::create(bands_path)?;
        let mut entry = [0u8; BandEntry::SIZE];
        while let Some(e) = sorted.next()? {
            FixedRecord::write_le(&e, &mut entry);
            file.write_all(&entry)
                .with_context(|| format!("cannot write {}", bands_path.display()))?;
        }
        file.commit_unsynced()?;
        Ok(sorted.stats())
    }
}

/// Stats notes of a shard whose band entries spilled: its runs and bytes.
pub const BAND_SPILL_RUNS: &str = "near_band_spill_runs";
pub const BAND_SPILL_BYTES: &str = "near_band_spill_bytes";

/// Notes what a shard's band sort spilled (nothing when it did not).
pub fn note_band_spill(stats: &mut crate::stats::Stats, spill: SpillStats) {
    if spill.runs > 0 {
        stats.note(BAND_SPILL_RUNS, spill.runs);
        stats.note(BAND_SPILL_BYTES, spill.bytes_spilled);
    }
}

/// The band spills that shards' stats note, summed.
pub fn band_spill_of<'a>(shards: impl IntoIterator<Item = &'a crate::stats::Stats>) -> SpillStats {
    let mut sum = SpillStats::default();
    for stats in shards {
        let note = |k: &str| stats.notes.get(k).copied().unwrap_or(0);
        sum.runs += note(BAND_SPILL_RUNS);
        sum.bytes_spilled += note(BAND_SPILL_BYTES);
    }
    sum
}

/// The band entries of band-hash partition `p` of `parts` in one shard's
/// sorted band file.
pub fn read_band_partition(path: &Path, p: u32, parts: u32) -> Result<Vec<BandEntry>> {
    let file = SortedFile::open(path, BandEntry::SIZE)
        .with_context(|| format!("band keys {}", path.display()))?;
    let bytes = file
        .read_partition(p, parts, BandEntry::partition_key)
        .with_context(|| format!("cannot read band keys {}", path.display()))?;
    Ok(bytes
        .chunks_exact(BandEntry::SIZE)
        .map(BandEntry::read_le)
        .collect())
}

/// Positional reads of one shard's signature sidecar.
pub struct SignatureFile {
    file: std::fs::File,
    num_perm: usize,
    records: u64,
}

impl SignatureFile {
    pub fn open(path: &Path, num_perm: usize) -> Result<SignatureFile> {
        let file = std::fs::File::open(path)
            .with_context(|| format!("cannot open signatures {}", path.display()))?;
        let len = file.metadata()?.len();
        let per = num_perm as u64 * 4;
        ensure!(
            len % per == 0,
            "signatures {} are truncated ({len} bytes, {per} per record)",
            path.display()
        );
        Ok(SignatureFile {
            file,
            num_perm,
            records: len / per,
        })
    }

    /// Copies the signature of record `seq` into `out` (`num_perm` values).
    pub fn get(&self, seq: u32, out: &mut [u32]) -> Result<()> {
        use std::os::unix::fs::FileExt;
        ensure!(
            (seq as u64) < self.records,
            "no signature for record {seq} ({} records)",
            self.records
        );
        let n = self.num_perm;
        // Straight into `out`: no buffer per read.
        self.file
            .read_exact_at(
                bytemuck::cast_slice_mut(&mut out[..n]),
                seq as u64 * n as u64 * 4,
            )
            .context("cannot read signatures")?;
        for v in &mut out[..n] {
            *v = u32::from_le(*v);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backends::cpu::CpuBackend;

    #[test]
    fn sidecars_do_not_depend_on_batch_boundaries() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = NearDedupConfig::default();
        let settings = KeySettings::new(&cfg).unwrap();
        let backend = CpuBackend::new();
        let texts: Vec<String> = (0..50)
            .map(|i| {
                if i % 7 == 0 {
                    "{ } ;".to_string()
                } else {
                    (0..40).map(|w| format!("w{} ", (w * i) % 23)).collect()
                }
            })
            .collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        // A budget of 256 entries: the last writer's 1,176 entries spill to
        // runs.
        let spilling = KeySettings {
            band_memory: 1,
            ..KeySettings::new(&cfg).unwrap()
        };
        let mut outs = Vec::new();
        for (batch, settings) in [
            (50usize, &settings),
            (7, &settings),
            (1, &settings),
            (3, &spilling),
        ] {
            let sig = dir.path().join(format!("s{batch}"));
            let bands = dir.path().join(format!("b{batch}"));
            let mut w = ShardKeyWriter::create(settings, &backend, &sig).unwrap();
            let mut counts = Vec::new();
            for c in refs.chunks(batch) {
                counts.extend(w.push_batch(c).unwrap());
            }
            let spill = w.commit(&bands).unwrap();
            assert_eq!(spill.runs > 0, batch == 3, "{spill:?}");
            outs.push((
                counts,
                std::fs::read(&sig).unwrap(),
                std::fs::read(&bands).unwrap(),
            ));
        }
        assert_eq!(outs[0], outs[1]);
        assert_eq!(outs[0], outs[2]);
        assert_eq!(outs[0], outs[3]);
        // Only the sidecars are left: the scratch directories went with their
        // writers.
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["b1", "b3", "b50", "b7", "s1", "s3", "s50", "s7"]);
        let bands = read_band_partition(&dir.path().join("b50"), 0, 1).unwrap();
        // 42 records with words (8 of the 50 are wordless) x 28 bands.
        assert_eq!(bands.len(), 42 * 28);
        assert!(bands.iter().all(|b| b.seq % 7 != 0));
        assert!(bands.windows(2).all(|w| w[0] <= w[1]));
        let sigs = SignatureFile::open(&dir.path().join("s50"), 256).unwrap();
        let mut s = vec![0u32; 256];
        sigs.get(49, &mut s).unwrap();
        assert!(sigs.get(50, &mut s).is_err());
    }
}
