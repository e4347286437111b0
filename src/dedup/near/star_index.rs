//! Candidate index for star clustering: linear in the component's size.
//!
//! [`super::cluster::stars`] compares every unassigned member with every
//! centre, `k * c` verifications for a component of `k` members and `c`
//! kept centres. A component made of a large family plus chains of edited
//! copies has both `k` and `c` in the thousands (5,942 members at a million
//! files took seconds). Most of those pairs cannot pass: they share too
//! little. We therefore give each member a few *tokens* with one guarantee:
//!
//! > if a pair passes the membership threshold, the two members share a token.
//!
//! and compare a centre only with the unassigned later members that share a
//! token with it (an inverted index, the members of each token's posting
//! list in preference order). Because every pair that could pass is still
//! compared, in the same order, the stars are identical to the all-pairs
//! ones: this is a filter, never an approximation.
//!
//! * **Exact Jaccard: prefix filter** (Chaudhuri, Ganti and Kaushik 2006;
//!   Bayardo, Ma and Srikant 2007, "All-Pairs"). Order all shingles of the
//!   component by document frequency (rare first, then by value). If
//!   `J(x, y) >= t` the overlap `o = |x ∩ y|` is at least `t |x ∪ y| >=
//!   ceil(t |x|)`; the smallest common shingle in that order has the other
//!   `o - 1` after it in both sets, so it lies in the first
//!   `|x| - ceil(t |x|) + 1` shingles of `x` and likewise of `y`. Those
//!   prefixes are the tokens; rare shingles first keeps posting lists short.
//!   The threshold used for the prefix length is lowered by `1e-9`, so a pair
//!   that passes through float rounding is never filtered out, and a size
//!   filter (`min / max < t` cannot reach `t`) skips pairs before the merge.
//! * **Signature estimate: pigeonhole blocks.** A pair passes with at least
//!   `m` of `n` agreeing MinHash values, so at most `d = n - m` disagree.
//!   Cut the signature into `d + 1` contiguous blocks: some block agrees
//!   entirely. The tokens are the hashes of `(block number, block values)`;
//!   a hash collision only adds a candidate.
//!
//! Cost: posting lists are compacted as they are read (assigned members
//! dropped, each once), so a centre pays for its candidates only, and the
//! whole component for its tokens plus the candidate verifications: linear in
//! the component's size for families of copies, whatever the number of
//! centres.
//!
//! DETERMINISM: tokens depend only on the members' sets or signatures, and
//! candidates are verified in member order, exactly as in the all-pairs loop.

use super::cluster::Star;
use super::verify::Thresholds;
use rayon::prelude::*;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Hasher for keys that are already uniform hashes (shingle hashes, block
/// hashes): one multiply spreads them; SipHash would cost more than the
/// rest of the index.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ b as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u32(&mut self, v: u32) {
        self.write_u64(v as u64);
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0 ^ v).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

type KeyMap<K, V> = HashMap<K, V, BuildHasherDefault<KeyHasher>>;

/// Tokens per member, in compressed rows: member `i` has
/// `keys[offsets[i]..offsets[i + 1]]`.
pub struct Tokens {
    offsets: Vec<u32>,
    keys: Vec<u64>,
}

impl Tokens {
    fn of(&self, i: usize) -> &[u64] {
        &self.keys[self.offsets[i] as usize..self.offsets[i + 1] as usize]
    }

    fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Prefix-filter tokens of sorted, deduplicated shingle sets for exact
    /// Jaccard at `jaccard`.
    pub fn prefixes(sets: &[&[u32]], jaccard: f64) -> Tokens {
        let mut freq: KeyMap<u32, u32> = KeyMap::default();
        for s in sets {
            for &v in s.iter() {
                *freq.entry(v).or_insert(0) += 1;
            }
        }
        let t = (jaccard - 1e-9).max(0.0);
        let mut offsets = Vec::with_capacity(sets.len() + 1);
        let mut keys = Vec::new();
        let mut order: Vec<(u32, u32)> = Vec::new();
        offsets.push(0);
        for s in sets {
            let n = s.len();
            let overlap = (t * n as f64).ceil() as usize;
            let p = (n + 1).saturating_sub(overlap.max(1)).min(n);
            if p > 0 {
                order.clear();
                order.extend(s.iter().map(|&v| (freq[&v], v)));
                if p < n {
                    order.select_nth_unstable(p - 1);
                }
                keys.extend(order[..p].iter().map(|&(_, v)| v as u64));
            }
            offsets.push(keys.len() as u32);
        }
        Tokens { offsets, keys }
    }

