//! Exact dedup: MD5 of the content across every shard of the run.
//!
//! ## Algorithm
//! Each kept record contributes one fixed-size [`KeyEntry`] (MD5, survivor
//! preference, where it lives). Phase 1 writes a shard's entries sorted by
//! `(md5, preference)`. The global step is split into `P` partitions by the
//! first eight bytes of the MD5 ([`crate::partition`]): partition `p` reads
//! its MD5 range from every shard's sorted file (two binary searches per
//! file), sorts the entries by `(md5, preference)`, and within every run of
//! equal MD5s the first entry survives and the others are losers.
//!
//! DETERMINISM: the survivor is the minimum of [`crate::rank::Preference`],
//! a total order built from the record alone (allowed license, stars, hash of
//! repo/path, record id), so neither thread count, partition count nor input
//! order matters: all copies of one MD5 meet in one partition.
//!
//! ## Memory and disk at The Stack v2 Python scale
//! An entry is 56 bytes. 57M files give 3.2 GB of entries on disk, in the
//! shards' sidecars; a partition holds 3.2 GB / P in memory (200 MB at
//! P = 16). Losers are written as 16-byte records: even at 10% duplicates
//! that is 91 MB.

use crate::partition::SortedFile;
use crate::rank::Preference;
use crate::record::RecordId;
use anyhow::{Context, Result};
use bytemuck::{Pod, Zeroable};
use std::path::Path;

/// MD5 of a text.
pub fn md5_of(text: &str) -> [u8; 16] {
    use md5::{Digest, Md5};
    Md5::digest(text.as_bytes()).into()
}

/// One record's entry in the exact-dedup index (fixed size, stored raw).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct KeyEntry {
    pub md5: [u8; 16],
    pub stars: u64,
    pub tiebreak: u64,
    pub row: u64,
    pub shard: u32,
    /// Position of the record in its shard's part file.
    pub seq: u32,
    pub license_allowed: u32,
    pub _pad: u32,
}

impl KeyEntry {
    pub fn new(md5: [u8; 16], pref: &Preference, seq: u32) -> KeyEntry {
        KeyEntry {
            md5,
            stars: pref.stars,
            tiebreak: pref.tiebreak,
            row: pref.id.row,
            shard: pref.id.shard,
            seq,
            license_allowed: pref.license_allowed as u32,
            _pad: 0,
        }
    }

    pub fn preference(&self) -> Preference {
        Preference {
            license_allowed: self.license_allowed != 0,
            stars: self.stars,
            tiebreak: self.tiebreak,
            id: RecordId {
                shard: self.shard,
                row: self.row,
            },
        }
    }
}

impl KeyEntry {
    /// The key that partitions the exact-dedup step: the first eight MD5
    /// bytes, big-endian, so that partition order is MD5 order.
    pub fn partition_key(bytes: &[u8]) -> u64 {
        u64::from_be_bytes(bytes[..8].try_into().expect("eight bytes"))
    }
}

/// Sorts a part's key entries by `(md5, preference)` and writes them to its
/// sidecar file (unsynced: the caller syncs the shard's files at once).
pub fn write_keys(path: &Path, entries: &mut [KeyEntry]) -> Result<()> {
    sort_entries(entries);
    crate::output::atomic::write_atomic_unsynced(path, bytemuck::cast_slice(entries))
}

fn sort_entries(entries: &mut [KeyEntry]) {
    entries.sort_unstable_by(|a, b| {
        a.md5
            .cmp(&b.md5)
            .then_with(|| a.preference().cmp(&b.preference()))
    });
}

/// Reads the entries of MD5 partition `p` of `parts` from a part's sorted
/// key sidecar.
pub fn read_key_partition(path: &Path, p: u32, parts: u32) -> Result<Vec<KeyEntry>> {
    let size = std::mem::size_of::<KeyEntry>();
    let file =
        SortedFile::open(path, size).with_context(|| format!("dedup keys {}", path.display()))?;
    let bytes = file
        .read_partition(p, parts, KeyEntry::partition_key)
        .with_context(|| format!("cannot read dedup keys {}", path.display()))?;
    Ok(bytemuck::pod_collect_to_vec(&bytes))
}

/// A record that lost to an identical copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Loser {
    pub shard: u32,
    pub seq: u32,
    pub kept: RecordId,
}

/// Result of exact dedup over some MD5 range.
#[derive(Debug, Default, PartialEq)]
pub struct ExactDedupResult {
    /// Sorted by `(shard, seq)`.
    pub losers: Vec<Loser>,
    /// Distinct MD5s.
    pub unique: u64,
    pub duplicates: u64,
}

