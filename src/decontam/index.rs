//! The n-gram index: benchmark n-grams in a sorted [`NgramTable`] (the table
//! the backends' `ngram_membership` kernel searches), with a side map from
//! table index to the benchmark item(s) that contain the n-gram.
//!
//! ## What goes into the table
//! Every n-gram of every item's n-gram texts (see [`super::ngram`]), minus two
//! kinds that ordinary code is full of. Both are learned from the benchmark
//! side alone, so building the index needs no corpus of "ordinary" code:
//!
//! 1. **Stop-list: n-grams shared by several problems.** An n-gram that occurs
//!    in at least `stop_groups` distinct benchmark *problems* (default 3) is
//!    boilerplate (`for i in range(len(arr)):` is in dozens of MBPP
//!    solutions), so it is dropped. We count problems, not items: HumanEval
//!    task 23 exists as HumanEval, HumanEval+, HumanEval-X and 19 MultiPL-E
//!    translations, which share their docstring; those are one problem (one
//!    *group*), and its docstring n-grams are its most telling ones.
//! 2. **Rare-token rule: n-grams made only of common tokens.** An n-gram is
//!    kept only if it contains at least one *rare* identifier: an identifier
//!    (see [`super::ngram::Token`]) that is not a keyword or builtin of a
//!    common language ([`GENERIC_WORDS`]) and that occurs in at most
//!    `rare_fraction` of the problems (default 5%, and at least in one), and
//!    that is not quoted (string contents: see [`super::ngram::Token`]). A
//!    window like `for j in range ( i + 1 , len ( l ) ) :` then never enters
//!    the index, whichever problem it comes from, while `if chars [ i ] ==`
//!    can; nor do runs of string data (`"one", "two", "three", ...` is in
//!    HumanEval 19 and 105, and in any number-to-words table). On real code
//!    these rules removed most of the false positives of the stop-list alone
//!    (see docs/decontamination.md).
//!
//! Both rules depend on the set of benchmarks loaded: an index over
//! HumanEval alone learns its "common" tokens from 164 problems.
//!
//! DETERMINISM: items are processed in load order and every intermediate list
//! is sorted before use, so the table and the side map depend only on the
//! benchmark files, never on thread count.

use super::benchmarks::BenchmarkItem;
use super::filter::{window_key, NgramFilter};
use super::ngram::{token_hash, NgramHasher, Token};
use crate::backends::NgramTable;
use rayon::prelude::*;
use std::collections::{HashMap, HashSet};

/// Sets of token and n-gram hashes, keyed by the hash itself.
///
/// PERF: the keys are token and n-gram hashes (finalised by fmix64 or
/// xxh3), already uniformly random, so SipHash on top of them bought
/// nothing: `rare.contains` (up to 13 lookups per window
/// of every benchmark n-gram) was 12% of the index build in `perf record` of
/// `decontaminate --threads 1` with every bundled benchmark. Membership is
/// the same with any hasher, so verdicts cannot change.
type HashAsIs = std::hash::BuildHasherDefault<AsIs>;

/// A hasher that returns the `u64` it is given (for keys that are hashes).
#[derive(Default)]
struct AsIs(u64);

impl std::hash::Hasher for AsIs {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Not used by `u64` keys; a plain fold keeps it correct anyway.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ b as u64;
        }
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = x;
    }
}

