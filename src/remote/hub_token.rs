//! Hugging Face token discovery, the rules of `huggingface_hub`
//! (`utils/_auth.py` `get_token`, `constants.py`):
//! 1. `HF_TOKEN`, else `HUGGING_FACE_HUB_TOKEN` (the older name);
//! 2. the token file that `hf auth login` writes: `HF_TOKEN_PATH`, else
//!    `$HF_HOME/token`, with `HF_HOME` defaulting to
//!    `$XDG_CACHE_HOME/huggingface`, else `~/.cache/huggingface`; `~` and
//!    `$VARS` in these paths are expanded;
//! 3. values are cleaned as `_clean_token` does: carriage returns and line
//!    feeds removed, surrounding spaces trimmed, empty means none;
//! 4. `HF_HUB_DISABLE_IMPLICIT_TOKEN=1` keeps a discovered token from being
//!    sent (`get_token_to_send`): requests go out anonymous.
//!
//! (Colab secrets and OIDC exchange, the other sources of `get_token`, only
//! exist in those environments.) `hf-hub`, the Rust client, takes its token
//! from the caller and leaves this discovery to it, so we do it here.

use super::env::Env;
use anyhow::{Context, Result};
use std::path::PathBuf;

/// A token and where it came from (for messages; never the value).
#[derive(Clone, PartialEq, Eq)]
pub struct HubToken {
    pub value: String,
    /// `HF_TOKEN`, `HUGGING_FACE_HUB_TOKEN`, or `the token file PATH`.
    pub source: String,
}

impl HubToken {
    /// A token given directly (tests, library callers).
    pub fn given(value: &str) -> HubToken {
        HubToken {
            value: value.to_string(),
            source: "the configured token".into(),
        }
    }
}

impl std::fmt::Debug for HubToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubToken")
            .field("value", &"<redacted>")
            .field("source", &self.source)
            .finish()
    }
}

/// `HF_HOME`: `$HF_HOME`, else `$XDG_CACHE_HOME/huggingface`, else
/// `~/.cache/huggingface`, expanded.
pub fn hf_home(env: &Env) -> PathBuf {
    let raw = env.get("HF_HOME").unwrap_or_else(|| {
        let cache = env
            .get("XDG_CACHE_HOME")
            .unwrap_or_else(|| "~/.cache".into());
        format!("{}/huggingface", cache.trim_end_matches('/'))
    });
    env.expand(&raw)
}

/// Where `hf auth login` keeps the token.
pub fn token_path(env: &Env) -> PathBuf {
    match env.get("HF_TOKEN_PATH") {
        Some(p) => env.expand(&p),
        None => hf_home(env).join("token"),
    }
}

