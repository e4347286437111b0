//! `tritter-gpu mix`: build a training mix to a plan's token targets.
//!
//! 1. **Plan** ([`plan`]): parse and validate `PLAN.toml`.
//! 2. **Scan** ([`source`]): read every source once and count each
//!    document's tokens with the plan's tokenizer (exact, in parallel).
//! 3. **Select** ([`select`]): per component, whole passes plus a seeded
//!    sample without replacement; shortfalls fail or are rescaled.
//! 4. **Spill**: read the sources again, in order, and append each picked
//!    document, under its hash key, to the spill file of the shard that key
//!    falls in. The global shuffle is "hash into shards, sort each shard by
//!    key", so memory holds one shard, never the whole mix.
//! 5. **Write**: per shard, sort its spill by key and write
//!    `train-00000-of-000NN.{parquet,jsonl,jsonl.zst}` atomically; then
//!    `mix_report.json` and the table.
//!
//! DETERMINISM: keys depend only on the seed and document positions, shard
//! counts only on the plan and the token counts, so the same plan and
//! sources give the same bytes. Resuming: the spill and each finished shard
//! are marked in `DIR/.mix-work/` under the run's fingerprint; a rerun after
//! a kill redoes only what was not marked, and writes the same bytes.

pub mod plan;
pub mod report;
pub mod select;
pub mod source;

use crate::output::atomic::{write_atomic, AtomicFile};
use crate::output::parquet::{ParquetRowWriter, TrainingRow};
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use plan::{MixFormat, MixPlan};
use rayon::prelude::*;
use report::{ComponentReport, MixReport};
use select::{Available, Pick};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// What `mix` is asked to do.
#[derive(Clone, Debug)]
pub struct MixConfig {
    pub plan: PathBuf,
    pub output: PathBuf,
    pub rescale: bool,
    pub quiet: bool,
}

/// Texts tokenised together in the scan (one rayon batch).
const SCAN_BATCH: usize = 2048;

const WORK: &str = ".mix-work";
const REPORT: &str = "mix_report.json";

fn progress(quiet: bool, len: Option<u64>, what: &str) -> ProgressBar {
    let bar = match len {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::new_spinner(),
    };
    if quiet {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    } else {
        let style = if len.is_some() {
            "{prefix} [{bar:30}] {pos}/{len} docs {elapsed}"
        } else {
            "{prefix} {pos} docs {elapsed}"
        };
        if let Ok(s) = ProgressStyle::with_template(style) {
            bar.set_style(s.progress_chars("=> "));
        }
    }
    bar.set_prefix(what.to_string());
    bar
}

/// Hash of everything the output depends on.
fn fingerprint(plan_text: &str, plan: &MixPlan, rescale: bool) -> Result<String> {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(plan_text.as_bytes());
    h.update(&[rescale as u8]);
    for c in &plan.component {
        for s in &c.sources {
            let m = std::fs::metadata(s).with_context(|| format!("cannot stat {}", s.display()))?;
            h.update(s.to_string_lossy().as_bytes());
            h.update(&m.len().to_le_bytes());
        }
    }
    Ok(format!("{:016x}", h.digest()))
}