/// Keywords and builtins of common languages, and names used everywhere.
/// Never rare, whatever the benchmark statistics say (a small benchmark file
/// cannot teach that `return` is common).
#[rustfmt::skip]
pub const GENERIC_WORDS: &[&str] = &[
    // Python
    "and", "as", "assert", "async", "await", "break", "class", "continue", "def", "del", "elif",
    "else", "except", "finally", "for", "from", "global", "if", "import", "in", "is", "lambda",
    "none", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while", "with", "yield",
    "true", "false", "self", "cls", "print", "range", "len", "int", "str", "float", "bool",
    "list", "dict", "set", "tuple", "sum", "min", "max", "abs", "sorted", "map", "filter", "zip",
    "enumerate", "append", "extend", "pop", "join", "split", "strip", "keys", "values", "items",
    "isinstance", "type", "object", "super", "init", "__init__", "__name__", "__main__", "main",
    "typing", "optional", "any", "all", "reversed", "round", "ord", "chr", "format", "open",
    // C, C++, Java, C#, JavaScript, TypeScript, Go, Rust, Swift, Kotlin, PHP, Ruby, Lua
    "auto", "case", "catch", "char", "const", "default", "do", "double", "enum", "extern",
    "goto", "long", "register", "short", "signed", "sizeof", "static", "struct", "switch",
    "typedef", "union", "unsigned", "void", "volatile", "include", "define", "ifdef", "ifndef",
    "endif", "std", "vector", "string", "cout", "cin", "endl", "namespace", "using", "template",
    "typename", "public", "private", "protected", "virtual", "override", "new", "delete", "this",
    "null", "nullptr", "throw", "throws", "boolean", "byte", "final", "implements", "extends",
    "interface", "package", "instanceof", "java", "util", "system", "out", "println", "var",
    "let", "function", "undefined", "typeof", "export", "require", "module", "console", "log",
    "length", "push", "number", "func", "go", "chan", "defer", "fmt", "nil", "fn", "mut", "pub",
    "impl", "trait", "match", "loop", "where", "crate", "use", "mod", "ref", "move", "unsafe",
    "usize", "isize", "u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64", "f32", "f64", "vec",
    "some", "ok", "err", "result", "option", "unwrap", "iter", "collect", "clone", "into",
    "to_string", "as_str", "new", "end", "then", "local", "elseif", "until", "repeat", "echo",
    "array", "count", "foreach", "val", "fun", "when", "guard", "inout", "args", "argv",
    // Standard-library names that few benchmark problems use but ordinary
    // code uses everywhere (a chain of `.replace(...)` calls matched MBPP 785
    // in CPython's test_future.py before these were listed).
    "replace", "lower", "upper", "startswith", "endswith", "find", "index", "get", "sort",
    "reverse", "remove", "insert", "update", "copy", "add", "contains", "equals", "tostring",
    "substring", "size", "empty", "begin", "charat", "parseint", "math", "random", "time", "os",
    "sys", "re", "path", "file", "read", "write", "close", "data", "value", "key", "name",
    "text", "test", "isdigit", "isalpha", "isupper", "islower", "isspace", "isalnum", "heapq",
    "collections", "counter", "defaultdict", "deque", "itertools", "functools", "reduce",
    "sqrt", "pow", "floor", "ceil", "exp", "pi", "hash", "next", "apply", "regex", "search",
    "findall", "sub", "compile", "hasattr", "getattr", "setattr", "repr", "capitalize", "title",
    "swapcase", "zfill", "ljust", "rjust", "center", "partition", "rsplit", "splitlines",
    "encode", "decode", "bytes", "bin", "hex", "oct", "divmod", "gcd", "factorial",
    "permutations", "combinations", "product", "accumulate", "chain", "groupby", "bisect",
    "heappush", "heappop", "heapify", "nlargest", "nsmallest", "mean", "median", "mode",
    "statistics", "numpy", "np", "pandas", "pd", "string", "lstrip", "rstrip", "rfind",
    "rindex", "maketrans", "translate", "fromkeys", "setdefault", "popitem", "clear",
    "discard", "union", "intersection", "difference", "issubset", "issuperset", "frozenset",
    "bytearray", "callable", "vars", "dir", "id", "input", "iter", "slice", "property",
    "staticmethod", "classmethod", "exception", "valueerror", "typeerror", "keyerror",
    "indexerror", "stopiteration", "error", "assertequal", "asserttrue", "assertfalse",
    "assertraises", "unittest", "pytest", "json", "dumps", "loads", "logging", "datetime",
    "math", "abs", "substr", "indexof", "slice", "splice", "concat", "includes", "tolowercase",
    "touppercase", "parsefloat", "stringbuilder", "arraylist", "hashmap", "hashset", "integer",
    "character", "arrays", "collectors", "stream", "aslist", "sizeof", "strlen", "strcmp",
    "memset", "malloc", "free", "printf", "scanf", "sprintf", "to_owned", "as_bytes", "chars",
    "len", "is_empty", "contains_key", "insert", "entry", "or_insert", "expect", "panic",
    "assert_eq", "hashmap", "btreemap", "string", "format", "debug", "display",
];

