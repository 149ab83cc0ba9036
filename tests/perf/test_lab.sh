#!/usr/bin/env bash
# The tuning lab and compare: perf/lab's parser refuses bad experiments
# with a clear message; a dry run changes nothing; a run interrupted by
# SIGINT, or killed and then replayed from its journal, leaves every
# sysctl as it found it (as root, on net.core.busy_read: a socket
# busy-poll default nothing here uses); perf/compare finds a 10% shift in
# 10 runs a side, calls two samples of one distribution "~", and compares
# two cells of one lab run (a build axis).
#
# usage: tests/perf/test_lab.sh BUILD   (a build with gx-bench: -Dperf=true)
# Prints "ok"/"not ok"/"skip" per check, ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
build=$(realpath "${1:?usage: tests/perf/test_lab.sh BUILD}")
[ -x "$build/perf/gx-bench" ] || { echo "not ok: $build/perf/gx-bench is not built"; exit 1; }

pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   $*"; }
no() { fail=$((fail + 1)); echo "not ok $*"; }
skip() { echo "skip $*"; }
t=$(mktemp -d)
sysctl_file=/proc/sys/net/core/busy_read
orig=
cleanup() {
	pkill -KILL -f "$t/" 2>/dev/null || true
	[ -n "$orig" ] && echo "$orig" >"$sysctl_file" 2>/dev/null
	rm -rf "$t"
}
trap cleanup EXIT
lab() { perf/lab --build "$build" --out "$t/out" --journal "$t/journal.json" "$@"; }

# expect_refused NAME TEXT FILE-CONTENT: exit 2 and TEXT in the message
expect_refused() {
	printf '%b' "$3" >"$t/$1.lab"
	local out rc=0
	out=$(lab --dry-run "$t/$1.lab" 2>&1) || rc=$?
	if [ "$rc" = 2 ] && grep -qF -- "$2" <<<"$out"; then
		ok "refused, $1: $(head -1 <<<"$out")"
	else
		no "$1: exit $rc, wanted 2 and '$2'; got: $out"
	fi
}

# ---- the parser ----
expect_refused malformed "$t/malformed.lab:2: unknown setting 'repeat'" \
	'workload wake 200\nrepeat 3\nknob GONEX_SPIN_NS 0\n'
expect_refused unknown-knob "unknown knob 'GONEX_SPIN': not a GONEX_* variable of the runtime" \
	'workload wake 200\nrepeats 3\nknob GONEX_SPIN 0 2000\n'
expect_refused sysctl-not-allowed "sysctl 'net.ipv4.ip_forward' is not on the allow-list" \
	'workload wake 200\nrepeats 3\nsysctl net.ipv4.ip_forward 0 1\n'
expect_refused bad-knob-value "GONEX_SPIN_NS=fast is not valid: expected an integer" \
	'workload wake 200\nrepeats 3\nknob GONEX_SPIN_NS 0 fast\n'
expect_refused knob-out-of-range "GONEX_WORKERS=65 is not valid: expected -1 to 64" \
	'workload wake 200\nrepeats 3\nknob GONEX_WORKERS 1 65\n'
expect_refused bad-sysctl-value "net.core.busy_read=-1 is not valid" \
	'workload wake 200\nrepeats 3\nsysctl net.core.busy_read -1\n'
expect_refused unknown-workload "unknown workload 'wakeup'" \
	'workload wakeup 200\nrepeats 3\nknob GONEX_SPIN_NS 0\n'
expect_refused no-repeats "no repeats line" \
	'workload wake 200\nknob GONEX_SPIN_NS 0\n'
expect_refused empty-grid "the grid is empty" \
	'workload wake 200\nrepeats 3\n'
expect_refused twice "'GONEX_SPIN_NS' is given twice" \
	'workload wake 200\nrepeats 3\nknob GONEX_SPIN_NS 0\nknob GONEX_SPIN_NS 1\n'
expect_refused no-build-dir "build old: /nonexistent/build-perf is not a meson build directory" \
	'workload wake 200\nrepeats 3\nbuild old=/nonexistent/build-perf new=../build-perf\n'

# ---- the README's example, dry ----
before=$(cat "$sysctl_file" 2>/dev/null || echo none)
rc=0
out=$(lab --dry-run --seed 1 perf/experiments/spin-busypoll.lab 2>&1) || rc=$?
if [ "$rc" = 0 ] && grep -q '^plan:' <<<"$out" && grep -q 'estimated  about' <<<"$out" &&
	[ "$(grep -c 'round [0-9]' <<<"$out")" = 40 ] && [ ! -e "$t/journal.json" ] && [ ! -e "$t/out" ]; then
	ok "dry run of perf/experiments/spin-busypoll.lab: 40 runs planned, nothing written"
else
	no "dry run: exit $rc: $out"
fi

# ---- compare ----
python3 - "$t" <<'EOF'
import json, random, sys
t = sys.argv[1]
r = random.Random(20261207)
def lab(cells):
    return {"kind": "gonex-lab", "name": "synthetic", "cells": [
        {"label": "c", "settings": {}, "figures": {n: {"unit": u, "values": v} for n, u, v in cells}}]}
