#!/usr/bin/env bash
# perf/run.sh: build the release gx-bench and run its workloads several times.
#
# As root on a fresh Debian 12 this installs what is missing (apt-get update
# runs once, and only when something is missing), configures a release build
# in build-perf/, builds it, prints `gx-bench config`, runs every workload that
# this gx-bench has, and prints the median, min and max of every RESULT figure.
# The same table, with the machine it ran on, goes to perf/results/latest.md
# and perf/results/latest.json (perf/results/ is not tracked).
#
# Timings here are noisy: compare medians taken in the same invocation, never
# against numbers written down on another day (see shared/BENCHMARKS.md).
#
# usage: perf/run.sh [--quick] [--runs N]
#   --quick    3 runs each and smaller N (the 1,000,000 parked check keeps
#              its count: a smaller one would not check anything)
#   --runs N   runs per workload (default 5, or 3 with --quick)
# Exit status: 0 when every workload succeeded, 1 when one failed, 2 for bad
# arguments. GONEX_* variables in the environment reach every workload and
# are recorded in the results.
set -euo pipefail

usage() {
	cat >&2 <<'EOF'
usage: perf/run.sh [--quick] [--runs N]
  --quick    3 runs each and smaller N (the 1,000,000 parked check keeps its count)
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
pkgs=(meson ninja-build pkg-config gcc libc6-dev liburing-dev libnuma-dev liblz4-dev hyperfine wrk nginx-light python3)
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

# ---- workloads ----

# label|workload|N|N with --quick|extra environment (space-separated VAR=value)
# N is the workload's arguments: one count, or several separated by spaces
# (parallel T U P). The quick counts take a few seconds a run on 2 vCPUs.
plan=(
	"yield|yield|10000000|1000000|"
	"spawn|spawn|1000000|100000|"
	"idle|idle|100000|10000|"
	"parked_1m|idle|1000000|1000000|GONEX_STACK_SIZE=16K"
	"pingpong|pingpong|5000000|500000|"
	"select|select|5000000|500000|"
	"ring|ring|20000000|2000000|"
	"chanxproc|chanxproc|5000000|1000000|"
	"xpingpong|xpingpong|500000|100000|"
	"wake|wake|10000|2000|"
	"parallel_u10|parallel|1000000 10 2|200000 10 2|"
	"parallel_u10_1w|parallel|1000000 10 1|200000 10 1|"
	"parallel_cpu|parallel|4000 100000 2|1000 100000 2|"
	"dispatch|dispatch|1000000|100000|"
	"restart|restart|100|20|"
)

# The workloads this gx-bench has, read from its usage text ("  NAME ARGS").
listing=$("$bench" 2>&1 || true)
has_workload() { grep -qE "^  $1 " <<<"$listing"; }

: >"$tmp/rows" # label|figure|unit|value run1,value run2,...|N|env|extras (last run)
failed=()
skipped=()

for entry in "${plan[@]}"; do
	IFS='|' read -r label workload n nquick extra <<<"$entry"
	if ((quick)); then n=$nquick; fi
	if ! has_workload "$workload"; then
		echo "== $label: skipped (gx-bench has no '$workload' workload)"
		skipped+=("$label")
		continue
	fi
	read -r -a envs <<<"$extra"
	read -r -a args <<<"$n"
	echo "== $label: ${extra:+$extra }gx-bench $workload $n, $runs runs"
	ok=1
	: >"$tmp/$label.results"
	for ((r = 1; r <= runs; r++)); do
		rc=0
		env ${envs[@]+"${envs[@]}"} "$bench" "$workload" "${args[@]}" >"$tmp/out" 2>"$tmp/err" || rc=$?
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
		grep '^RESULT ' "$tmp/out" | tee -a "$tmp/$label.results" | sed "s/^/   run $r: /"
	done
	if ((!ok)); then
		failed+=("$label")
		continue
	fi
	# One row per figure: the values in run order, the extras of the last run.
	awk -v label="$label" -v n="$n" -v env="$extra" '
		{
			name = $2
			if (!(name in unit)) {
				order[++k] = name
				unit[name] = $4
				vals[name] = $3
			} else {
				vals[name] = vals[name] "," $3
			}
			ex = ""
			for (i = 5; i <= NF; i++) ex = ex (ex == "" ? "" : " ") $i
			extras[name] = ex
		}
		END {
			for (i = 1; i <= k; i++) {
				m = order[i]
				print label "|" m "|" unit[m] "|" vals[m] "|" n "|" env "|" extras[m]
			}
		}' "$tmp/$label.results" >>"$tmp/rows"
done

# ---- statistics ----

# Adds median|min|max to every row (median of an even count: the mean of the
# middle two).
stats() {
	local values=$1
	tr ',' '\n' <<<"$values" | sort -g | awk '
		{ v[NR] = $1 }
		END {
			if (NR % 2) {
				med = v[(NR + 1) / 2]
			} else {
				med = sprintf("%.3f", (v[NR / 2] + v[NR / 2 + 1]) / 2)
				sub(/0+$/, "", med)
				sub(/\.$/, "", med)
			}
			printf "%s|%s|%s\n", med, v[1], v[NR]
		}'
}
: >"$tmp/table"
while IFS='|' read -r label fig unit values n env extras; do
	printf '%s|%s|%s|%s|%s|%s|%s|%s\n' "$label" "$fig" "$unit" "$(stats "$values")" \
		"$n" "$env" "$extras" "$values" >>"$tmp/table"
done <"$tmp/rows"

# ---- the machine ----

date_utc=$(date -u +%Y-%m-%dT%H:%M:%SZ)
kernel=$(uname -r)
arch=$(uname -m)
cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1 || true)
[[ -n $cpu ]] || cpu=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n 1)
[[ -n $cpu ]] || cpu=unknown
ncpu=$(nproc)
gcc_version=$(gcc -dumpfullversion 2>/dev/null || gcc -dumpversion)
liburing_version=$(dpkg-query -W -f='${Version}' "liburing-dev:$native" 2>/dev/null || echo unknown)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ $commit != unknown && -n $(git status --porcelain --untracked-files=no 2>/dev/null) ]]; then
	commit="$commit (uncommitted changes)"
