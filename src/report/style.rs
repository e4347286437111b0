//! The page's stylesheet, inlined in `<style>` (the page fetches nothing).
//! System fonts only; colours chosen to read in print and in a CI artifact
//! viewer; charts scale to the page width.

pub const CSS: &str = r#"
:root { --fg: #1d2430; --muted: #5b6575; --line: #d8dde5; --bg: #ffffff; --panel: #f5f7fa;
  --kept: #2f6fb0; --dropped: #e0a030; --bad: #c0392b; --good: #2e8b57; --band: #cfe3d4; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
  color: var(--fg); background: var(--bg); }
header { padding: 20px 32px 12px; border-bottom: 1px solid var(--line); background: var(--panel); }
header h1 { margin: 0 0 4px; font-size: 22px; }
header .sub { color: var(--muted); }
nav { margin-top: 10px; }
nav a { margin-right: 14px; color: var(--kept); text-decoration: none; }
main { padding: 8px 32px 40px; max-width: 1280px; }
section { margin-top: 28px; }
h2 { font-size: 18px; border-bottom: 2px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
p.note, .muted { color: var(--muted); }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 14px 0 4px; }
.card { background: var(--bg); border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; min-width: 150px; }
.card .k { color: var(--muted); font-size: 12px; }
.card .v { font-size: 18px; font-weight: 600; }
.badge { display: inline-block; border-radius: 10px; padding: 0 8px; font-size: 12px; font-weight: 600; }
.badge.outside, .badge.bad { background: #fbe3e0; color: var(--bad); }
.badge.within, .badge.good { background: #dff1e6; color: var(--good); }
.badge.notrun { background: #eceff3; color: var(--muted); }
table { border-collapse: collapse; margin: 6px 0 10px; }
th, td { border-bottom: 1px solid var(--line); padding: 3px 10px 3px 6px; text-align: left; vertical-align: top; }
th { background: var(--panel); font-weight: 600; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.reason td:first-child { padding-left: 26px; color: var(--muted); }
tr.stage td { font-weight: 600; }
tr.outside td { background: #fdf1ef; }
tr.total td { font-weight: 700; border-top: 2px solid var(--fg); }
table.kv th { width: 220px; }
code, pre, .code { font: 12.5px/1.4 ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; }
pre { background: var(--panel); border: 1px solid var(--line); padding: 8px; overflow-x: auto; margin: 4px 0; white-space: pre-wrap; word-break: break-word; }
pre.code mark { background: #ffe39a; }
pre.code .line { display: block; min-height: 1.4em; }
pre.code .line.hit { background: #fff4d0; }
pre.code .ln { color: #9aa3b1; user-select: none; display: inline-block; min-width: 3.2em; text-align: right; padding-right: 8px; }
table.diff td.ln { color: #9aa3b1; user-select: none; text-align: right; padding-right: 6px; font: 12px ui-monospace, "DejaVu Sans Mono", monospace; }
svg.chart { display: block; width: 100%; max-width: 980px; height: auto; margin: 8px 0 14px; }
svg.chart text { font-size: 12px; fill: var(--fg); }
svg.chart text.tick, svg.chart text.value { fill: var(--muted); font-size: 11px; }
svg.chart text.axis-label { fill: var(--muted); }
svg.chart .grid { stroke: #eceff3; stroke-width: 1; }
svg.chart .axis { stroke: #8a94a3; stroke-width: 1; }
svg.chart rect.kept, svg.chart rect.bar, svg.chart rect.wall { fill: var(--kept); }
svg.chart rect.dropped { fill: var(--dropped); }
svg.chart rect.cpu { fill: #7aa7d6; }
svg.chart rect.exact { fill: #8e44ad; }
svg.chart rect.ngram { fill: #d35400; }
svg.chart rect.band { fill: var(--band); }
svg.chart circle.dot.within { fill: var(--good); }
svg.chart circle.dot.outside { fill: var(--bad); }
svg.chart g.row.outside text.label { fill: var(--bad); font-weight: 600; }
svg.chart path.curve { fill: none; stroke: var(--kept); stroke-width: 2.5; }
svg.chart g.marker line { stroke: var(--bad); stroke-width: 1.5; stroke-dasharray: 5 4; }
svg.chart g.marker.edge line { stroke: var(--muted); }
svg.chart text.marker-label { fill: var(--bad); font-size: 12px; }
table.diff { width: 100%; table-layout: fixed; }
table.diff td.code { white-space: pre-wrap; word-break: break-word; }
table.diff col.ln { width: 3.5em; }
table.diff td.del { background: #fdecea; }
table.diff td.ins { background: #e8f6ec; }
table.diff td.empty { background: #f4f4f4; }
table.diff .em { background: #f7b7ae; border-radius: 2px; }
table.diff td.ins .em { background: #9fdcb0; }
table.diff tr.fold td { color: var(--muted); text-align: center; background: var(--panel); font-style: italic; }
.pair { display: grid; grid-template-columns: 1fr 1fr; gap: 12px; }
.pair > div { min-width: 0; }
details { margin: 6px 0; }
details > summary { cursor: pointer; font-weight: 600; }
.evidence { overflow-wrap: anywhere; }
.sample { border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; margin: 10px 0; }
footer { padding: 16px 32px; color: var(--muted); border-top: 1px solid var(--line); }
@media print { nav { display: none; } .sample { break-inside: avoid; } }
"#;