a = [r.gauss(100, 2) for _ in range(10)]
json.dump(lab([("rtt", "ns", a), ("rate", "Mmsg/s", a)]), open(t + "/old.json", "w"))
json.dump(lab([("rtt", "ns", [r.gauss(110, 2) for _ in range(10)]),
               ("rate", "Mmsg/s", [r.gauss(100, 2) for _ in range(10)])]), open(t + "/new.json", "w"))
json.dump(lab([("rtt", "ns", a), ("rate", "Mmsg/s", a)]), open(t + "/same.json", "w"))
# one lab run with a build axis: old and new cells side by side
ab = {"kind": "gonex-lab", "name": "ab", "cells": [
    {"label": "build=%s" % b, "settings": {"build": b}, "figures": {"rtt": {"unit": "ns", "values": v}}}
    for b, v in (("old", a), ("new", [x * 0.9 for x in a]))]}
json.dump(ab, open(t + "/ab.json", "w"))
EOF
rc=0
out=$(perf/compare --out "$t/cmp" "$t/old.json" "$t/new.json" 2>&1) || rc=$?
if [ "$rc" = 1 ] && grep -qE '^rtt \[c\] .* \+[0-9.]+% +p<0\.001 n=10\+10 +worse' <<<"$out" &&
	grep -qE '^rate \[c\] .* ~ +p=' <<<"$out" && grep -q 'worse beyond 5%: rtt \[c\]' <<<"$out"; then
	ok "compare: a 10% shift in 10 runs a side is significant and worse (exit 1); the same distribution is ~"
else
	no "compare: exit $rc: $out"
fi
rc=0
out=$(perf/compare --threshold 15 --out "$t/cmp" "$t/old.json" "$t/new.json" 2>&1) || rc=$?
[ "$rc" = 0 ] && ok "compare: under --threshold 15 the +10% does not fail" || no "compare --threshold 15: exit $rc: $out"
rc=0
out=$(perf/compare --out "$t/cmp" "$t/old.json" "$t/same.json" 2>&1) || rc=$?
if [ "$rc" = 0 ] && [ "$(grep -c ' ~ ' <<<"$out")" = 2 ]; then
	ok "compare: identical runs are ~ on every figure (exit 0)"
else
	no "compare identical: exit $rc: $out"
fi
rc=0
out=$(perf/compare --out "$t/cmp" "$t/ab.json:build=old" "$t/ab.json:build=new" 2>&1) || rc=$?
if [ "$rc" = 0 ] && grep -qE '^rtt \[-\] .* -10\.0% +p<0\.001 n=10\+10 +better' <<<"$out"; then
	ok "compare: two cells of one lab run (:build=old against :build=new), 10% faster is better"
else
	no "compare with selectors: exit $rc: $out"
fi
rc=0
out=$(perf/compare --out "$t/cmp" "$t/ab.json:build=gone" "$t/ab.json:build=new" 2>&1) || rc=$?
[ "$rc" = 2 ] && grep -q "no cell with build=gone" <<<"$out" && ok "compare: a selector no cell has: exit 2" ||
	no "compare bad selector: exit $rc: $out"
python3 - "$t" <<'EOF'
import json, sys
t = sys.argv[1]
for name, v in (("tie-a", [1.5, 1.5, 1.5]), ("tie-b", [2.0, 2.0, 2.0])):
    json.dump({"kind": "gonex-lab", "name": name, "cells": [{"label": "c", "settings": {},
              "figures": {"wakeups": {"unit": "/s", "values": v}}}]}, open("%s/%s.json" % (t, name), "w"))
EOF
rc=0
out=$(perf/compare --out "$t/cmp" "$t/tie-a.json" "$t/tie-b.json" 2>&1) || rc=$?
if [ "$rc" = 0 ] && grep -qE '^wakeups \[c\] .* ~ +p=0\.100 n=3\+3' <<<"$out"; then
	ok "compare: 3 tied runs a side apart are ~ (exact p = 0.1, as with untied runs)"
else
	no "compare ties: exit $rc: $out"
fi
rc=0
out=$(perf/compare --out "$t/cmp" "$t/old.json" /etc/hostname 2>&1) || rc=$?
[ "$rc" = 2 ] && ok "compare: a file that is no result: exit 2 ($out)" || no "compare bad file: exit $rc: $out"

# ---- sysctls put back ----
if [ "$(id -u)" != 0 ] || ! [ -w "$sysctl_file" ]; then
	skip "restore after SIGINT and after a kill: needs root and a writable $sysctl_file"
