//! The heavy ops, named once, with their scalar reference implementations.
//!
//! Every backend (CPU, CUDA, wgpu) must reproduce these functions bit for bit.
//! They therefore use 32-bit integer arithmetic only (WGSL has no 64-bit
//! integers): 64-bit values cross the GPU boundary as `(lo, hi)` pairs of u32.
//!
//! | op                  | Backend method        | CUDA `__global__`      | WGSL entry point      |
//! |---------------------|-----------------------|------------------------|-----------------------|
//! | MinHash signatures  | `minhash_signatures`  | `minhash_signatures`   | `minhash_signatures`  |
//! | LSH band hashes     | `band_hashes`         | `band_hashes`          | `band_hashes`         |
//! | n-gram membership   | `ngram_membership`    | `ngram_membership`     | `ngram_membership`    |
//!
//! ## MinHash
//! The CPU tokenises and hashes each shingle to a well-mixed u32 `x` (see the
//! near-dedup module). Permutation `i` is `h_i(x) = a_i * x + b_i mod 2^32`
//! with `a_i` odd, which makes `h_i` a bijection of the 32-bit space; the
//! signature is `sig[i] = min over shingles of h_i(x)`, or `u32::MAX` for a
//! document without shingles. `a_i, b_i` come from splitmix64 of a fixed seed
//! ([`Permutations::new`]) and are recorded in the run's metadata.
//!
//! ## Band hashes
//! A signature of `bands * rows` values is cut into `bands` consecutive runs of
//! `rows` values. Band `j` hashes to 64 bits: the high word is MurmurHash3
//! (x86, 32-bit) of the rows' little-endian bytes with seed `2j`, the low word
//! the same with seed `2j + 1`. Two independent 32-bit hashes keep spurious
//! bucket collisions negligible at 57M documents (about n^2 / 2^65 per band)
//! while staying within 32-bit arithmetic.
//!
//! ## n-gram membership
//! Benchmark n-gram hashes (u64) sit in a sorted, deduplicated table. The op
//! returns, for each query hash, its index in the table or [`NGRAM_MISS`].
//! Binary search is deterministic and maps directly to GPU threads.

/// Returned by [`ngram_lookup`] for a hash absent from the table.
pub const NGRAM_MISS: u32 = u32::MAX;

/// Signature value of a permutation over a document with no shingles.
pub const EMPTY_SIGNATURE_VALUE: u32 = u32::MAX;

/// A batch of documents as a flat buffer of shingle hashes plus offsets:
/// document `d` owns `hashes[offsets[d]..offsets[d + 1]]`.
#[derive(Clone, Copy, Debug)]
pub struct ShingleBatch<'a> {
    pub hashes: &'a [u32],
    pub offsets: &'a [u32],
}

impl<'a> ShingleBatch<'a> {
    pub fn docs(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    pub fn doc(&self, d: usize) -> &'a [u32] {
        &self.hashes[self.offsets[d] as usize..self.offsets[d + 1] as usize]
    }
}

/// Owned form of [`ShingleBatch`], for building batches.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShingleBuffer {
    pub hashes: Vec<u32>,
    pub offsets: Vec<u32>,
}

impl ShingleBuffer {
    pub fn new() -> ShingleBuffer {
        ShingleBuffer {
            hashes: Vec::new(),
            offsets: vec![0],
        }
    }

    /// Appends one document's shingle hashes.
    pub fn push_doc(&mut self, shingles: &[u32]) {
        self.hashes.extend_from_slice(shingles);
        self.offsets.push(self.hashes.len() as u32);
    }

    pub fn as_batch(&self) -> ShingleBatch<'_> {
        ShingleBatch {
            hashes: &self.hashes,
            offsets: &self.offsets,
        }
    }

    pub fn docs(&self) -> usize {
        self.offsets.len() - 1
    }

    pub fn clear(&mut self) {
        self.hashes.clear();
        self.offsets.truncate(1);
    }
}

/// The MinHash permutations `h_i(x) = a_i * x + b_i mod 2^32`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Permutations {
    pub seed: u64,
    pub a: Vec<u32>,
    pub b: Vec<u32>,
}

impl Permutations {
    /// `num_perm` permutations drawn from splitmix64 seeded with `seed`; each
    /// `a_i` is forced odd so that `h_i` is a bijection.
    pub fn new(num_perm: usize, seed: u64) -> Permutations {
        let mut state = seed;
        let mut a = Vec::with_capacity(num_perm);
        let mut b = Vec::with_capacity(num_perm);
        for _ in 0..num_perm {
            let r = splitmix64(&mut state);
            a.push((r as u32) | 1);
            b.push((r >> 32) as u32);
        }
        Permutations { seed, a, b }
    }

    pub fn len(&self) -> usize {
        self.a.len()
    }

    pub fn is_empty(&self) -> bool {
        self.a.is_empty()
    }
}

