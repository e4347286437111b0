//! `hf://` sources: from a URI and a language to the list of Parquet shards
//! to read.
//!
//! URI forms:
//! - `hf://OWNER/NAME[/PATH]`, our short form (a dataset);
//! - `hf://datasets/OWNER/NAME[@REVISION][/PATH]`, the form of
//!   `huggingface_hub`'s `HfFileSystem` and of datatrove, parsed by the
//!   rules of `huggingface_hub`'s `utils/_hf_uris.py`: the `@` belongs to
//!   the repository id only right after `OWNER/NAME` (an `@` further on is
//!   part of a file name); a revision containing `/` is taken whole when it
//!   is one of the Hub's special refs (`refs/convert/NAME`, `refs/pr/N`),
//!   else it ends at the next `/`; and it is percent-decoded, so
//!   `@refs%2Fconvert%2Fparquet` is `refs/convert/parquet` too.
//!
//! Models, spaces and buckets (`hf://models/...`) are refused: we read
//! datasets.
//!
//! Layouts of the datasets we know (each directory holds `*.parquet`):
//!
//! | dataset                       | language directories        | contents          |
//! |-------------------------------|-----------------------------|-------------------|
//! | `bigcode/the-stack-v2-dedup`  | `data/<Language>/` (`data/Python`, `data/C++`) | Software Heritage blobs |
//! | `bigcode/the-stack-v2`        | `data/<Language>/`          | Software Heritage blobs |
//! | `HuggingFaceTB/stack-edu`     | `<Language>/` at the root (the seed's `data_dir="python"`) | Software Heritage blobs |
//! | `bigcode/the-stack-dedup`     | `data/<language>/` (`data/python`) | inline `content` |
//! | `bigcode/the-stack`           | `data/<language>/`          | inline `content` |
//!
//! Directory names differ in case and spelling between datasets (`Python`
//! vs `python`, `C-Sharp` vs `c-sharp`), so we never build the path from the
//! language name: we list the dataset's language root and pick the directory
//! whose [`language_key`] equals the requested language's. For an unknown
//! dataset we look in `data/` and then at the root; with an explicit `PATH`
//! we look in `PATH`, and when `PATH` has no subdirectories at all it is
//! taken as the language directory itself.

use super::hub::{hub_error_kind, HubClient, HubErrorKind, HubFile, TreeEntry};
use anyhow::{bail, Context, Result};

/// Length of the Hub special ref at the start of `s`, if any: the regex
/// `^refs/(?:convert/[\w.-]+|pr/\d+)` of `huggingface_hub`.
fn special_ref_len(s: &str) -> Option<usize> {
    let word = |c: char| c.is_alphanumeric() || c == '_' || c == '.' || c == '-';
    if let Some(rest) = s.strip_prefix("refs/convert/") {
        let n = rest.find(|c: char| !word(c)).unwrap_or(rest.len());
        return (n > 0).then_some("refs/convert/".len() + n);
    }
    if let Some(rest) = s.strip_prefix("refs/pr/") {
        let n = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        return (n > 0).then_some("refs/pr/".len() + n);
    }
    None
}

/// Default content store of datasets whose rows carry `blob_id` only.
pub const SOFTWARE_HERITAGE_S3: &str = "s3://softwareheritage/content";

/// A parsed `hf://` URI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HfUri {
    /// `owner/name`.
    pub repo: String,
    /// Path inside the repository, without surrounding slashes.
    pub path: Option<String>,
    /// `@revision` given in the URI (overrides `--hf-revision`).
    pub revision: Option<String>,
}

impl HfUri {
    /// Whether `s` names a Hub dataset (`hf://...`).
    pub fn is_hf_uri(s: &str) -> bool {
        s.starts_with("hf://")
    }