/// Resolves every duplicate group among `entries` (all entries of the MD5s
/// they hold, in any order).
pub fn resolve(mut entries: Vec<KeyEntry>) -> ExactDedupResult {
    sort_entries(&mut entries);
    let mut result = ExactDedupResult::default();
    let mut i = 0;
    while i < entries.len() {
        let winner = entries[i];
        result.unique += 1;
        let mut j = i + 1;
        while j < entries.len() && entries[j].md5 == winner.md5 {
            let l = entries[j];
            result.losers.push(Loser {
                shard: l.shard,
                seq: l.seq,
                kept: RecordId {
                    shard: winner.shard,
                    row: winner.row,
                },
            });
            result.duplicates += 1;
            j += 1;
        }
        i = j;
    }
    result.losers.sort_unstable_by_key(|l| (l.shard, l.seq));
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(
        text: &str,
        allowed: bool,
        stars: u64,
        tiebreak: u64,
        shard: u32,
        seq: u32,
    ) -> KeyEntry {
        let pref = Preference {
            license_allowed: allowed,
            stars,
            tiebreak,
            id: RecordId {
                shard,
                row: seq as u64,
            },
        };
        KeyEntry::new(md5_of(text), &pref, seq)
    }

    fn run(entries: &[KeyEntry]) -> ExactDedupResult {
        resolve(entries.to_vec())
    }

    fn losers_of(r: &ExactDedupResult, shard: u32) -> Vec<Loser> {
        r.losers
            .iter()
            .filter(|l| l.shard == shard)
            .copied()
            .collect()
    }

    #[test]
    fn md5_matches_the_rfc_1321_vector() {
        assert_eq!(
            hex::encode(md5_of("abc")),
            "900150983cd24fb0d6963f7d28e17f72"
        );
    }

    #[test]
    fn the_copy_with_more_stars_survives_whatever_the_order() {
        let a = entry("same", true, 5, 1, 0, 0);
        let b = entry("same", true, 50, 2, 1, 0);
        let c = entry("other", true, 1, 3, 1, 1);
        for order in [vec![a, b, c], vec![c, b, a]] {
            let r = run(&order);
            assert_eq!((r.unique, r.duplicates), (2, 1));
            assert_eq!(
                losers_of(&r, 0),
                &[Loser {
                    shard: 0,
                    seq: 0,
                    kept: RecordId { shard: 1, row: 0 }
                }]
            );
        }
    }

    #[test]
    fn allowed_license_beats_stars_and_tiebreak_decides_equals() {
        let r = run(&[
            entry("x", false, 900, 0, 0, 0),
            entry("x", true, 1, 9, 0, 1),
        ]);
        assert_eq!(losers_of(&r, 0)[0].seq, 0);
        let r = run(&[entry("y", true, 1, 7, 0, 0), entry("y", true, 1, 3, 2, 4)]);
        assert_eq!(losers_of(&r, 0)[0].seq, 0);
        assert_eq!(losers_of(&r, 0)[0].kept, RecordId { shard: 2, row: 4 });
    }

    #[test]
    fn truncated_key_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        std::fs::write(&p, [0u8; 10]).unwrap();
        let e = read_key_partition(&p, 0, 1).unwrap_err();
        assert!(format!("{e:#}").contains("truncated"), "{e:#}");
    }

    #[test]
    fn partitions_of_sorted_sidecars_give_the_same_losers() {
        let dir = tempfile::tempdir().unwrap();
        let mut all = Vec::new();
        for shard in 0..3u32 {
            let mut entries: Vec<KeyEntry> = (0..200u32)
                .map(|seq| {
                    entry(
                        &format!("t{}", (seq * 7 + shard) % 150),
                        true,
                        0,
                        seq as u64,
                        shard,
                        seq,
                    )
                })
                .collect();
            all.extend_from_slice(&entries);
            write_keys(&dir.path().join(format!("{shard}.keys")), &mut entries).unwrap();
        }
        let whole = run(&all);
        assert!(whole.duplicates > 0);
        for parts in [1u32, 3, 16] {
            let mut merged = ExactDedupResult::default();
            for p in 0..parts {
                let mut entries = Vec::new();
                for shard in 0..3u32 {
                    entries.extend(
                        read_key_partition(&dir.path().join(format!("{shard}.keys")), p, parts)
                            .unwrap(),
                    );
                }
                let r = resolve(entries);
                merged.unique += r.unique;
                merged.duplicates += r.duplicates;
                merged.losers.extend(r.losers);
            }
            merged.losers.sort_unstable_by_key(|l| (l.shard, l.seq));
            assert_eq!(merged, whole, "{parts} partitions");
        }
    }
}