fi
gonex_env=$(env | grep '^GONEX_' | LC_ALL=C sort || true)

# ---- the table ----

table_md() {
	echo "| workload | figure | median | min | max | unit | runs | N | env | last run |"
	echo "|---|---|---:|---:|---:|---|---:|---:|---|---|"
	while IFS='|' read -r label fig unit med min max n env extras values; do
		local count
		count=$(tr ',' '\n' <<<"$values" | wc -l)
		echo "| $label | $fig | $med | $min | $max | $unit | $count | $n | ${env:--} | ${extras:--} |"
	done <"$tmp/table"
}

echo
echo "== results (${runs} runs each; median, min, max)"
# The markdown table with its columns padded, for the terminal.
table_md | awk -F'|' '
	{
		line[NR] = $0
		for (i = 2; i < NF; i++) {
			c = $i
			gsub(/^ +| +$/, "", c)
			if (length(c) > w[i]) w[i] = length(c)
		}
	}
	END {
		for (r = 1; r <= NR; r++) {
			n = split(line[r], f, "|")
			out = ""
			for (i = 2; i < n; i++) {
				c = f[i]
				gsub(/^ +| +$/, "", c)
				if (r == 2) { c = ""; while (length(c) < w[i]) c = c "-" }
				out = out sprintf(" %-" w[i] "s ", c) (i < n - 1 ? "|" : "")
			}
			print out
		}
	}'
for l in ${skipped[@]+"${skipped[@]}"}; do echo "skipped: $l (no such workload in this gx-bench)"; done
for l in ${failed[@]+"${failed[@]}"}; do echo "FAILED: $l"; done

# ---- results files ----

mkdir -p perf/results

