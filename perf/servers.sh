#!/usr/bin/env bash
# perf/servers.sh: the server comparisons of BENCHMARKS.md, side by side in
# one run. Servers are pinned to CPU 1, the load generator to CPU 0.
#   httpd (io_uring), httpd (GONEX_BACKEND=epoll), httpd-epoll (baseline),
#   nginx (one worker, `return 200`): wrk -t1 -c64 --latency
#   echo (io_uring), echo (epoll backend), echo-epoll (baseline):
#   perf/echo-load, 64-byte ping-pong at 1, 16 and 128 connections
# Each cell is the median of RUNS runs, taken in turns (A B C A B C ...).
# Prints RESULT lines and writes perf/results/servers.md.
#
# usage: perf/servers.sh [--quick] [--runs N] [--duration S] [--build DIR]
# Needs wrk and nginx (perf/run.sh installs them) and a built build dir
# (default build-perf).
set -euo pipefail
cd "$(dirname "$0")/.."

runs=3 dur=5 build=build-perf
while (($#)); do
	case $1 in
	--quick) runs=1; dur=2 ;;
	--runs) runs=$2; shift ;;
	--duration) dur=$2; shift ;;
	--build) build=$2; shift ;;
	*) echo "usage: perf/servers.sh [--quick] [--runs N] [--duration S] [--build DIR]" >&2; exit 2 ;;
	esac
	shift
done
for t in wrk nginx taskset; do
	command -v "$t" >/dev/null || { echo "perf/servers.sh: $t is missing (perf/run.sh installs it)" >&2; exit 1; }
done
[ "$(nproc)" -ge 2 ] || { echo "perf/servers.sh: needs 2 CPUs (server and load apart)" >&2; exit 1; }
b=$build/perf
tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
	# a server that does not stop within 5 s is a bug: say so, then kill it
	for _ in $(seq 50); do
		alive=0
		for p in "${pids[@]:-}"; do [ -n "$p" ] && kill -0 "$p" 2>/dev/null && alive=1; done
		[ $alive = 0 ] && break
		sleep 0.1
	done
	for p in "${pids[@]:-}"; do
		if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
			echo "perf/servers.sh: pid $p ignored SIGTERM; killing it" >&2
			kill -9 "$p" 2>/dev/null || true
		fi
	done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }

start() { # start NAME PORT CMD... ; remembers the pid
	local name=$1 port=$2; shift 2
	"$@" >"$tmp/$name.log" 2>&1 &
	pids+=($!)
	eval "pid_$name=$!"
	wait_port "$port" || { echo "perf/servers.sh: $name did not start:"; cat "$tmp/$name.log"; exit 1; }
}

cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }

median() { sort -g | awk '{v[NR]=$1} END {if (NR==0) print "nan"; else if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }

# ---- httpd ----
declare -A port
for s in gonex gonex_epoll baseline nginx; do port[$s]=$(free_port); done
start gonex "${port[gonex]}" taskset -c 1 "$b/httpd" --port "${port[gonex]}"
GONEX_BACKEND=epoll start gonex_epoll "${port[gonex_epoll]}" taskset -c 1 "$b/httpd" --port "${port[gonex_epoll]}"
start baseline "${port[baseline]}" taskset -c 1 "$b/httpd-epoll" --port "${port[baseline]}"
mkdir -p "$tmp/nginx"
cat >"$tmp/nginx/nginx.conf" <<NGX
worker_processes 1;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 100000000;
  server {
    listen 127.0.0.1:${port[nginx]};
    location / { default_type text/plain; return 200 "Hello, World!"; }
  }
}
NGX
start nginx "${port[nginx]}" taskset -c 1 nginx -c "$tmp/nginx/nginx.conf" -p "$tmp/nginx"
nginx_worker=$(pgrep -P "$pid_nginx" | head -1 || true)
[ -n "$nginx_worker" ] || nginx_worker=$pid_nginx

echo "== httpd: wrk -t1 -c64 -d${dur}s, ${runs} run(s) each, in turns"
for r in $(seq "$runs"); do
	for s in gonex gonex_epoll baseline nginx; do
		p=$(eval echo "\$pid_$s"); [ "$s" = nginx ] && p=$nginx_worker
		c0=$(cpu_ticks "$p")
		taskset -c 0 wrk -t1 -c64 -d"${dur}s" --latency "http://127.0.0.1:${port[$s]}/" >"$tmp/wrk.txt"
		c1=$(cpu_ticks "$p")
		rps=$(awk '/Requests\/sec/ {print $2}' "$tmp/wrk.txt")
		p99=$(awk '$1=="99%" {v=$2; if (v ~ /ms$/) {sub("ms","",v); v*=1000} else if (v ~ /us$/) sub("us","",v); else if (v ~ /s$/) {sub("s","",v); v*=1000000}; print v}' "$tmp/wrk.txt")
		cpu=$(awk -v a="$c0" -v b="$c1" -v d="$dur" 'BEGIN {printf "%.0f", (b-a)/d}')
		echo "$rps" >>"$tmp/h_rps_$s"; echo "$p99" >>"$tmp/h_p99_$s"; echo "$cpu" >>"$tmp/h_cpu_$s"
		printf '  run %d %-12s %10.0f req/s  p99 %8.1f us  server cpu %s%%\n' "$r" "$s" "$rps" "$p99" "$cpu"
	done
