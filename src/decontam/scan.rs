//! One pass over a file that produces everything a check needs: both normal
//! forms of the exact tier ([`super::normalize`]) and the token hashes of the
//! n-gram tier ([`super::ngram`]), with the runs of comment tokens marked (the
//! stream outside comments is the full stream with them cut out).
//!
//! The three outputs are defined by their own modules; this pass only has to
//! produce the same bytes and hashes, faster. Per line (all three work line by
//! line, and none carries state across a `\n`):
//!
//! - an ASCII line goes through two token walks, one over its code part and
//!   one over its comment, each visiting only token starts
//!   ([`super::ascii_tokens`]: 64-byte blocks classified into bit masks, so
//!   blanks cost nothing per byte): a word of up to 16 bytes is read in two
//!   eight-byte loads, lowercased in registers ([`super::swar`]), stored onto
//!   the literal form and (unless masked, after a definition keyword) the
//!   code form, and hashed from the same registers
//!   ([`super::ngram::short_token_hash`]); a longer word takes the byte
//!   path; a punctuation token's hash comes from a 128-entry table instead
//!   of hashing one byte;
//! - a line with any non-ASCII byte goes through the reference functions
//!   ([`normalize::literal_into`], the code form of [`normalize::code_part`],
//!   `super::ngram::tokenize_line`), so Unicode rules live in one place.
//!
//! The scratch buffers are reused from file to file (one [`Scanner`] per
//! thread), so a check allocates nothing per file once they have grown.
//!
//! Tested against the reference functions on real files (tests below, and
//! tests/decontam.rs through the verdicts).

use super::ascii_tokens::{self, AsciiToken};
use super::lines;
use super::ngram::{short_token_hash, token_hash, tokenize_line, Token};
use super::normalize::{self, is_comment_line, trailing_comment_start, NAME_PLACEHOLDER};
use super::swar;

/// What one scan produces; buffers are reused.
#[derive(Debug, Default)]
pub struct Scanned {
    /// The literal form (see [`normalize::literal_into`]).
    pub literal: Vec<u8>,
    /// The code form (see [`normalize::code_into`]).
    pub code: Vec<u8>,
    /// Hashes of all tokens, in order.
    pub hashes: Vec<u64>,
    /// The comment tokens, as maximal runs `start..end` of indices into
    /// `hashes`, in order: the tokens outside comments are `hashes` with
    /// these runs cut out.
    pub comment_runs: Vec<(u32, u32)>,
}

impl Scanned {
    /// The word `b[start..end]` of ASCII text: lowercased onto the literal
    /// form, its token hash appended. Returns its lowercased bytes when it
    /// is a short word read in two eight-byte loads (`b[start..start + 16]`
    /// in bounds), for the code form to copy.
    #[inline(always)]
    fn word(&mut self, b: &[u8], start: usize, end: usize) -> Option<[u64; 2]> {
        let n = end - start;
        if n <= 16 {
            if let Some(chunk) = b.get(start..start + 16) {
                let load = |k: usize| {
                    swar::lowercase(u64::from_le_bytes(
                        chunk[k..k + 8].try_into().expect("eight bytes"),
                    ))
                };
                let words = [load(0), load(8)];
                swar::push16(&mut self.literal, words, n);
                let [lo, hi] = swar::keep_first(words, n);
                self.hashes.push(short_token_hash(lo, hi, n));
                return Some(words);
            }
        }
        let lit = self.literal.len();
        swar::push_lowercase(&mut self.literal, b, start, end);
        self.hashes.push(token_hash(&self.literal[lit..]));
        None
    }

    /// Marks `hashes[start..end]` as comment tokens (after every earlier run).
    #[inline]
    fn comment(&mut self, start: usize, end: usize) {
        if start == end {
            return;
        }
        match self.comment_runs.last_mut() {
            Some(last) if last.1 as usize == start => last.1 = end as u32,
            _ => self.comment_runs.push((start as u32, end as u32)),
        }
    }
}

/// Per-thread scanner: the punctuation hash table and the output buffers.
#[derive(Debug)]
pub struct Scanner {
    /// Token hash of each ASCII non-word byte (quotes folded to `"`).
    punct: [u64; 128],
    tokens: Vec<Token>,
    buf: Vec<u8>,
    pub out: Scanned,
}

impl Default for Scanner {
    fn default() -> Scanner {
        Scanner::new()
    }
}