fn clean(token: &str) -> Option<String> {
    let t = token.replace(['\r', '\n'], "");
    let t = t.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// The token to send, if any. An unreadable token file (not a missing
/// one) is an error: silently going anonymous would turn it into a
/// confusing "gated dataset" refusal later.
pub fn discover_token(env: &Env) -> Result<Option<HubToken>> {
    let found = discover_any(env)?;
    if env.is_true("HF_HUB_DISABLE_IMPLICIT_TOKEN") {
        return Ok(None);
    }
    Ok(found)
}

fn discover_any(env: &Env) -> Result<Option<HubToken>> {
    // `_clean_token(os.environ.get("HF_TOKEN") or
    // os.environ.get("HUGGING_FACE_HUB_TOKEN"))`: the first set variable is
    // cleaned; when nothing is left, `get_token` goes on to the file.
    let var = ["HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"]
        .into_iter()
        .find_map(|k| env.get(k).map(|v| (k, v)));
    if let Some((var, v)) = var {
        if let Some(value) = clean(&v) {
            return Ok(Some(HubToken {
                value,
                source: var.to_string(),
            }));
        }
    }
    let path = token_path(env);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(clean(&text).map(|value| HubToken {
            value,
            source: format!("the token file {} (hf auth login)", path.display()),
        })),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| {
            format!(
                "cannot read the Hugging Face token file {}: fix its permissions, or set \
                 HF_TOKEN (or HF_TOKEN_PATH)",
                path.display()
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_then_legacy_variable_then_token_file() {
        let tmp = tempfile::tempdir().expect("tmp");
        let home = tmp.path().to_str().expect("utf8");
        let file = tmp.path().join(".cache/huggingface/token");
        std::fs::create_dir_all(file.parent().expect("dir")).expect("mkdir");
        std::fs::write(&file, "  hf_file\r\n").expect("write");

        let t = |pairs: &[(&str, &str)]| {
            let mut all = vec![("HOME", home)];
            all.extend_from_slice(pairs);
            discover_token(&Env::fixed(all.iter().copied())).expect("ok")
        };
        let env_tok = t(&[
            ("HF_TOKEN", "hf_env\n"),
            ("HUGGING_FACE_HUB_TOKEN", "hf_old"),
        ])
        .expect("token");
        assert_eq!(
            (env_tok.value.as_str(), env_tok.source.as_str()),
            ("hf_env", "HF_TOKEN")
        );
        let old = t(&[("HUGGING_FACE_HUB_TOKEN", "hf_old")]).expect("token");
        assert_eq!(old.source, "HUGGING_FACE_HUB_TOKEN");
        // An empty HF_TOKEN is unset: the next source is used.
        let f = t(&[("HF_TOKEN", "")]).expect("file token");
        assert_eq!(f.value, "hf_file");
        assert!(
            f.source.contains(".cache/huggingface/token"),
            "{}",
            f.source
        );
        // Only spaces: cleaned to nothing, and `get_token` goes on to the
        // file (not to HUGGING_FACE_HUB_TOKEN, which `or` never reached).
        let spaces = t(&[("HF_TOKEN", "   "), ("HUGGING_FACE_HUB_TOKEN", "hf_old")]);
        assert_eq!(spaces.map(|t| t.value).as_deref(), Some("hf_file"));
        assert!(
            !format!("{f:?}").contains("hf_file"),
            "the token is never printed"
        );
        // HF_HUB_DISABLE_IMPLICIT_TOKEN: found, but not sent.
        assert_eq!(t(&[("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1")]), None);
    }

    #[test]
    fn token_file_follows_hf_token_path_hf_home_and_xdg_with_expansion() {
        let tmp = tempfile::tempdir().expect("tmp");
        let home = tmp.path().to_str().expect("utf8");
        let put = |rel: &str, tok: &str| {
            let p = tmp.path().join(rel);
            std::fs::create_dir_all(p.parent().expect("dir")).expect("mkdir");
            std::fs::write(p, tok).expect("write");
        };
        put("xdg/huggingface/token", "hf_xdg");
        put("hfhome/token", "hf_home");
        put("custom/tok", "hf_custom");
        let t = |pairs: &[(&str, &str)]| {
            let mut all = vec![("HOME", home), ("BASE", home)];
            all.extend_from_slice(pairs);
            discover_token(&Env::fixed(all.iter().copied()))
                .expect("ok")
                .map(|t| t.value)
        };
        assert_eq!(t(&[]), None);
        assert_eq!(
            t(&[("XDG_CACHE_HOME", &format!("{home}/xdg"))]).as_deref(),
            Some("hf_xdg")
        );
        assert_eq!(t(&[("HF_HOME", "~/hfhome")]).as_deref(), Some("hf_home"));
        assert_eq!(
            t(&[("HF_HOME", "$BASE/hfhome")]).as_deref(),
            Some("hf_home")
        );
        assert_eq!(
            t(&[
                ("HF_HOME", "~/hfhome"),
                ("HF_TOKEN_PATH", "${BASE}/custom/tok")
            ])
            .as_deref(),
            Some("hf_custom")
        );
    }
}
