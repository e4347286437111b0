//! A few contaminated files, shown on the run's HTML page beside the
//! benchmark item they matched: which part of the file matched, and the
//! item's own text.
//!
//! ## Which hits
//! At most [`SAMPLED_HITS`] in all. Hits are grouped by drop reason
//! (`decontam_<benchmark>_<tier>`); each group keeps the hits with the
//! smallest stable hash of `repo/path` (a bounded heap, so memory does not
//! grow with the run), and the sample takes the smallest of every group, then
//! the second of every group, and so on: every benchmark and tier that was
//! hit is shown before any is shown twice. The choice depends only on the set
//! of contaminated files, not on batch boundaries, threads or input order.
//!
//! ## Where in the file
//! The tiers match normalised text, so the span is found again in the
//! original file the same way the tier found it, line by line:
//! - exact tier, literal form: the file is normalised one character at a
//!   time with [`normalize::literal_into`] (the literal form is a per
//!   character map: lowercase, whitespace dropped), keeping each normalised
//!   byte's source offset; the matched string is found in it and mapped back.
//! - exact tier, code form: each line's code form ([`normalize::code_into`]
//!   works line by line) with the line it came from.
//! - n-gram tier: the file's tokens ([`ngram::tokenize`], which also works
//!   line by line) and their n-grams, both streams (all tokens and
//!   comment-free tokens) as the tier builds them; lines holding an n-gram
//!   of the item are marked, and the densest block of marked lines (gaps of
//!   at most [`MAX_GAP_LINES`]) is the span.
//!
//! Texts are cut to [`SAMPLE_TEXT_BYTES`] on a character boundary.

use super::benchmarks::BenchmarkItem;
use super::exact::Form;
use super::ngram::{self, NgramHasher};
use super::{normalize, Contamination, ItemMatch, Tier};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// Contaminated files the page shows, and how much text of each side.
pub const SAMPLED_HITS: usize = 8;
pub const SAMPLE_TEXT_BYTES: usize = 4096;
/// Longest benchmark text kept per field for locating spans.
const KEPT_ITEM_BYTES: usize = 64 << 10;
/// Lines of context shown around the matching span.
const CONTEXT_LINES: usize = 2;
/// Unmarked lines allowed inside one n-gram span.
pub const MAX_GAP_LINES: usize = 3;

/// The texts of every benchmark item, by (benchmark name, item id), for the
/// samples (items' texts are otherwise dropped once the tiers are built).
#[derive(Debug, Default)]
pub struct ItemTexts {
    by_id: HashMap<(String, String), usize>,
    items: Vec<ItemText>,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ItemText {
    /// Exact-tier fields, by name.
    exact: Vec<(String, String)>,
    /// Texts the n-gram tier reads.
    ngram: Vec<String>,
}

fn keep(text: &str) -> String {
    cut(text, KEPT_ITEM_BYTES).0.to_string()
}

impl ItemTexts {
    /// `names[b]` is the name of benchmark index `b`.
    pub fn new(items: &[BenchmarkItem], names: &[String]) -> ItemTexts {
        let mut t = ItemTexts::default();
        for it in items {
            let Some(name) = names.get(it.benchmark as usize) else {
                continue;
            };
            t.by_id
                .entry((name.clone(), it.id.clone()))
                .or_insert(t.items.len());
            t.items.push(ItemText {
                exact: it
                    .exact
                    .iter()
                    .map(|e| (e.field.clone(), keep(&e.text)))
                    .collect(),
                ngram: it.ngram_texts.iter().map(|s| keep(s)).collect(),
            });
        }
        t
    }

    /// Every item's texts, in item order (what the index cache stores).
    pub fn parts(&self) -> Vec<ItemText> {
        self.items.clone()
    }

    /// The texts of [`ItemTexts::parts`] for `items` as (benchmark index,
    /// id), `names[b]` the name of benchmark `b`.
    pub fn from_parts(
        items: &[(u16, String)],
        names: &[String],
        texts: Vec<ItemText>,
    ) -> anyhow::Result<ItemTexts> {
        anyhow::ensure!(
            texts.len() == items.len(),
            "item texts do not match the items"
        );
        let mut by_id = HashMap::with_capacity(items.len());
        for (i, (b, id)) in items.iter().enumerate() {
            let name = names
                .get(*b as usize)
                .ok_or_else(|| anyhow::anyhow!("item of an unknown benchmark"))?;
            by_id.entry((name.clone(), id.clone())).or_insert(i);
        }
        Ok(ItemTexts {
            by_id,
            items: texts,
        })
    }

