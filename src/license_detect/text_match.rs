//! License texts matched against the SPDX license list with askalono's
//! algorithm, as the `spdx` crate ships it (`spdx::detection`, with the
//! SPDX texts inlined in a compressed cache): the text is normalised
//! (case, punctuation, whitespace, copyright lines, bullets, as in the SPDX
//! matching guidelines), cut into word bigrams, and scored against every
//! license by the Dice coefficient `2|A∩B| / (|A| + |B|)`.
//!
//! The store is loaded once per process (a few hundred milliseconds).

use spdx::detection::{Store, TextData};
use std::sync::OnceLock;

/// The best match of a text.
#[derive(Clone, Debug, PartialEq)]
pub struct TextMatch {
    /// SPDX id.
    pub id: String,
    pub score: f32,
}

fn store() -> Option<&'static Store> {
    static STORE: OnceLock<Option<Store>> = OnceLock::new();
    STORE.get_or_init(|| Store::load_inline().ok()).as_ref()
}

/// The license `text` is closest to, with its score; `None` for an empty
/// text or when the store cannot be loaded.
pub fn match_text(text: &str) -> Option<TextMatch> {
    if text.trim().is_empty() {
        return None;
    }
    let m = store()?.analyze(&TextData::new(text));
    Some(TextMatch {
        id: m.name.to_string(),
        score: m.score,
    })
}