done
for s in gonex gonex_epoll baseline nginx; do
	eval "H_rps_$s=$(median <"$tmp/h_rps_$s")"; eval "H_p99_$s=$(median <"$tmp/h_p99_$s")"; eval "H_cpu_$s=$(median <"$tmp/h_cpu_$s")"
done

# ---- echo ----
for s in gonex gonex_epoll baseline; do port[e_$s]=$(free_port); done
start e_gonex "${port[e_gonex]}" taskset -c 1 "$b/echo" --port "${port[e_gonex]}"
GONEX_BACKEND=epoll start e_gonex_epoll "${port[e_gonex_epoll]}" taskset -c 1 "$b/echo" --port "${port[e_gonex_epoll]}"
start e_baseline "${port[e_baseline]}" taskset -c 1 "$b/echo-epoll" --port "${port[e_baseline]}"
echo "== echo: 64-byte ping-pong, ${dur}s, ${runs} run(s) each, in turns"
for c in 1 16 128; do
	for r in $(seq "$runs"); do
		for s in gonex gonex_epoll baseline; do
			"$b/echo-load" --port "${port[e_$s]}" --conns "$c" --size 64 --duration "$dur" --warmup 1 --cpu 0 >"$tmp/el.txt"
			mps=$(awk '$2=="echo_msgs_per_s" {print $3}' "$tmp/el.txt")
			p99=$(awk '$2=="echo_p99" {print $3}' "$tmp/el.txt")
			echo "$mps" >>"$tmp/e_mps_${s}_$c"; echo "$p99" >>"$tmp/e_p99_${s}_$c"
			printf '  conns %3d run %d %-12s %10.0f msg/s  p99 %8.1f us\n' "$c" "$r" "$s" "$mps" "$p99"
		done
	done
done

# ---- report ----
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.3f", a/b; else print "nan"}'; }
mkdir -p perf/results
out=perf/results/servers.md
{
	echo "# Server comparisons ($(date -u +%Y-%m-%dT%H:%M:%SZ), kernel $(uname -r), medians of $runs run(s) of ${dur}s)"
	echo
	echo "Servers on CPU 1, load on CPU 0. Ratios are against the same run's baseline."
	echo
	echo "| httpd (wrk -t1 -c64) | req/s | p99 (us) | server CPU % | vs nginx | vs httpd-epoll |"
	echo "|---|---:|---:|---:|---:|---:|"
	for s in gonex gonex_epoll baseline nginx; do
		eval "r=\$H_rps_$s p=\$H_p99_$s c=\$H_cpu_$s"
		echo "| $s | $r | $p | $c | $(ratio "$r" "$H_rps_nginx") | $(ratio "$r" "$H_rps_baseline") |"
	done
	echo
	echo "| echo, 64 B ping-pong | conns | msg/s | p99 (us) | vs echo-epoll |"
	echo "|---|---:|---:|---:|---:|"
	for c in 1 16 128; do
		base=$(median <"$tmp/e_mps_baseline_$c")
		for s in gonex gonex_epoll baseline; do
			m=$(median <"$tmp/e_mps_${s}_$c"); p=$(median <"$tmp/e_p99_${s}_$c")
			echo "| $s | $c | $m | $p | $(ratio "$m" "$base") |"
		done
	done
} >"$out"
cat "$out"
echo
echo "RESULT httpd_rps_vs_nginx $(ratio "$H_rps_gonex" "$H_rps_nginx") ratio rps=$H_rps_gonex nginx=$H_rps_nginx"
echo "RESULT httpd_p99 $H_p99_gonex us nginx=$H_p99_nginx"
echo "RESULT httpd_p99_vs_nginx $(ratio "$H_p99_gonex" "$H_p99_nginx") ratio"
for c in 16 128; do
	echo "RESULT echo_p99_vs_epoll_c$c $(ratio "$(median <"$tmp/e_p99_gonex_$c")" "$(median <"$tmp/e_p99_baseline_$c")") ratio"
done
echo "RESULT httpd_epoll_backend_vs_baseline $(ratio "$H_rps_gonex_epoll" "$H_rps_baseline") ratio"
for c in 1 16 128; do
	echo "RESULT echo_vs_epoll_c$c $(ratio "$(median <"$tmp/e_mps_gonex_$c")" "$(median <"$tmp/e_mps_baseline_$c")") ratio"
	echo "RESULT echo_epoll_backend_vs_baseline_c$c $(ratio "$(median <"$tmp/e_mps_gonex_epoll_$c")" "$(median <"$tmp/e_mps_baseline_$c")") ratio"
done
