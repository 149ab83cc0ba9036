#!/usr/bin/env bash
# perf/scan.sh: run one gx-bench workload under hyperfine once per value of
# one GONEX_* knob, and put the workload's own RESULT figures (median, min,
# max over the timed runs; warm-ups not counted) next to hyperfine's wall,
# user and system times and the cores busy, (user + system) / wall: latency
# against CPU for GONEX_SPIN_NS, for example. The release build is set up
# when missing and brought up to date.
#
# usage: perf/scan.sh [--runs N] [--warmup N] [--build DIR] [--out DIR]
#                     [--name NAME] KNOB VALUES -- WORKLOAD [ARGS...]
#   e.g. perf/scan.sh --runs 3 GONEX_SPIN_NS 0,2000,20000 -- dispatch 10000
# Files in the out directory (default perf/results/scans): scan-NAME.md and
# .json (hyperfine's exports), scan-NAME-summary.md (also printed),
# scan-NAME-summary.json (one row per value, the machine, build, command)
# and, with gnuplot, scan-NAME-FIGURE.svg and .png: a line through each
# value's median with the 95% interval of the median as a band.
# Exit status: 0 on success, 1 when a run failed (exit status not 0, or no
# RESULT line: the value is named) or the build did, 2 for bad usage.
set -euo pipefail

usage() {
	cat >&2 <<'EOF'
usage: perf/scan.sh [--runs N] [--warmup N] [--build DIR] [--out DIR] [--name NAME]
                    KNOB VALUES -- WORKLOAD [ARGS...]
  KNOB        a GONEX_* variable (README.md, "Configuration"), e.g. GONEX_SPIN_NS
  VALUES      comma-separated values, e.g. 0,2000,20000 (letters, digits, . _ : + -)
  WORKLOAD    a gx-bench workload and its arguments, e.g. wake 2000
  --runs N    timed runs per value (default 5)
  --warmup N  warm-up runs per value, not counted (default 1)
  --build DIR release build to use, set up when missing (default build-perf)
  --out DIR   where the files go (default perf/results/scans)
  --name NAME files are scan-NAME*.{md,json} (default: knob without GONEX_,
              lower case, and the workload: spin_ns-wake)
example: perf/scan.sh --runs 3 GONEX_SPIN_NS 0,2000,20000,200000 -- wake 2000
EOF
	exit 2
}
bad() { echo "perf/scan.sh: $*" >&2; usage; }

args=("$@")
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

runs=5 warmup=1 build=$root/build-perf out=$root/perf/results/scans name=
while [[ $# -gt 0 && $1 == -* ]]; do
	case $1 in
	-h | --help) usage ;;
	--runs | --warmup | --build | --out | --name)
		[[ $# -ge 2 && -n $2 ]] || bad "$1 needs a value"
		case $1 in
		--runs) [[ $2 =~ ^[1-9][0-9]*$ ]] || bad "--runs: '$2' is not a count above 0"; runs=$2 ;;
		--warmup) [[ $2 =~ ^[0-9]+$ ]] || bad "--warmup: '$2' is not a count"; warmup=$2 ;;
		--build) build=$(realpath -m -- "$2") ;;
		--out) out=$(realpath -m -- "$2") ;;
		--name) [[ $2 =~ ^[A-Za-z0-9._-]+$ ]] || bad "--name: use letters, digits, . _ -"; name=$2 ;;
		esac
		shift
		;;
	*) bad "unknown option '$1'" ;;
	esac
	shift
