#!/bin/sh
# gdb's `bt` from inside a coroutine reaches the coroutine's entry function
# and stops cleanly at the trampoline (no "corrupt stack", no frames past it).
set -eu
prog=$1
out=$(gdb -nx -batch -ex 'set debuginfod enabled off' -ex 'break bt_here' -ex run -ex bt "$prog" 2>&1) || true
printf '%s\n' "$out"
fail() { echo "gdb_bt: FAIL: $*"; exit 1; }
printf '%s\n' "$out" | grep -q 'bt_here' || fail "breakpoint not reached"
printf '%s\n' "$out" | grep -q 'bt_middle' || fail "no bt_middle frame"
printf '%s\n' "$out" | grep -q 'bt_coroutine_entry' || fail "entry function not reached"
printf '%s\n' "$out" | grep -q 'gx_arch_trampoline' || fail "trampoline frame missing"
if printf '%s\n' "$out" | grep -Eq 'corrupt stack|previous frame identical|Backtrace stopped: previous frame inner'; then
  fail "unwinding did not stop cleanly"
fi
last=$(printf '%s\n' "$out" | grep -E '^#[0-9]+' | tail -n 1)
case "$last" in *gx_arch_trampoline*) ;; *) fail "last frame is not the trampoline: $last" ;; esac
echo "gdb_bt: ok"
