//! Which benchmarks a configuration loads, and from where: the benchmark
//! directory (default), the Hugging Face Hub, and user files.

use super::benchmarks::{discover, load_file, BenchmarkItem, Builtin, Source};
use super::rows::read_rows;
use super::{hub, BenchmarkSource, DecontamConfig};
use crate::remote::hub::{HubClient, HubConfig};
use crate::remote::Env;
use anyhow::{bail, Context, Result};
use std::path::PathBuf;

/// A loaded benchmark: its name, item count and files.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LoadedBenchmark {
    pub name: String,
    pub items: usize,
    pub files: Vec<String>,
}

/// The error of a configuration under which no benchmark exists at all (no
/// benchmark directory, or one without benchmark files): the only case in
/// which `curate` may skip decontamination with a warning. Every other load
/// error (a corrupt or unreadable benchmark file) stops the run.
#[derive(Debug)]
pub struct NoBenchmarks(pub String);

impl std::fmt::Display for NoBenchmarks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NoBenchmarks {}

/// The built-ins `cfg.benchmarks` asks for; `None` means "all available".
fn requested(cfg: &DecontamConfig) -> Result<Option<Vec<Builtin>>> {
    if cfg.benchmarks.is_empty() {
        return Ok(None);
    }
    let mut out: Vec<Builtin> = Vec::new();
    for name in &cfg.benchmarks {
        if name.eq_ignore_ascii_case("none") {
            continue;
        }
        let Some(b) = Builtin::parse(name) else {
            let known: Vec<&str> = Builtin::ALL.iter().map(|b| b.name()).collect();
            bail!(
                "unknown benchmark {name:?} (built-in: {}, or none; other benchmarks: \
                 --benchmark-file FILE --fields a,b)",
                known.join(", ")
            );
        };
        if !out.contains(&b) {
            out.push(b);
        }
    }
    Ok(Some(out))
}

/// Loads every benchmark `cfg` names. Items are in benchmark order, then file
/// order, then record order; `BenchmarkItem::benchmark` indexes the returned
/// list.
pub fn load(cfg: &DecontamConfig) -> Result<(Vec<LoadedBenchmark>, Vec<BenchmarkItem>)> {
    let wanted = requested(cfg)?;
    let mut loaded: Vec<LoadedBenchmark> = Vec::new();
    let mut items: Vec<BenchmarkItem> = Vec::new();
    match cfg.source {
        BenchmarkSource::Local => {
            let files = match &cfg.benchmark_dir {
                Some(dir) => {
                    if !dir.is_dir() {
                        bail!(
                            "benchmark directory {} does not exist (from --benchmark-dir or \
                             TRITTER_BENCHMARK_DIR)",
                            dir.display()
                        );
                    }
                    discover(dir)?
                }
                None => Vec::new(),
            };
            let builtins = match wanted {
                Some(w) => w,
                None => Builtin::ALL
                    .into_iter()
                    .filter(|b| files.iter().any(|(fb, _)| fb == b))
                    .collect(),
            };
            for b in builtins {
                let mine: Vec<&PathBuf> = files
                    .iter()
                    .filter(|(fb, _)| *fb == b)
                    .map(|(_, p)| p)
                    .collect();
                if mine.is_empty() {
                    match &cfg.benchmark_dir {
                        Some(dir) => bail!(
                            "benchmark {}: no file for it in {} (expected a name like {}); \
                             use --benchmark-source hub, or --benchmark-file FILE --fields a,b",
                            b.name(),
                            dir.display(),
                            b.example_file()
                        ),
                        None => bail!(
                            "benchmark {}: no benchmark directory: pass --benchmark-dir DIR, set \
                             TRITTER_BENCHMARK_DIR, or use --benchmark-source hub",
                            b.name()
                        ),
                    }
                }
                let bench = loaded.len() as u16;
                let before = items.len();
                for p in &mine {
                    items.extend(load_file(b, p, bench)?);
                }
                loaded.push(LoadedBenchmark {
                    name: b.name().to_string(),
                    items: items.len() - before,
                    files: mine.iter().map(|p| p.display().to_string()).collect(),
                });
            }
        }
        BenchmarkSource::Hub => {
            let builtins = wanted.unwrap_or_else(|| hub::HUB_DEFAULT.to_vec());
            if !builtins.is_empty() {
                let client =
                    HubClient::new(HubConfig::from_env(&Env::Process, cfg.hub_cache.clone())?)
                        .context("cannot set up the Hugging Face Hub client")?;
                for b in builtins {
                    let bench = loaded.len() as u16;
                    let before = items.len();
                    let fetched = hub::fetch(b, &client)?;
                    for f in &fetched {
                        let rows = read_rows(&f.path, f.format, &f.display)?;
                        items.extend(b.items(
                            &rows,
                            bench,
                            &Source {
                                display: &f.display,
                                stem: &f.stem,
                            },
                        )?);
                    }
                    loaded.push(LoadedBenchmark {
                        name: b.name().to_string(),
                        items: items.len() - before,
                        files: fetched.iter().map(|f| f.display.clone()).collect(),
                    });
                }
            }
        }
    }
    for u in &cfg.user_files {
        let bench = loaded.len() as u16;
        let new = u.load(bench)?;
        loaded.push(LoadedBenchmark {
            name: u.name.clone(),
            items: new.len(),
            files: vec![u.path.display().to_string()],
        });
        items.extend(new);
    }
    if items.is_empty() {
        match (&cfg.source, &cfg.benchmark_dir) {
            (BenchmarkSource::Local, Some(dir)) => bail!(NoBenchmarks(format!(
                "no benchmark files found in {} (expected names like HumanEval.jsonl.gz, \
                 mbpp.jsonl); use --benchmark-source hub or --benchmark-file FILE --fields a,b",
                dir.display()
            ))),
            (BenchmarkSource::Local, None) => bail!(NoBenchmarks(
                "no benchmarks to decontaminate against: pass --benchmark-dir DIR, set \
                 TRITTER_BENCHMARK_DIR, use --benchmark-source hub, or --benchmark-file FILE \
                 --fields a,b"
                    .to_string()
            )),
            _ => bail!("the benchmarks loaded have no records"),
        }
    }
    if loaded.len() > u16::MAX as usize {
        bail!("too many benchmarks ({})", loaded.len());
    }
    Ok((loaded, items))
}