/// Parameters of the index.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NgramParams {
    /// Tokens per n-gram.
    pub n: usize,
    /// An n-gram in at least this many problems is stop-listed.
    pub stop_groups: usize,
    /// An identifier in at most this fraction of the problems is rare.
    pub rare_fraction: f64,
}

/// Counters of an index build, for `describe` and the docs.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IndexCounts {
    pub problems: usize,
    pub rare_tokens: usize,
    /// Distinct n-grams with at least one rare token.
    pub candidate_ngrams: usize,
    /// Of those, dropped by the stop-list.
    pub stopped_ngrams: usize,
    /// Distinct n-grams dropped for having no rare token.
    pub common_ngrams: usize,
}

/// The built n-gram index.
#[derive(Debug)]
pub struct NgramIndex {
    pub params: NgramParams,
    table: NgramTable,
    /// Owners of key `k` are `owners[owner_start[k]..owner_start[k + 1]]`.
    owner_start: Vec<u32>,
    owners: Vec<u32>,
    /// Window keys of every indexed n-gram (see [`super::filter`]).
    filter: NgramFilter,
    pub counts: IndexCounts,
}

/// A built [`NgramIndex`] as plain arrays (what the index cache stores).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NgramParts {
    params: NgramParams,
    keys: Vec<u64>,
    owner_start: Vec<u32>,
    owners: Vec<u32>,
    filter: NgramFilter,
    counts: IndexCounts,
}

impl NgramIndex {
    /// The index as plain arrays.
    pub fn parts(&self) -> NgramParts {
        NgramParts {
            params: self.params,
            keys: self.table.keys().to_vec(),
            owner_start: self.owner_start.clone(),
            owners: self.owners.clone(),
            filter: self.filter.clone(),
            counts: self.counts.clone(),
        }
    }

    /// The index of [`NgramIndex::parts`], over `items` items. Arrays that
    /// [`NgramIndex::build`] could not have made (unsorted keys, a side map
    /// that does not cover them, an owner out of range) are an error, so a
    /// lookup can never index out of bounds.
    pub fn from_parts(parts: NgramParts, items: usize) -> anyhow::Result<NgramIndex> {
        let NgramParts {
            params,
            keys,
            owner_start,
            owners,
            filter,
            counts,
        } = parts;
        anyhow::ensure!(
            keys.windows(2).all(|w| w[0] < w[1]),
            "n-gram keys not sorted and distinct"
        );
        anyhow::ensure!(
            owner_start.len() == keys.len() + 1
                && owner_start.first() == Some(&0)
                && owner_start.windows(2).all(|w| w[0] <= w[1])
                && owner_start.last().map(|&l| l as usize) == Some(owners.len()),
            "n-gram side map does not cover the keys"
        );
        anyhow::ensure!(
            owners.iter().all(|&o| (o as usize) < items),
            "n-gram owner out of range"
        );
        anyhow::ensure!(filter.is_well_formed(), "n-gram filter malformed");
        Ok(NgramIndex {
            params,
            table: NgramTable::new(keys),
            owner_start,
            owners,
            filter,
            counts,
        })
    }

