//! The tokens of an ASCII span, found 64 bytes at a time with bit masks.
//!
//! A token is a word (a maximal run of `[0-9A-Za-z_]`) or one byte that is
//! neither a word byte nor ASCII whitespace (the tokenizer's rule in
//! [`super::ngram`], restricted to ASCII). A per-byte loop takes a branch on
//! the class of every byte, blanks included (31% of the bytes of the Python
//! standard library are blanks, 20% indentation). Here each 64-byte block is
//! classified at once into two masks, `word` and `ws` (bit `k` for byte
//! `k`), and the walk visits only the token starts:
//!
//! ```text
//! starts = (word & !(word << 1)) | (!word & !ws)
//! ```
//!
//! (a word byte whose predecessor is not one, or a punctuation byte), taking
//! each start with `trailing_zeros` and a word's end with `trailing_zeros`
//! of the inverted mask. Blanks cost nothing per byte. This is the structure
//! of simdjson's stage 1 (Langdale and Lemire, "Parsing Gigabytes of JSON per
//! Second", VLDB Journal 28, 2019): classify with vector compares, move the
//! classes to bit masks, walk the bits.
//!
//! The classification uses SSE2 on x86_64 (part of the x86_64 baseline, so
//! no runtime detection) and a scalar loop elsewhere; both are tested
//! against the scalar byte rules below.
//!
//! PERF: on its own this walk did not beat the per-byte loop it replaced
//! (`cargo bench --bench decontam -- scan/1_thread`: 219 -> 223 MiB/s, within
//! noise): the branches were not the cost, the work per token was. What it
//! gives is a loop whose only cost is that work, with each word's bounds
//! known before it is touched, which the short-token path of the scan
//! builds on (both together: 256 MiB/s).

use super::normalize::is_ascii_ws;
use super::swar;

/// One token of an ASCII span, by position in the buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AsciiToken {
    /// A word, `start..end`.
    Word(usize, usize),
    /// One punctuation byte at this position.
    Punct(usize),
}

/// Word and whitespace masks of 64 bytes: bit `k` describes byte `k`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Masks {
    pub word: u64,
    pub ws: u64,
}

/// The scalar reference classification (and the one used off x86_64).
#[inline]
pub fn masks_scalar(c: &[u8; 64]) -> Masks {
    let (mut word, mut ws) = (0u64, 0u64);
    for (k, &x) in c.iter().enumerate() {
        word |= (swar::is_word_byte(x) as u64) << k;
        ws |= (is_ascii_ws(x) as u64) << k;
    }
    Masks { word, ws }
}

/// The SSE2 classification: per 16 bytes, range tests by signed compares
/// after an offset (`x - lo` as unsigned `< n` is `x + (0x80 - lo)` as
/// signed `< -128 + n`), then `movemask` to bits.
///
/// # Safety
/// The CPU must have SSE2, which every x86_64 CPU has (it is part of the
/// x86_64 baseline); the function is `unsafe` only because it enables it.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
#[inline]
pub fn masks_sse2(c: &[u8; 64]) -> Masks {
    use std::arch::x86_64::*;
    #[target_feature(enable = "sse2")]
    #[inline]
    fn below(v: __m128i, lo: u8, n: u8) -> __m128i {
        let shifted = _mm_add_epi8(v, _mm_set1_epi8(0x80u8.wrapping_sub(lo) as i8));
        _mm_cmplt_epi8(shifted, _mm_set1_epi8((n as i8).wrapping_sub(-128i8)))
    }
    let (mut word, mut ws) = (0u64, 0u64);
    for lane in 0..4 {
        // SAFETY: `c` has 64 bytes, so the 16 at `lane * 16` are in bounds;
        // `loadu` has no alignment requirement.
        let v = unsafe { _mm_loadu_si128(c.as_ptr().add(lane * 16).cast()) };
        let letter = below(_mm_or_si128(v, _mm_set1_epi8(0x20)), b'a', 26);
        let digit = below(v, b'0', 10);
        let underscore = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'_' as i8));
        let w = _mm_or_si128(_mm_or_si128(letter, digit), underscore);
        let s = _mm_or_si128(
            _mm_cmpeq_epi8(v, _mm_set1_epi8(b' ' as i8)),
            below(v, b'\t', 5),
        );
        word |= (_mm_movemask_epi8(w) as u16 as u64) << (lane * 16);
        ws |= (_mm_movemask_epi8(s) as u16 as u64) << (lane * 16);
    }
    Masks { word, ws }
}

