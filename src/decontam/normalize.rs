//! Text normalisation of the exact tier, and the comment rules it shares with
//! the n-gram tokenizer.
//!
//! Two forms, both applied identically to benchmark strings and to files, so
//! that a benchmark string occurs in a file's form whenever its text occurs in
//! the file up to the differences each form erases:
//!
//! - **literal**: lowercase, every whitespace character removed. Erases
//!   re-indentation, re-wrapping, blank lines, CRLF vs LF, tabs vs spaces and
//!   case changes. This is the form the issue asks for, and the one we use for
//!   prompts and docstrings.
//! - **code**: the literal form of the text after (1) dropping whole-line
//!   comments, (2) cutting trailing comments and (3) replacing the name after
//!   a definition keyword (`def`, `fn`, `function`, `func`) by a placeholder.
//!   It additionally erases the two cheapest edits that hide a copied solution
//!   from a literal match: comments added between its lines and a renamed
//!   function. We use it for solutions only: a MultiPL-E prompt is mostly a
//!   doc comment, and its code form would be a bare signature (common code).
//!
//! The comment rules are deliberately language-agnostic (we do not know a
//! file's language for certain) and only need to be *consistent*: a line is
//! transformed the same way wherever it appears, so a dropped line costs at
//! most some matching power, never correctness. A whole-line comment is a line
//! whose first non-blank characters are `#`, `//`, `--`, `;`, `/*` or `*`
//! (Python/shell/R/Ruby/Perl, C-family/Rust/JS/Go, Lua/Haskell/SQL, Lisp,
//! block-comment lines). A trailing comment starts at a `#` or `//` preceded
//! by a space or tab. Both rules also hit some code (`#include`, Python's
//! `a // b`), on both sides alike.

/// The placeholder that replaces a definition's name in the code form. A
/// control character, so no ordinary text contains it.
pub const NAME_PLACEHOLDER: u8 = 0x01;

/// Keywords whose following identifier is a definition name.
const DEF_KEYWORDS: &[&[u8]] = &[b"def", b"fn", b"function", b"func"];

/// ASCII whitespace exactly as `char::is_whitespace` sees it (which includes
/// vertical tab, unlike `u8::is_ascii_whitespace`).
#[inline]
pub fn is_ascii_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// Eight spaces, as one little-endian word.
const SPACES: u64 = u64::from_le_bytes([b' '; 8]);

/// Whether `line` (any leading whitespace allowed) is a whole-line comment.
pub fn is_comment_line(line: &str) -> bool {
    // ASCII blanks skipped bytewise (indentation is most of them), spaces
    // eight at a time first; the Unicode trim only when a non-ASCII byte
    // follows.
    let b = line.as_bytes();
    let mut ascii = 0;
    while let Some(chunk) = b.get(ascii..ascii + 8) {
        let not_space = u64::from_le_bytes(chunk.try_into().expect("eight bytes")) ^ SPACES;
        if not_space != 0 {
            ascii += (not_space.trailing_zeros() / 8) as usize;
            break;
        }
        ascii += 8;
    }
    while ascii < b.len() && is_ascii_ws(b[ascii]) {
        ascii += 1;
    }
    let rest = &line[ascii..];
    let t = if rest.as_bytes().first().is_some_and(|&c| c >= 0x80) {
        rest.trim_start()
    } else {
        rest
    };
    let b = t.as_bytes();
    match b.first() {
        Some(b'#') | Some(b';') | Some(b'*') => true,
        Some(b'/') => matches!(b.get(1), Some(b'/') | Some(b'*')),
        Some(b'-') => b.get(1) == Some(&b'-'),
        _ => false,
    }
}

/// Byte offset in `line` where a trailing comment starts: the first `#` or
/// `//` preceded by a space or tab.
pub fn trailing_comment_start(line: &str) -> Option<usize> {
    let b = line.as_bytes();
    // PERF: memchr jumps between candidates (most lines have none).
    memchr::memchr2_iter(b'#', b'/', b).find(|&i| {
        i >= 1
            && (b[i] == b'#' || b.get(i + 1) == Some(&b'/'))
            && (b[i - 1] == b' ' || b[i - 1] == b'\t')
    })
}

/// The part of `line` that is code: empty for a whole-line comment, the text
/// before a trailing comment otherwise.
pub fn code_part(line: &str) -> &str {
    if is_comment_line(line) {
        return "";
    }
    match trailing_comment_start(line) {
        Some(i) => &line[..i],
        None => line,
    }
}

/// Appends the lowercase form of `c` (not whitespace) to `out`.
#[inline]
fn push_lower(c: char, out: &mut Vec<u8>) {
    let mut buf = [0u8; 4];
    for l in c.to_lowercase() {
        out.extend_from_slice(l.encode_utf8(&mut buf).as_bytes());
    }
}

