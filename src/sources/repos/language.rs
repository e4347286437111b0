//! A file's language from its name and first line, following GitHub linguist
//! (`lib/linguist/languages.yml`: `extensions`, `filenames`, `interpreters`)
//! for the languages of the catalog.
//!
//! Linguist decides in this order: a known file name, then the extension,
//! then the interpreter of a `#!` line (for files without a known
//! extension). Its extra heuristics (disambiguating `.h` between C, C++ and
//! Objective-C by content) are not reproduced: `.h` is C, as linguist
//! answers when no heuristic fires. Names are the linguist names; the
//! pipeline's language filter compares them case-insensitively with the
//! run's `--language` through its alias table.

/// `(language, extensions, file names, interpreters)`.
type Row = (
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
    &'static [&'static str],
);

/// One row per language.
const TABLE: &[Row] = &[
    (
        "Python",
        &[
            "py", "cgi", "fcgi", "gyp", "gypi", "lmi", "py3", "pyde", "pyi", "pyp", "pyt", "pyw",
            "rpy", "spec", "tac", "wsgi", "xpy",
        ],
        &[".gclient", "DEPS", "SConscript", "SConstruct", "wscript"],
        &["python", "python2", "python3", "py", "pypy", "pypy3", "uv"],
    ),
    ("Rust", &["rs", "rs.in"], &[], &["rust-script"]),
    ("C", &["c", "cats", "h", "idc"], &[], &["tcc"]),
    (
        "C++",
        &[
            "cpp", "c++", "cc", "cp", "cppm", "cxx", "h++", "hh", "hpp", "hxx", "inl", "ipp",
            "ixx", "tcc", "tpp", "txx",
        ],
        &[],
        &[],
    ),
    ("Go", &["go"], &[], &[]),
    ("Java", &["java", "jav", "jsh"], &[], &[]),
    (
        "JavaScript",
        &["js", "cjs", "mjs", "jsx", "jsm", "es", "es6"],
        &["Jakefile"],
        &["node", "nodejs", "deno", "bun"],
    ),
    (
        "TypeScript",
        &["ts", "cts", "mts"],
        &[],
        &["ts-node", "tsx"],
    ),
    (
        "Shell",
        &["sh", "bash", "bats", "command", "ksh", "zsh"],
        &[".bashrc", ".bash_profile", ".profile", ".zshrc", "PKGBUILD"],
        &["sh", "bash", "zsh", "ksh", "ash", "dash"],
    ),
    (
        "Ruby",
        &["rb", "gemspec", "rake", "ru"],
        &["Rakefile", "Gemfile"],
        &["ruby", "jruby"],
    ),
    ("C#", &["cs", "csx"], &[], &[]),
    (
        "PHP",
        &["php", "phtml", "php3", "php4", "php5"],
        &[],
        &["php"],
    ),
    ("Kotlin", &["kt", "kts", "ktm"], &[], &[]),
    ("Scala", &["scala", "sc", "sbt"], &[], &["scala"]),
    ("Swift", &["swift"], &[], &[]),
    ("Lua", &["lua", "rockspec"], &[], &["lua", "luajit"]),
    ("Markdown", &["md", "markdown", "mdown", "mkd"], &[], &[]),
    (
        "TOML",
        &["toml"],
        &["Cargo.lock", "poetry.lock", "uv.lock", "Pipfile"],
        &[],
    ),
    ("YAML", &["yml", "yaml"], &[], &[]),
    ("JSON", &["json"], &[], &[]),
];

/// The linguist name of `path`'s language, from its name and, when that
/// does not decide, the `#!` line of `head` (the first bytes of the file).
pub fn detect(path: &str, head: &[u8]) -> Option<&'static str> {
    let name = path.rsplit('/').next().unwrap_or(path);
    if let Some(row) = TABLE.iter().find(|r| r.2.contains(&name)) {
        return Some(row.0);
    }
    // Longest extension first: `x.rs.in` is Rust before it is `.in`.
    let lower = name.to_ascii_lowercase();
    let mut best: Option<(&'static str, usize)> = None;
    for (lang, exts, _, _) in TABLE {
        for ext in *exts {
            let dotted_len = ext.len() + 1;
            if lower.len() > dotted_len
                && lower.ends_with(ext)
                && lower.as_bytes()[lower.len() - dotted_len] == b'.'
                && best.is_none_or(|(_, l)| dotted_len > l)
            {
                best = Some((lang, dotted_len));
            }
        }
    }
    if let Some((lang, _)) = best {
        return Some(lang);
    }
    let interpreter = shebang_interpreter(head)?;
    TABLE
        .iter()
        .find(|r| r.3.contains(&interpreter.as_str()))
        .map(|r| r.0)
}

/// The interpreter of a `#!` line: `#!/usr/bin/env -S python3 -u` and
/// `#!/usr/bin/python3.11` both give `python3` (linguist strips the version
/// suffix after a dot).
fn shebang_interpreter(head: &[u8]) -> Option<String> {
    let rest = head.strip_prefix(b"#!")?;
    let line = rest.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut words = line.split_whitespace();
    let mut prog = words.next()?.rsplit('/').next()?.to_string();
    if prog == "env" {
        prog = words
            .find(|w| !w.starts_with('-') && !w.contains('='))?
            .to_string();
    }
    let prog = match prog.split_once('.') {
        Some((base, _)) => base.to_string(),
        None => prog,
    };
    Some(prog)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_extensions_and_shebangs() {
        assert_eq!(detect("src/lib.rs", b""), Some("Rust"));
        assert_eq!(detect("a/b/mod.PY", b""), Some("Python"));
        assert_eq!(detect("SConstruct", b""), Some("Python"));
        assert_eq!(detect("build.rs.in", b""), Some("Rust"));
        assert_eq!(
            detect("bin/tool", b"#!/usr/bin/env python3\nprint(1)\n"),
            Some("Python")
        );
        assert_eq!(
            detect("bin/tool", b"#!/usr/bin/python3.11 -u\n"),
            Some("Python")
        );
        assert_eq!(
            detect("bin/run", b"#!/usr/bin/env -S bash -e\n"),
            Some("Shell")
        );
        assert_eq!(detect("README", b"hello"), None);
        assert_eq!(detect(".py", b""), None);
    }
}
