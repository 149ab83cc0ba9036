#!/usr/bin/env bash
# perf/go/run.sh: build gobench, the Go peers of gx-bench, and run one workload.
#
# gobench (main.go, workloads.go here) runs the workloads of
# shared/BENCHMARKS.md in Go and prints gx-bench's RESULT lines with the
# names prefixed by go_ (go_yield_switch, go_pingpong_rtt, go_select_rtt,
# go_spawn_exit, go_xcore_chan_throughput, go_xcore_pingpong_rtt,
# go_xselect_rtt, go_parallel_tasks_per_s), so that
# our figures can be compared to Go measured in the same run.
#
# The binary is built with the Go toolchain on PATH (Debian 12: golang-go,
# Go 1.19) into DIR/gobench, when it is missing or older than a source here;
# the build cache and GOPATH go under DIR too, and nothing is downloaded
# (standard library only, GOPROXY=off). Nothing is written into the work tree.
#
# usage: perf/go/run.sh [--build DIR] WORKLOAD ARGS...
#   --build DIR  where the binary and the Go caches go (default /tmp/gonex-go)
#   WORKLOAD ARGS  as gobench takes them (run with no workload for the list):
#                yield N, pingpong N, select N, spawn N, xcore N [pin],
#                xpingpong N [pin], xselect N [pin], parallel T U P
# Exit status: gobench's (0 ok, 1 a failed check, 2 bad arguments); 1 when
# `go` is missing (install golang-go) or the build fails; 2 for bad arguments
# to this script.
set -euo pipefail

usage() {
	cat >&2 <<'EOF_USAGE'
usage: perf/go/run.sh [--build DIR] WORKLOAD ARGS...
  --build DIR  where gobench and the Go caches go (default /tmp/gonex-go)
  WORKLOAD ARGS  yield N | pingpong N | select N | spawn N | xcore N [pin] |
                 xpingpong N [pin] | xselect N [pin] | parallel T U P
EOF_USAGE
	exit 2
}

dir=/tmp/gonex-go
if [[ ${1-} == --build ]]; then
	[[ $# -ge 2 && -n $2 ]] || usage
	dir=$2
	shift 2
fi
case ${1-} in
'' | -h | --help) usage ;;
-*) echo "perf/go/run.sh: unknown option '$1'" >&2; usage ;;
esac

src=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

if ! command -v go >/dev/null 2>&1; then
	echo "perf/go/run.sh: 'go' is not on PATH; install Go 1.19 first (apt-get install -y golang-go)" >&2
	exit 1
fi

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
bin=$dir/gobench

# Rebuild when the binary is missing or a source is newer than it.
stale=1
if [[ -x $bin ]] && [[ -z $(find "$src" -maxdepth 1 \( -name '*.go' -o -name go.mod -o -name go.sum \) \
	-newer "$bin" -print -quit) ]]; then
	stale=0
fi
if ((stale)); then
	log=$dir/build.log
	# Build into a temporary name and rename, so a concurrent run never
	# executes a half-written binary. GOENV/GOWORK off: no user settings.
	if ! (cd "$src" && env GOCACHE="$dir/gocache" GOPATH="$dir/gopath" GOFLAGS=-mod=mod GOPROXY=off \
		GOSUMDB=off GO111MODULE=on GOWORK=off GOENV=off CGO_ENABLED=0 \
		go build -trimpath -o "$bin.tmp.$$" .) >"$log" 2>&1; then
		cat "$log" >&2
		rm -f "$bin.tmp.$$"
		echo "perf/go/run.sh: go build failed (log: $log)" >&2
		exit 1
	fi
	mv -f "$bin.tmp.$$" "$bin"
fi

exec "$bin" "$@"
