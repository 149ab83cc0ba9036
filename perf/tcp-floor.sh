#!/usr/bin/env bash
# perf/tcp-floor.sh: where an httpd request's CPU goes on loopback.
# examples/httpd, perf/httpd-epoll and nginx on CPU 0, wrk -t1 -c64 on
# CPU 1; `perf record -e cpu-clock -C 0 -g` over each 5 s run. Prints, per
# request: the server CPU's busy time, the time inside tcp_sendmsg and
# tcp_recvmsg (everything below them included: on loopback the client's
# receive runs inside the server's send), and the rest. The two TCP calls
# are the floor that no server design using the kernel's TCP goes under.
#
# usage: perf/tcp-floor.sh [--runs N] [--build DIR]   (needs perf, wrk, nginx)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=3 build=build-perf
while (($#)); do
	case $1 in
	--runs) runs=$2; shift ;;
	--build) build=$2; shift ;;
	*) echo "usage: perf/tcp-floor.sh [--runs N] [--build DIR]" >&2; exit 2 ;;
	esac
	shift
done
for t in perf wrk nginx taskset; do
	command -v "$t" >/dev/null || { echo "perf/tcp-floor.sh: $t is missing" >&2; exit 1; }
done
tmp=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"' EXIT
# free_port, wait_port, nginx_conf
. perf/server-lib.sh

declare -A port
for s in httpd epoll nginx; do port[$s]=$(free_port); done
taskset -c 0 "$build/examples/httpd" --cpu 0 --port "${port[httpd]}" >"$tmp/httpd.log" 2>&1 &
pids+=($!)
taskset -c 0 "$build/perf/httpd-epoll" --port "${port[epoll]}" >"$tmp/epoll.log" 2>&1 &
pids+=($!)
nginx_conf "$tmp" "${port[nginx]}"
taskset -c 0 nginx -c "$tmp/nginx.conf" -p "$tmp" >"$tmp/nginx.log" 2>&1 &
pids+=($!)
for s in httpd epoll nginx; do wait_port "${port[$s]}" || { echo "perf/tcp-floor.sh: $s did not start" >&2; exit 1; }; done

printf '%-7s %8s %12s %12s %8s   (us per request)\n' server busy tcp_sendmsg tcp_recvmsg rest
for _ in $(seq "$runs"); do
	for s in httpd epoll nginx; do
		url=http://127.0.0.1:${port[$s]}/
		taskset -c 1 wrk -t1 -c64 -d1s "$url" >/dev/null
		perf record -q -e cpu-clock -F 4000 -C 0 -g -o "$tmp/p.data" -- taskset -c 1 wrk -t1 -c64 -d5s "$url" >"$tmp/wrk.txt" 2>&1
		req=$(awk '/requests in/{print $1}' "$tmp/wrk.txt")
		perf report -i "$tmp/p.data" --no-children --sort comm -q -g none -n 2>/dev/null >"$tmp/comm.txt"
		perf report -i "$tmp/p.data" --children --sort sym -q -g none 2>/dev/null >"$tmp/sym.txt"
		# samples: all, and the server's (not idle, not kernel threads, not perf)
		read -r all busy < <(awk '{a+=$2} $3!="swapper" && $3!~/^kworker/ && $3!="perf" && $3!~/^ksoftirqd/ {b+=$2} END{print a, b}' "$tmp/comm.txt")
		# cpu-clock at -F 4000: a sample is 250 us
		awk -v s="$s" -v r="$req" -v all="$all" -v busy="$busy" '
			$NF=="tcp_sendmsg" {sub("%","",$1); snd+=$1*all/100}
			$NF=="tcp_recvmsg" {sub("%","",$1); rcv+=$1*all/100}
			END {u=250/r; printf "%-7s %8.2f %12.2f %12.2f %8.2f\n", s, busy*u, snd*u, rcv*u, (busy-snd-rcv)*u}' "$tmp/sym.txt"
	done
done
