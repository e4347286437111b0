//! Code-aware tokens and their n-gram hashes, for the n-gram tier.
//!
//! ## Tokens
//! A token is a run of word characters (Unicode alphanumerics and `_`), or a
//! single other non-blank character; whitespace only separates tokens. Words
//! are lowercased and the three quote characters `'`, `"` and `` ` `` are one
//! token, so re-indentation, re-wrapping, case changes and a formatter's quote
//! style leave the token stream unchanged. Punctuation stays: `a + b` and
//! `a - b` differ, and operators make code n-grams specific.
//!
//! Each token is hashed (its lowercase UTF-8 bytes: [`token_hash`]) and remembers
//! whether it is an *identifier* (starts with a letter or `_`, at least two
//! characters: the only tokens that can make an n-gram rare, see the index)
//! and whether it lies in a comment (the comment rules of [`super::normalize`]).
//!
//! ## N-grams
//! An n-gram is `n` consecutive tokens; its hash is xxh3-64 (seed
//! [`NGRAM_SEED`]) of the `n` token hashes as little-endian bytes. A text has
//! the n-grams of two streams: all its tokens, and its tokens outside comments.
//! The second stream makes comments inserted into a copied solution harmless
//! (the n-grams that straddle them exist in the comment-free stream), while
//! the first keeps doc comments (MultiPL-E prompts are `///` comments)
//! matchable. Only windows of the second stream that skip over a comment are
//! emitted, since every other window is already a window of the first.
//! Benchmark texts and files go through the same code, so the two sides agree.

use super::filter::{fmix64, NgramFilter, Roller};
use super::normalize::{is_ascii_ws, is_comment_line, trailing_comment_start};
use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

/// Seed of the n-gram hash. Changing it changes every n-gram hash (and so
/// nothing observable but the index contents).
pub const NGRAM_SEED: u64 = 0x7472_6974_7465_7221; // "tritter!"

/// One token: its hash (stored little-endian, so that a slice of hashes has
/// the same bytes on every platform), whether it is an identifier, whether it
/// lies in a comment, and whether it is quoted (after an odd number of quote
/// tokens on its line: string contents, roughly, whatever the language).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token {
    pub hash: u64,
    pub ident: bool,
    pub comment: bool,
    pub quoted: bool,
}

/// Hash of one token's lowercase bytes, little-endian in memory: tokens of
/// up to 16 bytes (nearly all of them) by [`short_token_hash`], longer ones
/// by xxh3-64.
#[inline]
pub fn token_hash(lower: &[u8]) -> u64 {
    if lower.len() <= 16 {
        let mut pad = [0u8; 16];
        pad[..lower.len()].copy_from_slice(lower);
        let lo = u64::from_le_bytes(pad[..8].try_into().expect("eight bytes"));
        let hi = u64::from_le_bytes(pad[8..].try_into().expect("eight bytes"));
        short_token_hash(lo, hi, lower.len())
    } else {
        xxh3_64(lower).to_le()
    }
}

/// Secrets of [`short_token_hash`]: every byte is at least `0xF8`, a value
/// UTF-8 never uses, so a token word XOR its secret is never zero (a zero
/// factor would give every token with that word one hash).
const SHORT_SECRET: [u64; 2] = [0xf9fb_fdff_f8fa_fcfe, 0xfefc_faf8_fffd_fbf9];

/// Hash of a token of `len <= 16` lowercase bytes, given as two
/// little-endian words (`lo` the first eight bytes) zero past `len`; stored
/// little-endian like [`token_hash`].
///
/// The folded 64x64->128-bit multiply of the two words, as in wyhash and
/// rapidhash for short inputs, then MurmurHash3's finaliser. Unlike xxh3 it
/// has no branch on the length class (1-3, 4-8, 9-16 bytes), which the scan
/// would mispredict on every other word, and the scan computes it from the
/// words it has already lowercased in registers.
#[inline(always)]
pub fn short_token_hash(lo: u64, hi: u64, len: usize) -> u64 {
    debug_assert!(len <= 16);
    let m = u128::from(lo ^ SHORT_SECRET[0]) * u128::from(hi ^ SHORT_SECRET[1]);
    let folded = (m as u64) ^ ((m >> 64) as u64);
    fmix64(folded ^ (len as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)).to_le()
}

#[inline]
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Appends the tokens of `text` to `out`.
pub fn tokenize(text: &str, out: &mut Vec<Token>) {
    let mut buf: Vec<u8> = Vec::with_capacity(64);
    for line in text.split('\n') {
        tokenize_line(line, out, &mut buf);
    }
}

