//! The `.gitattributes` that decide which files are not source: GitHub
//! linguist's `linguist-vendored` and `linguist-generated`, and `-diff` /
//! `binary` (git's own marks for content that is not text to read).
//!
//! Patterns follow gitattributes(5): a pattern without `/` matches the file
//! name at any depth below the attributes file's directory, one with `/` is
//! relative to that directory; `*` does not cross `/`, `**` does. Later
//! lines win over earlier ones, deeper files over shallower ones; `-attr`
//! and `attr=false` unset an attribute (`linguist-vendored=false` un-vendors
//! a file a broader pattern marked).

use globset::{GlobBuilder, GlobMatcher};

/// Attributes this source reads, per file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Marks {
    pub vendored: bool,
    pub generated: bool,
    pub no_diff: bool,
}

struct Rule {
    matcher: GlobMatcher,
    vendored: Option<bool>,
    generated: Option<bool>,
    no_diff: Option<bool>,
}

/// Every rule of a tree's `.gitattributes` files, in precedence order.
#[derive(Default)]
pub struct Attributes {
    rules: Vec<Rule>,
}

impl Attributes {
    /// Adds the `.gitattributes` of directory `dir` (`""` for the root).
    /// Call shallow directories first. Lines that do not parse are ignored,
    /// as git ignores them.
    pub fn add(&mut self, dir: &str, text: &str) {
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with("[attr]") {
                continue;
            }
            let mut words = line.split_whitespace();
            let Some(pattern) = words.next() else {
                continue;
            };
            let mut rule_v = None;
            let mut rule_g = None;
            let mut rule_d = None;
            for w in words {
                let (name, value) = match w.strip_prefix('-') {
                    Some(n) => (n, false),
                    None => match w.split_once('=') {
                        Some((n, v)) => (n, !matches!(v, "false" | "0")),
                        None => (w.strip_prefix('!').unwrap_or(w), !w.starts_with('!')),
                    },
                };
                match name {
                    "linguist-vendored" => rule_v = Some(value),
                    "linguist-generated" => rule_g = Some(value),
                    // `-diff` is the mark; `diff` sets it back. `binary` is
                    // the macro `-diff -merge -text`.
                    "diff" => rule_d = Some(!value),
                    "binary" if value => rule_d = Some(true),
                    _ => {}
                }
            }
            if rule_v.is_none() && rule_g.is_none() && rule_d.is_none() {
                continue;
            }
            let Some(matcher) = compile(dir, pattern) else {
                continue;
            };
            self.rules.push(Rule {
                matcher,
                vendored: rule_v,
                generated: rule_g,
                no_diff: rule_d,
            });
        }
    }

    /// The marks of the file at `path`.
    pub fn marks(&self, path: &str) -> Marks {
        let mut m = Marks::default();
        for r in &self.rules {
            if r.matcher.is_match(path) {
                if let Some(v) = r.vendored {
                    m.vendored = v;
                }
                if let Some(v) = r.generated {
                    m.generated = v;
                }
                if let Some(v) = r.no_diff {
                    m.no_diff = v;
                }
            }
        }
        m
    }
}

fn compile(dir: &str, pattern: &str) -> Option<GlobMatcher> {
    let prefix = if dir.is_empty() {
        String::new()
    } else {
        format!("{dir}/")
    };
    let p = pattern.strip_prefix('/');
    let anchored = p.is_some() || pattern.trim_end_matches('/').contains('/');
    let p = p.unwrap_or(pattern);
    // `dir/` in gitattributes matches nothing (attributes apply to files);
    // `dir/**` is the way to mark a directory.
    if p.ends_with('/') {
        return None;
    }
    let full = if anchored {
        format!("{prefix}{p}")
    } else {
        format!("{prefix}**/{p}")
    };
    GlobBuilder::new(&full)
        .literal_separator(true)
        .build()
        .ok()
        .map(|g| g.compile_matcher())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_and_unsetting() {
        let mut a = Attributes::default();
        a.add(
            "",
            "# comment\nthird_party/** linguist-vendored\nthird_party/keep/** -linguist-vendored\n*.pb.py linguist-generated=true\n*.dat binary\n/gen.py linguist-generated\n",
        );
        a.add("sub", "*.py -diff\n");
        assert!(a.marks("third_party/x/y.py").vendored);
        assert!(!a.marks("third_party/keep/y.py").vendored);
        assert!(a.marks("a/b/msg.pb.py").generated);
        assert!(a.marks("d/x.dat").no_diff);
        assert!(a.marks("gen.py").generated);
        assert!(!a.marks("a/gen.py").generated);
        assert!(a.marks("sub/deep/z.py").no_diff);
        assert_eq!(a.marks("src/main.py"), Marks::default());
    }
}