    /// The texts of the benchmarks `cfg` names, where the decontaminator is
    /// not at hand: from the index cache's entry when `cfg` has one (an
    /// entry holds them), else loaded again (without building the tiers).
    pub fn load(cfg: &super::DecontamConfig) -> anyhow::Result<ItemTexts> {
        use super::index_cache::{IndexCache, Lookup};
        let planned = super::load::plan(cfg)?;
        if let Some((cache, key)) = IndexCache::for_config(cfg, &planned) {
            if let Lookup::Hit(entry) = cache.get(key) {
                let names = entry.names();
                // An entry that does not fit is loaded again instead.
                if let Ok(t) = ItemTexts::from_parts(&entry.items, &names, entry.item_texts) {
                    return Ok(t);
                }
            }
        }
        let (benchmarks, items) = super::load::load_planned(cfg, &planned)?;
        let names: Vec<String> = benchmarks.iter().map(|b| b.name.clone()).collect();
        Ok(ItemTexts::new(&items, &names))
    }

    fn get(&self, benchmark: &str, id: &str) -> Option<&ItemText> {
        self.by_id
            .get(&(benchmark.to_string(), id.to_string()))
            .map(|&i| &self.items[i])
    }
}

/// Where in the training file the item matched.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSpan {
    /// 1-based line numbers of the matching lines.
    pub first_line: u64,
    pub last_line: u64,
    /// The lines shown: the span with `CONTEXT_LINES` around it, cut to
    /// [`SAMPLE_TEXT_BYTES`]; its first line is `text_first_line`.
    pub text_first_line: u64,
    pub text: String,
    pub truncated: bool,
    /// `literal form`, `code form` or `n-grams`.
    pub located_by: String,
}

/// One sampled contaminated file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HitSample {
    pub repo: String,
    pub path: String,
    pub reason: String,
    pub benchmark: String,
    pub tier: Tier,
    /// `dropped` or `flagged`.
    pub action: String,
    pub file_bytes: u64,
    pub file_lines: u64,
    pub item_id: String,
    /// Exact tier: the item's field that matched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item_field: Option<String>,
    /// The item's text: the matched field (exact tier) or the texts the
    /// n-gram tier reads, cut to [`SAMPLE_TEXT_BYTES`].
    pub item_text: String,
    pub item_truncated: bool,
    /// Exact tier: the normalised matched string (as in the report) and its
    /// whole length.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matched: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matched_len: Option<usize>,
    /// N-gram tier: distinct n-grams shared with the item.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ngrams: Option<u32>,
    /// `None` when the span could not be found again (it always should).
    pub span: Option<FileSpan>,
}

/// Collects [`HitSample`]s as contaminated files go by (see the module doc).
#[derive(Debug, Default)]
pub struct HitSampler {
    groups: BTreeMap<String, Vec<(u64, HitSample)>>,
}

impl HitSampler {
    pub fn new() -> HitSampler {
        HitSampler::default()
    }

    /// Considers one file `dec` found contaminated (`action`: `dropped` or
    /// `flagged`).
    pub fn offer(
        &mut self,
        dec: &super::Decontaminator,
        text: &str,
        repo: &str,
        path: &str,
        c: &Contamination,
        action: &str,
    ) {
        let n = dec.ngram_index().params.n;
        self.offer_with(dec.item_texts(), n, text, repo, path, c, action);
    }