done
[[ $# -ge 4 ]] || bad "expected KNOB VALUES -- WORKLOAD [ARGS...]"
knob=$1 values=$2
[[ $knob =~ ^GONEX_[A-Z0-9_]+$ ]] || bad "KNOB must be a GONEX_* variable name such as GONEX_SPIN_NS, not '$knob'"
[[ $3 == -- ]] || bad "expected '--' after VALUES, got '$3'"
shift 3
workload=$1
[[ -n $values && $values != *,,* && $values != ,* && $values != *, ]] || bad "VALUES '$values' has an empty item"
IFS=, read -r -a items <<<"$values"
declare -A seen=()
for v in "${items[@]}"; do
	[[ $v =~ ^[A-Za-z0-9._:+-]+$ ]] || bad "value '$v': use letters, digits, . _ : + -"
	[[ -z ${seen[$v]:-} ]] || bad "value '$v' is given twice"
	seen[$v]=1
done
if ! grep -qF "\`$knob\`" "$root/README.md"; then
	echo "perf/scan.sh: warning: $knob is not in README.md; the runtime may ignore it" >&2
fi
knob_l=${knob#GONEX_}
name=${name:-${knob_l,,}-$workload}
[[ $name =~ ^[A-Za-z0-9._-]+$ ]] || bad "name '$name': use --name with letters, digits, . _ -"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Run a command with its output in a log, shown only when it fails.
quiet() {
	"$@" >"$tmp/log" 2>&1 || {
		local rc=$?
		cat "$tmp/log" >&2
		echo "perf/scan.sh: failed ($rc): $*" >&2
		exit 1
	}
}

# Words quoted for sh where they need it, each after a space.
shq() {
	local s q="'\\''"
	for s; do
		if [[ $s =~ ^[A-Za-z0-9._/:=+,@%-]+$ ]]; then printf ' %s' "$s"; else printf " '%s'" "${s//\'/$q}"; fi
	done
}

# ---- build ----

command -v hyperfine >/dev/null || { echo "perf/scan.sh: hyperfine is missing (apt-get install hyperfine)" >&2; exit 1; }
if [[ ! -f $build/build.ninja ]]; then
	echo "== setting up a release build in $build"
	(cd "$root" && quiet meson setup "$build" -Dbuildtype=release -Dtests=false)
fi
quiet ninja -C "$build"
bench=$build/perf/gx-bench
[[ -x $bench ]] || { echo "perf/scan.sh: $bench was not built" >&2; exit 1; }
listing=$("$bench" 2>&1 || true) # the usage text lists the workloads
if ! grep -qE "^  $workload " <<<"$listing"; then
	bad "gx-bench has no workload '$workload' (run $bench for the list)"
fi

# ---- the machine and the build ----

meta() { printf '%s\t%s\n' "$1" "$2" >>"$tmp/meta"; }
native=$(dpkg --print-architecture 2>/dev/null || echo amd64)
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ $commit != unknown && -n $(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null) ]]; then
	commit="$commit dirty"
fi
cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1 || true)
online=$(lscpu 2>/dev/null | sed -n 's/^On-line CPU(s) list:[[:space:]]*//p' || true)
# buildtype, optimization and c_args as meson has them, and the flags that
# compiled gx-bench (perf/bench/main.c in compile_commands.json), warnings
# and paths left out.
flags=$(meson introspect "$build" --buildoptions 2>/dev/null | python3 -c '
import json, sys
o = {x["name"]: x["value"] for x in json.load(sys.stdin)}
print("buildtype=%s optimization=%s c_args=%s" % (o.get("buildtype"), o.get("optimization"), o.get("c_args")))' || echo unknown)
cflags=$(python3 - "$build/compile_commands.json" <<'EOF' || echo unknown
import json, shlex, sys
cmd = next(c["command"] for c in json.load(open(sys.argv[1])) if c["file"].endswith("perf/bench/main.c"))
print(" ".join(w for w in shlex.split(cmd)[1:] if w[:2] in ("-O", "-f", "-D", "-m", "-g", "-s") and not w.startswith("-fdiag")))
EOF
)
gonex_env=$(env | grep '^GONEX_' | LC_ALL=C sort | tr '\n' ' ' || true)
meta date "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
meta commit "$commit"
meta kernel "$(uname -r) ($(uname -m))"
meta CPU "${cpu:-unknown}"
meta "CPUs online" "$(getconf _NPROCESSORS_ONLN) (${online:-?})"
meta liburing-dev "$(dpkg-query -W -f='${Version}' "liburing-dev:$native" 2>/dev/null || echo unknown)"
meta gcc "$(gcc -dumpfullversion 2>/dev/null || echo unknown)"
meta build "$build: $flags"
meta "C flags (perf/bench/main.c)" "$cflags"
meta hyperfine "$(hyperfine --version | sed 's/^hyperfine //')"
meta "GONEX_* in the environment" "${gonex_env:-none}"
meta "command line" "$0$(shq "${args[@]}")"
meta runs "$runs timed, $warmup warm-up (not counted) per value"

# ---- the scan ----

# Run in $tmp: each value's runs append to out.VALUE and err.VALUE, each run
# (warm-ups too) after a line '@run' that --prepare writes.
mkdir -p "$out"
base=$out/scan-$name
cmd="env $knob={v}$(shq "$bench" "$@") >>out.{v} 2>>err.{v}"
echo "== $knob over $values: gx-bench $*, $runs runs (+$warmup warm-up) each"
(cd "$tmp" && hyperfine --runs "$runs" --warmup "$warmup" --ignore-failure \
	--parameter-list v "$values" --prepare 'echo @run >>out.{v}; echo @run >>err.{v}' \
	--export-markdown "$base.md" --export-json "$base.json" "$cmd") ||
	{ echo "perf/scan.sh: hyperfine failed" >&2; exit 1; }

# ---- the summary ----

echo
rc=0
python3 - "$tmp" "$runs" "$knob" "$base" "$root/perf" "$@" <<'EOF' || rc=$?
import json, os, re, statistics, sys
tmp, runs, knob, base, perfdir, *workload = sys.argv[1:]
sys.path.insert(0, perfdir)
import lablib
runs = int(runs)
meta = [l.rstrip("\n").split("\t", 1) for l in open(f"{tmp}/meta")]
hf = json.load(open(f"{base}.json"))

def blocks(path):  # one string per run, warm-ups first
    try:
        return open(path, errors="replace").read().split("@run\n")[1:]
    except FileNotFoundError:
        return []

def isnum(s):
    try:
        return float(s) == float(s)  # not nan
    except ValueError:
        return False

def num(x, fmt="{:.6g}"):  # figures: 6 significant digits, no exponent
    return "-" if x is None else "{:.0f}".format(x) if fmt == "{:.6g}" and abs(x) >= 1e6 else fmt.format(x)

rows, units, failed = [], {}, 0
for r in hf["results"]:
    v = r["parameters"]["v"]
    outs, errs = blocks(f"{tmp}/out.{v}")[-runs:], blocks(f"{tmp}/err.{v}")[-runs:]
    codes = r.get("exit_codes") or [0] * runs
    busy = (r["user"] + r["system"]) / r["mean"] if r["mean"] > 0 else None
    row = dict(value=v, figures={}, failed=None, exit_codes=codes, wall_mean_s=r["mean"],
               wall_stddev_s=r["stddev"], user_mean_s=r["user"], system_mean_s=r["system"], cores_busy=busy,
               stderr=list(dict.fromkeys(l for e in errs for l in e.splitlines()))[:5])
    if len(outs) != runs:
        row["failed"] = f"found the output of {len(outs)} runs, not {runs}"
    for i, (code, out) in enumerate(zip(codes, outs)):
        res = [l.split() for l in out.splitlines() if l.startswith("RESULT ")]
        why = None
        if code != 0:
            why = "killed by a signal" if code is None else f"exit status {code}"
        elif not res:
            why = "no RESULT line"
        elif any(len(f) < 4 or not isnum(f[2]) for f in res):
            why = "a RESULT line without a numeric value"
        if why:
            row["failed"] = f"run {i + 1}: {why}"
            print(f"perf/scan.sh: {knob}={v} FAILED, {row['failed']}", file=sys.stderr)
            for what, text in (("stdout", out), ("stderr", errs[i] if i < len(errs) else "")):
                if text.strip():
                    print(f"  {what} (last 20 lines):", *["    " + l for l in text.splitlines()[-20:]], sep="\n", file=sys.stderr)
            break
        for f in res:
            units.setdefault(f[1], f[3])
            fig = row["figures"].setdefault(f[1], {"unit": f[3], "values": []})
            fig["values"].append(float(f[2]))
            fig["last_run"] = " ".join(f[4:])
    if row["failed"]:
        failed += 1
        row["figures"] = {}
    for fig in row["figures"].values():
        vs = fig["values"]
        fig.update(median=statistics.median(vs), min=min(vs), max=max(vs))
    rows.append(row)

head = [knob] + [h for n, u in units.items() for h in (f"{n} median ({u})", "min", "max")]
head += ["wall mean (s)", "user mean (s)", "system mean (s)", "cores busy"]
table = []
for row in rows:
    cells = [row["value"]]
    for n in units:
        f = row["figures"].get(n)
        cells += [num(f["median"]), num(f["min"]), num(f["max"])] if f else ["FAILED" if row["failed"] else "-", "-", "-"]
    cells += [num(row[k], "{:.4g}") for k in ("wall_mean_s", "user_mean_s", "system_mean_s")]
    cells.append(num(row["cores_busy"], "{:.2f}"))
    table.append(cells)
w = [max(len(c[i]) for c in [head] + table) for i in range(len(head))]
line = lambda cells: "| " + " | ".join(c.ljust(w[0]) if i == 0 else c.rjust(w[i]) for i, c in enumerate(cells)) + " |"
md = [f"# Scan of {knob}: gx-bench {' '.join(workload)}", ""]
md += [f"- {k}: {v}" for k, v in meta]
md += [f"- hyperfine exports: {os.path.basename(base)}.md, {os.path.basename(base)}.json", ""]
md += [line(head), "|" + "|".join(("-" * (n + 1) + ":" if i else "-" * (n + 2)) for i, n in enumerate(w)) + "|"]
md += [line(c) for c in table]
md += ["", f"Figures: median, min and max over the {runs} timed runs of each value. Wall, user and system:",
       "hyperfine's means per run. Cores busy: (user + system) / wall."]
notes = [f"- {knob}={r['value']}: {l}" for r in rows for l in r["stderr"]]
if notes:
    md += ["", "stderr of the timed runs (distinct lines, at most 5 a value):", ""] + notes
for r in rows:
    if r["failed"]:
        md += ["", f"FAILED: {knob}={r['value']}: {r['failed']}"]
# a line plot per figure: the medians over the knob's values, with the
# 95% interval of each median as a band (lablib.median_ci)
plots = []
for n, u in units.items():
    pts = []
    for r in rows:
        f = r["figures"].get(n)
        if f:
            lo, hi, cov = lablib.median_ci(f["values"])
            f.update(lo=lo, hi=hi, coverage=cov)
            x = float(r["value"]) if re.fullmatch(r"-?[0-9.]+", r["value"]) else None
            pts.append((r["value"], x, f["median"], lo, hi))
    svg = f"{base}-{re.sub(r'[^A-Za-z0-9._-]', '_', n)}.svg"
    if len(pts) >= 2 and lablib.line_plot(svg, f"{knob} over gx-bench {' '.join(workload)}: {n}", knob,
                                          f"{n} ({u}), median and 95% interval", pts,
                                          logx=len(pts) > 2 and all(p[1] and p[1] > 0 for p in pts)):
        plots.append((n, os.path.basename(svg)))
if plots:
    md += ["", "Plots (median, and the 95% interval of the median as a band; with fewer than 6 runs the band is",
           "min..max):", ""] + [f"![{n}]({f})" for n, f in plots]
elif not lablib.gnuplot():
    md += ["", "No plots: gnuplot is missing (apt-get install gnuplot-nox; perf/run.sh installs it)."]
text = "\n".join(md) + "\n"
print(text, end="")
open(f"{base}-summary.md", "w").write(text)
summary = dict(meta=dict(meta), knob=knob, workload=workload, runs=runs, hyperfine=os.path.basename(base) + ".json", rows=rows)
json.dump(summary, open(f"{base}-summary.json", "w"), indent=2)
sys.exit(1 if failed else 0)
EOF
echo
echo "wrote $base.md, $base.json, $base-summary.md and $base-summary.json"
exit "$rc"
