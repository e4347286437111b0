//! The page's sections, one file each. A section reads one part of the
//! stats and returns `None` when the stats have nothing for it (a `dedup`
//! run has no decontamination, an old stats file no step timings), so the
//! page holds exactly the sections its run has.

pub mod decontam;
pub mod funnel;
pub mod identity;
pub mod near_dedup;
pub mod plan_check;
pub mod summary;
pub mod timing;

use super::html::Html;
use super::view::Run;

/// A rendered section.
pub struct Section {
    /// Fragment id (`#funnel`).
    pub id: &'static str,
    pub title: &'static str,
    pub body: Html,
}

/// Every section, in page order.
pub const SECTIONS: &[fn(&Run<'_>) -> Option<Section>] = &[
    funnel::render,
    plan_check::render,
    near_dedup::render,
    decontam::render,
    timing::render,
    identity::render,
];

/// A table cell with a right-aligned number and its exact value as data.
pub fn num_cell(out: &mut Html, value: u64, text: &str) {
    out.raw(&format!("<td class=\"n\" data-value=\"{value}\">"))
        .text(text)
        .raw("</td>");
}

/// A two-column table of key and value rows; values are escaped text.
pub fn kv_table(out: &mut Html, rows: &[(&str, String)]) {
    out.raw("<table class=\"kv\"><tbody>");
    for (k, v) in rows {
        out.raw("<tr><th>")
            .text(k)
            .raw("</th><td>")
            .text(v)
            .raw("</td></tr>");
    }
    out.raw("</tbody></table>");
}