/// Runs the mix; returns the exit code.
pub fn run_mix(cfg: &MixConfig) -> Result<i32> {
    let plan = MixPlan::load(&cfg.plan)?;
    let plan_text = std::fs::read_to_string(&cfg.plan)?;
    let fp = fingerprint(&plan_text, &plan, cfg.rescale)?;
    let report_path = cfg.output.join(REPORT);
    if let Ok(old) = std::fs::read_to_string(&report_path) {
        if let Ok(old) = serde_json::from_str::<MixReport>(&old) {
            if old.fingerprint == fp {
                if !cfg.quiet {
                    eprintln!(
                        "tritter-gpu: mix {} is complete (same plan and sources); nothing to do",
                        cfg.output.display()
                    );
                }
                print!("{}", old.table());
                return Ok(0);
            }
        }
    }
    let tokenizer = plan.tokenizer_spec()?.load()?;

    // Scan: tokens of every document, per component.
    let bar = progress(cfg.quiet, None, "mix: counting tokens");
    let mut tokens: Vec<Vec<u32>> = Vec::new();
    for c in &plan.component {
        let mut counts = Vec::new();
        let mut batch: Vec<String> = Vec::with_capacity(SCAN_BATCH);
        let flush = |batch: &mut Vec<String>, counts: &mut Vec<u32>| -> Result<()> {
            let n: Vec<u64> = batch
                .par_iter()
                .map(|t| tokenizer.count(t))
                .collect::<Result<_>>()?;
            counts.extend(n.into_iter().map(|n| n.min(u32::MAX as u64) as u32));
            bar.inc(batch.len() as u64);
            batch.clear();
            Ok(())
        };
        for s in &c.sources {
            source::for_each_row(s, |row| {
                batch.push(row.text);
                if batch.len() >= SCAN_BATCH {
                    flush(&mut batch, &mut counts)?;
                }
                Ok(())
            })
            .with_context(|| format!("component {:?}", c.name))?;
        }
        flush(&mut batch, &mut counts)?;
        anyhow::ensure!(
            counts.len() <= u32::MAX as usize,
            "component {:?}: more than 2^32 documents; split it",
            c.name
        );
        tokens.push(counts);
    }
    bar.finish_and_clear();

    // Select.
    let avail: Vec<Available> = plan
        .component
        .iter()
        .zip(&tokens)
        .map(|(c, t)| Available {
            name: &c.name,
            share: c.share,
            max_epochs: c.max_epochs,
            tokens: t,
        })
        .collect();
    let targets = plan.targets();
    let settled = select::settle_targets(&avail, &targets, cfg.rescale)?;
    let mut picks: Vec<Vec<(u32, u32, u64)>> = Vec::new(); // per component: (doc, epoch, key)
    let mut components = Vec::new();
    for (i, a) in avail.iter().enumerate() {
        let (p, got) = select::pick(plan.seed, i as u32, a, settled[i]);
        let available: u64 = a.tokens.iter().map(|&t| t as u64).sum();
        components.push(ComponentReport {
            name: a.name.to_string(),
            share: a.share,
            target_tokens: targets[i],
            rescaled_target_tokens: settled[i],
            available_tokens: available,
            achieved_tokens: got,
            files: p.len() as u64,
            epochs: if available == 0 {
                0.0
            } else {
                (got as f64 / available as f64 * 1000.0).round() / 1000.0
            },
        });
        let mut v: Vec<(u32, u32, u64)> = p
            .iter()
            .map(|&pk: &Pick| (pk.doc, pk.epoch, select::key(plan.seed, pk)))
            .collect();
        v.sort_unstable();
        picks.push(v);
    }
    let achieved: u64 = components.iter().map(|c| c.achieved_tokens).sum();
    let n_shards = achieved.div_ceil(plan.shard_tokens).max(1);
    anyhow::ensure!(
        n_shards <= 99_999,
        "{n_shards} shards: raise shard_tokens (at most 99999 shards)"
    );
    let shard_of = |key: u64| (((key >> 32) * n_shards) >> 32) as usize;
    let names: Vec<String> = (0..n_shards)
        .map(|i| format!("train-{i:05}-of-{n_shards:05}.{}", plan.format.extension()))
        .collect();

    sweep_output(&cfg.output, &names, cfg.quiet)?;

    // Spill, unless a killed run already finished it.
    let work = cfg.output.join(WORK);
    let marker = |name: &str| work.join(format!("{name}.{fp}.done"));
    std::fs::create_dir_all(&work).with_context(|| format!("cannot create {}", work.display()))?;
    let total_picks: u64 = picks.iter().map(|p| p.len() as u64).sum();
    if !marker("spill").exists() {
        spill(
            cfg,
            &plan,
            &picks,
            &work,
            n_shards as usize,
            &shard_of,
            total_picks,
        )?;
        write_atomic(&marker("spill"), b"")?;
    }

    // Write each shard not yet marked done.
    let bar = progress(cfg.quiet, Some(n_shards), "mix: writing shards");
    for (s, name) in names.iter().enumerate() {
        let done = marker(&format!("shard-{s}"));
        if !(done.exists() && cfg.output.join(name).exists()) {
            write_shard(
                &plan,
                &work.join(format!("spill-{s}.bin")),
                &cfg.output.join(name),
            )?;
            write_atomic(&done, b"")?;
        }
        bar.inc(1);
    }
    bar.finish_and_clear();

    let report = MixReport {
        plan: cfg.plan.display().to_string(),
        fingerprint: fp,
        tokenizer: plan.tokenizer.clone(),
        seed: plan.seed,
        format: plan.format.extension().to_string(),
        rescale: cfg.rescale,
        shards: names,
        total_target_tokens: plan.total_tokens,
        total_available_tokens: components.iter().map(|c| c.available_tokens).sum(),
        total_achieved_tokens: achieved,
        total_files: total_picks,
        components,
    };
    write_atomic(
        &report_path,
        serde_json::to_string_pretty(&report)?.as_bytes(),
    )?;
    std::fs::remove_dir_all(&work).with_context(|| format!("cannot remove {}", work.display()))?;
    print!("{}", report.table());
    Ok(0)
}

