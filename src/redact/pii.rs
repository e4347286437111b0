//! E-mail addresses and public IPv4 addresses.
//!
//! E-mail: `local@domain.tld` where the top-level domain is a real one (a
//! two-letter country code or a common generic one), so that attribute
//! access after a matrix product (`a@b.shape`) and package specs
//! (`pkg@1.2.3`) are left alone. Not redacted: the RFC 2606 / RFC 6761
//! names (`example.com|net|org`, `*.example`, `*.test`, `*.invalid`,
//! `*.localhost`, `localhost`), and `git@host:` SSH remotes.
//!
//! IPv4: four decimal octets not inside a longer dotted run of digits
//! (`1.2.3.4.5` is a version), not preceded by a version marker (`v`,
//! `version`, `==`, `>=`, `~=`), and only public addresses: loopback,
//! private (RFC 1918), shared (RFC 6598), link-local, documentation
//! (RFC 5737), benchmarking (RFC 2544), multicast, reserved, `0.0.0.0` and
//! broadcast stay, as do masks like `255.255.255.0`, the public DNS
//! resolvers (`8.8.8.8`, `1.1.1.1`, ...: services, not anyone's machine),
//! dotted names (`1.0.0.127.in-addr.arpa`) and numbers on a line that talks
//! about a version or a section, an OID, and addresses in tests, fixtures
//! and examples (test data for parsers). An address must also be in a
//! string literal or on a line about hosts and addresses.

use super::{Finding, Kind};
use regex::Regex;
use std::sync::OnceLock;

const GENERIC_TLDS: &[&str] = &[
    "com", "org", "net", "edu", "gov", "mil", "int", "info", "biz", "name", "pro", "dev", "app",
    "io", "ai", "co", "me", "tech", "cloud", "online", "site", "xyz", "email", "page",
];

fn email_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| {
        Regex::new(r"(?i)\b[a-z0-9][a-z0-9._%+\-]*@((?:[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?\.)+([a-z]{2,24}))\b")
            .expect("email regex")
    })
}

fn ipv4_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| {
        Regex::new(r"\b(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\b").expect("ipv4 regex")
    })
}

pub fn find(path: &str, text: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    let fixture = is_test_path(path);
    for c in email_re().captures_iter(text) {
        let m = c.get(0).unwrap();
        let domain = c[1].to_ascii_lowercase();
        let tld = c[2].to_ascii_lowercase();
        if !(tld.len() == 2 || GENERIC_TLDS.contains(&tld.as_str())) || is_example_domain(&domain) {
            continue;
        }
        // `git@github.com:owner/repo` is a remote, not an address.
        if text[m.end()..].starts_with(':') && c[0].to_ascii_lowercase().starts_with("git@") {
            continue;
        }
        out.push(Finding {
            start: m.start(),
            end: m.end(),
            kind: Kind::Email,
        });
    }
    for c in ipv4_re().captures_iter(text) {
        let m = c.get(0).unwrap();
        let octets: Vec<u32> = (1..=4).map(|i| c[i].parse().unwrap_or(999)).collect();
        if octets.iter().any(|&o| o > 255) {
            continue;
        }
        let before = &text[..m.start()];
        let after = &text[m.end()..];
        // Part of a longer dotted number: a version or an OID.
        if after.starts_with('.') && after[1..].starts_with(|c: char| c.is_ascii_digit())
            || before.ends_with('.')
                && before[..before.len() - 1].ends_with(|c: char| c.is_ascii_digit())
        {
            continue;
        }
        // `1.0.0.127.in-addr.arpa`, `1.2.3.4.tar.gz`: a name, not an address.
        if after.starts_with('.') && after[1..].starts_with(|c: char| c.is_ascii_alphanumeric()) {
            continue;
        }
        let line = before[before.rfind('\n').map_or(0, |i| i + 1)..].to_ascii_lowercase();
        let lead = before
            .trim_end_matches([' ', '"', '\'', '='])
            .to_ascii_lowercase();
        if lead.ends_with('v')
            || line.contains("version")
            || line.contains("section")
            || WELL_KNOWN.contains(&m.as_str())
            || before.ends_with("==")
            || before.ends_with(">=")
            || before.ends_with("<=")
            || before.ends_with("~=")
        {
            continue;
        }
        if fixture || !is_public(&octets) || !looks_like_address_context(text, m.start(), m.end()) {
            continue;
        }
        out.push(Finding {
            start: m.start(),
            end: m.end(),
            kind: Kind::IpAddress,
        });
    }
    out
}