    /// [`HitSampler::offer`] with the benchmark texts and n-gram length given.
    #[allow(clippy::too_many_arguments)]
    pub fn offer_with(
        &mut self,
        items: &ItemTexts,
        n: usize,
        text: &str,
        repo: &str,
        path: &str,
        c: &Contamination,
        action: &str,
    ) {
        let hash = crate::rank::repo_path_hash(repo, path);
        let group = self.groups.entry(c.reason()).or_default();
        if group.len() >= SAMPLED_HITS && group.iter().all(|(h, _)| hash >= *h) {
            return;
        }
        let sample = sample(items, n, text, repo, path, c, action);
        group.push((hash, sample));
        group.sort_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| (&a.1.repo, &a.1.path).cmp(&(&b.1.repo, &b.1.path)))
        });
        group.truncate(SAMPLED_HITS);
    }

    /// The candidates kept so far, with their hashes (at most
    /// [`SAMPLED_HITS`] per reason), to be merged with
    /// [`HitSampler::add_candidates`] elsewhere: merging keeps the smallest
    /// hashes per reason, so the samples of a run split into tasks are those
    /// of one sampler over the whole run.
    pub fn candidates(&self) -> Vec<(u64, HitSample)> {
        self.groups.values().flatten().cloned().collect()
    }

    /// Adds candidates of another sampler.
    pub fn add_candidates(&mut self, candidates: Vec<(u64, HitSample)>) {
        for (hash, sample) in candidates {
            let group = self.groups.entry(sample.reason.clone()).or_default();
            if group
                .iter()
                .any(|(h, s)| *h == hash && s.path == sample.path && s.repo == sample.repo)
            {
                continue;
            }
            group.push((hash, sample));
            group.sort_by(|a, b| {
                a.0.cmp(&b.0)
                    .then_with(|| (&a.1.repo, &a.1.path).cmp(&(&b.1.repo, &b.1.path)))
            });
            group.truncate(SAMPLED_HITS);
        }
    }

    /// The samples: the first of every group (by reason), then the second...
    pub fn finish(self) -> Vec<HitSample> {
        let groups: Vec<Vec<(u64, HitSample)>> = self.groups.into_values().collect();
        let mut out = Vec::new();
        let mut rank = 0;
        while out.len() < SAMPLED_HITS && groups.iter().any(|g| g.len() > rank) {
            for g in &groups {
                if out.len() < SAMPLED_HITS {
                    if let Some((_, s)) = g.get(rank) {
                        out.push(s.clone());
                    }
                }
            }
            rank += 1;
        }
        out
    }
}