impl Scanner {
    pub fn new() -> Scanner {
        let mut punct = [0u64; 128];
        for (c, h) in punct.iter_mut().enumerate() {
            let b = match c as u8 {
                b'\'' | b'`' => b'"',
                b => b,
            };
            *h = token_hash(&[b]);
        }
        Scanner {
            punct,
            tokens: Vec::new(),
            buf: Vec::with_capacity(64),
            out: Scanned::default(),
        }
    }

    /// Scans `text` into [`Scanner::out`] (cleared first).
    pub fn scan(&mut self, text: &str) -> &Scanned {
        let o = &mut self.out;
        o.literal.clear();
        o.code.clear();
        o.hashes.clear();
        o.comment_runs.clear();
        o.literal.reserve(text.len());
        o.code.reserve(text.len());
        let b = text.as_bytes();
        let mut start = 0;
        loop {
            let info = lines::line_at(b, start);
            let end = info.end;
            // `start` and `end` are char boundaries (`\n` is ASCII).
            let line = &text[start..end];
            if info.ascii {
                self.ascii_line(b, start, end, info.hash_or_slash);
            } else {
                self.unicode_line(line);
            }
            if end == b.len() {
                break;
            }
            start = end + 1;
        }
        &self.out
    }

    /// The reference functions, for a line with non-ASCII characters.
    fn unicode_line(&mut self, line: &str) {
        let o = &mut self.out;
        normalize::literal_into(line, &mut o.literal);
        normalize::code_line_into(normalize::code_part(line), &mut o.code);
        self.tokens.clear();
        tokenize_line(line, &mut self.tokens, &mut self.buf);
        for t in &self.tokens {
            let at = o.hashes.len();
            o.hashes.push(t.hash);
            if t.comment {
                o.comment(at, at + 1);
            }
        }
    }

    /// All three outputs of the ASCII line `b[start..end]`: the code part,
    /// then the comment (`hash_or_slash`: whether the line holds a `#` or a
    /// `/`, see [`lines::Line`]).
    ///
    /// PERF: the hottest loop of a check. Tokens and bytes at or after the
    /// comment start are in a comment and no word straddles it (a trailing
    /// comment starts after a blank), so the line is two loops, one per
    /// side, and the comment side costs one run per line instead of a flag
    /// per token.
    #[inline]
    fn ascii_line(&mut self, b: &[u8], start: usize, end: usize, hash_or_slash: bool) {
        // SAFETY of the `str` view: the line is ASCII.
        let line = unsafe { std::str::from_utf8_unchecked(&b[start..end]) };
        let code_end = if is_comment_line(line) {
            start
        } else if hash_or_slash {
            trailing_comment_start(line).map_or(end, |i| start + i)
        } else {
            // A trailing comment starts with `#` or `//`.
            end
        };
        self.code_side(b, start, code_end);
        let first_comment = self.out.hashes.len();
        self.comment_side(b, code_end, end);
        let last = self.out.hashes.len();
        self.out.comment(first_comment, last);
    }

    /// The code part `b[start..end]` of an ASCII line: literal form, code
    /// form and tokens.
    ///
    /// A token's `ident` and `quoted` flags only matter on the index side
    /// (which tokenizes with `ngram::tokenize`): a file's n-grams are looked
    /// up by hash alone, so this loop does not track them.
    #[inline]
    fn code_side(&mut self, b: &[u8], start: usize, end: usize) {
        let (o, punct) = (&mut self.out, &self.punct);
        // The definition-name rule of the code form (see
        // `normalize::code_line_into`): a word right after a keyword, with
        // blanks between them, is the name. Bytes between two tokens are
        // blanks, so "blanks between" is "a gap between".
        let mut after_kw = false;
        let mut prev_end = start;
        ascii_tokens::for_each(b, start, end, |t| match t {
            AsciiToken::Word(s, e) => {
                let lowered = o.word(b, s, e);
                if after_kw && s > prev_end {
                    o.code.push(NAME_PLACEHOLDER);
                    after_kw = false;
                } else {
                    match lowered {
                        Some(words) => swar::push16(&mut o.code, words, e - s),
                        // The byte path just lowered it onto the literal form.
                        None => o
                            .code
                            .extend_from_slice(&o.literal[o.literal.len() - (e - s)..]),
                    }
                    // The keyword test is case-sensitive, as in the
                    // reference (`Function foo` is prose).
                    after_kw = matches!(&b[s..e], b"def" | b"fn" | b"function" | b"func");
                }
                prev_end = e;
            }
            AsciiToken::Punct(i) => {
                let c = b[i];
                o.literal.push(c);
                o.code.push(c);
                o.hashes.push(punct[c as usize]);
                after_kw = false;
                prev_end = i + 1;
            }
        });
    }

