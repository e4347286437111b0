//! Two texts side by side, their differences highlighted, with the `similar`
//! crate's diffs: Patience line diff (it aligns code on its unique lines,
//! like `git diff --patience`), then a word-level refinement inside changed
//! lines (`similar`'s inline changes). Long runs of identical lines are
//! folded to a few lines of context.
//!
//! [`shared_words`] does the opposite for decontamination: it highlights
//! what a benchmark item and a file span have in common (the equal parts of
//! a word diff).
//!
//! No deadline is set: the sampled texts are cut to a few KB, and without a
//! deadline the same texts always give the same page.

use super::html::Html;
use similar::{Algorithm, ChangeTag, DiffTag, TextDiff};

/// Identical lines shown around a change; longer identical runs are folded.
const CONTEXT: usize = 3;

/// One side of a row: line number and (emphasised?, text) parts.
type Side = Option<(usize, Vec<(bool, String)>)>;

/// What the diff found, for the page's summary line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiffCounts {
    pub equal: usize,
    pub removed: usize,
    pub added: usize,
}

fn cell(out: &mut Html, side: &Side, class: &str) {
    match side {
        None => {
            out.raw("<td class=\"ln\"></td><td class=\"code empty\"></td>");
        }
        Some((n, parts)) => {
            out.raw(&format!(
                "<td class=\"ln\">{n}</td><td class=\"code {class}\">"
            ));
            for (em, s) in parts {
                let s = s.strip_suffix('\n').unwrap_or(s);
                let s = s.strip_suffix('\r').unwrap_or(s);
                if *em {
                    out.raw("<span class=\"em\">").text(s).raw("</span>");
                } else {
                    out.text(s);
                }
            }
            out.raw("</td>");
        }
    }
}

fn row(out: &mut Html, class: &str, left: &Side, right: &Side) {
    out.raw(&format!("<tr class=\"{class}\">"));
    let (lc, rc) = match class {
        "eq" => ("", ""),
        _ => ("del", "ins"),
    };
    cell(out, left, lc);
    cell(out, right, rc);
    out.raw("</tr>");
}

/// A table with `old` on the left and `new` on the right.
pub fn side_by_side(old: &str, new: &str, old_title: &str, new_title: &str) -> (Html, DiffCounts) {
    let diff = TextDiff::configure()
        .algorithm(Algorithm::Patience)
        .diff_lines(old, new);
    let mut counts = DiffCounts::default();
    let mut out = Html::new();
    out.raw("<table class=\"diff\"><colgroup><col class=\"ln\"><col><col class=\"ln\"><col></colgroup><thead><tr><th colspan=\"2\">")
        .text(old_title)
        .raw("</th><th colspan=\"2\">")
        .text(new_title)
        .raw("</th></tr></thead><tbody>");
    let ops = diff.ops();
    for (i, op) in ops.iter().enumerate() {
        let (tag, old_range, new_range) = op.as_tag_tuple();
        if tag == DiffTag::Equal {
            let n = old_range.len();
            counts.equal += n;
            let first = i == 0;
            let last = i + 1 == ops.len();
            // Lines kept: CONTEXT after the previous change and before the
            // next one (all of a short run).
            let head = if first { 0 } else { CONTEXT.min(n) };
            let tail = if last { 0 } else { CONTEXT.min(n - head) };
            let show = |k: usize| k < head || k >= n - tail;
            let mut folded = false;
            for k in 0..n {
                if show(k) || n <= head + tail + 1 {
                    let (o, nw) = (old_range.start + k, new_range.start + k);
                    let text = diff.old_slice(o).unwrap_or_default().to_string();
                    row(
                        &mut out,
                        "eq",
                        &Some((o + 1, vec![(false, text.clone())])),
                        &Some((nw + 1, vec![(false, text)])),
                    );
                } else if !folded {
                    folded = true;
                    let hidden = n - head - tail;
                    out.raw(&format!(
                        "<tr class=\"fold\"><td colspan=\"4\">{hidden} identical line{}</td></tr>",
                        if hidden == 1 { "" } else { "s" }
                    ));
                }
            }
            continue;
        }
        let mut left: Vec<(usize, Vec<(bool, String)>)> = Vec::new();
        let mut right: Vec<(usize, Vec<(bool, String)>)> = Vec::new();
        for change in diff.iter_inline_changes_deadline(op, None) {
            let parts: Vec<(bool, String)> = change
                .iter_strings_lossy()
                .map(|(em, s)| (em, s.into_owned()))
                .collect();
            match change.tag() {
                ChangeTag::Delete => {
                    left.push((change.old_index().unwrap_or(0) + 1, parts));
                }
                ChangeTag::Insert => {
                    right.push((change.new_index().unwrap_or(0) + 1, parts));
                }
                ChangeTag::Equal => {}
            }
        }
        counts.removed += left.len();
        counts.added += right.len();
        let n = left.len().max(right.len());
        let mut l = left.into_iter();
        let mut r = right.into_iter();
        for _ in 0..n {
            row(&mut out, "chg", &l.next(), &r.next());
        }
    }
    out.raw("</tbody></table>");
    (out, counts)
}