/// The masks of the 64 bytes at `b[at..]`; bytes past the end of `b` read
/// as NUL (neither word nor blank: callers mask them off).
#[inline(always)]
fn masks_at(b: &[u8], at: usize) -> Masks {
    let classify = |c: &[u8; 64]| {
        // SAFETY: SSE2 is part of the x86_64 baseline: every x86_64 CPU has it.
        #[cfg(target_arch = "x86_64")]
        return unsafe { masks_sse2(c) };
        #[cfg(not(target_arch = "x86_64"))]
        return masks_scalar(c);
    };
    match b.get(at..at + 64) {
        Some(chunk) => classify(chunk.try_into().expect("64 bytes")),
        None => {
            let mut pad = [0u8; 64];
            let rest = &b[at..];
            pad[..rest.len()].copy_from_slice(rest);
            classify(&pad)
        }
    }
}

/// Calls `f` with every token of the ASCII span `b[start..end]`, in order.
///
/// `b` is the whole buffer: a word that reaches the end of a block is
/// followed into the next one, and must end by `end` (the caller's span ends
/// at a non-word byte or at the end of `b`; checked in debug builds).
#[inline(always)]
pub fn for_each(b: &[u8], start: usize, end: usize, mut f: impl FnMut(AsciiToken)) {
    debug_assert!(start <= end && end <= b.len());
    debug_assert!(end == b.len() || !swar::is_word_byte(b[end]));
    let mut at = start;
    while at < end {
        let span = (end - at).min(64);
        let valid = if span == 64 { !0 } else { (1u64 << span) - 1 };
        let m = masks_at(b, at);
        let word = m.word & valid;
        let mut starts = (word & !(word << 1)) | (!m.word & !m.ws & valid);
        let mut next = at + span;
        while starts != 0 {
            let k = starts.trailing_zeros() as usize;
            // One call of `f` per token, so that it is inlined once.
            let token = if word >> k & 1 == 0 {
                starts &= starts - 1;
                AsciiToken::Punct(at + k)
            } else {
                let run = (!(word >> k)).trailing_zeros() as usize;
                let mut e = at + k + run;
                if k + run == 64 {
                    e = swar::word_end(b, e);
                }
                debug_assert!(e <= end, "a word ran past the span");
                if e - at >= 64 {
                    next = e;
                    starts = 0;
                } else {
                    starts &= !0u64 << (e - at);
                }
                AsciiToken::Word(at + k, e)
            };
            f(token);
        }
        at = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tokens by the plain per-byte rule.
    fn reference(b: &[u8], start: usize, end: usize) -> Vec<AsciiToken> {
        let mut out = Vec::new();
        let mut i = start;
        while i < end {
            let c = b[i];
            if swar::is_word_byte(c) {
                let s = i;
                while i < end && swar::is_word_byte(b[i]) {
                    i += 1;
                }
                out.push(AsciiToken::Word(s, i));
            } else {
                if !is_ascii_ws(c) {
                    out.push(AsciiToken::Punct(i));
                }
                i += 1;
            }
        }
        out
    }

    fn random_bytes(n: usize, seed: u64, alphabet: &[u8]) -> Vec<u8> {
        crate::decontam::test_bytes::Xorshift::new(seed).bytes(n, alphabet)
    }

    #[test]
    fn classifications_match_the_byte_rules() {
        let all: Vec<u8> = (0..=255u8).collect();
        for seed in 0..200u64 {
            let bytes = random_bytes(64, seed, &all);
            let c: &[u8; 64] = bytes.as_slice().try_into().unwrap();
            let s = masks_scalar(c);
            for (k, &x) in c.iter().enumerate() {
                assert_eq!(s.word >> k & 1 == 1, swar::is_word_byte(x), "{x:#x}");
                assert_eq!(s.ws >> k & 1 == 1, is_ascii_ws(x), "{x:#x}");
            }
            // SAFETY: SSE2 is part of the x86_64 baseline.
            #[cfg(target_arch = "x86_64")]
            assert_eq!(unsafe { masks_sse2(c) }, s, "{bytes:?}");
        }
    }

    #[test]
    fn tokens_match_the_per_byte_walk() {
        // Short and long words, long blank runs, every ASCII class, spans
        // that start and end anywhere (ending before a non-word byte).
        let alphabet = b"aZ_09   \t\r\x0b\x0c(.,#/\"'\x00\x7f";
        for seed in 0..120u64 {
            let n = 1 + (seed as usize * 37) % 200;
            let mut b = random_bytes(n, seed, alphabet);
            if seed % 3 == 0 {
                // A word longer than two blocks.
                let at = b.len() / 2;
                b.splice(at..at, std::iter::repeat_n(b'x', 150));
            }
            for start in [0, 1, 63, 64, 65].into_iter().filter(|&s| s <= b.len()) {
                for end in start..=b.len() {
                    if end < b.len() && swar::is_word_byte(b[end]) {
                        continue;
                    }
                    let mut got = Vec::new();
                    for_each(&b, start, end, |t| got.push(t));
                    // A span starting inside a word starts a word there.
                    assert_eq!(got, reference(&b, start, end), "seed {seed} {start}..{end}");
                }
            }
        }
    }
}
