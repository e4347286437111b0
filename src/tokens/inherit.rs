//! How `merge` counts tokens: as the slices did, unless told otherwise.
//!
//! The slices' stats already hold the tokens of phase 1's stages, counted
//! with the slices' `--tokenizer` and `--tokens`. `merge` counts the global
//! steps' stages; the two must use the same tokenizer and mode, or one
//! retention table would add up counts of different tokenizers. So `merge`
//! takes the slices' setting by default; a flag may turn counting off, or
//! choose any setting when the slices counted nothing, and a setting that
//! contradicts the slices' is a clear error.

use super::count::{TokensConfig, TokensMode, DEFAULT_SAMPLE_RATE};
use super::tokenizer::TokenizerSpec;
use anyhow::Result;

/// The token flags given to `merge` (each `None` when not given).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TokensOverride {
    pub tokenizer: Option<TokenizerSpec>,
    pub mode: Option<TokensMode>,
    pub sample_rate: Option<f64>,
}

impl TokensOverride {
    /// The counting of the merged run's global steps, given the slices'
    /// (`None`: the slices counted no tokens).
    pub fn resolve(&self, slices: Option<&TokensConfig>) -> Result<Option<TokensConfig>> {
        if self.mode == Some(TokensMode::Off) {
            return Ok(None);
        }
        let Some(s) = slices else {
            // Nothing counted in phase 1: counting starts at the global
            // steps, only when asked for.
            if *self == TokensOverride::default() {
                return Ok(None);
            }
            return Ok(Some(TokensConfig {
                tokenizer: self.tokenizer.clone().unwrap_or(TokenizerSpec::Cl100kBase),
                mode: self.mode.unwrap_or(TokensMode::Exact),
                sample_rate: self.sample_rate.unwrap_or(DEFAULT_SAMPLE_RATE),
            }));
        };
        let want = TokensConfig {
            tokenizer: self
                .tokenizer
                .clone()
                .unwrap_or_else(|| s.tokenizer.clone()),
            mode: self.mode.unwrap_or(s.mode),
            sample_rate: self.sample_rate.unwrap_or(s.sample_rate),
        };
        anyhow::ensure!(
            want == *s,
            "the slices counted tokens with --tokenizer {} --tokens {} --token-sample-rate {}, and merge would count the global steps with --tokenizer {} --tokens {} --token-sample-rate {}: one stats table cannot mix them; drop merge's token flags (it takes the slices'), pass --tokens off, or rerun the slices with the setting you want",
            s.tokenizer,
            mode_name(s.mode),
            s.sample_rate,
            want.tokenizer,
            mode_name(want.mode),
            want.sample_rate
        );
        Ok(Some(want))
    }
}

fn mode_name(m: TokensMode) -> &'static str {
    match m {
        TokensMode::Exact => "exact",
        TokensMode::Estimate => "estimate",
        TokensMode::Off => "off",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slices() -> TokensConfig {
        TokensConfig::default()
    }

    #[test]
    fn no_flags_take_the_slices_setting() {
        let o = TokensOverride::default();
        assert_eq!(o.resolve(Some(&slices())).unwrap(), Some(slices()));
        assert_eq!(o.resolve(None).unwrap(), None);
    }

    #[test]
    fn off_always_wins_and_a_contradiction_is_an_error() {
        let off = TokensOverride {
            mode: Some(TokensMode::Off),
            ..Default::default()
        };
        assert_eq!(off.resolve(Some(&slices())).unwrap(), None);
        let other = TokensOverride {
            tokenizer: Some(TokenizerSpec::O200kBase),
            ..Default::default()
        };
        let e = other.resolve(Some(&slices())).unwrap_err().to_string();
        assert!(e.contains("o200k_base") && e.contains("cl100k_base"), "{e}");
        // The same tokenizer named explicitly is no contradiction.
        let same = TokensOverride {
            tokenizer: Some(TokenizerSpec::Cl100kBase),
            mode: Some(TokensMode::Exact),
            ..Default::default()
        };
        assert_eq!(same.resolve(Some(&slices())).unwrap(), Some(slices()));
        // Slices without tokens: any setting starts at the global steps.
        assert_eq!(
            other.resolve(None).unwrap().unwrap().tokenizer,
            TokenizerSpec::O200kBase
        );
    }
}