/// `a` and `b` as two `<pre>` bodies with the words they share (the equal
/// parts of a word diff) marked. `b_first_line` numbers `b`'s lines, and
/// lines `b_hit` (inclusive) get the class `hit`.
pub fn shared_words(a: &str, b: &str, b_first_line: u64, b_hit: (u64, u64)) -> (Html, Html, usize) {
    let diff = TextDiff::configure()
        .algorithm(Algorithm::Myers)
        .diff_words(a, b);
    let mut left: Vec<(bool, String)> = Vec::new();
    let mut right: Vec<(bool, String)> = Vec::new();
    let mut shared = 0usize;
    for c in diff.iter_all_changes() {
        let s = c.value().to_string();
        match c.tag() {
            ChangeTag::Equal => {
                if !s.trim().is_empty() {
                    shared += 1;
                }
                left.push((true, s.clone()));
                right.push((true, s));
            }
            ChangeTag::Delete => left.push((false, s)),
            ChangeTag::Insert => right.push((false, s)),
        }
    }
    (
        render_pre(&left, None, (0, 0)),
        render_pre(&right, Some(b_first_line), b_hit),
        shared,
    )
}

/// A `<pre>` of parts, marked parts in `<mark>`; with line numbers from
/// `first_line` when given.
fn render_pre(parts: &[(bool, String)], first_line: Option<u64>, hit: (u64, u64)) -> Html {
    let mut out = Html::new();
    out.raw("<pre class=\"code\">");
    let mut line = first_line.unwrap_or(1);
    let open_line = |out: &mut Html, line: u64| {
        if first_line.is_some() {
            let cls = if line >= hit.0 && line <= hit.1 {
                "line hit"
            } else {
                "line"
            };
            out.raw(&format!(
                "<span class=\"{cls}\"><span class=\"ln\">{line}</span>"
            ));
        }
    };
    open_line(&mut out, line);
    for (marked, s) in parts {
        let mut pieces = s.split('\n').peekable();
        while let Some(p) = pieces.next() {
            if !p.is_empty() {
                if *marked && !p.trim().is_empty() {
                    out.raw("<mark>").text(p).raw("</mark>");
                } else {
                    out.text(p);
                }
            }
            if pieces.peek().is_some() {
                // Numbered lines are blocks, which break the line already.
                if first_line.is_some() {
                    out.raw("</span>");
                } else {
                    out.raw("\n");
                }
                line += 1;
                open_line(&mut out, line);
            }
        }
    }
    if first_line.is_some() {
        out.raw("</span>");
    }
    out.raw("</pre>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_lines_are_paired_and_changed_words_emphasised() {
        let old = "a = 1\nb = 2\nc = 3\n";
        let new = "a = 1\nb = 20\nc = 3\nd = <4>\n";
        let (html, counts) = side_by_side(old, new, "kept", "removed");
        let h = html.into_string();
        assert_eq!(
            counts,
            DiffCounts {
                equal: 2,
                removed: 1,
                added: 2
            }
        );
        assert!(h.contains("<span class=\"em\">20</span>"), "{h}");
        assert!(h.contains("d = &lt;4&gt;"), "{h}");
        assert_eq!(h.matches("<tr class=\"chg\">").count(), 2);
    }

    #[test]
    fn long_identical_runs_fold() {
        let body: String = (0..40).map(|i| format!("line {i}\n")).collect();
        let old = format!("start\n{body}end\n");
        let new = format!("START\n{body}end\n");
        let (html, counts) = side_by_side(&old, &new, "a", "b");
        let h = html.into_string();
        assert_eq!(counts.equal, 41);
        assert!(h.contains("identical lines"), "{h}");
        assert!(
            h.matches("<tr class=\"eq\">").count() <= 2 * CONTEXT + 1,
            "{h}"
        );
    }

    #[test]
    fn shared_words_are_marked_on_both_sides() {
        let (a, b, shared) = shared_words(
            "return sorted(set(l))",
            "x = 1\nreturn sorted(set(l))\ny",
            10,
            (11, 11),
        );
        let (a, b) = (a.into_string(), b.into_string());
        assert!(shared >= 2);
        assert!(a.contains("<mark>"), "{a}");
        assert!(
            b.contains("<span class=\"line hit\"><span class=\"ln\">11</span>"),
            "{b}"
        );
        assert!(
            b.contains("<span class=\"line\"><span class=\"ln\">10</span>x"),
            "{b}"
        );
    }
}
