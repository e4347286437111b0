//! The languages `--language` accepts, checked before a run starts so that a
//! typo (`--language pyhton`) or a language no dataset has is refused up
//! front instead of filtering every record out after hours of reading.
//!
//! The names are GitHub Linguist's (`lib/linguist/languages.yml`), which The
//! Stack v1/v2 and Stack-Edu use for their `language` column, lowercased:
//! the programming languages and the markup, data and prose languages those
//! datasets hold. Aliases of [`super::language`] (`py`, `cpp`, ...) are
//! accepted through their canonical names.

use super::language::canonical_language;

/// Canonical (lowercase) Linguist names, sorted.
pub const KNOWN: &[&str] = &[
    "abap",
    "actionscript",
    "ada",
    "agda",
    "antlr",
    "apex",
    "apl",
    "applescript",
    "arduino",
    "asciidoc",
    "asm",
    "assembly",
    "astro",
    "autohotkey",
    "awk",
    "batchfile",
    "bicep",
    "bluespec",
    "c",
    "c#",
    "c++",
    "cairo",
    "clojure",
    "cmake",
    "cobol",
    "coffeescript",
    "common lisp",
    "coq",
    "crystal",
    "css",
    "csv",
    "cuda",
    "cython",
    "d",
    "dart",
    "dockerfile",
    "elixir",
    "elm",
    "emacs lisp",
    "erlang",
    "f#",
    "fish",
    "fortran",
    "gdscript",
    "glsl",
    "go",
    "graphql",
    "groovy",
    "haskell",
    "hcl",
    "hlsl",
    "html",
    "idris",
    "ini",
    "java",
    "javascript",
    "json",
    "julia",
    "jupyter notebook",
    "kotlin",
    "latex",
    "lean",
    "less",
    "lua",
    "makefile",
    "markdown",
    "mathematica",
    "matlab",
    "meson",
    "mojo",
    "move",
    "nim",
    "nix",
    "objective-c",
    "objective-c++",
    "ocaml",
    "odin",
    "pascal",
    "perl",
    "php",
    "powershell",
    "prolog",
    "protocol buffer",
    "pug",
    "puppet",
    "purescript",
    "python",
    "q#",
    "r",
    "racket",
    "raku",
    "reason",
    "restructuredtext",
    "rmarkdown",
    "ruby",
    "rust",
    "sas",
    "sass",
    "scala",
    "scheme",
    "scss",
    "shell",
    "smalltalk",
    "solidity",
    "sparql",
    "sql",
    "stan",
    "starlark",
    "svelte",
    "swift",
    "systemverilog",
    "tcl",
    "terraform",
    "tex",
    "text",
    "thrift",
    "toml",
    "tsx",
    "typescript",
    "v",
    "vala",
    "vba",
    "verilog",
    "vhdl",
    "vim script",
    "visual basic .net",
    "vue",
    "webassembly",
    "xml",
    "yaml",
    "zig",
];

/// Whether `name` (any spelling or alias) is a known language.
pub fn is_known(name: &str) -> bool {
    KNOWN
        .binary_search(&canonical_language(name).as_str())
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_lowercase_and_aliases_accepted() {
        assert!(
            KNOWN.windows(2).all(|w| w[0] < w[1]),
            "KNOWN must stay sorted"
        );
        assert!(KNOWN.iter().all(|l| *l == l.to_lowercase()));
        for l in [
            "Python",
            "py",
            "C++",
            "cpp",
            "Rust",
            "JavaScript",
            "Jupyter Notebook",
        ] {
            assert!(is_known(l), "{l}");
        }
        assert!(!is_known("klingon"));
        assert!(!is_known("pyhton"));
    }
}
