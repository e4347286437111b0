#!/usr/bin/env bash
# A PNG of the run report page of the bundled sample run, for a person to
# look at: runs the README's curate command on data/sample (into a temporary
# output directory unless OUT is set), then has headless Chromium render the
# page at full length.
#
#   scripts/report_screenshot.sh [PNG]     (default: target/report-sample.png)
#
# Needs Debian's chromium (apt-get install chromium) or CHROMIUM=/path.
# Environment: OUT (output directory of the run), WIDTH (default 1280),
# TRITTER (a built tritter-gpu; default: cargo run --release).
set -euo pipefail
cd "$(dirname "$0")/.."

png="${1:-target/report-sample.png}"
width="${WIDTH:-1280}"
chromium="${CHROMIUM:-$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)}"
if [ -z "$chromium" ]; then
  echo "report_screenshot.sh: no chromium found; apt-get install chromium, or set CHROMIUM=/path/to/chrome" >&2
  exit 2
fi

out="${OUT:-}"
if [ -z "$out" ]; then
  out="$(mktemp -d "${TMPDIR:-/tmp}/tritter-report.XXXXXX")"
  trap 'rm -rf "$out"' EXIT
fi
if [ -n "${TRITTER:-}" ]; then
  run=("$TRITTER")
else
  run=(cargo run --release --quiet --)
fi
"${run[@]}" curate --source data/sample --content-store data/sample/content \
  --language python --min-stars 100 --output "$out" --quiet
page="$out/python_curated.report.html"
[ -f "$page" ] || { echo "report_screenshot.sh: the run wrote no page at $page" >&2; exit 1; }

# Headless Chromium over the DevTools pipe (fd 3 in, fd 4 out, NUL-ended
# JSON): load the page, measure its laid-out height, capture it whole.
mkdir -p "$(dirname "$png")"
python3 - "$chromium" "$(realpath "$page")" "$(realpath -m "$png")" "$width" <<'PY'
import base64, fcntl, json, os, subprocess, sys, tempfile
chromium, page, png, width = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
cmd_r, cmd_w = os.pipe()
ev_r, ev_w = os.pipe()
# Copies above 10, placed on 3 and 4 in the child (kept by pass_fds).
hi_in, hi_out = fcntl.fcntl(cmd_r, fcntl.F_DUPFD, 10), fcntl.fcntl(ev_w, fcntl.F_DUPFD, 10)
def fds():
    os.dup2(hi_in, 3); os.dup2(hi_out, 4)
profile = tempfile.mkdtemp(prefix="tritter-chromium.")
proc = subprocess.Popen([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
    "--no-first-run", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--hide-scrollbars", "--remote-debugging-pipe",
    "--user-data-dir=" + profile, "about:blank"],
    preexec_fn=fds, pass_fds=(3, 4), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
    stderr=subprocess.DEVNULL)
for fd in (cmd_r, ev_w, hi_in, hi_out): os.close(fd)
out, inp = os.fdopen(cmd_w, "wb"), os.fdopen(ev_r, "rb")
state = {"id": 0, "session": None, "events": []}
def read():
    buf = b""
    while True:
        c = inp.read(1)
        if not c: raise SystemExit("chromium closed the pipe")
        if c == b"\0": return json.loads(buf)
        buf += c
def call(method, **params):
    state["id"] += 1
    msg = {"id": state["id"], "method": method, "params": params}
    if state["session"]: msg["sessionId"] = state["session"]
    out.write(json.dumps(msg).encode() + b"\0"); out.flush()
    while True:
        m = read()
        if m.get("id") == state["id"]:
            if "error" in m: raise SystemExit(f"{method}: {m['error']}")
            return m["result"]
        state["events"].append(m)
target = call("Target.createTarget", url="about:blank")["targetId"]
state["session"] = call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
call("Page.enable")
call("Emulation.setDeviceMetricsOverride", width=width, height=1000, deviceScaleFactor=1, mobile=False)
call("Page.navigate", url="file://" + page)
while not any(e.get("method") == "Page.loadEventFired" for e in state["events"]):
    state["events"].append(read())
height = int(call("Page.getLayoutMetrics")["cssContentSize"]["height"]) + 1
call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
shot = call("Page.captureScreenshot", format="png", captureBeyondViewport=True,
            clip={"x": 0, "y": 0, "width": width, "height": height, "scale": 1})
with open(png, "wb") as f: f.write(base64.b64decode(shot["data"]))
state["session"] = None
try: call("Browser.close")
except (SystemExit, BrokenPipeError): pass
out.close(); inp.close()
try: proc.wait(timeout=20)
except subprocess.TimeoutExpired: proc.kill(); proc.wait()
subprocess.run(["rm", "-rf", profile])
print(f"{width}x{height}")
PY
echo "report_screenshot.sh: $png of $page ($(wc -c < "$page") bytes)"