    /// Pigeonhole block tokens of `num_perm`-long signatures (concatenated
    /// in `sigs`) for at least `matches` agreeing values.
    pub fn blocks(sigs: &[u32], num_perm: usize, matches: u32) -> Tokens {
        let k = sigs.len().checked_div(num_perm).unwrap_or(0);
        let blocks = (num_perm - (matches as usize).min(num_perm) + 1).min(num_perm.max(1));
        let mut offsets = Vec::with_capacity(k + 1);
        let mut keys = Vec::with_capacity(k * blocks);
        offsets.push(0);
        let mut buf: Vec<u8> = Vec::with_capacity(num_perm * 4 + 4);
        for i in 0..k {
            let sig = &sigs[i * num_perm..(i + 1) * num_perm];
            for b in 0..blocks {
                let (lo, hi) = (b * num_perm / blocks, (b + 1) * num_perm / blocks);
                buf.clear();
                buf.extend_from_slice(&(b as u32).to_le_bytes());
                for v in &sig[lo..hi] {
                    buf.extend_from_slice(&v.to_le_bytes());
                }
                keys.push(xxhash_rust::xxh3::xxh3_64(&buf));
            }
            offsets.push(keys.len() as u32);
        }
        Tokens { offsets, keys }
    }
}

/// A centre with at least this many candidates verifies them in parallel.
const PARALLEL_CANDIDATES: usize = 64;

/// Greedy stars (same rule and output as [`super::cluster::stars`]) that
/// verify a centre only against the later unassigned members sharing one
/// of its tokens. `similar(i, j)` must return `None` for every pair that
/// shares no token.
///
/// A centre's candidates are verified independently of each other (each
/// check reads the centre and the candidate only; assignments happen after
/// all checks, in candidate order), so a centre with many candidates checks
/// them in parallel: one family of 200,000 copies is one centre with 200,000
/// candidates, and otherwise one thread. The stars are the same either way.
pub fn indexed_stars(
    tokens: &Tokens,
    similar: impl Fn(usize, usize) -> Option<f64> + Sync,
) -> Vec<Star> {
    let len = tokens.len();
    // Posting lists: (key, member) sorted, then runs of one key.
    let mut pairs: Vec<(u64, u32)> = Vec::with_capacity(tokens.keys.len());
    for i in 0..len {
        pairs.extend(tokens.of(i).iter().map(|&k| (k, i as u32)));
    }
    pairs.sort_unstable();
    pairs.dedup();
    let mut posting: Vec<u32> = pairs.iter().map(|&(_, m)| m).collect();
    let mut list_start: Vec<u32> = Vec::new();
    let mut list_len: Vec<u32> = Vec::new();
    let mut list_of: KeyMap<u64, u32> = KeyMap::default();
    let mut i = 0;
    while i < pairs.len() {
        let key = pairs[i].0;
        let start = i;
        while i < pairs.len() && pairs[i].0 == key {
            i += 1;
        }
        list_of.insert(key, list_start.len() as u32);
        list_start.push(start as u32);
        list_len.push((i - start) as u32);
    }
    drop(pairs);
    // Each member's lists, once.
    let mut lists: Vec<u32> = Vec::with_capacity(tokens.keys.len());
    let mut lists_at: Vec<u32> = Vec::with_capacity(len + 1);
    lists_at.push(0);
    for m in 0..len {
        let from = lists.len();
        lists.extend(tokens.of(m).iter().map(|k| list_of[k]));
        lists[from..].sort_unstable();
        let mut w = from;
        for r in from..lists.len() {
            if r == from || lists[r] != lists[w - 1] {
                lists[w] = lists[r];
                w += 1;
            }
        }
        lists.truncate(w);
        lists_at.push(lists.len() as u32);
    }
    drop(list_of);

    let mut assigned = vec![false; len];
    let mut seen = vec![u32::MAX; len];
    let mut cands: Vec<u32> = Vec::new();
    let mut out = Vec::new();
    for c in 0..len {
        if assigned[c] {
            continue;
        }
        assigned[c] = true;
        cands.clear();
        for &l in &lists[lists_at[c] as usize..lists_at[c + 1] as usize] {
            let (s, n) = (
                list_start[l as usize] as usize,
                list_len[l as usize] as usize,
            );
            // Compact: every member up to `c` is assigned by now, so what
            // stays is later and unassigned; each entry is dropped once.
            let mut w = s;
            for r in s..s + n {
                let m = posting[r];
                if assigned[m as usize] {
                    continue;
                }
                posting[w] = m;
                w += 1;
                if seen[m as usize] != c as u32 {
                    seen[m as usize] = c as u32;
                    cands.push(m);
                }
            }
            list_len[l as usize] = (w - s) as u32;
        }
        cands.sort_unstable();
        let verdicts: Vec<Option<f64>> = if cands.len() >= PARALLEL_CANDIDATES {
            cands.par_iter().map(|&m| similar(c, m as usize)).collect()
        } else {
            cands.iter().map(|&m| similar(c, m as usize)).collect()
        };
        let mut members = Vec::new();
        for (&m, verdict) in cands.iter().zip(verdicts) {
            if let Some(s) = verdict {
                assigned[m as usize] = true;
                members.push((m as usize, s));
            }
        }
        if !members.is_empty() {
            out.push(Star { centre: c, members });
        }
    }
    out
}

