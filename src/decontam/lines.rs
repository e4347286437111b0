//! Where a line ends, whether it is ASCII, and whether it holds a `#` or a
//! `/` (where a trailing comment can start), in one pass.
//!
//! The scan works line by line and takes a fast path for ASCII lines.
//! Finding the `\n` with `memchr` and then testing the line with
//! `is_ascii` reads each line twice and pays two calls' set-up per line;
//! source lines are short (35 bytes on average in the Python standard
//! library), so the set-up was most of their cost (5% of a `decontaminate` run in `perf
//! record`), and the search for a trailing comment was a third call on every
//! line. Here one loop reads 16 bytes at a time and takes all three answers
//! from three `movemask`s: the bytes equal to `\n`, the high bits, and the
//! bytes equal to `#` or `/`.

/// What one pass learns about a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Line {
    /// The index of its `\n`, or the end of the buffer.
    pub end: usize,
    pub ascii: bool,
    /// Whether it holds a `#` or a `/` (without one, no comment starts in it
    /// after its first non-blank byte).
    pub hash_or_slash: bool,
}

/// The line starting at `start`.
#[inline]
pub fn line_at(b: &[u8], start: usize) -> Line {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: SSE2 is part of the x86_64 baseline: every x86_64 CPU has it.
        unsafe { line_at_sse2(b, start) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        line_at_scalar(b, start)
    }
}

/// The scalar reference (and the version used off x86_64).
pub fn line_at_scalar(b: &[u8], start: usize) -> Line {
    let end = memchr::memchr(b'\n', &b[start..]).map_or(b.len(), |i| start + i);
    let line = &b[start..end];
    Line {
        end,
        ascii: line.is_ascii(),
        hash_or_slash: memchr::memchr2(b'#', b'/', line).is_some(),
    }
}

/// # Safety
/// The CPU must have SSE2, which every x86_64 CPU has (it is part of the
/// x86_64 baseline); the function is `unsafe` only because it enables it.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
pub fn line_at_sse2(b: &[u8], start: usize) -> Line {
    use std::arch::x86_64::*;
    let (newline, hash, slash) = (
        _mm_set1_epi8(b'\n' as i8),
        _mm_set1_epi8(b'#' as i8),
        _mm_set1_epi8(b'/' as i8),
    );
    let (mut high, mut marks) = (0u32, 0u32);
    let mut at = start;
    while let Some(chunk) = b.get(at..at + 16) {
        // SAFETY: `chunk` has 16 bytes; `loadu` needs no alignment.
        let v = unsafe { _mm_loadu_si128(chunk.as_ptr().cast()) };
        let nl = _mm_movemask_epi8(_mm_cmpeq_epi8(v, newline)) as u32;
        let hi = _mm_movemask_epi8(v) as u32;
        let mk = _mm_movemask_epi8(_mm_or_si128(
            _mm_cmpeq_epi8(v, hash),
            _mm_cmpeq_epi8(v, slash),
        )) as u32;
        if nl != 0 {
            let k = nl.trailing_zeros();
            // The bytes before the newline only.
            let before = (1u32 << k) - 1;
            return Line {
                end: at + k as usize,
                ascii: (high | (hi & before)) == 0,
                hash_or_slash: (marks | (mk & before)) != 0,
            };
        }
        high |= hi;
        marks |= mk;
        at += 16;
    }
    let tail = line_at_scalar(b, at);
    Line {
        end: tail.end,
        ascii: tail.ascii && high == 0,
        hash_or_slash: tail.hash_or_slash || marks != 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_match_the_scalar_reference() {
        let mut rng = crate::decontam::test_bytes::Xorshift::new(7);
        // Mostly `x`, so that lines are sometimes longer than a chunk.
        let mut alphabet = b"ab \n\n\t\xc3\xa9\x80\xff#/".to_vec();
        alphabet.extend([b'x'; 85]);
        for n in 0..200usize {
            let b = rng.bytes(n, &alphabet);
            for start in 0..=b.len() {
                assert_eq!(
                    line_at(&b, start),
                    line_at_scalar(&b, start),
                    "{b:?} at {start}"
                );
            }
        }
    }
}
