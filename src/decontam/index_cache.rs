//! An on-disk cache of the built benchmark index, so that a run reads the
//! index a previous run built instead of building it again.
//!
//! Loading the bundled benchmarks and building both tiers costs about 0.4 s of
//! one core (`perf record`: the n-gram index 65%, parsing the benchmark JSON
//! 24%, the exact tier 5%): a fifth of `decontaminate` over 168 MB of code,
//! and the same again in every task of a cluster run. Reading the built index
//! back is one file read and a decode.
//!
//! ## Key
//! An entry is found by a 128-bit xxh3 hash of everything the index is a
//! function of:
//! - the cache format ([`FORMAT`]) and the build of the program (the
//!   `TRITTER_SOURCE_FINGERPRINT` of `build.rs`: a hash of every source file,
//!   `Cargo.toml` and `Cargo.lock`), so a build whose code could build a
//!   different index never reads an entry of another;
//! - the settings that shape the index: n-gram length, stop-list and
//!   rare-token thresholds, shortest exact string;
//! - for every planned benchmark, in order: its name, how it is read (which
//!   built-in, or a user file's fields), and for each of its files its name
//!   and a hash of its bytes.
//!
//! So a stale entry cannot be read: a changed benchmark file, setting or
//! build is a different key, and the old entry is left to eviction. The
//! settings that only judge the index's hits (`--min-matches`, flag-only,
//! the report) are not in the key: they are applied to the cached index
//! exactly as to a built one.
//!
//! ## Entry
//! `DIR/<key>.idx`: [`MAGIC`], the payload's length (u64, little-endian),
//! the payload ([`CachedIndex`], postcard), and the payload's xxh3-64. An
//! entry that is truncated, fails its checksum, does not decode, holds
//! another key or arrays that the builders could not have made is not used:
//! the index is built and the entry written again, and the description says
//! so. Entries are written to a temporary file and renamed into place, so
//! tasks that build the same index at once each write a whole entry and a
//! reader sees one of them whole. After a write only the [`MAX_ENTRIES`]
//! most recently used entries are kept (a hit refreshes its entry's
//! modification time).
//!
//! A cache that cannot be written (read-only, full) never fails a run: the
//! index built for it is used and the description names the error.

use super::exact::ExactParts;
use super::index::NgramParts;
use super::load::{Loader, PlannedBenchmark};
use super::samples::ItemText;
use super::{DecontamConfig, LoadedBenchmark};
use crate::output::atomic::write_atomic_unsynced;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use xxhash_rust::xxh3::{xxh3_128, xxh3_64, Xxh3};

/// Version of the entry layout and of the key's material; bumped when either
/// changes.
pub const FORMAT: u32 = 1;
/// First bytes of every entry.
pub const MAGIC: &[u8; 8] = b"TRTDXIDX";
/// Entries kept after a write (the bundled benchmarks make an entry of
/// about 8 MB).
pub const MAX_ENTRIES: usize = 8;
/// File name extension of an entry.
const EXTENSION: &str = "idx";

/// The build fingerprint the key starts from.
const BUILD: &str = env!("TRITTER_SOURCE_FINGERPRINT");

/// The cache used without `--index-cache`: `$XDG_CACHE_HOME/tritter-gpu/decontam-index`,
/// else `~/.cache/tritter-gpu/decontam-index`; none without either variable.
pub fn default_dir() -> Option<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(x).join("tritter-gpu").join("decontam-index"));
    }
    std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|h| {
        PathBuf::from(h)
            .join(".cache")
            .join("tritter-gpu")
            .join("decontam-index")
    })
}

/// A built index in the form an entry holds it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CachedIndex {
    /// The key it was stored under (checked on read: a copied or renamed
    /// entry is not taken for another key's).
    pub key: u128,
    pub benchmarks: Vec<LoadedBenchmark>,
    /// Per item: its benchmark's index and its id.
    pub items: Vec<(u16, String)>,
    pub exact: ExactParts,
    pub ngram: NgramParts,
    pub item_texts: Vec<ItemText>,
}

impl CachedIndex {
    /// The benchmarks' names, by benchmark index.
    pub fn names(&self) -> Vec<String> {
        self.benchmarks.iter().map(|b| b.name.clone()).collect()
    }
}

/// What a lookup found.
#[derive(Debug)]
pub enum Lookup {
    Hit(Box<CachedIndex>),
    /// No entry for the key.
    Miss,
    /// An entry that cannot be used, and why.
    Unusable(String),
}

/// One cache directory.
#[derive(Clone, Debug)]
pub struct IndexCache {
    dir: PathBuf,
}

