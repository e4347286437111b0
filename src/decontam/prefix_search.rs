//! Every occurrence of a set of equal-length byte strings (the exact tier's
//! pattern prefixes) in a haystack, probing only one position in `stride`.
//!
//! ## Algorithm
//! All prefixes have the same length `L`. Index, for every prefix `P` and
//! every offset `o < stride` with `stride = L - G + 1`, the gram
//! `P[o..o + G]` (`G` = 8 bytes, one `u64`). An occurrence of `P` at
//! position `p` of the haystack covers exactly one multiple `q` of `stride`
//! in `[p, p + stride)`, and the gram read at `q` is `P[q - p..][..G]`, which
//! lies inside the occurrence (`q - p + G <= L`). So reading the gram at
//! every multiple of `stride`, looking it up, and checking each `(P, o)`
//! listed for it at `p = q - o` finds every occurrence, each once. This is
//! the q-gram sampling of filtration-based string matching (Navarro and
//! Raffinot, *Flexible Pattern Matching in Strings*, 2002, section 3.4 and
//! the "q-gram lemma"), with the hit verified by comparing the prefix.
//!
//! With `L = 24` the search touches one haystack position in 17. Each probe
//! first asks a blocked Bloom filter that fits in L2 (two bits of one word),
//! so the gram table (in L3) is only read for grams some prefix contains.
//!
//! PERF: replaces an Aho-Corasick DFA over the same prefixes (26 MB of
//! transitions, one dependent load per haystack byte); see
//! benches/results/decontam.md for the numbers.

use super::filter::fmix64;

/// Gram length in bytes.
pub const GRAM: usize = 8;
/// Shortest prefix length this searcher takes (a stride of at least 9).
pub const MIN_PREFIX: usize = 2 * GRAM;

#[derive(Debug)]
pub struct PrefixSearch {
    len: usize,
    stride: usize,
    /// Blocked Bloom filter over the grams' hashes.
    bloom: Vec<u64>,
    bloom_mask: usize,
    /// Open addressing: `slots[i]` is a gram, `slot_start[i]..slot_start[i]
    /// + slot_len[i]` its entries; an empty slot has length 0.
    slots: Vec<u64>,
    slot_start: Vec<u32>,
    slot_len: Vec<u32>,
    slot_mask: usize,
    /// `(prefix index, offset)`, grouped by gram.
    entries: Vec<(u32, u32)>,
    prefixes: Vec<u8>,
}

#[inline]
fn gram_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + GRAM].try_into().expect("8 bytes"))
}

#[inline]
fn bloom_bits(h: u64) -> u64 {
    (1u64 << (h & 63)) | (1u64 << ((h >> 6) & 63))
}

impl PrefixSearch {
    /// `prefixes` all have length `len >= MIN_PREFIX`; their index is their
    /// position in the slice.
    pub fn new(prefixes: &[&[u8]], len: usize) -> PrefixSearch {
        assert!(len >= MIN_PREFIX, "prefix length {len} below {MIN_PREFIX}");
        let stride = len - GRAM + 1;
        let mut grams: Vec<(u64, u32, u32)> = Vec::with_capacity(prefixes.len() * stride);
        let mut flat = Vec::with_capacity(prefixes.len() * len);
        for (i, p) in prefixes.iter().enumerate() {
            assert_eq!(p.len(), len, "prefixes must all have length {len}");
            flat.extend_from_slice(p);
            for o in 0..stride {
                grams.push((gram_at(p, o), i as u32, o as u32));
            }
        }
        grams.sort_unstable();
        grams.dedup();
        let distinct = grams.chunk_by(|a, b| a.0 == b.0).count();
        let slots_n = (distinct * 2).max(2).next_power_of_two();
        // About 4 grams per 64-bit word, two bits each.
        let bloom_n = (distinct / 4).max(1).next_power_of_two();
        let mut s = PrefixSearch {
            len,
            stride,
            bloom: vec![0; bloom_n],
            bloom_mask: bloom_n - 1,
            slots: vec![0; slots_n],
            slot_start: vec![0; slots_n],
            slot_len: vec![0; slots_n],
            slot_mask: slots_n - 1,
            entries: Vec::with_capacity(grams.len()),
            prefixes: flat,
        };
        for run in grams.chunk_by(|a, b| a.0 == b.0) {
            let g = run[0].0;
            let h = fmix64(g);
            s.bloom[(h >> 40) as usize & s.bloom_mask] |= bloom_bits(h);
            let mut i = h as usize & s.slot_mask;
            while s.slot_len[i] != 0 {
                i = (i + 1) & s.slot_mask;
            }
            s.slots[i] = g;
            s.slot_start[i] = s.entries.len() as u32;
            s.slot_len[i] = run.len() as u32;
            s.entries.extend(run.iter().map(|e| (e.1, e.2)));
        }
        s
    }

