//! The `license` field of the package manifests of the catalog's
//! ecosystems, read with a line scan (the field is a one-line string in
//! practice; a table form such as pyproject's `license = {file = ...}`
//! names no expression and is skipped):
//! * `Cargo.toml` `[package] license = "MIT OR Apache-2.0"`
//! * `pyproject.toml` `[project] license = "MIT"` (PEP 639) or
//!   `license = {text = "MIT"}` (PEP 621)
//! * `setup.cfg` `[metadata] license = MIT`
//! * `package.json` `"license": "MIT"`

/// The raw license field of manifest `path`, when it has one.
pub fn license_field(path: &str, text: &str) -> Option<String> {
    if path == "package.json" {
        let v: serde_json::Value = serde_json::from_str(text).ok()?;
        return v.get("license")?.as_str().map(str::to_string);
    }
    let section = match path {
        "Cargo.toml" => "[package]",
        "pyproject.toml" => "[project]",
        "setup.cfg" => "[metadata]",
        _ => return None,
    };
    let mut inside = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            inside = t == section;
            continue;
        }
        if !inside {
            continue;
        }
        let Some((key, value)) = t.split_once('=') else {
            continue;
        };
        if key.trim() != "license" {
            continue;
        }
        let value = value.trim();
        if path == "setup.cfg" {
            return (!value.is_empty()).then(|| value.to_string());
        }
        if let Some(inner) = value.strip_prefix('{') {
            // `{text = "MIT"}`
            let (k, v) = inner.trim_end_matches('}').split_once('=')?;
            return (k.trim() == "text").then(|| unquote(v.trim()))?;
        }
        return unquote(value);
    }
    None
}

fn unquote(v: &str) -> Option<String> {
    let v = v.trim();
    let q = v.chars().next()?;
    if q != '"' && q != '\'' {
        return None;
    }
    let end = v[1..].find(q)? + 1;
    Some(v[1..end].to_string())
}
