//! Key ranges of partitioned steps, and ranged reads of sorted record files.
//!
//! A partitioned step splits a 64-bit key space (the first eight bytes of an
//! MD5, a band hash, a mixed edge) into `P` contiguous ranges of equal width:
//! key `k` belongs to partition `floor(k * P / 2^64)`. Contiguous ranges let a
//! task read its share of a file sorted by key with two binary searches
//! instead of scanning the whole file, and equal widths balance the tasks
//! because the keys are hashes.
//!
//! DETERMINISM: every record of one key lands in one partition, so anything
//! decided per key (a duplicate group, an LSH bucket, an edge) is decided
//! wholly inside one task, and the union of the tasks' results is the same
//! for every `P`.

use anyhow::{ensure, Context, Result};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// The partition of `key` among `parts`.
pub fn partition_of(key: u64, parts: u32) -> u32 {
    ((key as u128 * parts as u128) >> 64) as u32
}

/// The smallest key of partition `p` (`p == parts` gives one past the last
/// key, as `None`).
pub fn partition_start(p: u32, parts: u32) -> Option<u64> {
    if p >= parts {
        return None;
    }
    // ceil(p * 2^64 / parts)
    let start = ((p as u128) << 64).div_ceil(parts as u128);
    Some(start as u64)
}

/// Mixes a key that is not already a uniform hash (an edge of two record
/// numbers) before partitioning: splitmix64's finaliser.
pub fn mix64(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A file of fixed-size records sorted by a 64-bit key.
pub struct SortedFile {
    file: File,
    records: u64,
    size: usize,
}

impl SortedFile {
    /// Opens `path`, whose records are `size` bytes.
    pub fn open(path: &Path, size: usize) -> Result<SortedFile> {
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let len = file
            .metadata()
            .with_context(|| format!("cannot stat {}", path.display()))?
            .len();
        ensure!(
            len % size as u64 == 0,
            "{} is truncated ({len} bytes, records of {size})",
            path.display()
        );
        Ok(SortedFile {
            file,
            records: len / size as u64,
            size,
        })
    }

    pub fn records(&self) -> u64 {
        self.records
    }

    fn key_at(&self, i: u64, key: &impl Fn(&[u8]) -> u64, buf: &mut [u8]) -> Result<u64> {
        self.file
            .read_exact_at(buf, i * self.size as u64)
            .context("cannot read a sorted record file")?;
        Ok(key(buf))
    }

    /// First record whose key is at least `bound` (`records()` when none).
    fn lower_bound(&self, bound: u64, key: &impl Fn(&[u8]) -> u64) -> Result<u64> {
        let mut buf = vec![0u8; self.size];
        let (mut lo, mut hi) = (0u64, self.records);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.key_at(mid, key, &mut buf)? < bound {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }

    /// The raw bytes of the records of partition `p` of `parts`, where `key`
    /// reads a record's key from its bytes.
    pub fn read_partition(
        &self,
        p: u32,
        parts: u32,
        key: impl Fn(&[u8]) -> u64,
    ) -> Result<Vec<u8>> {
        let start = match partition_start(p, parts) {
            Some(k) => self.lower_bound(k, &key)?,
            None => self.records,
        };
        let end = match partition_start(p + 1, parts) {
            Some(k) => self.lower_bound(k, &key)?,
            None => self.records,
        };
        let mut bytes = vec![0u8; ((end - start) * self.size as u64) as usize];
        self.file
            .read_exact_at(&mut bytes, start * self.size as u64)
            .context("cannot read a sorted record file")?;
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_cover_the_key_space_in_order() {
        for parts in [1u32, 3, 16, 1000] {
            assert_eq!(partition_start(0, parts), Some(0));
            assert_eq!(partition_of(0, parts), 0);
            assert_eq!(partition_of(u64::MAX, parts), parts - 1);
            for p in 1..parts.min(50) {
                let s = partition_start(p, parts).unwrap();
                assert_eq!(partition_of(s, parts), p, "start of {p} of {parts}");
                assert_eq!(partition_of(s - 1, parts), p - 1);
            }
        }
    }

    #[test]
    fn ranged_reads_return_each_record_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sorted");
        let mut keys: Vec<u64> = (0..1000u64).map(|i| mix64(i) & !0xff).collect();
        keys.extend_from_slice(&[0, 0, u64::MAX, u64::MAX]);
        keys.sort_unstable();
        let bytes: Vec<u8> = keys.iter().flat_map(|k| k.to_be_bytes()).collect();
        std::fs::write(&path, bytes).unwrap();
        let f = SortedFile::open(&path, 8).unwrap();
        let key = |b: &[u8]| u64::from_be_bytes(b.try_into().unwrap());
        for parts in [1u32, 3, 16] {
            let mut all = Vec::new();
            for p in 0..parts {
                let chunk = f.read_partition(p, parts, key).unwrap();
                for r in chunk.chunks_exact(8) {
                    assert_eq!(partition_of(key(r), parts), p);
                    all.push(key(r));
                }
            }
            assert_eq!(all, keys);
        }
        std::fs::write(&path, [0u8; 9]).unwrap();
        assert!(SortedFile::open(&path, 8).is_err());
    }
}
