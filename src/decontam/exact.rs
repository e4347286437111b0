//! The exact tier: every benchmark string, normalised, searched for in the
//! normalised file, one pass per normal form whatever the number of strings
//! (strided gram probes, [`super::prefix_search`], or an Aho-Corasick DFA for
//! prefixes under 16 bytes).
//!
//! Two searchers: one over the *literal* forms of every exact string (prompts,
//! docstrings, solutions), searched in the literal form of the file; one over
//! the *code* forms of solutions, searched in the code form of the file (see
//! [`super::normalize`]). A string shorter than `min_len` bytes after
//! normalisation is skipped: `returnx+y` or `returnsorted(l)` occur in plenty
//! of code that never saw a benchmark, and one-line solutions are not
//! evidence of contamination by themselves (the n-gram tier still sees them
//! together with their prompt and tests).
//!
//! Identical normalised strings (HumanEval and HumanEval+ share most prompts)
//! are one pattern with several owners. Matching finds every occurrence
//! (overlapping, Aho-Corasick's "standard" semantics), so the report lists
//! every item found, not only the leftmost.
//!
//! DETERMINISM: patterns are numbered in sorted order of their bytes, and hits
//! are sorted before use.

use super::benchmarks::BenchmarkItem;
use super::normalize;
use super::prefix_search::{self, PrefixSearch};
use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use anyhow::{Context, Result};
use std::collections::BTreeMap;

/// Which normal form a pattern is in.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Form {
    Literal,
    Code,
}

/// An item and field that own a pattern.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct Owner {
    pub item: u32,
    /// Index into `ExactIndex::field_names`.
    pub field: u16,
}

/// Longest pattern prefix the automaton holds (see [`Automaton`]).
const MAX_PREFIX: usize = 32;

/// How the prefixes are searched.
#[derive(Debug)]
enum Searcher {
    /// Strided gram probes ([`PrefixSearch`]), for prefixes of at least
    /// [`prefix_search::MIN_PREFIX`] bytes (the default 24 and the lengths
    /// the parameter sweep uses).
    Grams(PrefixSearch),
    /// An Aho-Corasick DFA, for shorter prefixes.
    Dfa(AhoCorasick),
}

/// One searcher and its patterns.
///
/// PERF: the searcher holds only the first `prefix_len` bytes of each
/// pattern (the minimum length, at most [`MAX_PREFIX`]) and a hit on a prefix
/// is verified with a slice comparison. Aho-Corasick over the whole patterns
/// picked a contiguous NFA (249 ms for the bench corpus); a DFA over the
/// prefixes took 139 ms; the strided gram search over the same prefixes
/// needs no transition table at all (see [`super::prefix_search`] and
/// benches/results/decontam.md).
#[derive(Debug)]
struct Automaton {
    search: Option<Searcher>,
    /// Patterns sharing prefix `i`.
    by_prefix: Vec<Vec<u32>>,
    patterns: Vec<Vec<u8>>,
    owners: Vec<Vec<Owner>>,
}

impl Automaton {
    /// `patterns` sorted by their bytes, distinct, each at least
    /// `prefix_len` bytes long.
    fn build(patterns: Vec<(Vec<u8>, Vec<Owner>)>, prefix_len: usize) -> Result<Automaton> {
        let (patterns, owners): (Vec<_>, Vec<_>) = patterns.into_iter().unzip();
        let mut prefixes: BTreeMap<&[u8], Vec<u32>> = BTreeMap::new();
        for (i, p) in patterns.iter().enumerate() {
            debug_assert!(p.len() >= prefix_len);
            prefixes.entry(&p[..prefix_len]).or_default().push(i as u32);
        }
        let (keys, by_prefix): (Vec<&[u8]>, Vec<Vec<u32>>) = prefixes.into_iter().unzip();
        let search = if keys.is_empty() {
            None
        } else if prefix_len >= prefix_search::MIN_PREFIX {
            Some(Searcher::Grams(PrefixSearch::new(&keys, prefix_len)))
        } else {
            Some(Searcher::Dfa(
                AhoCorasick::builder()
                    .match_kind(MatchKind::Standard)
                    .kind(Some(AhoCorasickKind::DFA))
                    .build(&keys)
                    .context("cannot build the exact-match automaton")?,
            ))
        };
        Ok(Automaton {
            search,
            by_prefix,
            patterns,
            owners,
        })
    }

    fn parts(&self) -> Vec<(Vec<u8>, Vec<Owner>)> {
        self.patterns
            .iter()
            .cloned()
            .zip(self.owners.iter().cloned())
            .collect()
    }

