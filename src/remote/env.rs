//! The environment the remote clients read their settings from.
//!
//! The Hub client (`HF_TOKEN`, `HF_HOME`, `HF_HUB_CACHE`, ...) and the AWS
//! credential chain (`AWS_ACCESS_KEY_ID`, `AWS_PROFILE`, the metadata
//! endpoints, ...) read variables through an [`Env`], never through
//! `std::env` directly: a run reads the process environment, a test hands
//! in a fixed map, so that tests neither race on the process environment
//! nor depend on the machine's `~/.aws` or `~/.cache/huggingface`.
//!
//! Empty values count as unset, as both `huggingface_hub` and the AWS SDKs
//! treat them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Where environment variables come from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Env {
    /// The process environment.
    #[default]
    Process,
    /// A fixed set of variables; nothing else is set.
    Fixed(Arc<BTreeMap<String, String>>),
}

impl Env {
    /// A fixed environment of `pairs`.
    pub fn fixed<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Env {
        Env::Fixed(Arc::new(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        ))
    }

    /// The value of `key`, `None` when unset or empty.
    pub fn get(&self, key: &str) -> Option<String> {
        let v = match self {
            Env::Process => std::env::var(key).ok(),
            Env::Fixed(map) => map.get(key).cloned(),
        };
        v.filter(|v| !v.is_empty())
    }

    /// Whether `key` holds a true value (`1`, `true`, `yes`, `on`, any case),
    /// the rule of both `huggingface_hub` and the AWS SDKs.
    pub fn is_true(&self, key: &str) -> bool {
        self.get(key).is_some_and(|v| {
            matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "1" | "true" | "yes" | "on"
            )
        })
    }

    /// The home directory (`HOME`).
    pub fn home(&self) -> Option<PathBuf> {
        self.get("HOME").map(PathBuf::from)
    }

    /// `value` with a leading `~` and `$VAR` / `${VAR}` expanded from this
    /// environment, as Python's `os.path.expanduser(os.path.expandvars(..))`
    /// does for `HF_HOME` and friends (unknown variables stay as written).
    pub fn expand(&self, value: &str) -> PathBuf {
        let vars = self.expand_vars(value);
        PathBuf::from(match (vars.strip_prefix('~'), self.home()) {
            (Some(rest), Some(home)) if rest.is_empty() || rest.starts_with('/') => {
                format!("{}{rest}", home.display())
            }
            _ => vars,
        })
    }

    fn expand_vars(&self, s: &str) -> String {
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(i) = rest.find('$') {
            out.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            let (name, consumed) = if let Some(braced) = after.strip_prefix('{') {
                match braced.find('}') {
                    Some(end) => (&braced[..end], end + 2),
                    None => ("", 0),
                }
            } else {
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                (&after[..end], end)
            };
            match (name.is_empty(), self.get(name)) {
                (false, Some(v)) => out.push_str(&v),
                _ => out.push_str(&rest[i..i + 1 + consumed]),
            }
            rest = &rest[i + 1 + consumed..];
        }
        out.push_str(rest);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_is_unset_and_truthy_values_are_true() {
        let env = Env::fixed([("A", ""), ("B", "x"), ("T", "True"), ("F", "0")]);
        assert_eq!(env.get("A"), None);
        assert_eq!(env.get("B").as_deref(), Some("x"));
        assert_eq!(env.get("C"), None);
        assert!(env.is_true("T"));
        assert!(!env.is_true("F"));
        assert!(!env.is_true("C"));
    }

    #[test]
    fn tilde_and_variables_expand_like_python() {
        let env = Env::fixed([("HOME", "/home/u"), ("XDG", "/x"), ("EMPTY", "")]);
        assert_eq!(
            env.expand("~/.cache/hf"),
            PathBuf::from("/home/u/.cache/hf")
        );
        assert_eq!(env.expand("~"), PathBuf::from("/home/u"));
        assert_eq!(env.expand("$XDG/hf"), PathBuf::from("/x/hf"));
        assert_eq!(env.expand("${XDG}/hf"), PathBuf::from("/x/hf"));
        // Unknown (or empty) variables stay as written, as in expandvars.
        assert_eq!(env.expand("$NOPE/hf"), PathBuf::from("$NOPE/hf"));
        assert_eq!(env.expand("$EMPTY/hf"), PathBuf::from("$EMPTY/hf"));
        assert_eq!(env.expand("~other/x"), PathBuf::from("~other/x"));
        assert_eq!(env.expand("a$"), PathBuf::from("a$"));
    }
}
