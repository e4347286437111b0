//! The curated repository list: a JSON array, one object per repository
//! (schema in `data/README.md`). Only `repo` is required. A malformed list
//! is refused as a whole, with a message naming the file, the entry and the
//! field, so that a typo never silently drops a repository.

use anyhow::{bail, Context, Result};
use serde_json::{Map, Value};
use std::path::Path;

/// One repository of the list, with defaults applied.
#[derive(Clone, Debug, PartialEq)]
pub struct RepoEntry {
    /// `owner/name`, written to the output's `repo`.
    pub repo: String,
    /// Where to fetch from: `https://...`, `file://...` or a local path
    /// (made absolute against the list's directory).
    pub url: String,
    /// A commit, tag or branch; `None` is the remote's HEAD.
    pub revision: Option<String>,
    pub stars: Option<u64>,
    /// The license the list declares (an SPDX expression), which overrides
    /// detection.
    pub license: Option<String>,
    /// Languages the repository contributes (linguist names); empty is all.
    pub languages: Vec<String>,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

const FIELDS: &[&str] = &[
    "repo",
    "url",
    "revision",
    "stars",
    "license",
    "languages",
    "paths",
    "note",
];

/// Reads and validates the list at `path`.
pub fn load(path: &Path) -> Result<Vec<RepoEntry>> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read the repository list {}", path.display()))?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    parse(&bytes, &base).with_context(|| format!("repository list {}", path.display()))
}

/// Parses a list; relative local URLs are relative to `base`.
pub fn parse(bytes: &[u8], base: &Path) -> Result<Vec<RepoEntry>> {
    let value: Value = serde_json::from_slice(bytes)
        .context("is not JSON; expected an array of {\"repo\": \"owner/name\", ...} objects")?;
    let Value::Array(items) = value else {
        bail!("must be a JSON array of repository objects (see data/README.md)");
    };
    if items.is_empty() {
        bail!("holds no repositories");
    }
    let mut out: Vec<RepoEntry> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let entry = parse_entry(item, base).with_context(|| {
            let name = item.get("repo").and_then(Value::as_str).unwrap_or("?");
            format!("entry {i} ({name})")
        })?;
        if let Some(j) = out.iter().position(|e| e.repo == entry.repo) {
            bail!(
                "entry {i} ({}): repository listed twice (also entry {j}); keep one",
                entry.repo
            );
        }
        out.push(entry);
    }
    Ok(out)
}

fn parse_entry(item: &Value, base: &Path) -> Result<RepoEntry> {
    let Value::Object(obj) = item else {
        bail!("must be an object with at least \"repo\"");
    };
    for key in obj.keys() {
        if !FIELDS.contains(&key.as_str()) {
            bail!(
                "field {key:?} is unknown (known: {}); a typo would silently change the run",
                FIELDS.join(", ")
            );
        }
    }
    let repo = string(obj, "repo")?.context("field \"repo\" is required (\"owner/name\")")?;
    let parts: Vec<&str> = repo.split('/').collect();
    let valid = |s: &str| {
        !s.is_empty()
            && s != "."
            && s != ".."
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    if parts.len() != 2 || !parts.iter().all(|p| valid(p)) {
        bail!("field \"repo\" must be \"owner/name\" (letters, digits, - _ .), got {repo:?}");
    }
    let url = match string(obj, "url")? {
        None => format!("https://github.com/{repo}.git"),
        Some(u) if u.contains("://") => u,
        Some(u) if u.is_empty() => bail!("field \"url\" is empty"),
        Some(local) => base.join(local).display().to_string(),
    };
    let revision = string(obj, "revision")?;
    if revision
        .as_deref()
        .is_some_and(|r| r.trim().is_empty() || r.starts_with('-'))
    {
        bail!("field \"revision\" must be a commit, tag or branch name");
    }
    let stars = match obj.get("stars") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .context("field \"stars\" must be a whole number >= 0")?,
        ),
    };
    let license = string(obj, "license")?;
    let languages = strings(obj.get("languages"), "languages")?;
    let (include, exclude) = match obj.get("paths") {
        None | Some(Value::Null) => (Vec::new(), Vec::new()),
        Some(Value::Object(p)) => {
            if let Some(k) = p.keys().find(|k| *k != "include" && *k != "exclude") {
                bail!("field \"paths\" has unknown key {k:?} (known: include, exclude)");
            }
            (
                strings(p.get("include"), "paths.include")?,
                strings(p.get("exclude"), "paths.exclude")?,
            )
        }
        Some(_) => bail!("field \"paths\" must be {{\"include\": [...], \"exclude\": [...]}}"),
    };
    for g in include.iter().chain(&exclude) {
        globset::Glob::new(g).with_context(|| format!("field \"paths\": bad glob {g:?}"))?;
    }
    if let Some(v) = obj.get("note") {
        if !v.is_string() && !v.is_null() {
            bail!("field \"note\" must be a string");
        }
    }
    Ok(RepoEntry {
        repo,
        url,
        revision,
        stars,
        license,
        languages,
        include,
        exclude,
    })
}