    /// Builds the index over `items` (item `i` of the side map is `items[i]`).
    pub fn build(items: &[BenchmarkItem], params: NgramParams) -> NgramIndex {
        // Problems (groups), numbered in first-appearance order.
        let mut group_ids: HashMap<&str, u32> = HashMap::new();
        let item_group: Vec<u32> = items
            .iter()
            .map(|it| {
                let next = group_ids.len() as u32;
                *group_ids.entry(it.group.as_str()).or_insert(next)
            })
            .collect();
        let problems = group_ids.len();

        // Identifier document frequency over problems.
        let per_item_idents: Vec<Vec<u64>> = items
            .par_iter()
            .map(|it| {
                // PERF: the tokens alone (this pass used to hash every
                // n-gram too, only to read the tokens afterwards).
                let mut tokens = Vec::new();
                let mut ids = Vec::new();
                for text in &it.ngram_texts {
                    tokens.clear();
                    super::ngram::tokenize(text, &mut tokens);
                    ids.extend(tokens.iter().filter(|t| t.ident).map(|t| t.hash));
                }
                ids.sort_unstable();
                ids.dedup();
                ids
            })
            .collect();
        let mut token_group: Vec<(u64, u32)> = per_item_idents
            .iter()
            .zip(&item_group)
            .flat_map(|(ids, &g)| ids.iter().map(move |&t| (t, g)))
            .collect();
        token_group.par_sort_unstable();
        token_group.dedup();
        let generic: HashSet<u64, HashAsIs> = GENERIC_WORDS
            .iter()
            .map(|w| token_hash(w.to_lowercase().as_bytes()))
            .collect();
        let max_groups = ((params.rare_fraction * problems as f64).floor() as usize).max(1);
        let mut rare: HashSet<u64, HashAsIs> = HashSet::default();
        for run in token_group.chunk_by(|a, b| a.0 == b.0) {
            if run.len() <= max_groups && !generic.contains(&run[0].0) {
                rare.insert(run[0].0);
            }
        }

        // The n-grams of each item, split by the rare-token rule.
        // Kept n-grams also give their window keys, for the filter.
        let per_item: Vec<(Vec<u64>, Vec<u64>, Vec<u64>)> = items
            .par_iter()
            .map(|it| {
                let mut h = NgramHasher::new(params.n);
                let mut kept = Vec::new();
                let mut keys = Vec::new();
                let mut common = Vec::new();
                for text in &it.ngram_texts {
                    let is_rare = |t: &Token| t.ident && !t.quoted && rare.contains(&t.hash);
                    h.for_each_flagged(text, is_rare, |hash, window, has_rare| {
                        if has_rare {
                            kept.push(hash);
                            keys.push(window_key(window.iter().map(|t| t.hash)));
                        } else {
                            common.push(hash);
                        }
                    });
                }
                kept.sort_unstable();
                kept.dedup();
                common.sort_unstable();
                common.dedup();
                (kept, common, keys)
            })
            .collect();
        let mut common_all: Vec<u64> = per_item.iter().flat_map(|p| p.1.iter().copied()).collect();
        common_all.par_sort_unstable();
        common_all.dedup();

        // Stop-list: problems per n-gram.
        let mut by_group: Vec<(u64, u32)> = per_item
            .iter()
            .zip(&item_group)
            .flat_map(|(p, &g)| p.0.iter().map(move |&h| (h, g)))
            .collect();
        by_group.par_sort_unstable();
        by_group.dedup();
        let mut stopped: HashSet<u64, HashAsIs> = HashSet::default();
        let mut candidates = 0usize;
        for run in by_group.chunk_by(|a, b| a.0 == b.0) {
            candidates += 1;
            if run.len() >= params.stop_groups {
                stopped.insert(run[0].0);
            }
        }

        // Table and side map.
        let mut pairs: Vec<(u64, u32)> = per_item
            .iter()
            .enumerate()
            .flat_map(|(i, p)| p.0.iter().map(move |&h| (h, i as u32)))
            .filter(|(h, _)| !stopped.contains(h))
            .collect();
        pairs.par_sort_unstable();
        pairs.dedup();
        let mut keys = Vec::new();
        let mut owner_start = Vec::new();
        let mut owners = Vec::with_capacity(pairs.len());
        for run in pairs.chunk_by(|a, b| a.0 == b.0) {
            keys.push(run[0].0);
            owner_start.push(owners.len() as u32);
            owners.extend(run.iter().map(|p| p.1));
        }
        owner_start.push(owners.len() as u32);
        let table = NgramTable::new(keys);
        // Window keys of every kept n-gram, stop-listed ones included: a
        // superset of the table's is all the filter needs.
        let mut window_keys: Vec<u64> = per_item.iter().flat_map(|p| p.2.iter().copied()).collect();
        window_keys.par_sort_unstable();
        window_keys.dedup();
        let filter = NgramFilter::new(&window_keys);
        debug_assert_eq!(table.keys().len() + 1, owner_start.len());
        NgramIndex {
            params,
            table,
            owner_start,
            owners,
            filter,
            counts: IndexCounts {
                problems,
                rare_tokens: rare.len(),
                candidate_ngrams: candidates,
                stopped_ngrams: stopped.len(),
                common_ngrams: common_all.len(),
            },
        }
    }

