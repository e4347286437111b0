//! The `SPDX-License-Identifier:` header (SPDX specification, annex on
//! short identifiers): a line in a file's first comment block naming its
//! license as an expression, which overrides the repository's license for
//! that file. Only the first 30 lines are searched, as the REUSE tool and
//! the Linux kernel's checker do, so that a string in the code that talks
//! about the tag is not taken for it.

const TAG: &str = "SPDX-License-Identifier:";

/// The expression of the header of `text`, canonical, when there is a valid one.
pub fn spdx_header(text: &str) -> Option<String> {
    for line in text.lines().take(30) {
        let Some(at) = line.find(TAG) else { continue };
        let rest = line[at + TAG.len()..].trim();
        // Comment closers that share the line: `*/`, `-->`, `"""`.
        let rest = rest
            .trim_end_matches("*/")
            .trim_end_matches("-->")
            .trim_end_matches("\"\"\"")
            .trim();
        return super::valid_expression(rest);
    }
    None
}
