//! Where a line ends, and whether it is ASCII, in one pass.
//!
//! The scan works line by line and takes a fast path for ASCII lines.
//! Finding the `\n` with `memchr` and then testing the line with
//! `is_ascii` reads each line twice and pays two calls' set-up per line;
//! source lines are short (35 bytes on average in the Python standard
//! library), so the set-up was most of their cost (5% of a `decontaminate` run in `perf
//! record`). Here one loop reads 16 bytes at a time and takes both answers
//! from two `movemask`s: the bytes equal to `\n`, and the high bits.

/// The end of the line starting at `start` (the index of its `\n`, or
/// `b.len()`), and whether `b[start..end]` is ASCII.
#[inline]
pub fn line_end(b: &[u8], start: usize) -> (usize, bool) {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: SSE2 is part of the x86_64 baseline: every x86_64 CPU has it.
        unsafe { line_end_sse2(b, start) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        line_end_scalar(b, start)
    }
}

/// The scalar reference (and the version used off x86_64).
pub fn line_end_scalar(b: &[u8], start: usize) -> (usize, bool) {
    let end = memchr::memchr(b'\n', &b[start..]).map_or(b.len(), |i| start + i);
    (end, b[start..end].is_ascii())
}

/// # Safety
/// The CPU must have SSE2, which every x86_64 CPU has (it is part of the
/// x86_64 baseline); the function is `unsafe` only because it enables it.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
pub fn line_end_sse2(b: &[u8], start: usize) -> (usize, bool) {
    use std::arch::x86_64::*;
    let newline = _mm_set1_epi8(b'\n' as i8);
    let mut high = 0u32;
    let mut at = start;
    while let Some(chunk) = b.get(at..at + 16) {
        // SAFETY: `chunk` has 16 bytes; `loadu` needs no alignment.
        let v = unsafe { _mm_loadu_si128(chunk.as_ptr().cast()) };
        let nl = _mm_movemask_epi8(_mm_cmpeq_epi8(v, newline)) as u32;
        let hi = _mm_movemask_epi8(v) as u32;
        if nl != 0 {
            let k = nl.trailing_zeros();
            // High bits before the newline only.
            high |= hi & ((1u32 << k) - 1);
            return (at + k as usize, high == 0);
        }
        high |= hi;
        at += 16;
    }
    let (end, ascii) = line_end_scalar(b, at);
    (end, ascii && high == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_ends_match_the_scalar_reference() {
        let mut s = 0x2545_f491_4f6c_dd1du64;
        let alphabet = b"ab \n\n\t\xc3\xa9\x80\xff#";
        for n in 0..200usize {
            let b: Vec<u8> = (0..n)
                .map(|_| {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    // Mostly short lines, sometimes one longer than a chunk.
                    let k = (s % 97) as usize;
                    if k < alphabet.len() {
                        alphabet[k]
                    } else {
                        b'x'
                    }
                })
                .collect();
            for start in 0..=b.len() {
                assert_eq!(
                    line_end(&b, start),
                    line_end_scalar(&b, start),
                    "{b:?} at {start}"
                );
            }
        }
    }
}