/// Public addresses that are services or documentation, not anyone's
/// machine: the big public DNS resolvers, and the example of many man pages.
const WELL_KNOWN: &[&str] = &[
    "8.8.8.8",
    "8.8.4.4",
    "1.1.1.1",
    "1.0.0.1",
    "9.9.9.9",
    "149.112.112.112",
    "208.67.222.222",
    "208.67.220.220",
    "123.45.67.89",
    "1.2.3.4",
];

/// Dotted quads are also OIDs (`2.5.4.3`), spec sections (`7.6.2.2`) and
/// table entries: an address is taken only inside a string literal or on a
/// line that talks about hosts and addresses, and never on a line about
/// OIDs.
fn looks_like_address_context(text: &str, start: usize, end: usize) -> bool {
    let ls = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let le = text[end..].find('\n').map_or(text.len(), |i| end + i);
    let line = text[ls..le].to_ascii_lowercase();
    if line.contains("oid") || line.contains("objectidentifier") || line.contains("section") {
        return false;
    }
    let quoted = text[ls..start].ends_with(['"', '\'', '/', '@'])
        || text[end..le].starts_with(['"', '\'', ':', '/']);
    quoted
        || [
            "ip",
            "host",
            "addr",
            "server",
            "proxy",
            "connect",
            "endpoint",
            "dns",
            "upstream",
            "bind",
            "listen",
            "remote",
            "peer",
            "gateway",
            "route",
            "socket",
            "nameserver",
        ]
        .iter()
        .any(|w| {
            line.match_indices(w).any(|(i, _)| {
                let b = line.as_bytes();
                i == 0 || !b[i - 1].is_ascii_alphabetic()
            })
        })
}

/// Tests, fixtures and examples: their addresses are test data (parsers'
/// inputs), not anyone's machine. E-mail addresses and secrets there are
/// still redacted: a real one in a test leaks as much as anywhere.
fn is_test_path(path: &str) -> bool {
    let p = format!("/{}", path.to_ascii_lowercase());
    let name = p.rsplit('/').next().unwrap_or("");
    [
        "/tests/",
        "/test/",
        "/testdata/",
        "/fixtures/",
        "/examples/",
        "/benches/",
    ]
    .iter()
    .any(|d| p.contains(d))
        || name.starts_with("test_")
        || name.ends_with("_test.py")
        || name.ends_with("_tests.rs")
        || name.ends_with("_test.rs")
}

fn is_example_domain(domain: &str) -> bool {
    let d = domain.trim_end_matches('.');
    ["example.com", "example.net", "example.org", "localhost"]
        .iter()
        .any(|e| d == *e || d.ends_with(&format!(".{e}")))
        || [".example", ".test", ".invalid", ".localhost", ".local"]
            .iter()
            .any(|s| d.ends_with(s))
}

/// A globally routable unicast address (RFC 6890's special-purpose
/// registry, the parts that occur in code).
fn is_public(o: &[u32]) -> bool {
    let (a, b, c) = (o[0], o[1], o[2]);
    !(a == 0
        || a == 10
        || a == 127
        || a >= 224
        || (a == 100 && (64..128).contains(&b))
        || (a == 169 && b == 254)
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 168)
        || (a == 192 && b == 0 && (c == 0 || c == 2))
        || (a == 198 && (b == 18 || b == 19))
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
        || o.iter().all(|&x| x == 255 || x == 0))
}