    /// The comment part `b[start..end]` of an ASCII line: literal form and
    /// tokens only.
    #[inline]
    fn comment_side(&mut self, b: &[u8], start: usize, end: usize) {
        let (o, punct) = (&mut self.out, &self.punct);
        ascii_tokens::for_each(b, start, end, |t| match t {
            AsciiToken::Word(s, e) => {
                o.word(b, s, e);
            }
            AsciiToken::Punct(i) => {
                let c = b[i];
                o.literal.push(c);
                o.hashes.push(punct[c as usize]);
            }
        });
    }
}

/// Maximal runs of comment tokens, from per-token flags.
#[cfg(test)]
pub(crate) fn comment_runs_of(comment: impl IntoIterator<Item = bool>) -> Vec<(u32, u32)> {
    let mut s = Scanned::default();
    for (i, c) in comment.into_iter().enumerate() {
        if c {
            s.comment(i, i + 1);
        }
    }
    s.comment_runs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decontam::ngram::tokenize;

    /// The reference outputs, from the modules that define them.
    fn reference(text: &str) -> Scanned {
        let mut tokens = Vec::new();
        tokenize(text, &mut tokens);
        let mut s = Scanned {
            literal: normalize::literal(text),
            code: normalize::code(text),
            ..Scanned::default()
        };
        s.hashes = tokens.iter().map(|t| t.hash).collect();
        s.comment_runs = comment_runs_of(tokens.iter().map(|t| t.comment));
        s
    }

    fn same(text: &str) {
        let mut sc = Scanner::new();
        let got = sc.scan(text);
        let want = reference(text);
        assert_eq!(got.literal, want.literal, "literal of {text:?}");
        assert_eq!(got.code, want.code, "code of {text:?}");
        assert_eq!(got.hashes, want.hashes, "tokens of {text:?}");
        assert_eq!(got.comment_runs, want.comment_runs, "comments of {text:?}");
    }

    #[test]
    fn matches_the_reference_on_edge_cases() {
        for t in [
            "",
            "\n",
            "a",
            "def  add(a, b):  # sum\n    return a+b // 2\r\n",
            "   # whole\n// c\n-- sql\n; lisp\n/* block\n * star\n-x\n/x/\n",
            "fn\tfoo(x: u32) { 'a' `b` \"c\" }\x0b\x0c\x01\x00",
            "undefined fn\nfunction(x) {}\nfunc  main() {}\ndef\n f\nFunction foo(a)\nDEF x",
            "x = 1 # y\nurl = 'http://a'\na = b // c\n#include <x>\n",
            "ÄÖ Ü größe = 1 # kommentar é\n\u{a0}x\u{2003}y\nß = 'ǅ'\n",
            "12abc _x x2 __init__ 3.14 0x1F\n\n\n",
            "def f(s):\n    return s.replace(\"(\", \"\")  # ok\ndef\u{a0}g(): pass\n",
        ] {
            same(t);
        }
    }

    #[test]
    fn matches_the_reference_on_real_files() {
        // Real code of this machine: this crate's sources and, where found,
        // part of the Python standard library (with non-ASCII files).
        let mut files: Vec<std::path::PathBuf> = Vec::new();
        for dir in [
            concat!(env!("CARGO_MANIFEST_DIR"), "/src/decontam"),
            "/usr/lib/python3.11",
            "/usr/lib/python3.11/email",
        ] {
            if let Ok(rd) = std::fs::read_dir(dir) {
                let mut v: Vec<_> = rd.flatten().map(|e| e.path()).collect();
                v.sort();
                files.extend(v.into_iter().filter(|p| p.is_file()).take(60));
            }
        }
        assert!(!files.is_empty());
        let mut sc = Scanner::new();
        let mut checked = 0;
        for p in files {
            let Ok(bytes) = std::fs::read(&p) else {
                continue;
            };
            let text = String::from_utf8_lossy(&bytes);
            let got = sc.scan(&text);
            let want = reference(&text);
            assert!(got.literal == want.literal, "literal of {}", p.display());
            assert!(got.code == want.code, "code of {}", p.display());
            assert!(got.hashes == want.hashes, "tokens of {}", p.display());
            assert!(
                got.comment_runs == want.comment_runs,
                "comments of {}",
                p.display()
            );
            checked += 1;
        }
        assert!(checked >= 10, "only {checked} files read");
    }
}