    /// Pattern ids found in `hay`, sorted and distinct.
    fn find(&self, hay: &[u8]) -> Vec<u32> {
        let mut ids: Vec<u32> = Vec::new();
        let mut verify = |prefix: usize, at: usize| {
            let rest = &hay[at..];
            for &p in &self.by_prefix[prefix] {
                if rest.starts_with(&self.patterns[p as usize]) {
                    ids.push(p);
                }
            }
        };
        match &self.search {
            None => return Vec::new(),
            Some(Searcher::Grams(s)) => s.for_each(hay, |p, at| verify(p as usize, at)),
            Some(Searcher::Dfa(ac)) => {
                for m in ac.find_overlapping_iter(hay) {
                    verify(m.pattern().as_usize(), m.start());
                }
            }
        }
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    fn memory_usage(&self) -> usize {
        match &self.search {
            None => 0,
            Some(Searcher::Grams(s)) => s.memory_usage(),
            Some(Searcher::Dfa(a)) => a.memory_usage(),
        }
    }
}

/// A pattern found in a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExactHit {
    pub form: Form,
    pub pattern: u32,
}

/// The exact tier before its searchers are built: each form's patterns
/// (sorted, distinct) with their owners. Building the searchers from these
/// takes milliseconds; normalising every item's strings to get them does
/// not, so this is what the index cache ([`super::index_cache`]) stores.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ExactParts {
    literal: Vec<(Vec<u8>, Vec<Owner>)>,
    code: Vec<(Vec<u8>, Vec<Owner>)>,
    field_names: Vec<String>,
    min_len: usize,
    skipped_short: usize,
}

/// The built exact tier.
#[derive(Debug)]
pub struct ExactIndex {
    literal: Automaton,
    code: Automaton,
    field_names: Vec<String>,
    pub min_len: usize,
    /// Strings skipped for being shorter than `min_len` after normalisation.
    pub skipped_short: usize,
}

/// Per-thread buffers for [`ExactIndex::find`].
#[derive(Default)]
pub struct ExactScratch {
    literal: Vec<u8>,
    code: Vec<u8>,
}

impl ExactIndex {
    /// `min_len` is at least 1 (an empty pattern would match everywhere).
    pub fn build(items: &[BenchmarkItem], min_len: usize) -> Result<ExactIndex> {
        let min_len = min_len.max(1);
        let mut field_names: Vec<String> = Vec::new();
        let mut lit: BTreeMap<Vec<u8>, Vec<Owner>> = BTreeMap::new();
        let mut code: BTreeMap<Vec<u8>, Vec<Owner>> = BTreeMap::new();
        let mut skipped_short = 0;
        for (i, it) in items.iter().enumerate() {
            for e in &it.exact {
                let field = match field_names.iter().position(|f| *f == e.field) {
                    Some(p) => p,
                    None => {
                        field_names.push(e.field.clone());
                        field_names.len() - 1
                    }
                } as u16;
                let owner = Owner {
                    item: i as u32,
                    field,
                };
                let mut forms = vec![(normalize::literal(&e.text), &mut lit)];
                if e.code_form {
                    forms.push((normalize::code(&e.text), &mut code));
                }
                for (p, map) in forms {
                    if p.len() < min_len {
                        skipped_short += 1;
                        continue;
                    }
                    let owners = map.entry(p).or_default();
                    if owners.last() != Some(&owner) {
                        owners.push(owner);
                    }
                }
            }
        }
        ExactIndex::from_parts(
            ExactParts {
                literal: lit.into_iter().collect(),
                code: code.into_iter().collect(),
                field_names,
                min_len,
                skipped_short,
            },
            items.len(),
        )
    }

    /// Builds the searchers over `parts` of an index of `items` items. Parts
    /// that could not come from [`ExactIndex::build`] (unsorted patterns, a
    /// pattern under the minimum length, an owner out of range) are an error.
    pub fn from_parts(parts: ExactParts, items: usize) -> Result<ExactIndex> {
        let min_len = parts.min_len;
        anyhow::ensure!(min_len >= 1, "minimum exact length 0");
        for patterns in [&parts.literal, &parts.code] {
            anyhow::ensure!(
                patterns.windows(2).all(|w| w[0].0 < w[1].0),
                "patterns not sorted and distinct"
            );
            for (p, owners) in patterns.iter() {
                anyhow::ensure!(p.len() >= min_len, "a pattern under the minimum length");
                anyhow::ensure!(
                    owners.iter().all(|o| (o.item as usize) < items
                        && (o.field as usize) < parts.field_names.len()),
                    "a pattern owner out of range"
                );
            }
        }
        let prefix_len = min_len.min(MAX_PREFIX);
        Ok(ExactIndex {
            literal: Automaton::build(parts.literal, prefix_len)?,
            code: Automaton::build(parts.code, prefix_len)?,
            field_names: parts.field_names,
            min_len,
            skipped_short: parts.skipped_short,
        })
    }

