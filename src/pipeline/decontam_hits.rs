//! A shard's decontamination verdicts, computed in phase 1: one JSON line
//! per kept record that matched a benchmark, `{"seq", "reason", "detail",
//! "hit"}`, in part order. Clean records have no line. The global output step
//! applies them to the records that survive dedup (drop, or keep and count
//! with `--flag-only`); `hit` is the serialised
//! [`crate::decontam::Contamination`], copied into the stats as it is.

use crate::decontam::Contamination;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DecontamHit {
    pub seq: u32,
    /// The drop reason, `decontam_<benchmark>_<tier>`.
    pub reason: String,
    /// The rejects file's detail.
    pub detail: String,
    pub hit: serde_json::Value,
}

impl DecontamHit {
    pub fn new(seq: u32, c: &Contamination) -> Result<DecontamHit> {
        let first = c.items.first().map(|i| i.id.as_str()).unwrap_or("");
        Ok(DecontamHit {
            seq,
            reason: c.reason(),
            detail: format!(
                "{} tier, {} item(s) matched, first {first}",
                c.tier.as_str(),
                c.items_total
            ),
            hit: serde_json::to_value(c)?,
        })
    }
}

pub fn write_hits(path: &Path, hits: &[DecontamHit]) -> Result<()> {
    let mut bytes = Vec::new();
    for h in hits {
        serde_json::to_writer(&mut bytes, h)?;
        bytes.write_all(b"\n")?;
    }
    crate::output::atomic::write_atomic_unsynced(path, &bytes)
}

/// The hits of a shard; none when the shard was made without
/// decontamination (no file).
pub fn read_hits(path: &Path) -> Result<Vec<DecontamHit>> {
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let mut out = Vec::new();
    for (i, line) in BufReader::new(f).lines().enumerate() {
        let line = line.with_context(|| format!("cannot read {}", path.display()))?;
        out.push(
            serde_json::from_str(&line)
                .with_context(|| format!("{} is corrupt at line {}", path.display(), i + 1))?,
        );
    }
    Ok(out)
}