/// Removes from the output directory what is not part of this mix: the
/// temporary file of a shard a killed run was writing (`.train-*.tmp`, never
/// renamed into place), and shards of an earlier mix with another shard
/// count, which `load_dataset(data_dir=...)` would otherwise read along.
/// Only names this command writes are touched.
fn sweep_output(dir: &Path, names: &[String], quiet: bool) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(()); // not created yet
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let temp = name.starts_with(".train-") && name.ends_with(".tmp");
        let stale = is_shard_name(&name) && !names.contains(&name);
        if temp || stale {
            std::fs::remove_file(e.path())
                .with_context(|| format!("cannot remove {}", e.path().display()))?;
            if stale && !quiet {
                eprintln!(
                    "tritter-gpu: removed {} (a shard of an earlier mix with other shards)",
                    e.path().display()
                );
            }
        }
    }
    Ok(())
}

/// Whether `name` is `train-NNNNN-of-MMMMM.` followed by a mix format's
/// extension.
fn is_shard_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("train-") else {
        return false;
    };
    let b = rest.as_bytes();
    b.len() > 15
        && b[..5].iter().all(u8::is_ascii_digit)
        && &rest[5..9] == "-of-"
        && b[9..14].iter().all(u8::is_ascii_digit)
        && matches!(&rest[14..], ".parquet" | ".jsonl" | ".jsonl.zst")
}

/// Pass 2: every picked document occurrence, appended as
/// `key u64 | len u32 | JSON row` to its shard's spill file.
fn spill(
    cfg: &MixConfig,
    plan: &MixPlan,
    picks: &[Vec<(u32, u32, u64)>],
    work: &Path,
    n_shards: usize,
    shard_of: &dyn Fn(u64) -> usize,
    total: u64,
) -> Result<()> {
    let mut files: Vec<BufWriter<std::fs::File>> = (0..n_shards)
        .map(|s| {
            let p = work.join(format!("spill-{s}.bin"));
            std::fs::File::create(&p)
                .map(|f| BufWriter::with_capacity(1 << 16, f))
                .with_context(|| format!("cannot create {}", p.display()))
        })
        .collect::<Result<_>>()?;
    let bar = progress(cfg.quiet, Some(total), "mix: sampling");
    for (ci, c) in plan.component.iter().enumerate() {
        let want = &picks[ci];
        let mut next = 0usize;
        let mut doc = 0u32;
        for s in &c.sources {
            source::for_each_row(s, |mut row| {
                let here = doc;
                doc += 1;
                if next >= want.len() || want[next].0 != here {
                    return Ok(());
                }
                row.component = Some(c.name.clone());
                let bytes = serde_json::to_vec(&row)?;
                while next < want.len() && want[next].0 == here {
                    let key = want[next].2;
                    let f = &mut files[shard_of(key)];
                    f.write_all(&key.to_le_bytes())?;
                    f.write_all(&(bytes.len() as u32).to_le_bytes())?;
                    f.write_all(&bytes)?;
                    next += 1;
                    bar.inc(1);
                }
                Ok(())
            })
            .with_context(|| format!("component {:?}", c.name))?;
        }
        anyhow::ensure!(
            next == want.len(),
            "component {:?}: the sources changed while mixing (fewer rows on the second read); rerun",
            c.name
        );
    }
    for f in files {
        f.into_inner()
            .map_err(|e| e.into_error())
            .context("cannot write a spill file")?;
    }
    bar.finish_and_clear();
    Ok(())
}

