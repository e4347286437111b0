//! Secrets: provider token formats (after gitleaks' `config/gitleaks.toml`
//! rules of the same names) and random-looking values assigned to
//! secret-like names (after detect-secrets' `KeywordDetector`, with its
//! entropy plugins' measure to tell a key from a word).
//!
//! Provider formats are specific enough to redact wherever they occur;
//! a value that is all one character class repeated (`ghp_xxxx...`) is a
//! fixture, not a token, and is left. The keyword rule needs a quoted
//! value of 8+ characters without spaces assigned with `=`, `:` or `:=` to
//! a name containing `key`, `secret`, `token`, `passwd`, `password`, `pwd`,
//! `credential` or `auth`; it is skipped in lockfiles and for placeholders.

use super::{Finding, Kind};
use regex::Regex;
use std::sync::OnceLock;

struct Rule {
    kind: Kind,
    re: Regex,
    /// Capture group of the secret (0: the whole match).
    group: usize,
}

fn rules() -> &'static [Rule] {
    static R: OnceLock<Vec<Rule>> = OnceLock::new();
    R.get_or_init(|| {
        let r = |kind, pattern: &str, group| Rule {
            kind,
            re: Regex::new(pattern).expect("secret rule"),
            group,
        };
        vec![
            r(
                Kind::PrivateKey,
                r"-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----[\s\S]{64,}?-----END[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----",
                0,
            ),
            r(
                Kind::AwsAccessKey,
                r"\b((?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16})\b",
                1,
            ),
            r(Kind::GithubToken, r"\b(gh[pousr]_[0-9A-Za-z]{36})\b", 1),
            r(Kind::GithubToken, r"\b(github_pat_[0-9A-Za-z_]{82})\b", 1),
            r(Kind::GitlabToken, r"\b(glpat-[0-9A-Za-z_\-]{20})\b", 1),
            r(
                Kind::SlackToken,
                r"\b(xox[bpe](?:-[0-9]{10,13}){1,3}-[A-Za-z0-9\-]{20,64})\b",
                1,
            ),
            r(Kind::SlackToken, r"\b(xox[baprs]-[0-9A-Za-z\-]{10,48})\b", 1),
            r(
                Kind::SlackToken,
                r"(https://hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9+/]{43,56})",
                1,
            ),
            r(
                Kind::SlackToken,
                r"(https://hooks\.slack\.com/services/T[A-Za-z0-9_]{6,}/B[A-Za-z0-9_]{6,}/[A-Za-z0-9_]{20,})",
                1,
            ),
            r(Kind::StripeKey, r"\b((?:sk|rk|pk)_(?:test|live|prod)_[0-9A-Za-z]{10,99})\b", 1),
        ]
    })
}

fn keyword_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| {
        Regex::new(
            r#"(?i)([a-z0-9_.\-]*(?:key|secret|token|passwd|password|pwd|credential|auth)[a-z0-9_.\-]*)["']?\s*(?::=|=>|=|:)\s*[bru]?(["'`])([^"'`\s]{8,200})["'`]"#,
        )
        .expect("keyword rule")
    })
}

/// Files whose random-looking strings are hashes by design.
fn is_lockfile(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.ends_with(".lock")
        || matches!(
            name,
            "package-lock.json"
                | "npm-shrinkwrap.json"
                | "go.sum"
                | "pnpm-lock.yaml"
                | "Pipfile.lock"
        )
}

/// Shannon entropy of `s` in bits per character.
pub fn entropy(s: &str) -> f64 {
    let mut counts = [0u32; 256];
    for b in s.bytes() {
        counts[b as usize] += 1;
    }
    let n = s.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

const PLACEHOLDER_WORDS: &[&str] = &[
    "example",
    "sample",
    "dummy",
    "fake",
    "placeholder",
    "changeme",
    "change_me",
    "your",
    "xxxx",
    "****",
    "redacted",
    "secret_key_here",
    "insert",
    "todo",
    "none",
    "null",
    "undefined",
    "password",
    "mysecret",
    "notasecret",
];

fn is_placeholder(v: &str) -> bool {
    let l = v.to_ascii_lowercase();
    PLACEHOLDER_WORDS.iter().any(|w| l.contains(w))
        || v.contains("${")
        || v.contains("{{")
        || v.contains('<')
        || v.contains('%')
        || v.starts_with('$')
        || v.bytes().all(|b| b == v.as_bytes()[0])
}

/// A value that is code rather than a key: an identifier, a dotted or
/// slashed path, a URL, a setting name.
fn looks_like_code(v: &str) -> bool {
    let ident = v
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b == b'_' || b == b'-' || b == b'.')
        || v.bytes().all(|b| b.is_ascii_uppercase() || b == b'_');
    ident
        || v.contains("://")
        || v.contains('/') && v.contains('.')
        || v.contains('\\')
        || v.starts_with('.')
}

pub fn find(path: &str, text: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    for rule in rules() {
        for c in rule.re.captures_iter(text) {
            let m = c.get(rule.group).unwrap();
            let s = m.as_str();
            // The documented fake keys (AWS's `AKIAIOSFODNN7EXAMPLE`) and
            // repeated-character fixtures.
            let body = s.split(['_', '-']).next_back().unwrap_or(s);
            if s.contains("EXAMPLE") || entropy(body) < 2.5 && rule.kind != Kind::PrivateKey {
                continue;
            }
            out.push(Finding {
                start: m.start(),
                end: m.end(),
                kind: rule.kind,
            });
        }
    }
    if is_lockfile(path) {
        return out;
    }
    for c in keyword_re().captures_iter(text) {
        let name = c[1].to_ascii_lowercase();
        let v = c.get(3).unwrap();
        let value = v.as_str();
        if is_placeholder(value) || looks_like_code(value) {
            continue;
        }
        // Names that hold counts or kinds, not secrets.
        if [
            "max_token",
            "num_token",
            "token_type",
            "tokenizer",
            "token_count",
            "key_type",
            "keyword",
            "keys",
            "key_name",
            "keyfunc",
            "auth_type",
            "author",
        ]
        .iter()
        .any(|n| name.contains(n))
        {
            continue;
        }
        let is_password = name.contains("pass") || name.contains("pwd");
        let e = entropy(value);
        let hex = value.bytes().all(|b| b.is_ascii_hexdigit());
        let has_digit = value.bytes().any(|b| b.is_ascii_digit());
        let has_alpha = value.bytes().any(|b| b.is_ascii_alphabetic());
        let random = if hex {
            value.len() >= 16 && e >= 3.0 && has_digit && has_alpha
        } else {
            value.len() >= 12 && e >= 3.5 && has_digit && has_alpha
        };
        let kind = if is_password && (random || value.len() >= 8 && has_digit && has_alpha) {
            Kind::Password
        } else if random {
            Kind::Secret
        } else {
            continue;
        };
        out.push(Finding {
            start: v.start(),
            end: v.end(),
            kind,
        });
    }
    out
}