/// Stars of one component verified with exact Jaccard of its members'
/// sorted shingle sets (in preference order).
pub fn exact_stars(sets: &[&[u32]], thresholds: &Thresholds) -> Vec<Star> {
    let t = thresholds.jaccard;
    let member = |a: usize, b: usize| -> Option<f64> {
        let (x, y) = (sets[a], sets[b]);
        let (lo, hi) = (x.len().min(y.len()), x.len().max(y.len()));
        // The intersection is at most the smaller set and the union at least
        // the larger, so the rounded ratio can only be lower.
        if hi == 0 || (lo as f64 / hi as f64) < t {
            return None;
        }
        thresholds.member_passes_exact(x, y)
    };
    if t <= 1e-9 {
        // Disjoint sets pass at a zero threshold: no filter is safe.
        return super::cluster::stars(sets.len(), member);
    }
    indexed_stars(&Tokens::prefixes(sets, t), member)
}

/// Stars of one component verified on `num_perm`-long signatures
/// (concatenated in preference order).
pub fn signature_stars(sigs: &[u32], num_perm: usize, thresholds: &Thresholds) -> Vec<Star> {
    let len = sigs.len().checked_div(num_perm).unwrap_or(0);
    let member = |a: usize, b: usize| {
        thresholds.member_passes_signature(
            &sigs[a * num_perm..(a + 1) * num_perm],
            &sigs[b * num_perm..(b + 1) * num_perm],
        )
    };
    if thresholds.member_matches == 0 || num_perm == 0 {
        return super::cluster::stars(len, member);
    }
    indexed_stars(
        &Tokens::blocks(sigs, num_perm, thresholds.member_matches),
        member,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backends::ops::splitmix64;
    use crate::dedup::near::cluster::stars;

    /// Random families of sets with edits, so that many pairs sit near the
    /// threshold on both sides.
    fn families(seed: u64, n: usize) -> Vec<Vec<u32>> {
        let mut s = seed;
        let bases: Vec<Vec<u32>> = (0..4)
            .map(|_| (0..200).map(|_| splitmix64(&mut s) as u32).collect())
            .collect();
        (0..n)
            .map(|_| {
                let b = &bases[(splitmix64(&mut s) % 4) as usize];
                let edits = (splitmix64(&mut s) % 80) as usize;
                let mut v = b.clone();
                for _ in 0..edits {
                    let at = (splitmix64(&mut s) % v.len() as u64) as usize;
                    v[at] = splitmix64(&mut s) as u32;
                }
                let extra = (splitmix64(&mut s) % 40) as usize;
                v.extend((0..extra).map(|_| splitmix64(&mut s) as u32));
                v.sort_unstable();
                v.dedup();
                v
            })
            .collect()
    }

    #[test]
    fn exact_index_gives_the_all_pairs_stars() {
        // 300 members: about 75 per family, so a family's first centre has
        // just over `PARALLEL_CANDIDATES`; 2,000: far over.
        for (seed, t, n) in [
            (1, 0.75, 300),
            (2, 0.5, 300),
            (3, 0.9, 300),
            (4, 0.3, 300),
            (5, 1.0, 300),
            (9, 0.75, 2000),
        ] {
            let mut sets = families(seed, n);
            // Exact copies too, so that `t = 1` has pairs to keep.
            sets.extend_from_within(..30);
            let refs: Vec<&[u32]> = sets.iter().map(|s| s.as_slice()).collect();
            let th = Thresholds::new(t, 128);
            let want = stars(refs.len(), |a, b| th.member_passes_exact(refs[a], refs[b]));
            assert!(!want.is_empty());
            assert_eq!(exact_stars(&refs, &th), want, "seed {seed}, t {t}");
        }
    }

    #[test]
    fn signature_index_gives_the_all_pairs_stars() {
        for (seed, t) in [(6, 0.75), (7, 0.5), (8, 0.9)] {
            let np = 64;
            let mut s = seed;
            let bases: Vec<Vec<u32>> = (0..3)
                .map(|_| (0..np).map(|_| splitmix64(&mut s) as u32).collect())
                .collect();
            let mut sigs = Vec::new();
            for _ in 0..300 {
                let mut v = bases[(splitmix64(&mut s) % 3) as usize].clone();
                for _ in 0..(splitmix64(&mut s) % 30) {
                    let at = (splitmix64(&mut s) % np as u64) as usize;
                    v[at] = splitmix64(&mut s) as u32;
                }
                sigs.extend(v);
            }
            let th = Thresholds::new(t, np);
            let want = stars(300, |a, b| {
                th.member_passes_signature(&sigs[a * np..(a + 1) * np], &sigs[b * np..(b + 1) * np])
            });
            assert!(!want.is_empty());
            assert_eq!(signature_stars(&sigs, np, &th), want, "seed {seed}, t {t}");
        }
    }

    #[test]
    fn empty_sets_and_empty_components() {
        let th = Thresholds::new(0.75, 16);
        assert!(exact_stars(&[], &th).is_empty());
        let e: &[u32] = &[];
        assert!(exact_stars(&[e, e, &[1, 2]], &th).is_empty());
        assert!(signature_stars(&[], 16, &th).is_empty());
    }
}