{
	echo "# gx-bench results"
	echo
	echo "- date: $date_utc"
	echo "- commit: $commit"
	echo "- kernel: $kernel ($arch)"
	echo "- CPU: $cpu ($ncpu online)"
	echo "- gcc: $gcc_version"
	echo "- liburing: $liburing_version"
	echo "- mode: $( ((quick)) && echo quick || echo full), $runs runs per workload"
	if [[ -n $gonex_env ]]; then
		echo "- GONEX_* in the environment: $(tr '\n' ' ' <<<"$gonex_env" | sed 's/ $//')"
	else
		echo "- GONEX_* in the environment: none"
	fi
	echo
	echo "## gx-bench config"
	echo
	echo '```'
	printf '%s\n' "$config"
	echo '```'
	echo
	echo "## Figures"
	echo
	table_md
	for l in ${skipped[@]+"${skipped[@]}"}; do echo; echo "Skipped: $l (no such workload in this gx-bench)."; done
	for l in ${failed[@]+"${failed[@]}"}; do echo; echo "FAILED: $l."; done
} >"$tmp/latest.md"

json_str() {
	local s=$1
	s=${s//\\/\\\\}
	s=${s//\"/\\\"}
	s=${s//$'\n'/\\n}
	s=${s//$'\r'/\\r}
	s=${s//$'\t'/\\t}
	printf '"%s"' "$s"
}
json_list() { # comma-separated labels -> JSON array of strings
	local first=1 x
	printf '['
	for x in "$@"; do
		((first)) || printf ', '
		first=0
		json_str "$x"
	done
	printf ']'
}
{
	echo "{"
	echo "  \"date\": $(json_str "$date_utc"),"
	echo "  \"commit\": $(json_str "$commit"),"
	echo "  \"kernel\": $(json_str "$kernel"),"
	echo "  \"arch\": $(json_str "$arch"),"
	echo "  \"cpu\": $(json_str "$cpu"),"
	echo "  \"cpus_online\": $ncpu,"
	echo "  \"gcc\": $(json_str "$gcc_version"),"
	echo "  \"liburing\": $(json_str "$liburing_version"),"
	echo "  \"mode\": $(json_str "$( ((quick)) && echo quick || echo full)"),"
	echo "  \"runs\": $runs,"
	printf '  "gonex_env": {'
	first=1
	while IFS= read -r kv; do
		[[ -n $kv ]] || continue
		((first)) || printf ','
		first=0
		printf '\n    %s: %s' "$(json_str "${kv%%=*}")" "$(json_str "${kv#*=}")"
	done <<<"$gonex_env"
	((first)) && echo '},' || printf '\n  },\n'
	echo "  \"config\": $(json_str "$config"),"
	echo "  \"results\": ["
	nrows=$(wc -l <"$tmp/table")
	i=0
	while IFS='|' read -r label fig unit med min max n env extras values; do
		i=$((i + 1))
		# n: a number, or a string of several arguments (parallel T U P)
		[[ $n =~ ^[0-9]+$ ]] || n=$(json_str "$n")
		printf '    {"workload": %s, "figure": %s, "unit": %s, "n": %s, "env": %s,\n' \
			"$(json_str "$label")" "$(json_str "$fig")" "$(json_str "$unit")" "$n" "$(json_str "$env")"
		printf '     "median": %s, "min": %s, "max": %s, "values": [%s], "last_run": %s}' \
			"$med" "$min" "$max" "${values//,/, }" "$(json_str "$extras")"
		((i < nrows)) && echo "," || echo
	done <"$tmp/table"
	echo "  ],"
	echo "  \"skipped\": $(json_list ${skipped[@]+"${skipped[@]}"}),"
	echo "  \"failed\": $(json_list ${failed[@]+"${failed[@]}"})"
	echo "}"
} >"$tmp/latest.json"

mv "$tmp/latest.md" perf/results/latest.md
mv "$tmp/latest.json" perf/results/latest.json
echo
echo "wrote perf/results/latest.md and perf/results/latest.json"

# ---- the servers (wrk against nginx and the epoll baselines) ----
echo
echo "== servers (perf/servers.sh)"
servers_args=()
((quick)) && servers_args+=(--quick)
if ! perf/servers.sh --build build-perf ${servers_args[@]+"${servers_args[@]}"}; then
	failed+=(servers)
fi

if ((${#failed[@]})); then
	echo "perf/run.sh: ${#failed[@]} workload(s) failed: ${failed[*]}" >&2
	exit 1
fi
