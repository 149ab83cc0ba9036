#!/usr/bin/env bash
# perf/servers.sh: the server comparisons of BENCHMARKS.md, side by side in
# one run. Servers are pinned to CPU 0, the load generator to CPU 1.
#   examples/httpd (io_uring), examples/httpd (GONEX_BACKEND=epoll),
#   perf/httpd-epoll (baseline), nginx (one worker, `return 200`):
#   wrk -t1 -c64 --latency; then httpd and nginx again, each under a 25%
#   CPU quota (a cgroup, as root; skipped without one)
#   examples/echo (io_uring), examples/echo (epoll backend), perf/echo-epoll
#   (baseline): perf/echo-load, 64-byte ping-pong at 1, 16 and 128
#   connections
#   examples/kv against redis-server (--save '' --appendonly no):
#   redis-benchmark -t set,get -n 200000 -c 50 at -P 1 and -P 16 (quick:
#   -n 50000), and each again under a 25% CPU quota
# Server CPU is utime+stime of the server's processes (a gx_serve master
# and its workers, nginx's worker) over each run; CPU per request is that
# over the requests answered. Each cell is the median of RUNS runs (5),
# taken in turns (A B C A B C ...).
# Prints RESULT lines and writes perf/results/servers.md.
#
# usage: perf/servers.sh [--quick] [--runs N] [--duration S] [--build DIR]
# Needs wrk and nginx (perf/run.sh installs them) and a built build dir
# (default build-perf).
set -euo pipefail
cd "$(dirname "$0")/.."

runs=5 dur=5 build=build-perf
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
for t in wrk nginx taskset redis-server redis-benchmark; do
	command -v "$t" >/dev/null || { echo "perf/servers.sh: $t is missing (perf/run.sh installs it)" >&2; exit 1; }
done
[ "$(nproc)" -ge 2 ] || { echo "perf/servers.sh: needs 2 CPUs (server and load apart)" >&2; exit 1; }
b=$build/perf
ex=$build/examples
tmp=$(mktemp -d)
quota_dirs=()
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
	for d in "${quota_dirs[@]:-}"; do [ -n "$d" ] && rmdir "$d" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT

# free_port, wait_port, nginx_conf
. perf/server-lib.sh

start() { # start NAME PORT CMD... ; remembers the pid
	local name=$1 port=$2; shift 2
	"$@" >"$tmp/$name.log" 2>&1 &
	pids+=($!)
	eval "pid_$name=$!"
	wait_port "$port" || { echo "perf/servers.sh: $name did not start:"; cat "$tmp/$name.log"; exit 1; }
}

