//! Where the time went: per step wall and CPU time (CPU/wall is how many
//! cores the step kept busy), throughput, backend, peak memory, transfers.

use super::{kv_table, Section};
use crate::report::fmt;
use crate::report::html::{attr, Html};
use crate::report::svg::{self, BarRow, Segment};
use crate::report::view::{arr_at, at, f64_at, str_at, u64_at, Run};
use serde_json::Value;

/// The stage whose input a step processes, for its throughput.
fn stage_of_step(step: &str) -> Option<&'static str> {
    Some(match step {
        "per_shard" | "shards" => "read",
        "exact_dedup" | "exact" | "output" => "exact_dedup",
        "near_dedup" | "lsh" | "verify" | "components" | "clusters" => "near_dedup",
        "decontam" | "check" | "output/decontam_check" => "decontam",
        _ => return None,
    })
}

/// The order of the partitioned steps of `curate` and `merge`.
const PLAN_ORDER: &[&str] = &[
    "shards",
    "exact",
    "lsh",
    "verify",
    "components",
    "clusters",
    "output",
    "report",
];

/// `step_seconds` (`{step: {tasks, wall_seconds, cpu_seconds}}`, written by
/// the partitioned steps) as a `steps` list in plan order.
fn steps_of_step_seconds(v: &Value) -> Vec<Value> {
    let Some(m) = v.as_object() else {
        return Vec::new();
    };
    let mut names: Vec<&String> = m.keys().collect();
    names.sort_by_key(|n| {
        PLAN_ORDER
            .iter()
            .position(|k| k == n)
            .unwrap_or(PLAN_ORDER.len())
    });
    names
        .into_iter()
        .map(|n| {
            let mut s = m[n].clone();
            s["step"] = Value::String(n.clone());
            s
        })
        .collect()
}

/// Scalar leaves of a JSON object as `a.b.c = value` rows (bounded).
fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    if out.len() >= 60 {
        return;
    }
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, x, out);
            }
        }
        Value::Array(a) => out.push((prefix.to_string(), format!("{} entries", a.len()))),
        other => out.push((prefix.to_string(), crate::report::view::scalar_text(other))),
    }
}