else
	orig=$(cat "$sysctl_file")
	v1=$((orig + 3)) v2=$((orig + 4))
	printf 'name restore\nworkload quiet 2 1\nrepeats 3\nsysctl net.core.busy_read %s %s\n' "$v1" "$v2" >"$t/restore.lab"

	# start_lab: the lab in the background; waits until it changed the
	# sysctl (else the check could not fail), 0 when it did
	start_lab() {
		setsid perf/lab --build "$build" --out "$t/out" --journal "$t/journal.json" "$t/restore.lab" \
			>"$t/lab.log" 2>&1 &
		labpid=$!
		for _ in $(seq 300); do
			v=$(cat "$sysctl_file")
			[ "$v" = "$v1" ] || [ "$v" = "$v2" ] && return 0
			kill -0 "$labpid" 2>/dev/null || return 1
			sleep 0.1
		done
		return 1
	}
	# stopped_clean WHAT STATUS: the lab (started by start_lab, signalled
	# by the caller) exits with STATUS, the sysctl is back, its journal
	# gone and no gx-bench of it left
	stopped_clean() {
		local rc=0 now left
		wait "$labpid" || rc=$?
		now=$(cat "$sysctl_file")
		sleep 0.5
		left=$(pgrep -f "gx-bench quiet 2 1" | grep -v "^$$\$" || true)
		if [ "$rc" = "$2" ] && [ "$now" = "$orig" ] && [ ! -e "$t/journal.json" ] && [ -z "$left" ]; then
			ok "$1 mid-run: exit $2, net.core.busy_read back to $orig, journal gone, no gx-bench left"
		else
			no "$1: exit $rc, busy_read $now (was $orig), journal $(ls "$t/journal.json" 2>&1), left: $left; $(tail -5 "$t/lab.log")"
		fi
	}
	if start_lab; then
		kill -INT "$labpid"
		stopped_clean SIGINT 130
	else
		no "the lab never set net.core.busy_read: $(tail -5 "$t/lab.log")"
	fi

	if start_lab; then
		# a burst of signals: the handler only notes them; the clean-up runs once
		for _ in $(seq 300); do kill -HUP "$labpid" 2>/dev/null || break; done
		stopped_clean "300 SIGHUPs" 129
	else
		no "the lab never set net.core.busy_read: $(tail -5 "$t/lab.log")"
	fi

	if start_lab; then
		# a second run that sets sysctls is refused while this one runs
		rc=0
		out=$(lab --journal "$t/other.json" "$t/restore.lab" 2>&1) || rc=$?
		if [ "$rc" = 2 ] && grep -q "another perf/lab run (pid $labpid) is changing sysctls" <<<"$out"; then
			ok "a second run meanwhile is refused: $out"
		else
			no "second run: exit $rc: $out"
		fi
		kill -KILL "$labpid"
		wait "$labpid" 2>/dev/null
		now=$(cat "$sysctl_file")
		if [ "$now" != "$orig" ] && [ -s "$t/journal.json" ]; then
			ok "killed mid-run: net.core.busy_read left at $now, the journal kept $orig"
		else
			no "killed: busy_read $now, journal: $(cat "$t/journal.json" 2>&1)"
		fi
		rc=0
		out=$(lab --restore 2>&1) || rc=$?
		now=$(cat "$sysctl_file")
		if [ "$rc" = 0 ] && [ "$now" = "$orig" ] && [ ! -e "$t/journal.json" ] && grep -q 'replayed the restore journal' <<<"$out"; then
			ok "perf/lab --restore replays the journal: net.core.busy_read back to $orig"
		else
			no "--restore: exit $rc, busy_read $now: $out"
		fi
	else
		no "the lab never set net.core.busy_read: $(tail -5 "$t/lab.log")"
	fi

	# the next run replays a journal it finds before it starts
	echo "$v2" >"$sysctl_file"
	printf '{"pid": 999999999, "started": "test", "values": {"net.core.busy_read": "%s"}}\n' "$orig" >"$t/journal.json"
	printf 'workload yield 1000\nrepeats 1\nknob GONEX_SPIN_NS 0\n' >"$t/next.lab"
	rc=0
	out=$(lab "$t/next.lab" 2>&1) || rc=$?
	now=$(cat "$sysctl_file")
	if [ "$rc" = 0 ] && [ "$now" = "$orig" ] && [ ! -e "$t/journal.json" ] && grep -q 'replayed the restore journal' <<<"$out"; then
		ok "the next run replays a journal left by a crash first: net.core.busy_read $v2 -> $orig"
	else
		no "next run: exit $rc, busy_read $now: $out"
	fi

	if command -v runuser >/dev/null && id nobody >/dev/null 2>&1; then
		cp "$t/restore.lab" "$t/nobody.lab" && chmod 755 "$t" && chmod 644 "$t/nobody.lab"
		rc=0
		out=$(runuser -u nobody -- perf/lab --build "$build" --out "$t/out" --journal "$t/j2.json" "$t/nobody.lab" 2>&1) || rc=$?
		if [ "$rc" = 2 ] && grep -q 'needs root, to write /proc/sys/net/core/busy_read' <<<"$out" &&
			[ "$(cat "$sysctl_file")" = "$orig" ]; then
			ok "without root: exit 2, and it says what it needs ($out)"
		else
			no "as nobody: exit $rc: $out"
		fi
	else
		skip "without root: no runuser or no user nobody"
	fi
fi

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