    pub fn parse(s: &str) -> Result<HfUri> {
        let form = "expected hf://OWNER/NAME[/PATH] or hf://datasets/OWNER/NAME[@REVISION][/PATH]";
        let Some(rest) = s.strip_prefix("hf://") else {
            bail!("{s:?} is not an hf:// URI ({form})");
        };
        let rest = match rest.split_once('/') {
            Some(("datasets", r)) => r,
            Some((kind @ ("models" | "spaces" | "buckets" | "kernels"), _)) => {
                bail!("{s:?} names {kind}, not a dataset; only datasets can be read ({form})")
            }
            _ => rest,
        };
        let location = rest.trim_matches('/');
        let at = location.find('@');
        let (repo, revision, path) = match at {
            Some(i) if location[..i].matches('/').count() <= 1 => {
                let repo = &location[..i];
                let rev_and_path = &location[i + 1..];
                let (rev, path) = match special_ref_len(rev_and_path) {
                    Some(n) => (
                        &rev_and_path[..n],
                        rev_and_path[n..].trim_start_matches('/'),
                    ),
                    None => rev_and_path.split_once('/').unwrap_or((rev_and_path, "")),
                };
                let rev = percent_encoding::percent_decode_str(rev)
                    .decode_utf8()
                    .with_context(|| format!("{s:?}: the revision is not valid UTF-8"))?;
                if rev.is_empty() {
                    bail!("{s:?} has an empty @revision");
                }
                (repo, Some(rev.into_owned()), path)
            }
            _ => {
                let mut it = location.splitn(3, '/');
                match (it.next(), it.next()) {
                    (Some(o), Some(n)) => {
                        let end = o.len() + 1 + n.len();
                        (
                            &location[..end],
                            None,
                            location[end..].trim_start_matches('/'),
                        )
                    }
                    _ => ("", None, ""),
                }
            }
        };
        let mut repo_parts = repo.split('/');
        let (Some(owner), Some(name), None) =
            (repo_parts.next(), repo_parts.next(), repo_parts.next())
        else {
            bail!("{s:?} does not name a dataset ({form})");
        };
        if owner.is_empty() || name.is_empty() {
            bail!("{s:?} does not name a dataset ({form})");
        }
        let path: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        for p in path.iter().chain([&owner, &name]) {
            if *p == "." || *p == ".." {
                bail!("{s:?} contains a '.' or '..' path segment");
            }
        }
        Ok(HfUri {
            repo: format!("{owner}/{name}"),
            path: (!path.is_empty()).then(|| path.join("/")),
            revision,
        })
    }

    /// What we know of this dataset, if it is one of the catalog's.
    pub fn known(&self) -> Option<&'static KnownDataset> {
        KNOWN
            .iter()
            .find(|k| k.repo.eq_ignore_ascii_case(&self.repo))
    }

    /// The content store its rows need (`None`: content is inline, or the
    /// dataset is unknown and its schema will tell).
    pub fn default_content_store(&self) -> Option<&'static str> {
        self.known().and_then(|k| k.content_store)
    }
}

/// Layout facts of a dataset of the catalog.
#[derive(Debug)]
pub struct KnownDataset {
    pub repo: &'static str,
    /// Directories whose children are the language directories, in the
    /// order we look ("" is the repository root).
    pub language_roots: &'static [&'static str],
    /// Where the file contents live when rows carry only `blob_id`.
    pub content_store: Option<&'static str>,
}

/// The datasets whose layout we know.
pub const KNOWN: &[KnownDataset] = &[
    KnownDataset {
        repo: "bigcode/the-stack-v2-dedup",
        language_roots: &["data"],
        content_store: Some(SOFTWARE_HERITAGE_S3),
    },
    KnownDataset {
        repo: "bigcode/the-stack-v2",
        language_roots: &["data"],
        content_store: Some(SOFTWARE_HERITAGE_S3),
    },
    KnownDataset {
        repo: "HuggingFaceTB/stack-edu",
        language_roots: &["", "data"],
        content_store: Some(SOFTWARE_HERITAGE_S3),
    },
    KnownDataset {
        repo: "bigcode/the-stack-dedup",
        language_roots: &["data"],
        content_store: None,
    },
    KnownDataset {
        repo: "bigcode/the-stack",
        language_roots: &["data"],
        content_store: None,
    },
];

/// Roots tried for a dataset we do not know.
const GENERIC_ROOTS: &[&str] = &["data", ""];

/// Spelling-insensitive key of a language name: `C++` and `cpp`, `C#`,
/// `c-sharp` and `CSharp`, `Jupyter_Notebook` and `jupyter-notebook` meet.
pub fn language_key(name: &str) -> String {
    let lower = name.to_lowercase().replace('+', "p").replace('#', "sharp");
    lower.chars().filter(|c| c.is_alphanumeric()).collect()
}

