//! Eight ASCII bytes at a time: word-byte masks and lowercasing on a `u64`
//! ("SIMD within a register"), for the scan's word loop.
//!
//! A word byte is `[0-9A-Za-z_]`, the ASCII part of `char::is_alphanumeric`
//! or `_` (the tokenizer's word rule). The range tests use the classic
//! carry-free form (Hacker's Delight, 2nd ed., section 6-1, "Find First 0-Byte"
//! and its range variant): for a byte `x < 0x80`, `x + (0x80 - lo)` has its
//! high bit set exactly when `x >= lo`, and adding a constant below `0x80`
//! never carries into the next byte. The range tests here run on the low
//! seven bits of each byte, so no byte carries into its neighbour whatever the input; a
//! byte `>= 0x80` is then masked out (it is never a word byte, nor lowered).
//!
//! Byte `k` of a slice is byte `k` of the little-endian `u64`, so "first in
//! the text" is "lowest".

/// The high bit of every byte.
const HIGH: u64 = 0x8080_8080_8080_8080;

/// `c` in every byte.
#[inline(always)]
const fn splat(c: u8) -> u64 {
    0x0101_0101_0101_0101 * c as u64
}

/// High bit set in each byte of `w` (all bytes `< 0x80`) that is in `lo..=hi`.
#[inline(always)]
fn in_range(w: u64, lo: u8, hi: u8) -> u64 {
    (w.wrapping_add(splat(0x80 - lo)) & !w.wrapping_add(splat(0x7f - hi))) & HIGH
}

/// High bit set in each byte of `w` that is a word byte.
#[inline(always)]
pub fn word_bytes(w: u64) -> u64 {
    let ascii = !w & HIGH;
    let low7 = w & !HIGH;
    let letters = in_range(low7 | splat(0x20), b'a', b'z');
    let digits = in_range(low7, b'0', b'9');
    let underscore = !(low7 ^ splat(b'_')).wrapping_add(splat(0x7f)) & HIGH;
    (letters | digits | underscore) & ascii
}

/// `w` with `A-Z` lowercased, every other byte as it was.
#[inline(always)]
pub fn lowercase(w: u64) -> u64 {
    let upper = in_range(w & !HIGH, b'A', b'Z') & !w;
    w | (upper >> 2)
}

/// Where the word that continues at `from` ends in `b`: the first index at
/// or after `from` that holds no word byte, or `b.len()`.
#[inline(always)]
pub fn word_end(b: &[u8], mut from: usize) -> usize {
    while let Some(chunk) = b.get(from..from + 8) {
        let w = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        let stop = !word_bytes(w) & HIGH;
        if stop != 0 {
            return from + (stop.trailing_zeros() / 8) as usize;
        }
        from += 8;
    }
    while from < b.len() && is_word_byte(b[from]) {
        from += 1;
    }
    from
}

/// Appends `b[start..end]` to `out` with `A-Z` lowercased, eight bytes at a
/// time where eight bytes are left in `b` (the last store may write up to
/// seven bytes past `end` into spare capacity; `len` never covers them).
#[inline(always)]
pub fn push_lowercase(out: &mut Vec<u8>, b: &[u8], start: usize, end: usize) {
    debug_assert!(start <= end && end <= b.len());
    out.reserve(end - start + 8);
    let mut k = start;
    while k < end {
        let Some(chunk) = b.get(k..k + 8) else {
            break;
        };
        let w = lowercase(u64::from_le_bytes(chunk.try_into().expect("eight bytes")));
        let take = (end - k).min(8);
        let len = out.len();
        // SAFETY: `reserve` left `end - start + 8` spare bytes and we have
        // used `k - start` of them, so at least eight are spare at `len`;
        // the first `take` of the eight written bytes are the ones `set_len`
        // covers, and they are initialised.
        unsafe {
            out.as_mut_ptr()
                .add(len)
                .cast::<[u8; 8]>()
                .write_unaligned(w.to_le_bytes());
            out.set_len(len + take);
        }
        k += take;
    }
    out.extend(b[k..end].iter().map(u8::to_ascii_lowercase));
}

/// Appends the first `n <= 16` bytes of `words` (little-endian) to `out`.
#[inline(always)]
pub fn push16(out: &mut Vec<u8>, words: [u64; 2], n: usize) {
    debug_assert!(n <= 16);
    out.reserve(16);
    let len = out.len();
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&words[0].to_le_bytes());
    bytes[8..].copy_from_slice(&words[1].to_le_bytes());
    // SAFETY: `reserve(16)` left 16 spare bytes at `len`, all written here;
    // `set_len` covers the first `n <= 16` of them.
    unsafe {
        out.as_mut_ptr()
            .add(len)
            .cast::<[u8; 16]>()
            .write_unaligned(bytes);
        out.set_len(len + n);
    }
}

/// `words` with every byte from `n <= 16` on set to zero.
#[inline(always)]
pub fn keep_first(words: [u64; 2], n: usize) -> [u64; 2] {
    let mask = |k: usize| {
        if k >= 8 {
            u64::MAX
        } else {
            (1u64 << (8 * k)) - 1
        }
    };
    [words[0] & mask(n), words[1] & mask(n.saturating_sub(8))]
}

/// The scalar word rule, for the tail and for tests.
#[inline(always)]
pub fn is_word_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every byte value in every lane, with the other lanes random, against
    /// the scalar rules in every lane.
    #[test]
    fn masks_match_the_scalar_rules() {
        let mut rng = crate::decontam::test_bytes::Xorshift::new(1);
        for lane in 0..8 {
            for c in 0..=255u8 {
                for _ in 0..64 {
                    let mut bytes = rng.next_u64().to_le_bytes();
                    bytes[lane] = c;
                    let w = u64::from_le_bytes(bytes);
                    let (words, lower) = (word_bytes(w), lowercase(w).to_le_bytes());
                    for (k, &x) in bytes.iter().enumerate() {
                        let got = words >> (8 * k + 7) & 1 == 1;
                        assert_eq!(got, is_word_byte(x), "{bytes:?} lane {k}");
                        assert_eq!(lower[k], x.to_ascii_lowercase(), "{bytes:?} lane {k}");
                    }
                }
            }
        }
    }

    #[test]
    fn push_lowercase_appends_exactly_the_lowered_bytes() {
        let text = b"Hello_World XYZ\xc3\xa9 MixedCase123 ab";
        for start in 0..text.len() {
            for end in start..=text.len() {
                let mut out = b"prefix".to_vec();
                push_lowercase(&mut out, text, start, end);
                let mut want = b"prefix".to_vec();
                want.extend(text[start..end].iter().map(u8::to_ascii_lowercase));
                assert_eq!(out, want, "{start}..{end}");
            }
        }
    }

    #[test]
    fn word_end_stops_at_the_first_non_word_byte() {
        let text = "abc_09XYZ def\nlong_identifier_name_more(x) é_tail";
        let b = text.as_bytes();
        for from in 0..b.len() {
            let mut want = from;
            while want < b.len() && is_word_byte(b[want]) {
                want += 1;
            }
            assert_eq!(word_end(b, from), want, "from {from}");
        }
    }
}