/// Appends the tokens of one line (no `\n` in it) to `out`; `buf` is scratch.
/// [`super::scan`] calls it for the lines its ASCII path does not take.
pub(crate) fn tokenize_line(line: &str, out: &mut Vec<Token>, buf: &mut Vec<u8>) {
    // Tokens at or after `code_end` are in a comment.
    let code_end = if is_comment_line(line) {
        0
    } else {
        trailing_comment_start(line).unwrap_or(line.len())
    };
    let b = line.as_bytes();
    let mut i = 0;
    // Quote tokens seen on this line: string state never crosses lines,
    // so an apostrophe in prose costs at most the rest of its line.
    let mut quotes = 0u32;
    while i < b.len() {
        let c = b[i];
        let start = i;
        let (ch, len) = if c < 0x80 {
            if is_ascii_ws(c) {
                i += 1;
                continue;
            }
            (c as char, 1)
        } else {
            // `i` is always on a char boundary.
            let ch = line[i..].chars().next().unwrap_or('\u{fffd}');
            if ch.is_whitespace() {
                i += ch.len_utf8();
                continue;
            }
            (ch, ch.len_utf8())
        };
        if is_word_char(ch) {
            buf.clear();
            let mut chars = 0usize;
            while i < b.len() {
                if b[i] < 0x80 {
                    let a = b[i];
                    if !(a.is_ascii_alphanumeric() || a == b'_') {
                        break;
                    }
                    buf.push(a.to_ascii_lowercase());
                    i += 1;
                } else {
                    let w = line[i..].chars().next().unwrap_or('\u{fffd}');
                    if !is_word_char(w) {
                        break;
                    }
                    let mut tmp = [0u8; 4];
                    for l in w.to_lowercase() {
                        buf.extend_from_slice(l.encode_utf8(&mut tmp).as_bytes());
                    }
                    i += w.len_utf8();
                }
                chars += 1;
            }
            out.push(Token {
                hash: token_hash(buf),
                ident: !ch.is_numeric() && chars >= 2,
                comment: start >= code_end,
                quoted: quotes % 2 == 1,
            });
        } else {
            let ch = match ch {
                '\'' | '`' => '"',
                _ => ch,
            };
            let quoted = quotes % 2 == 1;
            if ch == '"' {
                quotes += 1;
            }
            // Lowercase for the rare non-ASCII symbol that has a case.
            buf.clear();
            let mut tmp = [0u8; 4];
            for l in ch.to_lowercase() {
                buf.extend_from_slice(l.encode_utf8(&mut tmp).as_bytes());
            }
            out.push(Token {
                hash: token_hash(buf),
                ident: false,
                comment: start >= code_end,
                quoted,
            });
            i += len;
        }
    }
}

/// Hash of one n-gram from its token hashes (little-endian in memory).
#[inline]
pub fn ngram_hash(window: &[u64]) -> u64 {
    xxh3_64_with_seed(bytemuck::cast_slice(window), NGRAM_SEED)
}

/// Reusable buffers for n-gram extraction.
#[derive(Debug)]
pub struct NgramHasher {
    n: usize,
    tokens: Vec<Token>,
    all: Vec<u64>,
    code: Vec<u64>,
    code_tokens: Vec<Token>,
    /// Scratch of the stream outside comments: the full-stream position of
    /// each of its tokens in [`NgramHasher::for_each_flagged`], its gaps in
    /// [`NgramHasher::filtered_distinct_into`].
    code_pos: Vec<u32>,
    /// `flagged[i]`: flagged tokens among the first `i` of a stream.
    flagged: Vec<u32>,
}

/// `out[i]` = how many of `tokens[..i]` satisfy `flag` (`tokens.len() + 1`
/// entries).
fn prefix_counts(tokens: &[Token], flag: &impl Fn(&Token) -> bool, out: &mut Vec<u32>) {
    out.clear();
    out.push(0);
    let mut c = 0u32;
    for t in tokens {
        c += u32::from(flag(t));
        out.push(c);
    }
}

impl NgramHasher {
    /// `n` must be at least 1.
    pub fn new(n: usize) -> NgramHasher {
        assert!(n >= 1, "n-gram length must be at least 1");
        NgramHasher {
            n,
            tokens: Vec::new(),
            all: Vec::new(),
            code: Vec::new(),
            code_tokens: Vec::new(),
            code_pos: Vec::new(),
            flagged: Vec::new(),
        }
    }

    pub fn n(&self) -> usize {
        self.n
    }

    /// Calls `f(hash, window)` for every n-gram of `text` (both streams, see
    /// the module doc); `window` holds its n tokens. The same n-gram may be
    /// reported more than once.
    pub fn for_each(&mut self, text: &str, mut f: impl FnMut(u64, &[Token])) {
        self.for_each_flagged(text, |_| false, |h, w, _| f(h, w));
    }

