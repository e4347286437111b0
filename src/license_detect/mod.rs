//! A repository's license from its own files, and a file's from its
//! `SPDX-License-Identifier:` header.
//!
//! * `text_match.rs`: license files (`LICENSE*`, `LICENCE*`, `COPYING*`,
//!   `UNLICENSE`) matched against the SPDX license texts with askalono's
//!   algorithm (as vendored by the `spdx` crate, which cargo-deny builds
//!   on): Dice coefficient of word bigrams after SPDX's normalisation,
//!   a score in 0..1.
//! * `manifest.rs`: the `license` fields of `Cargo.toml`, `pyproject.toml`,
//!   `setup.cfg` and `package.json`.
//! * `header.rs`: the per-file `SPDX-License-Identifier:` header.
//!
//! How several findings combine into one SPDX expression ([`combine`]):
//! 1. A manifest's expression is the authors' own statement of how their
//!    licenses combine (`MIT OR Apache-2.0` in a Cargo.toml), so it is taken
//!    as it is when every license file agrees with it (names only licenses
//!    the expression mentions).
//! 2. License files the manifest does not mention are added with `AND`:
//!    a file that ships a license text binds the code unless the authors
//!    said it is an alternative.
//! 3. Without a manifest, license files named as variants of one name
//!    (`LICENSE-MIT` and `LICENSE-APACHE`, the Rust ecosystem's convention
//!    for a dual license) combine with `OR`; any other set (a `LICENSE` and
//!    a `COPYING`) combines with `AND`, the conservative reading.
//!
//! A license file whose best match scores below [`CONFIDENT`] is reported
//! (file, best candidate, score) and not used: a guess would let a GPL
//! variant through as MIT.

mod header;
mod manifest;
mod text_match;

pub use header::spdx_header;
pub use text_match::{match_text, TextMatch};

use serde::Serialize;

/// Scores at or above this are taken as the license of a file. Askalono's
/// own CLI uses 0.8 to report and 0.9 for "confident".
pub const CONFIDENT: f32 = 0.9;

/// Whether `path` (in the repository) is a license file we read: at the
/// root, named `LICENSE*`, `LICENCE*`, `COPYING*` or `UNLICENSE*`.
pub fn is_license_file(path: &str) -> bool {
    if path.contains('/') {
        return false;
    }
    let upper = path.to_ascii_uppercase();
    let named = ["LICENSE", "LICENCE", "COPYING", "UNLICENSE"]
        .iter()
        .any(|p| {
            upper
                .strip_prefix(p)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['-', '.', '_']))
        });
    // `license.py` is code about licenses, not a license.
    let code = matches!(
        crate::sources::repos::language::detect(path, b""),
        Some(l) if l != "Markdown"
    );
    named && !code
}

/// Whether `path` is a manifest whose `license` field we read.
pub fn is_manifest(path: &str) -> bool {
    matches!(
        path,
        "Cargo.toml" | "pyproject.toml" | "setup.cfg" | "package.json"
    )
}

/// What detection found for one license file.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FileFinding {
    pub file: String,
    /// Best candidate (an SPDX id) and its score.
    pub best: Option<String>,
    pub score: f32,
    pub confident: bool,
}

/// A repository's license as detected.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RepoLicense {
    /// The SPDX expression, when anything was detected with confidence.
    pub expression: Option<String>,
    pub files: Vec<FileFinding>,
    /// `(manifest, expression)` for every manifest with a valid field.
    pub manifests: Vec<(String, String)>,
    /// Manifest fields that are not SPDX expressions, reported.
    pub invalid_manifest_fields: Vec<(String, String)>,
}

