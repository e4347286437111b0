//! Which benchmarks a configuration loads, and from where: the benchmark
//! directory (default), the Hugging Face Hub, and user files.

use super::benchmarks::{discover, load_file, BenchmarkItem, Builtin, Source, UserBenchmark};
use super::rows::read_rows;
use super::{hub, BenchmarkSource, DecontamConfig};
use crate::remote::hub::{HubClient, HubConfig};
use crate::remote::Env;
use anyhow::{bail, Context, Result};
use std::path::PathBuf;

/// A loaded benchmark: its name, item count and files.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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

/// How one planned benchmark's items are read.
pub enum Loader {
    /// A built-in benchmark from files of the benchmark directory.
    Local(Builtin, Vec<PathBuf>),
    /// A built-in benchmark downloaded from the Hub (already in its cache).
    Hub(Builtin, Vec<hub::Fetched>),
    /// A `--benchmark-file`.
    User(UserBenchmark),
}

/// One benchmark to load, before any of its files is read.
pub struct PlannedBenchmark {
    pub name: String,
    pub loader: Loader,
}

impl PlannedBenchmark {
    /// The files its items are read from, with their names for messages.
    pub fn files(&self) -> Vec<(String, &std::path::Path)> {
        match &self.loader {
            Loader::Local(_, paths) => paths
                .iter()
                .map(|p| (p.display().to_string(), p.as_path()))
                .collect(),
            Loader::Hub(_, fetched) => fetched
                .iter()
                .map(|f| (f.display.clone(), f.path.as_path()))
                .collect(),
            Loader::User(u) => vec![(u.path.display().to_string(), u.path.as_path())],
        }
    }
}

/// Which benchmarks `cfg` names and which files hold them: the benchmark
/// directory is listed and Hub files are downloaded (or found in the Hub
/// cache), but no benchmark file is parsed.
pub fn plan(cfg: &DecontamConfig) -> Result<Vec<PlannedBenchmark>> {
    let wanted = requested(cfg)?;
    let mut planned: Vec<PlannedBenchmark> = Vec::new();
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
                let mine: Vec<PathBuf> = files
                    .iter()
                    .filter(|(fb, _)| *fb == b)
                    .map(|(_, p)| p.clone())
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
                planned.push(PlannedBenchmark {
                    name: b.name().to_string(),
                    loader: Loader::Local(b, mine),
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
                    planned.push(PlannedBenchmark {
                        name: b.name().to_string(),
                        loader: Loader::Hub(b, hub::fetch(b, &client)?),
                    });
                }
            }
        }
    }
    for u in &cfg.user_files {
        planned.push(PlannedBenchmark {
            name: u.name.clone(),
            loader: Loader::User(u.clone()),
        });
    }
    if planned.len() > u16::MAX as usize {
        bail!("too many benchmarks ({})", planned.len());
    }
    Ok(planned)
}

/// Reads the items of the benchmarks planned by [`plan`] for `cfg`. Items
/// are in benchmark order, then file order, then record order;
/// `BenchmarkItem::benchmark` indexes the returned list.
pub fn load_planned(
    cfg: &DecontamConfig,
    planned: &[PlannedBenchmark],
) -> Result<(Vec<LoadedBenchmark>, Vec<BenchmarkItem>)> {
    let mut loaded: Vec<LoadedBenchmark> = Vec::new();
    let mut items: Vec<BenchmarkItem> = Vec::new();
    for p in planned {
        let bench = loaded.len() as u16;
        let before = items.len();
        match &p.loader {
            Loader::Local(b, paths) => {
                for path in paths {
                    items.extend(load_file(*b, path, bench)?);
                }
            }
            Loader::Hub(b, fetched) => {
                for f in fetched {
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
            }
            Loader::User(u) => items.extend(u.load(bench)?),
        }
        loaded.push(LoadedBenchmark {
            name: p.name.clone(),
            items: items.len() - before,
            files: p.files().into_iter().map(|(name, _)| name).collect(),
        });
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
    Ok((loaded, items))
}