# utime+stime (clock ticks) of a process and its children, live ones included
# (fields 14 and 15 of /proc/PID/stat, counted after the command name,
# which may hold spaces: "gonex-serve 0")
cpu_ticks() {
	local t=0 p
	for p in "$1" $(pgrep -P "$1" || true); do
		t=$((t + $(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12+$13}' || echo 0)))
	done
	echo "$t"
}

# A cgroup (v1 cpu controller, or v2) holding pid and its children at 25%
# of one CPU: 0, or 1 when this machine or user cannot make one.
quota() { # quota NAME PID
	local d
	if [ -w /sys/fs/cgroup/cpu ] && [ -e /sys/fs/cgroup/cpu/cpu.cfs_quota_us ]; then
		d=/sys/fs/cgroup/cpu/gx-servers-$1-$$
		mkdir "$d" 2>/dev/null || return 1
		echo 100000 >"$d/cpu.cfs_period_us" && echo 25000 >"$d/cpu.cfs_quota_us" || return 1
	elif [ -w /sys/fs/cgroup/cgroup.subtree_control ] && grep -qw cpu /sys/fs/cgroup/cgroup.controllers; then
		d=/sys/fs/cgroup/gx-servers-$1-$$
		mkdir "$d" 2>/dev/null || return 1
		echo "25000 100000" >"$d/cpu.max" || return 1
	else
		return 1
	fi
	quota_dirs+=("$d")
	local p
	for p in "$2" $(pgrep -P "$2" || true); do echo "$p" >"$d/cgroup.procs" || return 1; done
}

median() { sort -g | awk '{v[NR]=$1} END {if (NR==0) print "nan"; else if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }

# ---- httpd ----
declare -A port
for s in gonex gonex_epoll baseline nginx; do port[$s]=$(free_port); done
start gonex "${port[gonex]}" "$ex/httpd" --cpu 0 --port "${port[gonex]}"
GONEX_BACKEND=epoll start gonex_epoll "${port[gonex_epoll]}" "$ex/httpd" --cpu 0 --port "${port[gonex_epoll]}"
start baseline "${port[baseline]}" taskset -c 0 "$b/httpd-epoll" --port "${port[baseline]}"
mkdir -p "$tmp/nginx"
nginx_conf "$tmp/nginx" "${port[nginx]}"
start nginx "${port[nginx]}" taskset -c 0 nginx -c "$tmp/nginx/nginx.conf" -p "$tmp/nginx"
nginx_worker=$(pgrep -P "$pid_nginx" | head -1 || true)
[ -n "$nginx_worker" ] || nginx_worker=$pid_nginx

wrk_run() { # wrk_run SERVER PREFIX: one wrk run against SERVER, figures into PREFIX files
	local s=$1 f=$2 p c0 c1 rps p99 cpu
	p=$(eval echo "\$pid_$s"); [ "$s" = nginx ] && p=$nginx_worker
	c0=$(cpu_ticks "$p")
	taskset -c 1 wrk -t1 -c64 -d"${dur}s" --latency "http://127.0.0.1:${port[$s]}/" >"$tmp/wrk.txt"
	c1=$(cpu_ticks "$p")
	rps=$(awk '/Requests\/sec/ {print $2}' "$tmp/wrk.txt")
	p99=$(awk '$1=="99%" {v=$2; if (v ~ /ms$/) {sub("ms","",v); v*=1000} else if (v ~ /us$/) sub("us","",v); else if (v ~ /s$/) {sub("s","",v); v*=1000000}; print v}' "$tmp/wrk.txt")
	cpu=$(awk -v a="$c0" -v b="$c1" -v d="$dur" -v t="$(getconf CLK_TCK)" 'BEGIN {printf "%.1f", (b-a)*100/t/d}')
	echo "$rps" >>"$tmp/${f}_rps_$s"; echo "$p99" >>"$tmp/${f}_p99_$s"; echo "$cpu" >>"$tmp/${f}_cpu_$s"
	awk -v c="$cpu" -v r="$rps" 'BEGIN {printf "%.3f\n", (r > 0 ? c * 10000 / r : 0)}' >>"$tmp/${f}_us_$s"
	printf '  run %d %-12s %10.0f req/s  p99 %8.1f us  server cpu %s%%\n' "$r" "$s" "$rps" "$p99" "$cpu"
}

echo "== httpd: wrk -t1 -c64 -d${dur}s, ${runs} run(s) each, in turns"
for r in $(seq "$runs"); do
	for s in gonex gonex_epoll baseline nginx; do wrk_run "$s" h; done
done
for s in gonex gonex_epoll baseline nginx; do
	for k in rps p99 cpu us; do eval "H_${k}_$s=$(median <"$tmp/h_${k}_$s")"; done
done

quota_ok=0
if quota gonex "$pid_gonex" && quota nginx "$nginx_worker"; then
	quota_ok=1
	echo "== httpd under a 25% CPU quota: wrk -t1 -c64 -d${dur}s, ${runs} run(s) each, in turns"
	for r in $(seq "$runs"); do
		for s in gonex nginx; do wrk_run "$s" q; done
	done
	for s in gonex nginx; do
		for k in rps p99 cpu us; do eval "Q_${k}_$s=$(median <"$tmp/q_${k}_$s")"; done
	done
else
	echo "== httpd under a 25% CPU quota: skipped (no writable cgroup cpu controller)"
fi

# ---- echo ----
for s in gonex gonex_epoll baseline; do port[e_$s]=$(free_port); done
start e_gonex "${port[e_gonex]}" "$ex/echo" --cpu 0 --port "${port[e_gonex]}"
GONEX_BACKEND=epoll start e_gonex_epoll "${port[e_gonex_epoll]}" "$ex/echo" --cpu 0 --port "${port[e_gonex_epoll]}"
start e_baseline "${port[e_baseline]}" taskset -c 0 "$b/echo-epoll" --port "${port[e_baseline]}"
echo "== echo: 64-byte ping-pong, ${dur}s, ${runs} run(s) each, in turns"
for c in 1 16 128; do
	for r in $(seq "$runs"); do
		for s in gonex gonex_epoll baseline; do
			p=$(eval echo "\$pid_e_$s")
			c0=$(cpu_ticks "$p")
			"$b/echo-load" --port "${port[e_$s]}" --conns "$c" --size 64 --duration "$dur" --warmup 1 --cpu 1 >"$tmp/el.txt"
			c1=$(cpu_ticks "$p") # includes the 1 s warm-up: CPU over dur + 1 s of messages at the same rate
			mps=$(awk '$2=="echo_msgs_per_s" {print $3}' "$tmp/el.txt")
			p99=$(awk '$2=="echo_p99" {print $3}' "$tmp/el.txt")
			us=$(awk -v a="$c0" -v b="$c1" -v d="$dur" -v t="$(getconf CLK_TCK)" -v m="$mps" \
				'BEGIN {printf "%.3f", (m > 0 ? (b-a)/t/(d+1)*1e6/m : 0)}')
			echo "$mps" >>"$tmp/e_mps_${s}_$c"; echo "$p99" >>"$tmp/e_p99_${s}_$c"; echo "$us" >>"$tmp/e_us_${s}_$c"
			printf '  conns %3d run %d %-12s %10.0f msg/s  p99 %8.1f us  cpu %s us/msg\n' "$c" "$r" "$s" "$mps" "$p99" "$us"
		done
	done
done

# ---- kv ----
kvn=200000; ((runs == 1)) && kvn=50000
for s in kv redis; do port[k_$s]=$(free_port); done
start k_kv "${port[k_kv]}" "$ex/kv" --cpu 0 --port "${port[k_kv]}"
start k_redis "${port[k_redis]}" taskset -c 0 redis-server --port "${port[k_redis]}" --save '' --appendonly no
kv_run() { # kv_run SERVER PIPELINE PREFIX
	local s=$1 P=$2 f=$3 p c0 c1 t
	p=$(eval echo "\$pid_k_$s")
	c0=$(cpu_ticks "$p"); t0=$(date +%s.%N)
	taskset -c 1 redis-benchmark -p "${port[k_$s]}" -t set,get -n "$kvn" -c 50 -P "$P" --csv >"$tmp/rb.csv" 2>/dev/null
	c1=$(cpu_ticks "$p"); t1=$(date +%s.%N)
	for op in SET GET; do
		awk -F'"' -v op="$op" '$2==op {print $4, $14*1000}' "$tmp/rb.csv" >"$tmp/rb.$op"
		read -r rps p99 <"$tmp/rb.$op"
		echo "$rps" >>"$tmp/${f}_rps_${s}_${op}_$P"; echo "$p99" >>"$tmp/${f}_p99_${s}_${op}_$P"
	done
	# CPU per request over both tests: ticks / (requests of SET and GET)
	awk -v a="$c0" -v b="$c1" -v t="$(getconf CLK_TCK)" -v n="$kvn" 'BEGIN {printf "%.3f\n", (b-a)/t*1e6/(2*n)}' \
		>>"$tmp/${f}_us_${s}_$P"
	printf '  -P %-2s run %d %-6s SET %10.0f GET %10.0f req/s  cpu %s us/req\n' "$P" "$r" "$s" \
		"$(tail -1 "$tmp/${f}_rps_${s}_SET_$P")" "$(tail -1 "$tmp/${f}_rps_${s}_GET_$P")" "$(tail -1 "$tmp/${f}_us_${s}_$P")"
}
echo "== kv: redis-benchmark -t set,get -n $kvn -c 50, ${runs} run(s) each, in turns"
for P in 1 16; do
	for r in $(seq "$runs"); do
		for s in kv redis; do kv_run "$s" "$P" k; done
	done
done
kquota_ok=0
if quota kv "$pid_k_kv" && quota redis "$pid_k_redis"; then
	kquota_ok=1
	echo "== kv under a 25% CPU quota"
	for P in 1 16; do
		for r in $(seq "$runs"); do
			for s in kv redis; do kv_run "$s" "$P" kq; done
		done
	done
fi

# ---- report ----
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.3f", a/b; else print "nan"}'; }
mkdir -p perf/results
out=perf/results/servers.md
{
	echo "# Server comparisons ($(date -u +%Y-%m-%dT%H:%M:%SZ), kernel $(uname -r), medians of $runs run(s) of ${dur}s)"
	echo
	echo "Servers on CPU 0, load on CPU 1. Ratios are against the same run's baseline."
	echo
	echo "| httpd (wrk -t1 -c64) | req/s | p99 (us) | server CPU % | CPU us/req | req/s vs nginx | CPU/req vs nginx | req/s vs httpd-epoll | CPU/req vs httpd-epoll |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
	for s in gonex gonex_epoll baseline nginx; do
		eval "r=\$H_rps_$s p=\$H_p99_$s c=\$H_cpu_$s u=\$H_us_$s"
		echo "| $s | $r | $p | $c | $u | $(ratio "$r" "$H_rps_nginx") | $(ratio "$u" "$H_us_nginx") | $(ratio "$r" "$H_rps_baseline") | $(ratio "$u" "$H_us_baseline") |"
	done
	if ((quota_ok)); then
		echo
		echo "| httpd under a 25% CPU quota | req/s | p99 (us) | CPU us/req | req/s vs nginx |"
		echo "|---|---:|---:|---:|---:|"
		for s in gonex nginx; do
			eval "r=\$Q_rps_$s p=\$Q_p99_$s u=\$Q_us_$s"
			echo "| $s | $r | $p | $u | $(ratio "$r" "$Q_rps_nginx") |"
		done
	fi
	echo
	echo "| echo, 64 B ping-pong | conns | msg/s | p99 (us) | CPU us/msg | msg/s vs echo-epoll | CPU/msg vs echo-epoll |"
	echo "|---|---:|---:|---:|---:|---:|---:|"
	for c in 1 16 128; do
		base=$(median <"$tmp/e_mps_baseline_$c"); ubase=$(median <"$tmp/e_us_baseline_$c")
		for s in gonex gonex_epoll baseline; do
			m=$(median <"$tmp/e_mps_${s}_$c"); p=$(median <"$tmp/e_p99_${s}_$c"); u=$(median <"$tmp/e_us_${s}_$c")
			echo "| $s | $c | $m | $p | $u | $(ratio "$m" "$base") | $(ratio "$u" "$ubase") |"
		done
	done
	echo
	echo "| kv (redis-benchmark -c 50) | -P | SET req/s | GET req/s | SET p99 (us) | GET p99 (us) | CPU us/req | req/s vs redis (SET, GET) | CPU/req vs redis |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
	for P in 1 16; do
		for s in kv redis; do
			ss=$(median <"$tmp/k_rps_${s}_SET_$P"); gg=$(median <"$tmp/k_rps_${s}_GET_$P")
			echo "| $s | $P | $ss | $gg | $(median <"$tmp/k_p99_${s}_SET_$P") | $(median <"$tmp/k_p99_${s}_GET_$P") |" \
				"$(median <"$tmp/k_us_${s}_$P") | $(ratio "$ss" "$(median <"$tmp/k_rps_redis_SET_$P")"), $(ratio "$gg" "$(median <"$tmp/k_rps_redis_GET_$P")") |" \
				"$(ratio "$(median <"$tmp/k_us_${s}_$P")" "$(median <"$tmp/k_us_redis_$P")") |"
		done
	done
	if ((kquota_ok)); then
		echo
		echo "| kv under a 25% CPU quota | -P | SET req/s | GET req/s | vs redis (SET, GET) |"
		echo "|---|---:|---:|---:|---:|"
		for P in 1 16; do
			for s in kv redis; do
				ss=$(median <"$tmp/kq_rps_${s}_SET_$P"); gg=$(median <"$tmp/kq_rps_${s}_GET_$P")
				echo "| $s | $P | $ss | $gg | $(ratio "$ss" "$(median <"$tmp/kq_rps_redis_SET_$P")"), $(ratio "$gg" "$(median <"$tmp/kq_rps_redis_GET_$P")") |"
			done
		done
	fi
} >"$out"
cat "$out"
echo
echo "RESULT httpd_rps_vs_nginx $(ratio "$H_rps_gonex" "$H_rps_nginx") ratio rps=$H_rps_gonex nginx=$H_rps_nginx"
echo "RESULT httpd_p99 $H_p99_gonex us nginx=$H_p99_nginx"
echo "RESULT httpd_cpu_per_req_vs_nginx $(ratio "$H_us_gonex" "$H_us_nginx") ratio us=$H_us_gonex nginx=$H_us_nginx"
echo "RESULT httpd_cpu_per_req_vs_epoll $(ratio "$H_us_gonex" "$H_us_baseline") ratio baseline=$H_us_baseline"
((quota_ok)) && echo "RESULT httpd_quota25_rps_vs_nginx $(ratio "$Q_rps_gonex" "$Q_rps_nginx") ratio rps=$Q_rps_gonex nginx=$Q_rps_nginx"
echo "RESULT httpd_p99_vs_nginx $(ratio "$H_p99_gonex" "$H_p99_nginx") ratio"
for c in 16 128; do
	echo "RESULT echo_p99_vs_epoll_c$c $(ratio "$(median <"$tmp/e_p99_gonex_$c")" "$(median <"$tmp/e_p99_baseline_$c")") ratio"
done
echo "RESULT httpd_epoll_backend_vs_baseline $(ratio "$H_rps_gonex_epoll" "$H_rps_baseline") ratio"
for c in 16 128; do
	echo "RESULT echo_cpu_per_msg_vs_epoll_c$c $(ratio "$(median <"$tmp/e_us_gonex_$c")" "$(median <"$tmp/e_us_baseline_$c")") ratio"
done
for c in 1 16 128; do
	echo "RESULT echo_vs_epoll_c$c $(ratio "$(median <"$tmp/e_mps_gonex_$c")" "$(median <"$tmp/e_mps_baseline_$c")") ratio"
	echo "RESULT echo_epoll_backend_vs_baseline_c$c $(ratio "$(median <"$tmp/e_mps_gonex_epoll_$c")" "$(median <"$tmp/e_mps_baseline_$c")") ratio"
done
for P in 1 16; do
	for op in SET GET; do
		echo "RESULT kv_${op,,}_p${P}_vs_redis $(ratio "$(median <"$tmp/k_rps_kv_${op}_$P")" "$(median <"$tmp/k_rps_redis_${op}_$P")") ratio"
		echo "RESULT kv_${op,,}_p${P}_p99_vs_redis $(ratio "$(median <"$tmp/k_p99_kv_${op}_$P")" "$(median <"$tmp/k_p99_redis_${op}_$P")") ratio"
		((kquota_ok)) && echo "RESULT kv_quota25_${op,,}_p${P}_vs_redis $(ratio "$(median <"$tmp/kq_rps_kv_${op}_$P")" "$(median <"$tmp/kq_rps_redis_${op}_$P")") ratio"
	done
	echo "RESULT kv_cpu_per_req_p${P}_vs_redis $(ratio "$(median <"$tmp/k_us_kv_$P")" "$(median <"$tmp/k_us_redis_$P")") ratio"
done
true