pub fn render(run: &Run<'_>) -> Option<Section> {
    let from_map = steps_of_step_seconds(run.raw.get("step_seconds").unwrap_or(&Value::Null));
    let steps: &[Value] = match arr_at(run.raw, "steps") {
        [] => &from_map,
        list => list,
    };
    let resources = run.raw.get("resources").filter(|v| v.is_object());
    let phases = run
        .raw
        .get("phase_seconds")
        .and_then(Value::as_object)
        .filter(|m| !m.is_empty());
    let elapsed = f64_at(run.raw, "elapsed_seconds");
    if steps.is_empty() && resources.is_none() && phases.is_none() && elapsed.is_none() {
        return None;
    }
    let mut out = Html::new();
    let mut facts: Vec<(&str, String)> = Vec::new();
    if let Some(e) = elapsed {
        facts.push(("elapsed (wall)", fmt::seconds(e)));
    }
    if let Some(r) = resources {
        let user = f64_at(r, "user_cpu_seconds").unwrap_or(0.0);
        let sys = f64_at(r, "system_cpu_seconds").unwrap_or(0.0);
        facts.push((
            "CPU time",
            format!(
                "{} ({} user, {} system){}",
                fmt::seconds(user + sys),
                fmt::seconds(user),
                fmt::seconds(sys),
                elapsed
                    .filter(|e| *e > 0.0)
                    .map(|e| format!(", {:.2} cores busy on average", (user + sys) / e))
                    .unwrap_or_default()
            ),
        ));
        if let Some(rss) = u64_at(r, "peak_rss_bytes") {
            facts.push(("peak memory (resident)", fmt::bytes(rss)));
        }
    }
    facts.push((
        "backend",
        str_at(run.raw, "backend")
            .unwrap_or("not recorded (no near dedup or decontamination, or an older stats file)")
            .to_string(),
    ));
    kv_table(&mut out, &facts);

    if !steps.is_empty() {
        let top: Vec<&Value> = steps
            .iter()
            .filter(|s| !str_at(s, "step").unwrap_or("").contains('/'))
            .collect();
        let rows: Vec<BarRow> = top
            .iter()
            .map(|s| {
                let name = str_at(s, "step").unwrap_or("?").to_string();
                let wall = f64_at(s, "wall_seconds").unwrap_or(0.0);
                let cpu = f64_at(s, "cpu_seconds");
                BarRow {
                    label: name.clone(),
                    segments: vec![Segment {
                        value: wall,
                        class: "wall".into(),
                        tip: format!("{name}: {} wall", fmt::seconds(wall)),
                    }],
                    note: match cpu {
                        Some(c) if wall > 0.0 => format!(
                            "{} wall, {} CPU ({:.1}x)",
                            fmt::seconds(wall),
                            fmt::seconds(c),
                            c / wall
                        ),
                        _ => format!("{} wall", fmt::seconds(wall)),
                    },
                    class: String::new(),
                }
            })
            .collect();
        if !rows.is_empty() {
            out.append(svg::hbars("time", "Wall time per step", &rows));
        }
        let total_wall: f64 = top
            .iter()
            .map(|s| f64_at(s, "wall_seconds").unwrap_or(0.0))
            .sum();
        out.raw("<table class=\"steps\"><thead><tr><th>step</th><th class=\"n\">wall</th><th class=\"n\">share</th><th class=\"n\">CPU</th><th class=\"n\">cores busy</th><th class=\"n\">files</th><th class=\"n\">throughput</th></tr></thead><tbody>");
        for s in steps {
            let name = str_at(s, "step").unwrap_or("?");
            let wall = f64_at(s, "wall_seconds").unwrap_or(0.0);
            let cpu = f64_at(s, "cpu_seconds");
            let sub = name.contains('/');
            let counted = u64_at(s, "files").zip(u64_at(s, "bytes")).or_else(|| {
                let st = run.stage(stage_of_step(name)?)?;
                Some((st.files_in, st.bytes_in))
            });
            out.raw(&format!(
                "<tr class=\"{}\" {} data-wall=\"{wall}\">",
                if sub { "reason" } else { "stage" },
                attr("data-step", name)
            ));
            let label = match u64_at(s, "tasks") {
                Some(n) if n > 1 => format!("{name} ({n} tasks)"),
                _ => name.to_string(),
            };
            out.elem("td", "", &label);
            out.elem("td", "class=\"n\"", &fmt::seconds(wall));
            out.elem(
                "td",
                "class=\"n\"",
                &if sub || total_wall <= 0.0 {
                    String::new()
                } else {
                    format!("{:.1}%", wall * 100.0 / total_wall)
                },
            );
            out.elem(
                "td",
                "class=\"n\"",
                &cpu.map(fmt::seconds).unwrap_or_else(|| "-".into()),
            );
            out.elem(
                "td",
                "class=\"n\"",
                &match cpu {
                    Some(c) if wall > 0.0 => format!("{:.2}", c / wall),
                    _ => "-".into(),
                },
            );
            match counted {
                Some((files, bytes)) => {
                    out.elem("td", "class=\"n\"", &fmt::count(files));
                    out.elem(
                        "td",
                        "class=\"n\"",
                        &format!(
                            "{}, {}",
                            fmt::rate(files as f64, "files", wall),
                            fmt::rate(bytes as f64 / 1e6, "MB", wall)
                        ),
                    );
                }
                None => {
                    out.raw("<td class=\"n\">-</td><td class=\"n\">-</td>");
                }
            }
            out.raw("</tr>");
        }
        out.raw("</tbody></table><p class=\"note\">CPU time is the process's (all threads) during the step; sub-steps (name/part) are timed by wall clock only. Throughput is the step's input: files into the stage it runs.</p>");
    } else if let Some(ph) = phases {
        let rows: Vec<(&str, String)> = ph
            .iter()
            .map(|(k, v)| (k.as_str(), fmt::seconds(v.as_f64().unwrap_or(0.0))))
            .collect();
        out.raw("<h3>Phases</h3>");
        kv_table(&mut out, &rows);
    }

    if let Some(t) = at(run.raw, "transfers").filter(|v| v.is_object()) {
        let mut rows = Vec::new();
        flatten("", t, &mut rows);
        if !rows.is_empty() {
            out.raw("<h3>Transfers</h3>");
            let rows: Vec<(&str, String)> =
                rows.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
            kv_table(&mut out, &rows);
        }
    }
    Some(Section {
        id: "time",
        title: "Where time went",
        body: out,
    })
}