    /// [`NgramHasher::for_each`], also telling `f` whether any token of the
    /// window satisfies `flag`.
    ///
    /// PERF: `flag` runs once per token, not once per token per window: a
    /// prefix count of flagged tokens answers each window in O(1) (the index
    /// build asks "has a rare identifier" of every window of every benchmark
    /// text; 13 set lookups per window were a quarter of the build).
    pub fn for_each_flagged(
        &mut self,
        text: &str,
        flag: impl Fn(&Token) -> bool,
        mut f: impl FnMut(u64, &[Token], bool),
    ) {
        let n = self.n;
        self.tokens.clear();
        tokenize(text, &mut self.tokens);
        self.all.clear();
        self.all.extend(self.tokens.iter().map(|t| t.hash));
        prefix_counts(&self.tokens, &flag, &mut self.flagged);
        if self.all.len() >= n {
            for (i, w) in self.all.windows(n).enumerate() {
                let any = self.flagged[i + n] > self.flagged[i];
                f(ngram_hash(w), &self.tokens[i..i + n], any);
            }
        }
        if !self.tokens.iter().any(|t| t.comment) {
            return;
        }
        self.code.clear();
        self.code_tokens.clear();
        self.code_pos.clear();
        for (i, t) in self.tokens.iter().enumerate() {
            if !t.comment {
                self.code.push(t.hash);
                self.code_tokens.push(*t);
                self.code_pos.push(i as u32);
            }
        }
        if self.code.len() < n {
            return;
        }
        prefix_counts(&self.code_tokens, &flag, &mut self.flagged);
        for j in 0..=self.code.len() - n {
            // A window whose tokens are contiguous in the full stream is a
            // window of the full stream too: already reported.
            if (self.code_pos[j + n - 1] - self.code_pos[j]) as usize != n - 1 {
                let any = self.flagged[j + n] > self.flagged[j];
                f(
                    ngram_hash(&self.code[j..j + n]),
                    &self.code_tokens[j..j + n],
                    any,
                );
            }
        }
    }

    /// The distinct n-gram hashes of `text`, sorted, appended to `out`.
    pub fn distinct_into(&mut self, text: &str, out: &mut Vec<u64>) {
        let start = out.len();
        self.for_each(text, |h, _| out.push(h));
        sort_distinct_tail(out, start);
    }

    /// The distinct n-gram hashes of a scanned text that `filter` may hold,
    /// sorted, appended to `out`: the n-grams of [`NgramHasher::for_each`]
    /// (both streams), minus those the filter rules out (see
    /// [`super::filter`] for why that removes only misses).
    ///
    /// PERF: the window key rolls in O(1) per token and most windows stop at
    /// one probe of the cache-sized filter; only the survivors (about 0.5% of
    /// the windows of ordinary code) pay for xxh3 over 13 token hashes and for
    /// the sort.
    pub fn filtered_distinct_into(
        &mut self,
        s: &super::scan::Scanned,
        filter: &NgramFilter,
        out: &mut Vec<u64>,
    ) {
        let n = self.n;
        let start = out.len();
        let roller = Roller::new(n);
        roller.for_each(&s.hashes, |i, key| {
            if filter.may_contain(key) {
                out.push(ngram_hash(&s.hashes[i..i + n]));
            }
        });
        if !s.comment_runs.is_empty() {
            // The stream outside comments, and its gaps: `g` where a comment
            // was cut out between its tokens `g` and `g + 1`.
            let code = &mut self.code;
            let gaps = &mut self.code_pos;
            code.clear();
            gaps.clear();
            let mut from = 0;
            for &(a, b) in &s.comment_runs {
                code.extend_from_slice(&s.hashes[from..a as usize]);
                if !code.is_empty() {
                    gaps.push(code.len() as u32 - 1);
                }
                from = b as usize;
            }
            code.extend_from_slice(&s.hashes[from..]);
            // A window contiguous in the full stream was reported above; the
            // others are those that hold a gap `g`: the windows starting in
            // `g + 2 - n ..= g`. Rolling over just those instead of the
            // whole stream halves this loop on commented code.
            if code.len() >= n {
                let starts = code.len() - n + 1;
                let mut next = 0;
                for &g in gaps.iter() {
                    let g = g as usize;
                    let lo = (g + 2).saturating_sub(n).max(next);
                    let hi = (g + 1).min(starts);
                    roller.for_each_in(code, lo..hi.max(lo), |j, key| {
                        if filter.may_contain(key) {
                            out.push(ngram_hash(&code[j..j + n]));
                        }
                    });
                    next = next.max(hi);
                }
            }
        }
        sort_distinct_tail(out, start);
    }

    /// The tokens of the last text given to [`NgramHasher::for_each`].
    pub fn last_tokens(&self) -> &[Token] {
        &self.tokens
    }
}

