#!/usr/bin/env bash
# perf/run.sh: the benchmark suite (shared/BENCHMARKS.md).
#
# As root on a fresh Debian 12 this installs what is missing (apt-get update
# runs once, and only when something is missing), builds in release mode in
# build-perf/, prints `gx-bench config`, and then, with progress lines:
#   1. runs every gx-bench workload several times (median, min, max);
#   2. runs the Go peers of the same workloads (perf/go, Go from Debian);
#   3. runs two hyperfine scans of one knob each (perf/scan.sh): the spin
#      budget for `wake` (latency against CPU time) and the backend for
#      `pingpong`;
#   4. runs the server comparisons (perf/servers.sh: examples/httpd and
#      examples/echo against nginx and the epoll baselines under wrk, and
#      examples/kv against redis-server under redis-benchmark, pinned apart,
#      with CPU per request and 25% CPU quota runs);
#   5. writes perf/results/latest.md (the targets table: figure, ours,
#      baseline, ratio, target, met; then every figure, the config and the
#      scans), latest.json and latest.svg (the plot), with the machine, the
#      compiler and its flags, the knobs and the date (perf/report.py).
#
# Timings here are noisy: compare medians taken in the same invocation, never
# against numbers written down on another day.
#
# usage: perf/run.sh [--quick] [--runs N]
#   --quick    under 2 minutes: 3 runs each, smaller N, one short server run
#              (the 1,000,000 parked check keeps its count)
#   --runs N   runs per workload (default 5, or 3 with --quick)
# The full run takes about 17 minutes on 2 vCPUs. Exit status: 0 when every step
# succeeded, 1 when one failed, 2 for bad arguments. GONEX_* variables in
# the environment reach every workload and are recorded in the results.
set -euo pipefail

usage() {
	cat >&2 <<'EOF'
usage: perf/run.sh [--quick] [--runs N]
  --quick    under 2 minutes: 3 runs each, smaller N (the 1,000,000 parked check keeps its count)
  --runs N   runs per workload (default 5, or 3 with --quick)
GONEX_* variables in the environment reach every workload and are recorded.
EOF
	exit 2
}

quick=0
runs=
while (($#)); do
	case $1 in
	--quick) quick=1 ;;
	--runs)
		[[ $# -ge 2 && $2 =~ ^[1-9][0-9]*$ ]] || usage
		runs=$2
		shift
		;;
	-h | --help) usage ;;
	*) echo "perf/run.sh: unknown argument '$1'" >&2; usage ;;
	esac
	shift
done
if [[ -z $runs ]]; then
	runs=$((quick ? 3 : 5))
fi

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Run a command with its output in a log, shown only when it fails.
quiet() {
	"$@" >"$tmp/log" 2>&1 || {
		local rc=$?
		cat "$tmp/log" >&2
		echo "perf/run.sh: failed ($rc): $*" >&2
		exit 1
	}
}

# ---- packages ----

# A package counts as installed when its native or arch-independent instance
# is (with a foreign architecture added, dpkg-query lists one per arch).
pkgs=(meson ninja-build pkg-config gcc libc6-dev liburing-dev libnuma-dev liblz4-dev hyperfine wrk nginx-light
	redis-server redis-tools python3 gnuplot-nox golang-go)
native=$(dpkg --print-architecture)
missing=()
for p in "${pkgs[@]}"; do
	status=$(dpkg-query -W -f='${Status}|${Architecture}\n' "$p" 2>/dev/null || true)
	grep -qxE "install ok installed\|($native|all)" <<<"$status" || missing+=("$p")
