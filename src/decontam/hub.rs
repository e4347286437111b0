//! Loading the published benchmarks from the Hugging Face Hub
//! (`--benchmark-source hub`).
//!
//! Each built-in benchmark maps to a dataset repository and a folder in it;
//! we list the folder with [`HubClient::list_dataset_files`], keep the data
//! files (Parquet when the folder has any, else JSONL), download them with
//! [`HubClient::download`] (which caches them on disk and honours
//! `HF_ENDPOINT` and `HF_TOKEN`) and read them with the same loaders as local
//! files. The format is taken from the path in the repository, not from the
//! cache path.
//!
//! | benchmark       | repository                      | folder  | files                                  |
//! |-----------------|---------------------------------|---------|----------------------------------------|
//! | `humaneval`     | `openai/openai_humaneval`       | (root)  | `openai_humaneval/test-*.parquet`      |
//! | `mbpp`          | `google-research-datasets/mbpp` | `full/` | train, test, validation, prompt splits: all 974 |
//! | `ds1000`        | `xlangai/DS-1000`               | (root)  | `test.jsonl`                           |
//! | `humanevalplus` | `evalplus/humanevalplus`        | (root)  | Parquet                                |
//! | `mbppplus`      | `evalplus/mbppplus`             | (root)  | Parquet                                |
//! | `multipl_e`     | `nuprl/MultiPL-E`               | (root)  | files whose path contains `humaneval-` |
//!
//! `openai/openai_humaneval` is the current name of the dataset first
//! published as `openai_humaneval`. We read the `main` revision.

use super::benchmarks::Builtin;
use super::rows::Format;
use crate::remote::hub::{HubClient, HubFile};
use anyhow::{bail, Context, Result};
use std::path::PathBuf;

/// Where a built-in benchmark lives on the Hub.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HubDataset {
    pub benchmark: Builtin,
    pub repo: &'static str,
    pub revision: &'static str,
    /// Folder listed (empty: the whole repository).
    pub prefix: &'static str,
    /// Only paths containing this are kept (empty: all data files).
    pub path_contains: &'static str,
}

/// Every built-in benchmark we can fetch from the Hub.
pub const HUB_DATASETS: &[HubDataset] = &[
    HubDataset {
        benchmark: Builtin::HumanEval,
        repo: "openai/openai_humaneval",
        revision: "main",
        prefix: "",
        path_contains: "",
    },
    HubDataset {
        benchmark: Builtin::Mbpp,
        repo: "google-research-datasets/mbpp",
        revision: "main",
        prefix: "full/",
        path_contains: "",
    },
    HubDataset {
        benchmark: Builtin::Ds1000,
        repo: "xlangai/DS-1000",
        revision: "main",
        prefix: "",
        path_contains: "",
    },
    HubDataset {
        benchmark: Builtin::HumanEvalPlus,
        repo: "evalplus/humanevalplus",
        revision: "main",
        prefix: "",
        path_contains: "",
    },
    HubDataset {
        benchmark: Builtin::MbppPlus,
        repo: "evalplus/mbppplus",
        revision: "main",
        prefix: "",
        path_contains: "",
    },
    HubDataset {
        benchmark: Builtin::MultiplE,
        repo: "nuprl/MultiPL-E",
        revision: "main",
        prefix: "",
        path_contains: "humaneval-",
    },
];

/// The Hub location of `b`.
pub fn dataset(b: Builtin) -> &'static HubDataset {
    HUB_DATASETS
        .iter()
        .find(|d| d.benchmark == b)
        .unwrap_or(&HUB_DATASETS[0])
}

/// The benchmarks `--benchmark-source hub` loads when `--benchmarks` is not
/// given: the three the data plan names.
pub const HUB_DEFAULT: &[Builtin] = &[Builtin::HumanEval, Builtin::Mbpp, Builtin::Ds1000];