/// Appends `bytes` with its length, so that no two sequences of fields hash
/// the same stream.
fn put(h: &mut Xxh3, bytes: &[u8]) {
    h.update(&(bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

impl IndexCache {
    pub fn new(dir: &Path) -> IndexCache {
        IndexCache {
            dir: dir.to_path_buf(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the entry of `key` is.
    pub fn entry_path(&self, key: u128) -> PathBuf {
        self.dir.join(format!("{key:032x}.{EXTENSION}"))
    }

    /// The cache `cfg` names, with the key of the index it builds over
    /// `planned`; `None` without a cache or without a key (see
    /// [`IndexCache::key`]).
    pub fn for_config(
        cfg: &DecontamConfig,
        planned: &[PlannedBenchmark],
    ) -> Option<(IndexCache, u128)> {
        let dir = cfg.index_cache.as_deref()?;
        Some((IndexCache::new(dir), IndexCache::key(cfg, planned)?))
    }

    /// The key of the index `cfg` builds over `planned`, reading every
    /// benchmark file; `None` when a file cannot be read (loading it reports
    /// the error as it would without a cache).
    pub fn key(cfg: &DecontamConfig, planned: &[PlannedBenchmark]) -> Option<u128> {
        let mut h = Xxh3::new();
        h.update(&FORMAT.to_le_bytes());
        put(&mut h, BUILD.as_bytes());
        for setting in [
            cfg.ngram as u64,
            cfg.min_exact_len as u64,
            cfg.stop_groups as u64,
            cfg.rare_fraction.to_bits(),
        ] {
            h.update(&setting.to_le_bytes());
        }
        h.update(&(planned.len() as u64).to_le_bytes());
        for p in planned {
            put(&mut h, p.name.as_bytes());
            match &p.loader {
                Loader::Local(b, _) => {
                    put(&mut h, b"local");
                    put(&mut h, b.name().as_bytes());
                }
                Loader::Hub(b, _) => {
                    put(&mut h, b"hub");
                    put(&mut h, b.name().as_bytes());
                }
                Loader::User(u) => {
                    put(&mut h, b"user");
                    h.update(&(u.fields.len() as u64).to_le_bytes());
                    for f in &u.fields {
                        put(&mut h, f.as_bytes());
                    }
                }
            }
            let files = p.files();
            h.update(&(files.len() as u64).to_le_bytes());
            for (name, path) in files {
                let bytes = std::fs::read(path).ok()?;
                put(&mut h, name.as_bytes());
                h.update(&(bytes.len() as u64).to_le_bytes());
                h.update(&xxh3_128(&bytes).to_le_bytes());
            }
        }
        Some(h.digest128())
    }

    /// The entry stored under `key`.
    pub fn get(&self, key: u128) -> Lookup {
        let path = self.entry_path(key);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Lookup::Miss,
            Err(e) => return Lookup::Unusable(format!("cannot read {}: {e}", path.display())),
        };
        match decode(&bytes, key) {
            Ok(entry) => {
                // Most recently used first at eviction; a read-only cache
                // simply keeps its order.
                if let Ok(f) = std::fs::File::options().append(true).open(&path) {
                    let _ = f.set_modified(std::time::SystemTime::now());
                }
                Lookup::Hit(Box::new(entry))
            }
            Err(e) => Lookup::Unusable(format!("{}: {e:#}", path.display())),
        }
    }

    /// Stores `entry` under its key, then evicts all but the
    /// [`MAX_ENTRIES`] most recently used entries. Returns the entry's path.
    pub fn put(&self, entry: &CachedIndex) -> Result<PathBuf> {
        crate::pipeline::cleanup::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create {}", self.dir.display()))?;
        let path = self.entry_path(entry.key);
        write_atomic_unsynced(&path, &encode(entry)?)?;
        self.evict(&path);
        Ok(path)
    }

    /// Removes the least recently used entries beyond [`MAX_ENTRIES`],
    /// never `keep`. Entries removed by another process meanwhile are no
    /// error; nor is an entry that cannot be removed (the next write tries
    /// again).
    fn evict(&self, keep: &Path) {
        let Ok(dir) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut entries: Vec<(std::time::SystemTime, PathBuf)> = dir
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == EXTENSION))
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .collect();
        // Newest first; ties by name, so that every process agrees.
        entries.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        let mut kept = 1;
        for (_, p) in entries {
            if p == keep {
                continue;
            }
            if kept < MAX_ENTRIES {
                kept += 1;
            } else {
                let _ = std::fs::remove_file(&p);
            }
        }
    }
}

/// The bytes of an entry.
pub fn encode(entry: &CachedIndex) -> Result<Vec<u8>> {
    let payload = postcard::to_stdvec(entry).context("cannot encode the index")?;
    let mut out = Vec::with_capacity(payload.len() + 24);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&payload);
    out.extend_from_slice(&xxh3_64(&payload).to_le_bytes());
    Ok(out)
}

/// The entry in `bytes`, if it is whole and stored under `key`.
pub fn decode(bytes: &[u8], key: u128) -> Result<CachedIndex> {
    let Some(rest) = bytes.strip_prefix(MAGIC.as_slice()) else {
        bail!("not an index cache entry (bad magic)");
    };
    if rest.len() < 16 {
        bail!("truncated entry ({} bytes)", bytes.len());
    }
    let (len, rest) = rest.split_at(8);
    let len = u64::from_le_bytes(len.try_into().expect("8 bytes"));
    if rest.len() as u64 != len.saturating_add(8) {
        bail!(
            "truncated entry ({} payload bytes of {len})",
            rest.len().saturating_sub(8)
        );
    }
    let (payload, sum) = rest.split_at(len as usize);
    if xxh3_64(payload).to_le_bytes() != sum {
        bail!("checksum mismatch");
    }
    let entry: CachedIndex = postcard::from_bytes(payload).context("cannot decode the entry")?;
    if entry.key != key {
        bail!("entry of another key ({:032x})", entry.key);
    }
    Ok(entry)
}