/// Sorts `out[start..]` and drops its repeats in place, so a text's n-gram
/// hashes are appended without a second allocation.
fn sort_distinct_tail(out: &mut Vec<u64>, start: usize) {
    let tail = &mut out[start..];
    tail.sort_unstable();
    let mut kept = 0;
    for i in 0..tail.len() {
        if i == 0 || tail[i] != tail[kept - 1] {
            tail[kept] = tail[i];
            kept += 1;
        }
    }
    out.truncate(start + kept);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Token> {
        let mut v = Vec::new();
        tokenize(s, &mut v);
        v
    }

    fn grams(n: usize, s: &str) -> Vec<u64> {
        let mut v = Vec::new();
        NgramHasher::new(n).distinct_into(s, &mut v);
        v
    }

    #[test]
    fn tokens_ignore_layout_case_and_quote_style() {
        let a = toks("for i in range(len(xs)):\n    print('Hi')");
        let b = toks("FOR i IN range( len( xs ) ) :\n\tprint(\"hi\")");
        assert_eq!(a, b);
        assert_eq!(a.len(), 17);
        // `range` is an identifier, `i` is too short, `(` is not.
        assert!(a[3].ident && !a[1].ident && !a[4].ident);
        // `hi` is quoted, `print` is not; the closing quote ends the string.
        assert!(a[14].quoted && !a[11].quoted && !a[16].quoted);
    }

    #[test]
    fn numbers_are_not_identifiers_and_unicode_words_are() {
        let t = toks("x2 = 42 + größe");
        assert_eq!(t.len(), 5);
        assert!(t[0].ident && !t[2].ident && t[4].ident);
    }

    #[test]
    fn comment_tokens_are_marked() {
        let t = toks("a = 1  # note here\n// whole\nb");
        let flags: Vec<bool> = t.iter().map(|t| t.comment).collect();
        assert_eq!(
            flags,
            vec![false, false, false, true, true, true, true, true, true, false]
        );
    }

    #[test]
    fn inserted_comments_do_not_hide_ngrams() {
        let base = "total = 0\nfor x in items:\n    total += x * x\nreturn total\n";
        let commented = "# sum of squares\ntotal = 0\n# loop\nfor x in items:  # each\n    total += x * x\nreturn total\n";
        let g_base = grams(5, base);
        let g_com = grams(5, commented);
        for h in &g_base {
            assert!(g_com.binary_search(h).is_ok(), "lost an n-gram");
        }
    }

    /// Behind a filter that passes everything, the scanned path yields the
    /// reference n-grams exactly: the windows that skip a comment are found
    /// from the gaps alone.
    #[test]
    fn filtered_windows_are_the_reference_windows() {
        let mut texts: Vec<String> = vec![
            "a b # c\nd e\n# f g\n# h\ni j k # l m n\no p\n".into(),
            "x # 1\n".repeat(40),
            "def f(a):  # one\n    # two\n    return a  # three\n".repeat(9),
            "// only a comment\n".into(),
            String::new(),
        ];
        if let Ok(rd) = std::fs::read_dir("/usr/lib/python3.11") {
            let mut v: Vec<_> = rd.flatten().map(|e| e.path()).collect();
            v.sort();
            for p in v.into_iter().filter(|p| p.is_file()).take(40) {
                texts.push(String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned());
            }
        }
        let filter = NgramFilter::pass_all();
        let mut sc = super::super::scan::Scanner::new();
        for n in [1, 2, 3, 13] {
            let mut h = NgramHasher::new(n);
            for t in &texts {
                let mut want = Vec::new();
                h.distinct_into(t, &mut want);
                let mut got = Vec::new();
                h.filtered_distinct_into(sc.scan(t), &filter, &mut got);
                assert_eq!(got, want, "n={n} text {:?}", &t[..t.len().min(60)]);
            }
        }
    }

    #[test]
    fn short_texts_have_no_ngrams_and_hashes_are_stable() {
        assert!(grams(13, "a b c").is_empty());
        let g = grams(2, "a b");
        assert_eq!(g.len(), 1);
        // Pinned: the hash of the token bigram ("a", "b") must never change
        // silently (an index built by one version would no longer match the
        // files hashed by another).
        assert_eq!(g[0], 11_405_124_220_113_061_653);
        let long = b"a_token_longer_than_sixteen_bytes";
        assert_eq!(token_hash(long), xxh3_64(long).to_le());
        // Short tokens hash their padded words: trailing zeros are not
        // bytes of the token, the length tells them apart.
        assert_ne!(token_hash(b"ab"), token_hash(b"ab\0"));
        assert_ne!(token_hash(b"a"), token_hash(b"b"));
    }
}