    /// The sorted table the membership kernel searches.
    pub fn table(&self) -> &NgramTable {
        &self.table
    }

    /// The filter in front of the table (see [`super::filter`]).
    pub fn filter(&self) -> &NgramFilter {
        &self.filter
    }

    /// Number of n-grams in the table.
    pub fn len(&self) -> usize {
        self.table.keys().len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// The items containing table entry `index`.
    pub fn owners_of(&self, index: u32) -> &[u32] {
        let i = index as usize;
        &self.owners[self.owner_start[i] as usize..self.owner_start[i + 1] as usize]
    }

    /// Given the table indices hit by one file's distinct n-grams (misses
    /// already removed), the number of distinct shared n-grams per item,
    /// as `(item, count)` sorted by item.
    pub fn count_per_item(&self, hits: &[u32]) -> Vec<(u32, u32)> {
        let mut owners: Vec<u32> = hits
            .iter()
            .flat_map(|&h| self.owners_of(h).iter().copied())
            .collect();
        owners.sort_unstable();
        owners
            .chunk_by(|a, b| a == b)
            .map(|run| (run[0], run.len() as u32))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(group: &str, text: &str) -> BenchmarkItem {
        BenchmarkItem {
            benchmark: 0,
            id: group.to_string(),
            group: group.to_string(),
            exact: Vec::new(),
            ngram_texts: vec![text.to_string()],
        }
    }

    const P: NgramParams = NgramParams {
        n: 4,
        stop_groups: 2,
        rare_fraction: 0.5,
    };

    #[test]
    fn shared_boilerplate_is_stop_listed_and_owners_are_kept() {
        let items = vec![
            item("a", "for i in range ( n ) : alpha_one += beta_two"),
            item("b", "for i in range ( n ) : gamma_three -= delta_four"),
            // Same problem as "a" (a translation): not a second problem.
            item("a", "alpha_one += beta_two"),
        ];
        let idx = NgramIndex::build(&items, P);
        assert_eq!(idx.counts.problems, 2);
        let mut h = NgramHasher::new(4);
        let mut q = Vec::new();
        h.distinct_into("alpha_one += beta_two", &mut q);
        assert_eq!(q.len(), 1);
        let k = crate::backends::ops::ngram_lookup(q[0], idx.table().keys());
        assert_ne!(k, crate::backends::NGRAM_MISS);
        assert_eq!(idx.owners_of(k), &[0, 2]);
        // `in range ( n` is in both problems and has no rare token anyway;
        // `( n ) :` likewise: none of the shared prefix is indexed.
        let mut q = Vec::new();
        h.distinct_into("for i in range ( n ) :", &mut q);
        for g in q {
            assert_eq!(
                crate::backends::ops::ngram_lookup(g, idx.table().keys()),
                crate::backends::NGRAM_MISS
            );
        }
    }

    #[test]
    fn ngrams_without_rare_tokens_are_not_indexed() {
        let items = vec![item("a", "for x in range ( len ( l ) ) : return x")];
        let idx = NgramIndex::build(&items, P);
        assert!(idx.is_empty());
        assert!(idx.counts.common_ngrams > 0);
    }

    #[test]
    fn counts_are_per_item() {
        let items = vec![
            item("a", "uno_dos tres_cuatro cinco_seis siete_ocho nueve_diez"),
            item("b", "uno_dos tres_cuatro cinco_seis siete_ocho"),
        ];
        let idx = NgramIndex::build(
            &items,
            NgramParams {
                stop_groups: 3,
                rare_fraction: 1.0,
                ..P
            },
        );
        assert_eq!(idx.len(), 2);
        let hits: Vec<u32> = (0..idx.len() as u32).collect();
        assert_eq!(idx.count_per_item(&hits), vec![(0, 2), (1, 1)]);
    }
}