done
if ((${#missing[@]})); then
	if ((EUID != 0)); then
		echo "perf/run.sh: missing packages: ${missing[*]}; run as root or install them" >&2
		exit 1
	fi
	echo "== installing ${missing[*]}"
	apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
fi

# ---- build ----

build="build-perf"
if [[ -f $build/meson-private/coredata.dat ]]; then
	quiet meson setup --reconfigure "$build" -Dbuildtype=release -Dtests=false
else
	quiet meson setup "$build" -Dbuildtype=release -Dtests=false
fi
quiet ninja -C "$build"
bench=$root/$build/perf/gx-bench
[[ -x $bench ]] || { echo "perf/run.sh: $bench was not built" >&2; exit 1; }

echo "== gx-bench config"
config=$("$bench" config) || { echo "perf/run.sh: gx-bench config failed" >&2; exit 1; }
printf '%s\n' "$config"

t0=$SECONDS
step() { printf '== [%02d:%02d] %s\n' $(((SECONDS - t0) / 60)) $(((SECONDS - t0) % 60)) "$*"; }

# ---- workloads ----

# label|runner|workload|N|N with --quick|extra environment (space-separated VAR=value)
# runner: gx (perf/gx-bench) or go (perf/go/run.sh, the Go peers). N is the
# workload's arguments: one count, or several separated by spaces
# (parallel T U P). The quick counts take a second or two a run on 2 vCPUs.
# xselectwake counts few rounds: each sleeps on a futex (tens of us).
plan=(
	"yield|gx|yield|10000000|1000000|"
	"spawn|gx|spawn|1000000|100000|"
	"idle|gx|idle|100000|10000|"
	"parked_1m|gx|idle|1000000|1000000|GONEX_STACK_SIZE=16K"
	"pingpong|gx|pingpong|5000000|500000|"
	"select|gx|select|5000000|500000|"
	"ring|gx|ring|20000000|2000000|"
	"chanxproc|gx|chanxproc|5000000|1000000|"
	"xpingpong|gx|xpingpong|500000 0|100000 0|"
	"wake|gx|wake|10000|2000|"
	"xselect|gx|xselect|500000|100000|"
	"xselectwake|gx|xselectwake|5000|1000|"
	"parallel_u10|gx|parallel|1000000 10 2|200000 10 2|"
	"parallel_u10_1w|gx|parallel|1000000 10 1|200000 10 1|"
	"parallel_u10_batch|gx|parallel|1000000 10 2 32|200000 10 2 32|"
	"parallel_cpu|gx|parallel|4000 100000 2|1000 100000 2|"
	"dispatch|gx|dispatch|1000000|100000|"
	"restart|gx|restart|100|20|"
	"quiet|gx|quiet|5 2|2 2|"
	"go_yield|go|yield|5000000|1000000|"
	"go_pingpong|go|pingpong|2000000|300000|"
	"go_select|go|select|2000000|300000|"
	"go_spawn|go|spawn|2000000|300000|"
	"go_xcore|go|xcore|2000000 pin|1000000 pin|"
	"go_xcore_unpinned|go|xcore|5000000|2000000|"
	"go_xpingpong|go|xpingpong|500000|200000|"
	"go_xpingpong_pin|go|xpingpong|500000 pin|200000 pin|"
	"go_xselect|go|xselect|500000|200000|"
	"go_xselect_pin|go|xselect|500000 pin|200000 pin|"
	"go_parallel_u10_1w|go|parallel|2000000 10 1|1000000 10 1|"
)

# The workloads this gx-bench has, read from its usage text ("  NAME ARGS").
listing=$("$bench" 2>&1 || true)
has_workload() { grep -qE "^  $1 " <<<"$listing"; }
gorun=(perf/go/run.sh --build "$root/$build/go")
have_go=1
if [[ ! -x perf/go/run.sh ]] || ! command -v go >/dev/null; then
	have_go=0
fi

: >"$tmp/plan" # label|workload|N|env, for perf/report.py
failed=()
skipped=()

for entry in "${plan[@]}"; do
	IFS='|' read -r label runner workload n nquick extra <<<"$entry"
	if ((quick)); then n=$nquick; fi
	if [[ $runner == gx ]] && ! has_workload "$workload"; then
		step "$label: skipped (gx-bench has no '$workload' workload)"
		skipped+=("$label")
		continue
	fi
	if [[ $runner == go ]] && ((!have_go)); then
		step "$label: skipped (no Go toolchain or perf/go)"
		skipped+=("$label")
		continue
	fi
	read -r -a envs <<<"$extra"
	read -r -a args <<<"$n"
	if [[ $runner == gx ]]; then cmd=("$bench" "$workload"); else cmd=("${gorun[@]}" "$workload"); fi
	step "$label: ${extra:+$extra }$([[ $runner == gx ]] && echo gx-bench || echo go) $workload $n, $runs runs"
	ok=1
	: >"$tmp/$label.results"
	for ((r = 1; r <= runs; r++)); do
		rc=0
		env ${envs[@]+"${envs[@]}"} "${cmd[@]}" "${args[@]}" >"$tmp/out" 2>"$tmp/err" || rc=$?
		why=
		if ((rc != 0)); then
			why="exit status $rc"
		elif ! grep -q '^RESULT ' "$tmp/out"; then
			why="no RESULT line"
		elif ! awk '$1 == "RESULT" && (NF < 4 || $3 !~ /^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$/) { bad = 1 }
			END { exit bad }' "$tmp/out"; then
			why="a RESULT line without a numeric value"
		fi
		if [[ -n $why ]]; then
			echo "   run $r: FAILED ($why)" >&2
			for f in out err; do
				[[ -s $tmp/$f ]] || continue
				echo "   std$f (last 20 lines):" >&2
				tail -n 20 "$tmp/$f" | sed 's/^/     /' >&2
			done
			ok=0
			break
		fi
		grep '^RESULT ' "$tmp/out" | tee -a "$tmp/$label.results" | sed "s/^/   run $r: /" | cut -c1-160
	done
	if ((!ok)); then
		failed+=("$label")
		continue
	fi
	echo "$label|$runner $workload|$n|$extra" >>"$tmp/plan"
done

# ---- scans (hyperfine over one knob) ----

# name|knob|values|workload|N|N with --quick
scans=(
	"spin-wake|GONEX_SPIN_NS|0,1000,20000,200000|wake|5000|2000"
	"backend-pingpong|GONEX_BACKEND|uring,epoll|pingpong|2000000|300000"
)
: >"$tmp/scans"
for entry in "${scans[@]}"; do
	IFS='|' read -r name knob values workload n nquick <<<"$entry"
	if ((quick)); then n=$nquick; fi
	step "scan $name: $knob over $values, gx-bench $workload $n ($runs runs each, hyperfine)"
	if perf/scan.sh --runs "$runs" --warmup 0 --build "$build" --out perf/results/scans --name "$name" \
		"$knob" "$values" -- "$workload" $n >"$tmp/scan.out" 2>&1; then
		sed -n '/^| /p' "$tmp/scan.out" | tail -n +1 | sed 's/^/   /'
		echo "$name|perf/results/scans/scan-$name-summary.md" >>"$tmp/scans"
	else
		tail -n 20 "$tmp/scan.out" | sed 's/^/   /' >&2
		failed+=("scan-$name")
	fi
done

# ---- the servers (wrk against nginx and the epoll baselines) ----

step "servers (perf/servers.sh$( ((quick)) && echo ' --quick'))"
servers_args=()
((quick)) && servers_args+=(--quick)
if perf/servers.sh --build "$build" ${servers_args[@]+"${servers_args[@]}"} >"$tmp/servers.out" 2>&1; then
	grep '^RESULT ' "$tmp/servers.out" | tee "$tmp/servers.results" | sed 's/^/   /'
else
	tail -n 30 "$tmp/servers.out" | sed 's/^/   /' >&2
	failed+=(servers)
fi

# ---- the machine, the build, the knobs ----

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ $commit != unknown && -n $(git status --porcelain --untracked-files=no 2>/dev/null) ]]; then
	commit="$commit (uncommitted changes)"
fi
cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1 || true)
[[ -n $cpu ]] || cpu=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n 1)
# the exact flags gx-bench was compiled with (those of perf/bench/main.c)
cflags=$(python3 - "$build/compile_commands.json" <<'PY'
import json, shlex, sys
try:
    for e in json.load(open(sys.argv[1])):
        if e["file"].endswith("perf/bench/main.c"):
            args = shlex.split(e["command"])
            print(" ".join(a for a in args[1:] if a.startswith(("-O", "-f", "-m", "-g", "-std", "-W", "-D"))
                           and not a.startswith(("-MD", "-MQ", "-MF"))))
            break
except Exception as x:
    print("unknown (%s)" % x)
PY
)
export RUN_DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ) RUN_MODE=$( ((quick)) && echo quick || echo full) RUN_RUNS=$runs
export RUN_COMMIT=$commit RUN_KERNEL="$(uname -r) ($(uname -m))" RUN_CPU="${cpu:-unknown}" RUN_NCPU=$(nproc)
export RUN_GCC=$(gcc -dumpfullversion 2>/dev/null || gcc -dumpversion) RUN_CFLAGS=$cflags
export RUN_LIBURING=$(dpkg-query -W -f='${Version}' "liburing-dev:$native" 2>/dev/null || echo unknown)
export RUN_HYPERFINE=$(hyperfine --version 2>/dev/null | awk '{print $2}')
export RUN_GO=$(go version 2>/dev/null | awk '{print $3}')
export RUN_NGINX=$(nginx -v 2>&1 | sed 's/.*nginx\///')
export RUN_CONFIG=$config RUN_FAILED="${failed[*]:-}" RUN_SKIPPED="${skipped[*]:-}"
python3 - "$tmp/meta.json" <<'PY'
import json, os, sys
e = os.environ
meta = {
    "date": e["RUN_DATE"], "mode": e["RUN_MODE"], "runs": int(e["RUN_RUNS"]), "commit": e["RUN_COMMIT"],
    "kernel": e["RUN_KERNEL"], "cpu": e["RUN_CPU"], "cpus_online": int(e["RUN_NCPU"]), "gcc": e["RUN_GCC"],
    "cflags": e["RUN_CFLAGS"], "liburing": e["RUN_LIBURING"], "hyperfine": e["RUN_HYPERFINE"],
    "go": e["RUN_GO"], "nginx": e["RUN_NGINX"],
    "gonex_env": " ".join(sorted("%s=%s" % (k, v) for k, v in e.items() if k.startswith("GONEX_"))),
    "config": e["RUN_CONFIG"], "failed": e["RUN_FAILED"].split(), "skipped": e["RUN_SKIPPED"].split(),
}
json.dump(meta, open(sys.argv[1], "w"), indent=1)
PY

# ---- the report ----

step "report"
# the raw figures stay next to the report: perf/report.py --dir
# perf/results/raw --out perf/results writes it again
rm -rf perf/results/raw
mkdir -p perf/results/raw
cp "$tmp/plan" "$tmp/meta.json" "$tmp/scans" perf/results/raw/
cp "$tmp"/*.results perf/results/raw/ 2>/dev/null || true
python3 perf/report.py --dir perf/results/raw --out perf/results
for l in ${skipped[@]+"${skipped[@]}"}; do echo "skipped: $l"; done
echo
echo "wrote perf/results/latest.md, latest.json$([[ -f perf/results/latest.svg ]] && echo ', latest.svg') and perf/results/scans/"
step "done"
if ((${#failed[@]})); then
	echo "perf/run.sh: ${#failed[@]} step(s) failed: ${failed[*]}" >&2
	exit 1
fi