/// splitmix64 (Steele, Lea, Flood 2014): the standard seeder.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Reference MinHash signature of one document: `out[i] = min_x a_i*x + b_i`.
pub fn minhash_signature(shingles: &[u32], perms: &Permutations, out: &mut [u32]) {
    debug_assert_eq!(out.len(), perms.len());
    out.fill(EMPTY_SIGNATURE_VALUE);
    for &x in shingles {
        for ((o, &a), &b) in out.iter_mut().zip(&perms.a).zip(&perms.b) {
            let h = a.wrapping_mul(x).wrapping_add(b);
            if h < *o {
                *o = h;
            }
        }
    }
}

/// LSH layout: `bands * rows` must not exceed the signature length; trailing
/// permutations beyond `bands * rows` take part in verification only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BandLayout {
    pub bands: u32,
    pub rows: u32,
}

/// MurmurHash3 x86_32 over `words` taken as little-endian bytes.
pub fn murmur3_32_words(words: &[u32], seed: u32) -> u32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;
    let mut h = seed;
    for &w in words {
        let mut k = w.wrapping_mul(C1);
        k = k.rotate_left(15);
        k = k.wrapping_mul(C2);
        h ^= k;
        h = h.rotate_left(13);
        h = h.wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    h ^= (words.len() as u32).wrapping_mul(4);
    fmix32(h)
}

/// MurmurHash3's 32-bit finaliser: a bijective avalanche mix.
pub fn fmix32(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    h
}

/// Reference hash of band `band` (its `rows` signature values).
pub fn band_hash(rows: &[u32], band: u32) -> u64 {
    let hi = murmur3_32_words(rows, band.wrapping_mul(2));
    let lo = murmur3_32_words(rows, band.wrapping_mul(2).wrapping_add(1));
    ((hi as u64) << 32) | lo as u64
}

/// Reference band hashes of one signature.
pub fn band_hashes_of(signature: &[u32], layout: BandLayout, out: &mut [u64]) {
    debug_assert_eq!(out.len(), layout.bands as usize);
    let r = layout.rows as usize;
    for (j, o) in out.iter_mut().enumerate() {
        *o = band_hash(&signature[j * r..(j + 1) * r], j as u32);
    }
}

/// A sorted, deduplicated table of n-gram hashes. Its generation is unique
/// per table built in this process and its keys cannot change after
/// construction (the fields are private), so GPU backends can key the upload
/// they cache by the generation alone.
#[derive(Debug)]
pub struct NgramTable {
    keys: Vec<u64>,
    generation: u64,
}

impl NgramTable {
    pub fn new(mut keys: Vec<u64>) -> NgramTable {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(1);
        keys.sort_unstable();
        keys.dedup();
        NgramTable {
            keys,
            generation: NEXT.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// The keys, sorted and without repeats.
    pub fn keys(&self) -> &[u64] {
        &self.keys
    }

    /// Unique per table built in this process.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Reference membership: index of `query` in `keys` or [`NGRAM_MISS`].
pub fn ngram_lookup(query: u64, keys: &[u64]) -> u32 {
    match keys.binary_search(&query) {
        Ok(i) => i as u32,
        Err(_) => NGRAM_MISS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur3_matches_the_published_vectors() {
        // Reference values of MurmurHash3_x86_32 on 4-byte inputs.
        assert_eq!(murmur3_32_words(&[], 0), 0);
        assert_eq!(murmur3_32_words(&[], 1), 0x514E_28B7);
        assert_eq!(
            murmur3_32_words(&[u32::from_le_bytes(*b"test")], 0),
            0xBA6B_D213
        );
    }

    #[test]
    fn permutations_are_odd_and_seeded() {
        let p = Permutations::new(64, 42);
        assert!(p.a.iter().all(|a| a & 1 == 1));
        assert_eq!(p, Permutations::new(64, 42));
        assert_ne!(p, Permutations::new(64, 43));
    }

    #[test]
    fn empty_document_signature_is_all_max() {
        let p = Permutations::new(8, 1);
        let mut out = vec![0; 8];
        minhash_signature(&[], &p, &mut out);
        assert!(out.iter().all(|&v| v == EMPTY_SIGNATURE_VALUE));
    }

    #[test]
    fn signature_is_the_minimum_over_shingles() {
        let p = Permutations {
            seed: 0,
            a: vec![1, 3],
            b: vec![0, 5],
        };
        let mut out = vec![0; 2];
        minhash_signature(&[10, 2, 7], &p, &mut out);
        assert_eq!(out, vec![2, 11]);
    }

    #[test]
    fn ngram_lookup_finds_members_only() {
        let t = NgramTable::new(vec![9, 1, 5, 5]);
        assert_eq!(t.keys(), [1, 5, 9]);
        assert_eq!(ngram_lookup(5, t.keys()), 1);
        assert_eq!(ngram_lookup(6, t.keys()), NGRAM_MISS);
        assert_ne!(t.generation(), NgramTable::new(vec![1]).generation());
    }
}