/// Detects the license of a repository from its root files
/// `(path, text)` (license files and manifests; other paths are ignored).
pub fn detect(files: &[(String, String)]) -> RepoLicense {
    let mut out = RepoLicense::default();
    let mut sorted: Vec<&(String, String)> = files.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    for (path, text) in sorted {
        if is_license_file(path) {
            let m = match_text(text);
            out.files.push(FileFinding {
                file: path.clone(),
                best: m.as_ref().map(|m| m.id.clone()),
                score: m.as_ref().map_or(0.0, |m| m.score),
                confident: m.as_ref().is_some_and(|m| m.score >= CONFIDENT),
            });
        } else if is_manifest(path) {
            if let Some(field) = manifest::license_field(path, text) {
                match valid_expression(&field) {
                    Some(e) => out.manifests.push((path.clone(), e)),
                    None => out.invalid_manifest_fields.push((path.clone(), field)),
                }
            }
        }
    }
    let confident: Vec<(&str, &str)> = out
        .files
        .iter()
        .filter(|f| f.confident)
        .filter_map(|f| f.best.as_deref().map(|b| (f.file.as_str(), b)))
        .collect();
    out.expression = combine(out.manifests.first().map(|m| m.1.as_str()), &confident);
    out
}

/// The rules of the module docs: `manifest` is a valid expression, `files`
/// are `(file name, SPDX id)` of the confident license files.
pub fn combine(manifest: Option<&str>, files: &[(&str, &str)]) -> Option<String> {
    let mut ids: Vec<&str> = files.iter().map(|f| f.1).collect();
    ids.sort();
    ids.dedup();
    if let Some(m) = manifest {
        let mentioned = expression_ids(m);
        let extra: Vec<&str> = ids
            .iter()
            .copied()
            .filter(|id| !mentioned.iter().any(|x| x.eq_ignore_ascii_case(id)))
            .collect();
        if extra.is_empty() {
            return Some(m.to_string());
        }
        return Some(format!("({m}) AND {}", extra.join(" AND ")));
    }
    match ids.len() {
        0 => None,
        1 => Some(ids[0].to_string()),
        _ => {
            let variants = files.iter().all(|(name, _)| {
                let u = name.to_ascii_uppercase();
                ["LICENSE-", "LICENCE-", "COPYING-"]
                    .iter()
                    .any(|p| u.starts_with(p))
            });
            Some(ids.join(if variants { " OR " } else { " AND " }))
        }
    }
}

/// An SPDX expression in canonical spelling, or `None` when `s` is not
/// one (lax parsing: `MIT/Apache-2.0` and `Apache 2.0`-style near misses of
/// ids are accepted as the spdx crate's lax mode accepts them).
pub fn valid_expression(s: &str) -> Option<String> {
    let e = spdx::Expression::parse_mode(s.trim(), spdx::ParseMode::LAX).ok()?;
    Some(render(&e))
}

/// The license ids an expression mentions.
fn expression_ids(s: &str) -> Vec<String> {
    match spdx::Expression::parse_mode(s, spdx::ParseMode::LAX) {
        Ok(e) => e
            .requirements()
            .map(|r| r.req.license.to_string())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Renders a parsed expression with canonical ids and operators, from its
/// postfix form.
fn render(e: &spdx::Expression) -> String {
    use spdx::expression::{ExprNode, Operator};
    // (text, precedence: 2 = atom, 1 = AND, 0 = OR)
    let mut stack: Vec<(String, u8)> = Vec::new();
    for node in e.iter() {
        match node {
            ExprNode::Req(r) => stack.push((r.req.to_string(), 2)),
            ExprNode::Op(op) => {
                let (b, pb) = stack.pop().unwrap_or_default();
                let (a, pa) = stack.pop().unwrap_or_default();
                let (word, p) = match op {
                    Operator::And => ("AND", 1),
                    Operator::Or => ("OR", 0),
                };
                let wrap = |s: String, ps: u8| if ps < p { format!("({s})") } else { s };
                stack.push((format!("{} {word} {}", wrap(a, pa), wrap(b, pb)), p));
            }
        }
    }
    stack.pop().map(|s| s.0).unwrap_or_default()
}

#[cfg(test)]
mod tests;