    fn entries_of(&self, g: u64, h: u64) -> &[(u32, u32)] {
        let mut i = h as usize & self.slot_mask;
        loop {
            let n = self.slot_len[i] as usize;
            if n == 0 {
                return &[];
            }
            if self.slots[i] == g {
                let s = self.slot_start[i] as usize;
                return &self.entries[s..s + n];
            }
            i = (i + 1) & self.slot_mask;
        }
    }

    /// Calls `f(prefix, position)` for every occurrence of a prefix in `hay`
    /// (in no particular order).
    #[inline]
    pub fn for_each(&self, hay: &[u8], mut f: impl FnMut(u32, usize)) {
        if hay.len() < self.len {
            return;
        }
        let mut q = 0;
        while q + GRAM <= hay.len() {
            let g = gram_at(hay, q);
            let h = fmix64(g);
            let b = bloom_bits(h);
            if self.bloom[(h >> 40) as usize & self.bloom_mask] & b == b {
                for &(p, o) in self.entries_of(g, h) {
                    let o = o as usize;
                    if o > q || q - o + self.len > hay.len() {
                        continue;
                    }
                    let at = q - o;
                    let p0 = p as usize * self.len;
                    if hay[at..at + self.len] == self.prefixes[p0..p0 + self.len] {
                        f(p, at);
                    }
                }
            }
            q += self.stride;
        }
    }

    /// Heap bytes.
    pub fn memory_usage(&self) -> usize {
        self.bloom.len() * 8 + self.slots.len() * 16 + self.entries.len() * 8 + self.prefixes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every occurrence, by brute force.
    fn naive(prefixes: &[&[u8]], hay: &[u8]) -> Vec<(u32, usize)> {
        let mut v = Vec::new();
        for (i, p) in prefixes.iter().enumerate() {
            for at in 0..=hay.len().saturating_sub(p.len()) {
                if hay.len() >= p.len() && &hay[at..at + p.len()] == *p {
                    v.push((i as u32, at));
                }
            }
        }
        v.sort_unstable();
        v
    }

    #[test]
    fn finds_every_occurrence_at_every_alignment() {
        let prefixes: Vec<&[u8]> = vec![
            b"abcdefghijklmnop",
            b"bcdefghijklmnopq",
            b"aaaaaaaaaaaaaaaa",
            b"xyzxyzxyzxyzxyzx",
        ];
        for pad in 0..40 {
            let mut hay = vec![b'.'; pad];
            hay.extend_from_slice(b"abcdefghijklmnopq--aaaaaaaaaaaaaaaaaaa");
            hay.extend_from_slice(b"xyzxyzxyzxyzxyzxyzxyz");
            hay.extend(std::iter::repeat_n(b'-', pad % 7));
            let s = PrefixSearch::new(&prefixes, 16);
            let mut got = Vec::new();
            s.for_each(&hay, |p, at| got.push((p, at)));
            got.sort_unstable();
            assert_eq!(got, naive(&prefixes, &hay), "pad {pad}");
        }
    }

    #[test]
    fn matches_brute_force_on_real_text() {
        let text = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src/decontam/exact.rs"
        ))
        .expect("read a source file");
        let text: Vec<u8> = text
            .into_iter()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        // Prefixes taken from the text itself (so they occur) and a few that
        // do not, at length 24 (the default) and 20.
        for len in [20, 24] {
            let mut owned: Vec<Vec<u8>> = (0..text.len() - len)
                .step_by(97)
                .map(|i| text[i..i + len].to_vec())
                .collect();
            owned.push(vec![b'#'; len]);
            owned.sort();
            owned.dedup();
            let prefixes: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
            let s = PrefixSearch::new(&prefixes, len);
            let mut got = Vec::new();
            s.for_each(&text, |p, at| got.push((p, at)));
            got.sort_unstable();
            let want = naive(&prefixes, &text);
            assert!(want.len() > 10);
            assert_eq!(got, want, "len {len}");
        }
    }
}