/// The Parquet shards of one language of one Hub dataset, sizes known.
#[derive(Clone, Debug)]
pub struct HubShards {
    pub uri: HfUri,
    /// The revision asked for (`main`, a tag, `refs/convert/parquet`).
    pub revision: String,
    /// The commit it pointed to when the run started: everything is listed
    /// and downloaded at this commit.
    pub commit: String,
    /// The directory whose Parquet files we read.
    pub dir: String,
    /// Sorted by path, so shard `i` is the same file on every run.
    pub files: Vec<HubFile>,
}

impl HubShards {
    /// Lists the shards of `language` (or of the whole PATH when `None`) of
    /// the dataset named by `uri` at `revision` (an `@rev` in the URI wins).
    pub fn resolve(
        uri: &str,
        language: Option<&str>,
        revision: &str,
        client: &HubClient,
    ) -> Result<HubShards> {
        let parsed = HfUri::parse(uri)?;
        let revision = parsed
            .revision
            .clone()
            .unwrap_or_else(|| revision.to_string());
        let commit = client
            .resolve_commit(&parsed.repo, &revision)
            .with_context(|| format!("pinning revision {revision:?} of {uri}"))?;
        let dir = find_language_dir(&parsed, language, &commit, client)?;
        let mut files: Vec<HubFile> = client
            .list_dataset_files(&parsed.repo, &commit, &dir)
            .with_context(|| format!("listing {uri}"))?
            .into_iter()
            .filter(|f| f.path.ends_with(".parquet"))
            .collect();
        // DETERMINISM: the Hub's listing order is not a contract; shard order
        // decides record order (and which duplicate comes first), so we sort.
        files.sort_by(|a, b| a.path.cmp(&b.path));
        if files.is_empty() {
            bail!(
                "no Parquet files under {}/{dir} at revision {revision:?} (commit {commit}) on \
                 the Hub",
                parsed.repo
            );
        }
        Ok(HubShards {
            uri: parsed,
            revision,
            commit,
            dir,
            files,
        })
    }

    /// Bytes of all shards, as listed.
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// Bytes still to download (listing minus what the cache holds).
    pub fn missing_bytes(&self, client: &HubClient) -> u64 {
        self.files
            .iter()
            .map(|f| f.size - client.cached_bytes(f))
            .sum()
    }

    /// See [`HfUri::default_content_store`].
    pub fn default_content_store(&self) -> Option<&'static str> {
        self.uri.default_content_store()
    }
}

