//! A cache-sized filter in front of the n-gram table: most windows of a file
//! are rejected by one probe of a blocked Bloom filter, keyed by a hash that
//! rolls from window to window in O(1), before the window's real n-gram hash
//! ([`super::ngram::ngram_hash`], xxh3 over its 13 token hashes) is computed
//! and looked up.
//!
//! ## Why the verdicts cannot change
//! The filter holds the *window key* of every n-gram that went into the table,
//! computed at index build from the same token hashes. A file window whose
//! n-gram hash is in the table has the same token hashes as that benchmark
//! window (up to a 64-bit xxh3 collision), so the same window key, so the
//! filter passes it: the filter has no false negatives. False positives only
//! cost a lookup that misses, as every window did before the filter.
//!
//! ## The window key
//! `K(t_0..t_{n-1}) = fmix64(sum_i t_i * B^(n-1-i))` over the token hashes,
//! arithmetic mod 2^64 with an odd `B`: a polynomial (Rabin-Karp) hash, so the
//! next window's sum is `(S - t_0 * B^(n-1)) * B + t_n`, two multiplications
//! per token instead of hashing 104 bytes; the token hashes are already
//! uniformly random, and `fmix64` (MurmurHash3's finaliser, a bijection)
//! spreads the high bits of the sum into the low bits the filter uses.
//!
//! ## The filter
//! One 64-bit word per key, four bits set in it (a "blocked" Bloom filter,
//! Putze, Sanders, Singler 2007): a probe is one load and one compare. The
//! word count is a power of two with 4 to 8 keys per word (false positives
//! 0.4% to 2.4%): with the 299,798 n-grams of the bundled benchmarks it is
//! 2^16 words (512 KiB, fits the 1 MiB L2 of a core here), about 0.4%.

/// Multiplier of the polynomial window hash (odd; the golden ratio's bits).
const B: u64 = 0x9E37_79B9_7F4A_7C15;

/// MurmurHash3's 64-bit finaliser.
#[inline]
pub fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

/// The window key of a window's token hashes, computed directly.
pub fn window_key(window: impl IntoIterator<Item = u64>) -> u64 {
    fmix64(
        window
            .into_iter()
            .fold(0u64, |s, t| s.wrapping_mul(B).wrapping_add(t)),
    )
}

/// Window keys of every window of `n` tokens of a stream, rolled.
pub struct Roller {
    n: usize,
    /// `B^(n-1)`.
    top: u64,
}

impl Roller {
    pub fn new(n: usize) -> Roller {
        assert!(n >= 1, "n-gram length must be at least 1");
        let mut top = 1u64;
        for _ in 1..n {
            top = top.wrapping_mul(B);
        }
        Roller { n, top }
    }

    /// Calls `f(i, key)` for the window starting at every `i`, in order.
    #[inline]
    pub fn for_each(&self, hashes: &[u64], mut f: impl FnMut(usize, u64)) {
        let n = self.n;
        if hashes.len() < n {
            return;
        }
        let mut s = hashes[..n]
            .iter()
            .fold(0u64, |s, &t| s.wrapping_mul(B).wrapping_add(t));
        f(0, fmix64(s));
        for i in 1..=hashes.len() - n {
            s = s
                .wrapping_sub(hashes[i - 1].wrapping_mul(self.top))
                .wrapping_mul(B)
                .wrapping_add(hashes[i + n - 1]);
            f(i, fmix64(s));
        }
    }

    /// Calls `f(i, key)` for the windows starting at each `i` in `starts`, in
    /// order (every window must fit: `starts.end + n - 1 <= hashes.len()`).
    #[inline]
    pub fn for_each_in(
        &self,
        hashes: &[u64],
        starts: std::ops::Range<usize>,
        mut f: impl FnMut(usize, u64),
    ) {
        if starts.is_empty() {
            return;
        }
        let n = self.n;
        let first = starts.start;
        let mut s = hashes[first..first + n]
            .iter()
            .fold(0u64, |s, &t| s.wrapping_mul(B).wrapping_add(t));
        f(first, fmix64(s));
        for i in first + 1..starts.end {
            s = s
                .wrapping_sub(hashes[i - 1].wrapping_mul(self.top))
                .wrapping_mul(B)
                .wrapping_add(hashes[i + n - 1]);
            f(i, fmix64(s));
        }
    }
}

/// Blocked Bloom filter over window keys.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NgramFilter {
    words: Vec<u64>,
    mask: usize,
}

#[inline]
fn bits(key: u64) -> u64 {
    (1u64 << (key & 63))
        | (1u64 << ((key >> 6) & 63))
        | (1u64 << ((key >> 12) & 63))
        | (1u64 << ((key >> 18) & 63))
}

impl NgramFilter {
    /// A filter holding `keys` (any order, repeats allowed).
    pub fn new(keys: &[u64]) -> NgramFilter {
        let words = (keys.len() / 8).max(1).next_power_of_two();
        let mut f = NgramFilter {
            words: vec![0; words],
            mask: words - 1,
        };
        for &k in keys {
            f.words[(k >> 40) as usize & f.mask] |= bits(k);
        }
        f
    }

    /// Whether the word count is a power of two and the mask matches it (as
    /// [`NgramFilter::new`] makes them), so a probe stays in bounds.
    pub fn is_well_formed(&self) -> bool {
        self.words.len().is_power_of_two() && self.mask == self.words.len() - 1
    }

    /// False only if `key` was not inserted.
    #[inline]
    pub fn may_contain(&self, key: u64) -> bool {
        let b = bits(key);
        self.words[(key >> 40) as usize & self.mask] & b == b
    }

    /// A filter that passes every key (for tests of what sits behind it).
    #[cfg(test)]
    pub fn pass_all() -> NgramFilter {
        NgramFilter {
            words: vec![u64::MAX],
            mask: 0,
        }
    }

    /// Heap bytes.
    pub fn memory_usage(&self) -> usize {
        self.words.len() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolled_keys_equal_direct_keys() {
        let hashes: Vec<u64> = (0..100u64).map(|i| fmix64(i * 7 + 1)).collect();
        for n in [1, 2, 13, 64] {
            let r = Roller::new(n);
            let mut seen = 0;
            r.for_each(&hashes, |i, k| {
                assert_eq!(
                    k,
                    window_key(hashes[i..i + n].iter().copied()),
                    "n={n} i={i}"
                );
                seen += 1;
            });
            assert_eq!(seen, hashes.len() + 1 - n);
        }
        let mut none = true;
        Roller::new(5).for_each(&hashes[..4], |_, _| none = false);
        assert!(none);
        let r = Roller::new(13);
        for range in [0..1, 5..9, 0..88, 87..88, 40..40] {
            let mut got = Vec::new();
            r.for_each_in(&hashes, range.clone(), |i, k| got.push((i, k)));
            let want: Vec<(usize, u64)> = range
                .map(|i| (i, window_key(hashes[i..i + 13].iter().copied())))
                .collect();
            assert_eq!(got, want);
        }
    }

    #[test]
    fn filter_has_no_false_negatives_and_few_false_positives() {
        let keys: Vec<u64> = (0..300_000u64).map(fmix64).collect();
        let f = NgramFilter::new(&keys);
        assert!(keys.iter().all(|&k| f.may_contain(k)));
        let fp = (1_000_000..1_200_000u64)
            .filter(|&i| f.may_contain(fmix64(i)))
            .count();
        // 300k keys in 2^16 words: about 0.4% expected.
        assert!(fp < 2_000, "{fp} false positives in 200,000");
        assert!(!NgramFilter::new(&[]).may_contain(fmix64(3)));
    }
}
