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
//!   shard with two binary searches.
//!
//! DETERMINISM: shingling is on the CPU; the backend returns per-document
//! results in batch order with integer arithmetic only
//! ([`crate::backends::ops`]), so the sidecars are the same for any batch
//! size, thread count or backend.

use super::shingle::{ShingleCount, Shingler};
use super::NearDedupConfig;
use crate::backends::{Backend, BandLayout, Permutations, ShingleBuffer};
use crate::output::atomic::AtomicFile;
use crate::partition::SortedFile;
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

/// The settings that decide a shard's signatures and bands, resolved once.
pub struct KeySettings {
    pub ngram: usize,
    pub perms: Permutations,
    pub layout: BandLayout,
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
        })
    }
}

/// Writes one shard's signatures (streamed) and band entries (sorted at the
/// end).
pub struct ShardKeyWriter<'a> {
    settings: &'a KeySettings,
    backend: &'a dyn Backend,
    signatures: AtomicFile,
    bands: Vec<BandEntry>,
    next_seq: u32,
}

impl<'a> ShardKeyWriter<'a> {
    pub fn create(
        settings: &'a KeySettings,
        backend: &'a dyn Backend,
        signatures_path: &Path,
    ) -> Result<ShardKeyWriter<'a>> {
        Ok(ShardKeyWriter {
            settings,
            backend,
            signatures: AtomicFile::create(signatures_path)?,
            bands: Vec::new(),
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
                self.bands.push(BandEntry { hash, seq });
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
    /// unsynced: the caller syncs the shard's files at once.
    pub fn commit(mut self, bands_path: &Path) -> Result<()> {
        self.signatures.commit_unsynced()?;
        self.bands.par_sort_unstable();
        let mut bytes = Vec::with_capacity(self.bands.len() * BandEntry::SIZE);
        for e in &self.bands {
            e.write_le(&mut bytes);
        }
        crate::output::atomic::write_atomic_unsynced(bands_path, &bytes)
    }
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
        let mut outs = Vec::new();
        for batch in [50usize, 7, 1] {
            let sig = dir.path().join(format!("s{batch}"));
            let bands = dir.path().join(format!("b{batch}"));
            let mut w = ShardKeyWriter::create(&settings, &backend, &sig).unwrap();
            let mut counts = Vec::new();
            for c in refs.chunks(batch) {
                counts.extend(w.push_batch(c).unwrap());
            }
            w.commit(&bands).unwrap();
            outs.push((
                counts,
                std::fs::read(&sig).unwrap(),
                std::fs::read(&bands).unwrap(),
            ));
        }
        assert_eq!(outs[0], outs[1]);
        assert_eq!(outs[0], outs[2]);
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
