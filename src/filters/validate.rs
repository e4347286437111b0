//! Checks of a [`FilterConfig`] before a run reads anything: a language no
//! dataset has, or thresholds no file can pass (`--min-lines 100 --max-lines
//! 10`), would otherwise drop every record and end in an empty dataset.

use super::known_languages::{is_known, KNOWN};
use super::FilterConfig;
use anyhow::{bail, Result};

/// Refuses a filter configuration that can keep nothing, saying what to pass.
pub fn check(cfg: &FilterConfig) -> Result<()> {
    if !is_known(&cfg.language) {
        bail!(
            "unknown language {:?} for --language: pass one of the languages of the datasets \
             (GitHub Linguist names, any case): {}",
            cfg.language,
            KNOWN.join(", ")
        );
    }
    if cfg.min_lines > cfg.max_lines {
        bail!(
            "--min-lines {} is above --max-lines {}: no file can pass both; lower --min-lines or \
             raise --max-lines",
            cfg.min_lines,
            cfg.max_lines
        );
    }
    if cfg.max_bytes == 0 {
        bail!("--max-bytes 0 keeps no file (files must be smaller than it): pass a positive size");
    }
    Ok(())
}