/// Sorts one shard's spill by key and writes the shard.
fn write_shard(plan: &MixPlan, spill: &Path, target: &Path) -> Result<()> {
    let mut raw = Vec::new();
    BufReader::new(
        std::fs::File::open(spill).with_context(|| format!("cannot open {}", spill.display()))?,
    )
    .read_to_end(&mut raw)?;
    let mut entries: Vec<(u64, &[u8])> = Vec::new();
    let mut at = 0usize;
    while at < raw.len() {
        anyhow::ensure!(at + 12 <= raw.len(), "{}: truncated", spill.display());
        let key = u64::from_le_bytes(raw[at..at + 8].try_into().unwrap());
        let len = u32::from_le_bytes(raw[at + 8..at + 12].try_into().unwrap()) as usize;
        anyhow::ensure!(at + 12 + len <= raw.len(), "{}: truncated", spill.display());
        entries.push((key, &raw[at + 12..at + 12 + len]));
        at += 12 + len;
    }
    // DETERMINISM: ties of the 64-bit key (vanishingly rare) break by bytes.
    entries.sort_unstable();
    match plan.format {
        MixFormat::Parquet => {
            let mut w = ParquetRowWriter::create(target, true)?;
            for (_, b) in entries {
                w.write(serde_json::from_slice::<TrainingRow>(b)?)?;
            }
            w.finish()
        }
        MixFormat::Jsonl => {
            let mut f = AtomicFile::create(target)?;
            for (_, b) in entries {
                f.write_all(b)?;
                f.write_all(b"\n")?;
            }
            f.commit()
        }
        MixFormat::JsonlZst => {
            let f = AtomicFile::create(target)?;
            let mut z = zstd::Encoder::new(f, 3).context("zstd encoder")?;
            for (_, b) in entries {
                z.write_all(b)?;
                z.write_all(b"\n")?;
            }
            z.finish()
                .with_context(|| format!("cannot write {}", target.display()))?
                .commit()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_names_are_recognised_exactly() {
        assert!(is_shard_name("train-00000-of-00003.parquet"));
        assert!(is_shard_name("train-00002-of-00003.jsonl.zst"));
        assert!(!is_shard_name("train-00000-of-00003.parquet.bak"));
        assert!(!is_shard_name("train-0000-of-00003.jsonl"));
        assert!(!is_shard_name("mix_report.json"));
    }

    #[test]
    fn the_sweep_removes_temporaries_and_stale_shards_only() {
        let d = tempfile::tempdir().unwrap();
        for n in [
            "train-00000-of-00002.jsonl",
            "train-00001-of-00002.jsonl",
            "train-00000-of-00005.jsonl",
            ".train-00001-of-00002.jsonl.x1.tmp",
            "notes.txt",
        ] {
            std::fs::write(d.path().join(n), b"x").unwrap();
        }
        let names = vec![
            "train-00000-of-00002.jsonl".to_string(),
            "train-00001-of-00002.jsonl".to_string(),
        ];
        sweep_output(d.path(), &names, true).unwrap();
        let mut left: Vec<String> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "notes.txt",
                "train-00000-of-00002.jsonl",
                "train-00001-of-00002.jsonl"
            ]
        );
    }
}