/// Appends the literal form of `text` (lowercase, no whitespace) to `out`.
///
/// PERF: ASCII bytes take a branch-light path; only non-ASCII characters are
/// decoded. `out` is bytes because Aho-Corasick searches bytes; it is always
/// valid UTF-8.
pub fn literal_into(text: &str, out: &mut Vec<u8>) {
    let b = text.as_bytes();
    out.reserve(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c < 0x80 {
            if !is_ascii_ws(c) {
                out.push(c.to_ascii_lowercase());
            }
            i += 1;
        } else {
            // `i` is on a char boundary: we only ever step over whole chars.
            let ch = text[i..].chars().next().unwrap_or('\u{fffd}');
            if !ch.is_whitespace() {
                push_lower(ch, out);
            }
            i += ch.len_utf8();
        }
    }
}

/// The literal form of `text`.
pub fn literal(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    literal_into(text, &mut out);
    out
}

/// Appends the code form of `text` to `out` (see the module doc).
pub fn code_into(text: &str, out: &mut Vec<u8>) {
    out.reserve(text.len());
    for line in text.split('\n') {
        code_line_into(code_part(line), out);
    }
}

/// The code form of `text`.
pub fn code(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    code_into(text, &mut out);
    out
}

/// Literal form of one line of code with definition names replaced.
pub(crate) fn code_line_into(line: &str, out: &mut Vec<u8>) {
    // State of the definition-name rule: we saw a definition keyword (as a
    // whole word) and then whitespace; the next word is the name.
    let mut after_kw = false;
    let mut saw_ws = false;
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let (ch, len) = if c < 0x80 {
            (c as char, 1)
        } else {
            let ch = line[i..].chars().next().unwrap_or('\u{fffd}');
            (ch, ch.len_utf8())
        };
        if ch.is_whitespace() {
            saw_ws |= after_kw;
            i += len;
            continue;
        }
        if ch.is_alphanumeric() || ch == '_' {
            let start = i;
            while i < b.len() {
                let (wch, wlen) = if b[i] < 0x80 {
                    (b[i] as char, 1)
                } else {
                    let w = line[i..].chars().next().unwrap_or('\u{fffd}');
                    (w, w.len_utf8())
                };
                if !(wch.is_alphanumeric() || wch == '_') {
                    break;
                }
                i += wlen;
            }
            let word = &line[start..i];
            if after_kw && saw_ws {
                out.push(NAME_PLACEHOLDER);
                after_kw = false;
            } else {
                literal_into(word, out);
                after_kw = DEF_KEYWORDS.contains(&word.as_bytes());
            }
            saw_ws = false;
            continue;
        }
        after_kw = false;
        saw_ws = false;
        push_lower(ch, out);
        i += len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: Vec<u8>) -> String {
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn literal_drops_all_whitespace_and_lowercases() {
        assert_eq!(
            s(literal("  Return X +\ty\r\n\u{a0}\x0b;")),
            "returnx+y;".to_string()
        );
        assert_eq!(s(literal("ÄÖ Ü")), "äöü");
    }

    #[test]
    fn code_form_erases_comments_and_definition_names() {
        let a = "def add(a, b):\n    # add them\n    return a + b  # sum\n";
        let b = "def plus(a,b):\n  return a+b\n";
        assert_eq!(code(a), code(b));
        assert_eq!(s(code(b)), "def\u{1}(a,b):returna+b");
        // Rust and JavaScript definitions too; an anonymous function keeps
        // its parenthesis.
        assert_eq!(s(code("fn foo(x: u32) {")), "fn\u{1}(x:u32){");
        assert_eq!(s(code("let f = function(x) {")), "letf=function(x){");
        assert_eq!(s(code("undefined fn")), "undefinedfn");
    }

    #[test]
    fn comment_rules() {
        assert!(is_comment_line("   # x"));
        assert!(is_comment_line("// x"));
        assert!(is_comment_line("-- x"));
        assert!(is_comment_line(" * x"));
        assert!(!is_comment_line("x = 1 # y"));
        assert!(!is_comment_line("-x"));
        assert!(!is_comment_line("/x/"));
        assert_eq!(trailing_comment_start("x = 1 # y"), Some(6));
        assert_eq!(trailing_comment_start("url = 'http://a'"), None);
        assert_eq!(trailing_comment_start("a = b // c"), Some(6));
        assert_eq!(code_part("  x = 1\t// note"), "  x = 1\t");
        assert!(is_comment_line("\u{a0}\t\u{2003}# x"));
        assert!(is_comment_line(" \u{85}// x"));
        assert!(!is_comment_line(" \u{1c}# x"));
        assert_eq!(trailing_comment_start("#a #b"), Some(3));
        assert_eq!(trailing_comment_start("a /x //y"), Some(5));
        assert_eq!(trailing_comment_start("a /"), None);
        assert_eq!(trailing_comment_start("a\t/#/ //"), Some(6));
    }
}