fn cut(text: &str, max: usize) -> (&str, bool) {
    if text.len() <= max {
        return (text, false);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (&text[..end], true)
}

fn sample(
    items: &ItemTexts,
    n: usize,
    text: &str,
    repo: &str,
    path: &str,
    c: &Contamination,
    action: &str,
) -> HitSample {
    let top: Option<&ItemMatch> = c.items.first();
    let item = top.and_then(|m| items.get(&m.benchmark, &m.id));
    let field = top.and_then(|m| m.field.clone());
    let item_text = match (item, &field) {
        (Some(it), Some(f)) => it
            .exact
            .iter()
            .find(|(name, _)| name == f)
            .map(|(_, t)| t.clone())
            .unwrap_or_default(),
        (Some(it), None) => it.ngram.join("\n"),
        (None, _) => String::new(),
    };
    let span = top.and_then(|m| match (c.tier, m.form) {
        (Tier::Exact, Some(form)) => exact_span(text, m, form),
        (Tier::Ngram, _) => item.and_then(|it| ngram_span(text, &it.ngram, n)),
        _ => None,
    });
    let (shown, item_truncated) = cut(&item_text, SAMPLE_TEXT_BYTES);
    HitSample {
        repo: repo.to_string(),
        path: path.to_string(),
        reason: c.reason(),
        benchmark: c.benchmark.clone(),
        tier: c.tier,
        action: action.to_string(),
        file_bytes: text.len() as u64,
        file_lines: text.split('\n').count() as u64,
        item_id: top.map(|m| m.id.clone()).unwrap_or_default(),
        item_field: field,
        item_text: shown.to_string(),
        item_truncated,
        matched: top.and_then(|m| m.matched.clone()),
        matched_len: top.and_then(|m| m.matched_len),
        ngrams: top.and_then(|m| m.ngrams),
        span,
    }
}

/// Byte offset of the start of every line (split on `\n`), and the text's
/// length as the end sentinel.
fn line_starts(text: &str) -> Vec<usize> {
    let mut starts = vec![0];
    starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
    starts.push(text.len() + 1);
    starts
}

/// The span of 0-based lines `first..=last`, with context, cut.
fn span_of(text: &str, first: usize, last: usize, located_by: &'static str) -> FileSpan {
    let starts = line_starts(text);
    let lines = starts.len() - 1;
    let from = first.saturating_sub(CONTEXT_LINES);
    let to = (last + CONTEXT_LINES).min(lines - 1);
    let end = (starts[to + 1] - 1).min(text.len());
    let (shown, truncated) = cut(&text[starts[from]..end], SAMPLE_TEXT_BYTES);
    FileSpan {
        first_line: first as u64 + 1,
        last_line: last as u64 + 1,
        text_first_line: from as u64 + 1,
        text: shown.to_string(),
        truncated,
        located_by: located_by.to_string(),
    }
}

/// The matched prefix as recorded: the whole normalised string, or its
/// first bytes when the report cut it (marked by a trailing `...`).
fn matched_prefix(m: &ItemMatch) -> Option<&[u8]> {
    let quoted = m.matched.as_deref()?;
    let whole = m.matched_len == Some(quoted.len());
    let prefix = if whole {
        quoted
    } else {
        quoted.strip_suffix("...").unwrap_or(quoted)
    };
    (!prefix.is_empty()).then_some(prefix.as_bytes())
}

fn exact_span(text: &str, m: &ItemMatch, form: Form) -> Option<FileSpan> {
    let prefix = matched_prefix(m)?;
    let len = m.matched_len.unwrap_or(prefix.len()).max(prefix.len());
    // Normalised bytes and, for each, the 0-based line it came from.
    let mut norm: Vec<u8> = Vec::new();
    let mut line_of: Vec<u32> = Vec::new();
    match form {
        Form::Literal => {
            let mut line = 0u32;
            let mut buf = [0u8; 4];
            for ch in text.chars() {
                normalize::literal_into(ch.encode_utf8(&mut buf), &mut norm);
                line_of.resize(norm.len(), line);
                if ch == '\n' {
                    line += 1;
                }
            }
        }
        Form::Code => {
            for (line, l) in text.split('\n').enumerate() {
                normalize::code_into(l, &mut norm);
                line_of.resize(norm.len(), line as u32);
            }
        }
    }
    let at = memchr::memmem::find(&norm, prefix)?;
    let end = (at + len).min(norm.len()) - 1;
    let located_by = match form {
        Form::Literal => "literal form",
        Form::Code => "code form",
    };
    Some(span_of(
        text,
        line_of[at] as usize,
        line_of[end] as usize,
        located_by,
    ))
}

fn ngram_span(text: &str, item_texts: &[String], n: usize) -> Option<FileSpan> {
    if n == 0 {
        return None;
    }
    let mut item_grams: Vec<u64> = Vec::new();
    let mut hasher = NgramHasher::new(n);
    for t in item_texts {
        hasher.distinct_into(t, &mut item_grams);
    }
    item_grams.sort_unstable();
    item_grams.dedup();
    // Tokens line by line (the tokenizer's state never crosses a line), so
    // each token knows its line.
    let mut tokens: Vec<ngram::Token> = Vec::new();
    let mut line_of: Vec<u32> = Vec::new();
    for (line, l) in text.split('\n').enumerate() {
        ngram::tokenize(l, &mut tokens);
        line_of.resize(tokens.len(), line as u32);
    }
    let lines = line_of.last().map_or(0, |&l| l as usize + 1);
    let mut marked = vec![0u32; lines];
    let mut mark = |positions: &[usize], hashes: &[u64]| {
        if hashes.len() < n {
            return;
        }
        for (i, w) in hashes.windows(n).enumerate() {
            if item_grams.binary_search(&ngram::ngram_hash(w)).is_ok() {
                for &p in &positions[i..i + n] {
                    marked[line_of[p] as usize] += 1;
                }
            }
        }
    };
    let all: Vec<usize> = (0..tokens.len()).collect();
    let hashes: Vec<u64> = tokens.iter().map(|t| t.hash).collect();
    mark(&all, &hashes);
    let code: Vec<usize> = (0..tokens.len()).filter(|&i| !tokens[i].comment).collect();
    if code.len() < tokens.len() {
        let code_hashes: Vec<u64> = code.iter().map(|&i| tokens[i].hash).collect();
        mark(&code, &code_hashes);
    }
    // The block of marked lines (gaps of at most MAX_GAP_LINES) with the
    // most marks; the first such block on ties.
    let mut best: Option<(u32, usize, usize)> = None;
    let mut cur: Option<(u32, usize, usize)> = None;
    for (line, &m) in marked.iter().enumerate() {
        if m == 0 {
            continue;
        }
        cur = match cur {
            Some((score, first, last)) if line - last <= MAX_GAP_LINES + 1 => {
                Some((score + m, first, line))
            }
            _ => Some((m, line, line)),
        };
        if let Some(c) = cur {
            if best.is_none_or(|b| c.0 > b.0) {
                best = Some(c);
            }
        }
    }
    let (_, first, last) = best?;
    Some(span_of(text, first, last, "n-grams"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decontam::benchmarks::ExactText;

    const SOLUTION: &str = "    total = 0\n    for value in numbers:\n        if value % 2 == 0:\n            total += value * value\n    return total\n";

    fn item(id: &str) -> BenchmarkItem {
        let prompt = "def sum_even_squares(numbers):\n    \"\"\"Return the sum of the squares of the even numbers in the list.\"\"\"\n";
        BenchmarkItem {
            benchmark: 0,
            id: id.into(),
            group: id.into(),
            exact: vec![
                ExactText {
                    field: "prompt".into(),
                    text: prompt.into(),
                    code_form: false,
                },
                ExactText {
                    field: "canonical_solution".into(),
                    text: SOLUTION.into(),
                    code_form: true,
                },
            ],
            ngram_texts: vec![format!("{prompt}{SOLUTION}")],
        }
    }

    fn file_with(middle: &str) -> String {
        let mut t = String::new();
        for i in 0..10 {
            t.push_str(&format!("import module_{i}\n"));
        }
        t.push_str(middle);
        for i in 0..10 {
            t.push_str(&format!("print('after {i}')\n"));
        }
        t
    }

    fn exact_hit(form: Form, matched: &str) -> Contamination {
        Contamination {
            benchmark: "humaneval".into(),
            tier: Tier::Exact,
            items: vec![ItemMatch {
                benchmark: "humaneval".into(),
                id: "HumanEval/1".into(),
                field: Some("canonical_solution".into()),
                form: Some(form),
                matched: Some(matched.to_string()),
                matched_len: Some(matched.len()),
                ngrams: None,
            }],
            items_total: 1,
        }
    }

    fn texts() -> ItemTexts {
        ItemTexts::new(&[item("HumanEval/1")], &["humaneval".to_string()])
    }

    #[test]
    fn literal_match_is_found_on_its_lines_whatever_the_layout() {
        // Re-indented and re-cased: the literal form still matches.
        let reindented = SOLUTION.replace("    ", "  ").to_uppercase();
        let text = file_with(&format!("def F(numbers):\n{reindented}"));
        let norm = String::from_utf8(normalize::literal(SOLUTION)).unwrap();
        let c = exact_hit(Form::Literal, &norm);
        let mut s = HitSampler::new();
        s.offer_with(&texts(), 13, &text, "o/r", "a.py", &c, "dropped");
        let got = s.finish();
        assert_eq!(got.len(), 1);
        let span = got[0].span.as_ref().unwrap();
        // Line 11 is `def F`, the solution is lines 12-16.
        assert_eq!((span.first_line, span.last_line), (12, 16), "{span:?}");
        assert_eq!(span.text_first_line, 10);
        assert!(span.text.contains("TOTAL += VALUE * VALUE"));
        assert_eq!(span.located_by, "literal form");
        // Candidates round-trip through JSON and merge to the same samples.
        let json = serde_json::to_string(&s_candidates_of(&text, &c)).unwrap();
        let back: Vec<(u64, HitSample)> = serde_json::from_str(&json).unwrap();
        let mut merged = HitSampler::new();
        merged.add_candidates(back.clone());
        merged.add_candidates(back);
        assert_eq!(merged.finish(), got);
        assert_eq!(got[0].item_text, SOLUTION);
        assert_eq!(got[0].item_field.as_deref(), Some("canonical_solution"));
    }

    fn s_candidates_of(text: &str, c: &Contamination) -> Vec<(u64, HitSample)> {
        let mut s = HitSampler::new();
        s.offer_with(&texts(), 13, text, "o/r", "a.py", c, "dropped");
        s.candidates()
    }

    #[test]
    fn code_form_and_cut_matches_are_found() {
        let commented = "def other(numbers):\n    total = 0  # start\n    # loop over them\n    for value in numbers:\n        if value % 2 == 0:\n            total += value * value\n    return total\n";
        let text = file_with(commented);
        let norm = String::from_utf8(normalize::code(SOLUTION)).unwrap();
        // As the report quotes it: cut, with `...`.
        let mut c = exact_hit(Form::Code, &format!("{}...", &norm[..20]));
        c.items[0].matched_len = Some(norm.len());
        let span = sample(&texts(), 13, &text, "o/r", "a.py", &c, "dropped")
            .span
            .unwrap();
        assert_eq!((span.first_line, span.last_line), (12, 17), "{span:?}");
        assert_eq!(span.located_by, "code form");
    }

    #[test]
    fn ngram_span_is_the_densest_block_of_shared_ngrams() {
        let copied = format!(
            "def sum_even_squares(numbers):\n    \"\"\"Return the sum of the squares of the even numbers in the list.\"\"\"\n{SOLUTION}"
        );
        let text = file_with(&copied);
        let c = Contamination {
            benchmark: "humaneval".into(),
            tier: Tier::Ngram,
            items: vec![ItemMatch {
                benchmark: "humaneval".into(),
                id: "HumanEval/1".into(),
                field: None,
                form: None,
                matched: None,
                matched_len: None,
                ngrams: Some(30),
            }],
            items_total: 1,
        };
        let s = sample(&texts(), 13, &text, "o/r", "a.py", &c, "flagged");
        let span = s.span.unwrap();
        assert_eq!((span.first_line, span.last_line), (11, 17), "{span:?}");
        assert_eq!(span.located_by, "n-grams");
        assert!(s.item_text.contains("sum_even_squares"));
        assert_eq!(s.action, "flagged");
        assert_eq!(s.file_lines, text.split('\n').count() as u64);
    }

    #[test]
    fn sampler_is_bounded_spreads_over_reasons_and_ignores_order() {
        let texts = texts();
        let norm = String::from_utf8(normalize::literal(SOLUTION)).unwrap();
        let text = file_with(SOLUTION);
        let mut hits: Vec<(String, Contamination)> = Vec::new();
        for i in 0..40 {
            let mut c = exact_hit(Form::Literal, &norm);
            if i % 10 == 0 {
                c.benchmark = "mbpp".into();
            }
            hits.push((format!("f{i}.py"), c));
        }
        let run = |order: &[usize]| {
            let mut s = HitSampler::new();
            for &i in order {
                let (p, c) = &hits[i];
                s.offer_with(&texts, 13, &text, "o/r", p, c, "dropped");
            }
            s.finish()
        };
        let forward: Vec<usize> = (0..hits.len()).collect();
        let backward: Vec<usize> = (0..hits.len()).rev().collect();
        let a = run(&forward);
        assert_eq!(a.len(), SAMPLED_HITS);
        assert_eq!(a, run(&backward));
        // Split in two samplers (two tasks) and merged: the same samples.
        let (mut x, mut y) = (HitSampler::new(), HitSampler::new());
        for (i, (p, c)) in hits.iter().enumerate() {
            let s = if i % 3 == 0 { &mut x } else { &mut y };
            s.offer_with(&texts, 13, &text, "o/r", p, c, "dropped");
        }
        let mut merged = HitSampler::new();
        merged.add_candidates(y.candidates());
        merged.add_candidates(x.candidates());
        assert_eq!(merged.finish(), a);
        // Both reasons are shown, alternately while both have hits.
        assert_eq!(a[0].reason, "decontam_humaneval_exact");
        assert_eq!(a[1].reason, "decontam_mbpp_exact");
        assert_eq!(
            a.iter()
                .filter(|s| s.reason == "decontam_mbpp_exact")
                .count(),
            4
        );
    }
}
