//! The run's identity, so the page says exactly what it describes: command
//! line, tool version, date, inputs (with resolved commits where the stats
//! have them), output, filter settings.

use super::{kv_table, Section};
use crate::report::fmt;
use crate::report::html::Html;
use crate::report::view::{arr_at, scalar_text, str_at, u64_at, Run};
use serde_json::Value;

/// Input names shown (the stats list at most a thousand).
const INPUTS_SHOWN: usize = 1000;
const FAILED_SHOWN: usize = 100;

/// `argv` as one shell line: arguments with special characters in single
/// quotes.
pub fn shell_line(argv: &[Value]) -> String {
    argv.iter()
        .map(|a| {
            let s = scalar_text(a);
            let plain = !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c));
            if plain {
                s
            } else {
                format!("'{}'", s.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Commits the stats record for their inputs, wherever a source put them:
/// objects with a `commit` (or `resolved_commit`) next to a name.
fn commits(v: &Value, path: &str, out: &mut Vec<(String, String)>) {
    if out.len() >= 200 {
        return;
    }
    match v {
        Value::Object(m) => {
            let commit = ["resolved_commit", "commit", "revision_commit"]
                .iter()
                .find_map(|k| m.get(*k).and_then(Value::as_str));
            if let Some(c) = commit {
                let name = ["repo", "repository", "dataset", "name", "url", "source"]
                    .iter()
                    .find_map(|k| m.get(*k).and_then(Value::as_str))
                    .unwrap_or(path);
                let name = match m.get("revision").and_then(Value::as_str) {
                    Some(r) => format!("{name} @ {r}"),
                    None => name.to_string(),
                };
                out.push((name, c.to_string()));
                return;
            }
            for (k, x) in m {
                commits(x, &format!("{path}.{k}"), out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                commits(x, &format!("{path}.{i}"), out);
            }
        }
        _ => {}
    }
}

pub fn render(run: &Run<'_>) -> Option<Section> {
    let raw = run.raw;
    let mut out = Html::new();
    let mut rows: Vec<(&str, String)> = Vec::new();
    let argv = arr_at(raw, "argv");
    rows.push((
        "command line",
        if argv.is_empty() {
            format!(
                "not recorded (the {} command wrote this stats file)",
                run.command
            )
        } else {
            shell_line(argv)
        },
    ));
    rows.push(("command", run.command.clone()));
    rows.push((
        "tool",
        str_at(raw, "tool").unwrap_or("not recorded").to_string(),
    ));
    rows.push((
        "started",
        str_at(raw, "started_at")
            .unwrap_or("not recorded")
            .to_string(),
    ));
    if let Some(l) = str_at(raw, "language") {
        rows.push(("language", l.to_string()));
    }
    let sources = arr_at(raw, "sources");
    if !sources.is_empty() {
        rows.push((
            "sources",
            sources
                .iter()
                .map(scalar_text)
                .collect::<Vec<_>>()
                .join(", "),
        ));
    }
    if let Some(i) = str_at(raw, "input") {
        rows.push(("input", i.to_string()));
    }
    if let Some(n) = u64_at(raw, "inputs") {
        rows.push((
            "input shards",
            format!(
                "{} ({} finished, {} failed)",
                fmt::count(n),
                fmt::count(u64_at(raw, "finished_inputs").unwrap_or(0)),
                fmt::count(arr_at(raw, "failed_inputs").len() as u64)
            ),
        ));
    }
    match raw.get("output") {
        Some(Value::String(o)) => rows.push(("output", o.clone())),
        Some(o @ Value::Object(_)) => rows.push((
            "output",
            format!(
                "{}: {} files, {}",
                str_at(o, "path").unwrap_or("(dry run, nothing written)"),
                fmt::count(u64_at(o, "files").unwrap_or(0)),
                fmt::bytes(u64_at(o, "bytes").unwrap_or(0))
            ),
        )),
        _ => {}
    }
    if raw.get("dry_run").and_then(Value::as_bool) == Some(true) {
        rows.push(("dry run", "yes: nothing was written".to_string()));
    }
    if let Some(s) = &run.stats_name {
        rows.push(("stats file", s.clone()));
    }
    kv_table(&mut out, &rows);

    let mut found = Vec::new();
    for key in [
        "inputs_resolved",
        "sources_resolved",
        "transfers",
        "repos",
        "hub",
    ] {
        if let Some(v) = raw.get(key) {
            commits(v, key, &mut found);
        }
    }
    if !found.is_empty() {
        out.raw("<h3>Resolved commits</h3><table class=\"commits\"><thead><tr><th>input</th><th>commit</th></tr></thead><tbody>");
        for (name, c) in &found {
            out.raw("<tr>")
                .elem("td", "", name)
                .elem("td", "", c)
                .raw("</tr>");
        }
        out.raw("</tbody></table>");
    }

    let names = arr_at(raw, "input_names");
    if !names.is_empty() {
        let total = u64_at(raw, "finished_inputs").unwrap_or(names.len() as u64);
        out.raw("<details><summary>")
            .text(&format!(
                "Inputs ({} listed of {})",
                fmt::count(names.len().min(INPUTS_SHOWN) as u64),
                fmt::count(total.max(names.len() as u64))
            ))
            .raw("</summary><pre>");
        for n in names.iter().take(INPUTS_SHOWN) {
            out.text(&scalar_text(n)).raw("\n");
        }
        out.raw("</pre></details>");
    }
    let failed = arr_at(raw, "failed_inputs");
    if !failed.is_empty() {
        out.raw("<h3>Inputs that could not be read</h3><table><thead><tr><th>input</th><th>error</th></tr></thead><tbody>");
        for f in failed.iter().take(FAILED_SHOWN) {
            out.raw("<tr>")
                .elem("td", "", str_at(f, "input").unwrap_or(""))
                .elem("td", "", str_at(f, "error").unwrap_or(""))
                .raw("</tr>");
        }
        out.raw("</tbody></table>");
    }
    if let Some(Value::Object(f)) = raw.get("filters") {
        let rows: Vec<(&str, String)> = f
            .iter()
            .map(|(k, v)| {
                let text = match v {
                    Value::Array(a) => a.iter().map(scalar_text).collect::<Vec<_>>().join(", "),
                    other => scalar_text(other),
                };
                (k.as_str(), text)
            })
            .collect();
        out.raw("<details><summary>Filter settings</summary>");
        kv_table(&mut out, &rows);
        out.raw("</details>");
    }
    Some(Section {
        id: "identity",
        title: "Run identity",
        body: out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn command_lines_quote_what_needs_quoting() {
        let argv = json!([
            "tritter-gpu",
            "curate",
            "--source",
            "my dir",
            "it's",
            "--min-stars",
            "100"
        ]);
        assert_eq!(
            shell_line(argv.as_array().unwrap()),
            "tritter-gpu curate --source 'my dir' 'it'\\''s' --min-stars 100"
        );
    }

    #[test]
    fn commits_are_found_next_to_their_names() {
        // As `curate` records pinned Hub revisions (`transfers.hub_datasets`).
        let v = json!({"hub_shards": {"dataset": "bigcode/x", "resolved_commit": "abc123"},
                       "hub_datasets": [{"repo": "o/r", "revision": "main", "commit": "def456", "shards": 3}]});
        let mut out = Vec::new();
        commits(&v, "transfers", &mut out);
        assert_eq!(
            out,
            // Keys in the stats' (sorted) order.
            vec![
                ("o/r @ main".to_string(), "def456".to_string()),
                ("bigcode/x".to_string(), "abc123".to_string())
            ]
        );
    }
}