fn find_language_dir(
    uri: &HfUri,
    language: Option<&str>,
    revision: &str,
    client: &HubClient,
) -> Result<String> {
    let roots: Vec<String> = match (&uri.path, uri.known()) {
        (Some(p), _) => vec![p.clone()],
        (None, Some(k)) => k.language_roots.iter().map(|s| s.to_string()).collect(),
        (None, None) => GENERIC_ROOTS.iter().map(|s| s.to_string()).collect(),
    };
    let Some(language) = language else {
        return Ok(uri.path.clone().unwrap_or_default());
    };
    let want = language_key(language);
    let mut seen: Vec<String> = Vec::new();
    let mut last_err = None;
    for root in &roots {
        let entries: Vec<TreeEntry> = match client.list_dir(&uri.repo, revision, root) {
            Ok(e) => e,
            // A generic root that does not exist is just not this layout;
            // keep the error for the message if no root works.
            Err(e) if uri.path.is_none() && hub_error_kind(&e) == Some(HubErrorKind::NotFound) => {
                last_err = Some(e);
                continue;
            }
            Err(e) => return Err(e),
        };
        let dirs: Vec<&TreeEntry> = entries.iter().filter(|e| e.is_dir).collect();
        let matches: Vec<&&TreeEntry> = dirs
            .iter()
            .filter(|e| language_key(last_segment(&e.path)) == want)
            .collect();
        match matches.as_slice() {
            [one] => return Ok(one.path.clone()),
            [] => {}
            many => bail!(
                "language {language:?} matches several directories of {}: {}",
                uri.repo,
                many.iter()
                    .map(|e| e.path.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
        if uri.path.is_some() && dirs.is_empty() {
            // hf://owner/name/data/Python: PATH is the language directory.
            return Ok(root.clone());
        }
        seen.extend(dirs.iter().map(|e| last_segment(&e.path).to_string()));
    }
    if seen.is_empty() {
        if let Some(e) = last_err {
            return Err(e.context(format!(
                "cannot find the language directories of {} (looked in {})",
                uri.repo,
                roots
                    .iter()
                    .map(|r| if r.is_empty() { "/" } else { r.as_str() })
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    seen.sort();
    seen.dedup();
    bail!(
        "no directory for language {language:?} in {} (looked in {}); available: {}",
        uri.repo,
        roots
            .iter()
            .map(|r| if r.is_empty() { "/" } else { r.as_str() })
            .collect::<Vec<_>>()
            .join(", "),
        if seen.is_empty() {
            "none".to_string()
        } else {
            seen.join(", ")
        }
    )
}

fn last_segment(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_parse() {
        let u = HfUri::parse("hf://bigcode/the-stack-v2-dedup").expect("ok");
        assert_eq!(u.repo, "bigcode/the-stack-v2-dedup");
        assert_eq!(u.path, None);
        assert_eq!(u.revision, None);
        assert_eq!(u.default_content_store(), Some(SOFTWARE_HERITAGE_S3));

        let u = HfUri::parse("hf://datasets/HuggingFaceTB/stack-edu@v1.0/Python/").expect("ok");
        assert_eq!(u.repo, "HuggingFaceTB/stack-edu");
        assert_eq!(u.path.as_deref(), Some("Python"));
        assert_eq!(u.revision.as_deref(), Some("v1.0"));

        let u = HfUri::parse("hf://bigcode/the-stack-dedup/data/python").expect("ok");
        assert_eq!(u.path.as_deref(), Some("data/python"));
        assert_eq!(u.default_content_store(), None);

        // Revisions with '/': the Hub's special refs raw, anything %2F-encoded.
        let u = HfUri::parse("hf://datasets/o/n@refs/convert/parquet/default/train").expect("ok");
        assert_eq!(u.revision.as_deref(), Some("refs/convert/parquet"));
        assert_eq!(u.path.as_deref(), Some("default/train"));
        let u = HfUri::parse("hf://datasets/o/n@refs%2Fconvert%2Fparquet/default").expect("ok");
        assert_eq!(u.revision.as_deref(), Some("refs/convert/parquet"));
        assert_eq!(u.path.as_deref(), Some("default"));
        let u = HfUri::parse("hf://datasets/o/n@refs/pr/12").expect("ok");
        assert_eq!(
            (u.revision.as_deref(), u.path.as_deref()),
            (Some("refs/pr/12"), None)
        );
        let u = HfUri::parse("hf://datasets/o/n@my%2Fbranch/data").expect("ok");
        assert_eq!(u.revision.as_deref(), Some("my/branch"));
        // An '@' in a file name is not a revision.
        let u = HfUri::parse("hf://datasets/o/n/data/file@1.parquet").expect("ok");
        assert_eq!(
            (u.revision, u.path.as_deref()),
            (None, Some("data/file@1.parquet"))
        );
        assert!(HfUri::parse("hf://models/o/n").is_err());
        assert!(HfUri::parse("hf://datasets/o@main").is_err());
        assert!(HfUri::parse("hf://onlyowner").is_err());
        assert!(HfUri::parse("s3://x/y").is_err());
        assert!(HfUri::parse("hf://a/b/../c").is_err());
        assert!(HfUri::parse("hf://a/b@").is_err());
        assert!(HfUri::is_hf_uri("hf://a/b"));
        assert!(!HfUri::is_hf_uri("data/x.parquet"));
    }

    #[test]
    fn language_keys_meet_across_spellings() {
        assert_eq!(language_key("Python"), language_key("python"));
        assert_eq!(language_key("C++"), language_key("cpp"));
        assert_eq!(language_key("C#"), language_key("C-Sharp"));
        assert_eq!(language_key("csharp"), language_key("c-sharp"));
        assert_eq!(
            language_key("Jupyter_Notebook"),
            language_key("jupyter-notebook")
        );
        assert_ne!(language_key("C"), language_key("C++"));
        assert_ne!(language_key("Java"), language_key("JavaScript"));
    }
}