    /// What [`ExactIndex::from_parts`] rebuilds this index from.
    pub fn parts(&self) -> ExactParts {
        ExactParts {
            literal: self.literal.parts(),
            code: self.code.parts(),
            field_names: self.field_names.clone(),
            min_len: self.min_len,
            skipped_short: self.skipped_short,
        }
    }

    /// Heap bytes of both automata.
    pub fn memory_usage(&self) -> usize {
        self.literal.memory_usage() + self.code.memory_usage()
    }

    /// Number of patterns in each form.
    pub fn pattern_counts(&self) -> (usize, usize) {
        (self.literal.patterns.len(), self.code.patterns.len())
    }

    fn automaton(&self, form: Form) -> &Automaton {
        match form {
            Form::Literal => &self.literal,
            Form::Code => &self.code,
        }
    }

    /// The normalised pattern bytes.
    pub fn pattern(&self, hit: &ExactHit) -> &[u8] {
        &self.automaton(hit.form).patterns[hit.pattern as usize]
    }

    /// The items and fields that own a pattern.
    pub fn owners(&self, hit: &ExactHit) -> &[Owner] {
        &self.automaton(hit.form).owners[hit.pattern as usize]
    }

    pub fn field_name(&self, field: u16) -> &str {
        &self.field_names[field as usize]
    }

    /// Every pattern found in `text`, literal hits first.
    pub fn find(&self, text: &str, scratch: &mut ExactScratch) -> Vec<ExactHit> {
        scratch.literal.clear();
        scratch.code.clear();
        if self.literal.search.is_some() {
            normalize::literal_into(text, &mut scratch.literal);
        }
        if self.code.search.is_some() {
            normalize::code_into(text, &mut scratch.code);
        }
        self.find_forms(&scratch.literal, &scratch.code)
    }

    /// Every pattern found in a text given by its two normal forms (as
    /// [`super::scan`] makes them), literal hits first.
    pub fn find_forms(&self, literal: &[u8], code: &[u8]) -> Vec<ExactHit> {
        let mut hits = Vec::new();
        hits.extend(self.literal.find(literal).into_iter().map(|p| ExactHit {
            form: Form::Literal,
            pattern: p,
        }));
        hits.extend(self.code.find(code).into_iter().map(|p| ExactHit {
            form: Form::Code,
            pattern: p,
        }));
        hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decontam::benchmarks::ExactText;

    fn item(prompt: &str, solution: &str) -> BenchmarkItem {
        BenchmarkItem {
            benchmark: 0,
            id: "t".into(),
            group: "t".into(),
            exact: vec![
                ExactText {
                    field: "prompt".into(),
                    text: prompt.into(),
                    code_form: false,
                },
                ExactText {
                    field: "canonical_solution".into(),
                    text: solution.into(),
                    code_form: true,
                },
            ],
            ngram_texts: vec![],
        }
    }

    #[test]
    fn finds_reformatted_and_commented_solutions_and_skips_short_strings() {
        let items = vec![item(
            "def x(): pass",
            "def count_vowels(s):\n    n = 0\n    for ch in s:\n        if ch in 'aeiou':\n            n += 1\n    return n\n",
        )];
        let idx = ExactIndex::build(&items, 32).unwrap();
        // The short prompt is skipped; the solution has two forms.
        assert_eq!(idx.skipped_short, 1);
        assert_eq!(idx.pattern_counts(), (1, 1));
        let mut s = ExactScratch::default();
        let reindented = "import os\n\ndef COUNT_VOWELS(s):\n  n = 0\n  for ch in s:\n    if ch in 'aeiou':\n      n += 1\n  return n\n";
        let h = idx.find(reindented, &mut s);
        assert_eq!(h.len(), 2);
        assert_eq!(h[0].form, Form::Literal);
        let commented = "def vowels(s):\n    # count them\n    n = 0\n    for ch in s:  # each char\n        if ch in 'aeiou':\n            n += 1\n    return n\n";
        let h = idx.find(commented, &mut s);
        assert_eq!(
            h,
            vec![ExactHit {
                form: Form::Code,
                pattern: 0
            }]
        );
        assert_eq!(
            idx.field_name(idx.owners(&h[0])[0].field),
            "canonical_solution"
        );
        assert!(idx
            .find(
                "def vowels(s):\n    return sum(c in 'aeiou' for c in s)\n",
                &mut s
            )
            .is_empty());
    }
}