fn string(obj: &Map<String, Value>, field: &str) -> Result<Option<String>> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => bail!("field {field:?} must be a string"),
    }
}

fn strings(v: Option<&Value>, field: &str) -> Result<Vec<String>> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .with_context(|| format!("field {field:?} must be an array of strings"))
            })
            .collect(),
        Some(_) => bail!("field {field:?} must be an array of strings"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(json: &str) -> String {
        format!("{:#}", parse(json.as_bytes(), Path::new("/l")).unwrap_err())
    }

    #[test]
    fn defaults_and_local_paths() {
        let l = parse(
            br#"[{"repo":"a/b"},{"repo":"c/d","url":"repos/d","revision":"v1","stars":3,
                "languages":["Python"],"paths":{"include":["src/**"]}}]"#,
            Path::new("/l"),
        )
        .unwrap();
        assert_eq!(l[0].url, "https://github.com/a/b.git");
        assert_eq!(l[0].revision, None);
        assert_eq!(l[1].url, "/l/repos/d");
        assert_eq!(l[1].stars, Some(3));
        assert_eq!(l[1].include, vec!["src/**"]);
    }

    #[test]
    fn errors_name_entry_and_field() {
        assert!(err(r#"[{"repo":"a/b"},{"url":"x"}]"#)
            .contains("entry 1 (?): field \"repo\" is required"));
        assert!(err(r#"[{"repo":"a/b","stars":-1}]"#).contains("entry 0 (a/b): field \"stars\""));
        assert!(err(r#"[{"repo":"a/b","lang":[]}]"#).contains("field \"lang\" is unknown"));
        assert!(err(r#"[{"repo":"a"}]"#).contains("owner/name"));
        assert!(err(r#"[{"repo":"a/b"},{"repo":"a/b"}]"#).contains("listed twice"));
        assert!(err(r#"{"python":[]}"#).contains("JSON array"));
        assert!(err(r#"[{"repo":"a/b","paths":{"include":["a[" ]}}]"#).contains("bad glob"));
    }

    #[test]
    fn the_shipped_list_parses_and_its_licenses_are_allowed() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/curated_repos.json");
        let list = load(&path).unwrap();
        assert!((50..=100).contains(&list.len()), "{}", list.len());
        let filters = crate::filters::FilterConfig::default();
        let policy = crate::filters::license::LicensePolicy::new(&filters.licenses, false);
        for e in &list {
            let l = e
                .license
                .as_deref()
                .unwrap_or_else(|| panic!("{}: no license", e.repo));
            let canonical = crate::license_detect::valid_expression(l)
                .unwrap_or_else(|| panic!("{}: {l:?} is not SPDX", e.repo));
            assert!(
                policy.expression_allowed(&canonical.to_ascii_lowercase()),
                "{}: {canonical} is not on the default allowlist",
                e.repo
            );
            assert!(
                e.stars.is_none(),
                "{}: stars are not written by hand",
                e.repo
            );
            assert!(!e.languages.is_empty());
        }
    }
}