/// The data files to download from a listing, sorted by path: Parquet files
/// when there are any, else JSONL/JSON files.
pub fn select_files(ds: &HubDataset, listing: &[HubFile]) -> Vec<(HubFile, Format)> {
    let mut files: Vec<(HubFile, Format)> = listing
        .iter()
        .filter(|f| ds.path_contains.is_empty() || f.path.contains(ds.path_contains))
        .filter_map(|f| Format::from_name(&f.path).map(|fmt| (f.clone(), fmt)))
        .collect();
    if files.iter().any(|(_, f)| *f == Format::Parquet) {
        files.retain(|(_, f)| *f == Format::Parquet);
    }
    files.sort_by(|a, b| a.0.path.cmp(&b.0.path));
    files
}

/// A downloaded benchmark file.
pub struct Fetched {
    /// `repo/path`, for messages.
    pub display: String,
    pub path: PathBuf,
    pub format: Format,
    /// File stem of the repository path (MultiPL-E's language).
    pub stem: String,
}

fn offline_help(b: Builtin) -> String {
    format!(
        "cannot load benchmark {} from the Hugging Face Hub ({}); offline? Use \
         --benchmark-source local with --benchmark-dir DIR (or TRITTER_BENCHMARK_DIR; real \
         copies of HumanEval, MBPP, MBPP+ and MultiPL-E are bundled in ../shared/benchmarks), \
         or set HF_ENDPOINT to a reachable mirror",
        b.name(),
        dataset(b).repo
    )
}

/// Lists, selects and downloads the files of `b`.
pub fn fetch(b: Builtin, client: &HubClient) -> Result<Vec<Fetched>> {
    let ds = dataset(b);
    let listing = client
        .list_dataset_files(ds.repo, ds.revision, ds.prefix)
        .with_context(|| offline_help(b))?;
    let files = select_files(ds, &listing);
    if files.is_empty() {
        bail!(
            "benchmark {}: the Hub dataset {} (revision {}, folder {:?}) has no Parquet or JSONL \
             file; pass the data with --benchmark-dir or --benchmark-file instead",
            b.name(),
            ds.repo,
            ds.revision,
            ds.prefix
        );
    }
    files
        .into_iter()
        .map(|(f, format)| {
            let path = client.download(&f).with_context(|| offline_help(b))?;
            let name = f.path.rsplit('/').next().unwrap_or(&f.path);
            Ok(Fetched {
                display: format!("{}/{}", f.repo, f.path),
                stem: name.split('.').next().unwrap_or("").to_ascii_lowercase(),
                path,
                format,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(path: &str) -> HubFile {
        HubFile {
            repo: "r".into(),
            path: path.into(),
            size: 1,
            sha256: None,
            etag: "e".into(),
            revision: "main".into(),
        }
    }

    #[test]
    fn every_builtin_has_a_hub_location() {
        for b in Builtin::ALL {
            assert_eq!(dataset(b).benchmark, b);
        }
    }

    #[test]
    fn parquet_is_preferred_and_other_files_ignored() {
        let listing = vec![
            f("full/validation-00000-of-00001.parquet"),
            f("README.md"),
            f("full/test-00000-of-00001.parquet"),
            f("mbpp.jsonl"),
            f(".gitattributes"),
        ];
        let sel = select_files(dataset(Builtin::Mbpp), &listing);
        let paths: Vec<&str> = sel.iter().map(|(f, _)| f.path.as_str()).collect();
        assert_eq!(
            paths,
            vec![
                "full/test-00000-of-00001.parquet",
                "full/validation-00000-of-00001.parquet"
            ]
        );
        let sel = select_files(dataset(Builtin::Ds1000), &[f("README.md"), f("test.jsonl")]);
        assert_eq!(sel.len(), 1);
        assert_eq!(sel[0].1, Format::Jsonl);
    }

    #[test]
    fn multipl_e_keeps_humaneval_translations_only() {
        let sel = select_files(
            dataset(Builtin::MultiplE),
            &[f("humaneval-rs/test.parquet"), f("mbpp-rs/test.parquet")],
        );
        assert_eq!(sel.len(), 1);
    }
}
