#!/usr/bin/env bash
# tests/run.sh: install what is missing (Debian 12, as root), build with
# warnings as errors, run every suite:
#   1. test build (-Dfp_env=true -Dsanitize_hooks=true): the Criterion core,
#      sync, io and serve suites on each backend (GONEX_BACKEND=uring and =epoll), the
#      plain arch runner, gdb's backtrace through a coroutine; the shm suite
#      twice, with 2 MiB huge pages reserved (vm.nr_hugepages=64, as root;
#      the old value is put back) and with none; the tuning lab's checks
#      (tests/perf/test_lab.sh: perf/lab and perf/compare);
#   2. ASan + UBSan build (-Db_sanitize=address,undefined, fiber
#      annotations on): the same suites, the shm suite once;
#   3. Valgrind memcheck on the core, sync and io suites and the arch runner
#      of build 1 (errors fail the suite: see vg_clean); not the shm suite;
#   4. aarch64: cross-compiled, the plain runner under qemu-aarch64-static.
# Ends with "suites: N passed, N failed"; exits non-zero if any failed.
# Options: --long (the chaos test for 60 s, the fuzz test for 200,000
# rounds), --no-install (never call apt-get), --skip-aarch64, --skip-valgrind.
set -euo pipefail
cd "$(dirname "$0")/.."

install=1 aarch64=1 valgrind=1
for a in "$@"; do
  case "$a" in
    --long)
      # the long runs of the chaos and fuzz tests (minutes, not seconds)
      export GX_TEST_CHAOS_SECONDS=60 GX_TEST_FUZZ_ROUNDS=200000 ;;
    --no-install) install=0 ;;
    --skip-aarch64) aarch64=0 ;;
    --skip-valgrind) valgrind=0 ;;
    *) echo "usage: tests/run.sh [--long] [--no-install] [--skip-aarch64] [--skip-valgrind]" >&2; exit 2 ;;
  esac
done

log() { printf '\n=== %s\n' "$*"; }

# ---- packages ----
native_pkgs=(gcc g++ meson ninja-build pkg-config liburing-dev libnuma-dev liblz4-dev libcriterion-dev valgrind gdb redis-tools)
cross_pkgs=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static liburing-dev:arm64 libnuma-dev:arm64 pkgconf:arm64)

missing() {
  local p out=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || out+=("$p")
  done
  echo "${out[@]:-}"
}

if [ "$install" = 1 ]; then
  want=("${native_pkgs[@]}")
  if [ "$aarch64" = 1 ]; then
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
      log "adding the arm64 architecture for the cross libraries"
      dpkg --add-architecture arm64
      need_update=1
    fi
    want+=("${cross_pkgs[@]}")
  fi
  todo=$(missing "${want[@]}")
  if [ -n "$todo" ] || [ "${need_update:-0}" = 1 ]; then
    log "installing: ${todo:-nothing new (package lists only)}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    # shellcheck disable=SC2086
    [ -z "$todo" ] || apt-get install -y -q --no-install-recommends $todo
  fi
fi

# ---- bookkeeping ----
passed=0 failed=0 failures=()
# Each suite's output also goes to a file; a failed suite's failure lines
# (Criterion's [FAIL] and the assertion lines before it, or the runner's
# "FAIL"/"not ok" lines, or its last lines) are repeated in the summary, so
# the tail of a long log says which test failed and why.
why_dir=$(mktemp -d) # removed on exit (the trap below)
suite() { # suite NAME CMD...
  local name=$1; shift
  log "$name"
  local rc out="$why_dir/$((passed + failed)).log"
  set +e
  "$@" 2>&1 | tee "$out" # the command runs in a subshell: no suite sets anything for later
  rc=${PIPESTATUS[0]}
  set -e
  if [ "$rc" = 0 ]; then
    passed=$((passed + 1)); echo "--- $name: ok"
  else
    # the status tells a failed test (1) from a runner killed by a signal (128+N)
    failed=$((failed + 1)); echo "--- $name: FAILED (exit status $rc)"
    local why
    why=$(grep -E -B12 '^\[FAIL\]|^(FAIL|not ok)\b|Assertion|ERROR: AddressSanitizer|runtime error:' "$out" | tail -n 40 || true)
    [ -n "$why" ] || why=$(tail -n 20 "$out")
    failures+=("$name (exit status $rc)"$'\n'"$(sed 's/^/    /' <<< "$why")")
  fi
  rm -f "$out"
}
skip() { log "$1"; echo "--- $1: SKIPPED: $2"; }

setup() { # setup DIR OPTIONS...
  local dir=$1; shift
  if [ -d "$dir/meson-private" ]; then
    meson setup --reconfigure "$dir" "$@" >/dev/null
  else
    meson setup "$dir" "$@" >/dev/null
  fi
  ninja -C "$dir"
}

jobs=$(nproc)

run_criterion() { # run_criterion BUILD SUITE BACKEND
  GONEX_BACKEND=$3 "$1/tests/test-$2" --jobs "$jobs" --short-filename
}

par_suite() { # par_suite BUILD BACKEND: one test at a time (worker processes, one timed ratio)
  GONEX_BACKEND=$2 "$1/tests/test-par" --jobs 1 --short-filename
}

uring_works() { # io_uring usable here? (denied under seccomp, qemu-user, sysctl)
  GONEX_BACKEND=uring "$1/tests/bt-demo" >/dev/null 2>&1
}

# The shm suite picks its io backends itself (each coroutine test runs on
# both), so GONEX_BACKEND is left out.
run_shm() { # run_shm BUILD
  env -u GONEX_BACKEND "$1/tests/test-shm" --jobs "$jobs" --short-filename
}

# vm.nr_hugepages: the shm suite runs with pages reserved (arenas get
# hugetlb) and with none (they fall back and say why). Changing it needs
# root; whatever it was is put back on exit.
hugepages=/proc/sys/vm/nr_hugepages
hugepages_old=$(cat "$hugepages" 2>/dev/null || true)
restore_hugepages() {
  [ -z "$hugepages_old" ] || echo "$hugepages_old" > "$hugepages" 2>/dev/null || true
}
trap 'restore_hugepages; rm -rf "$why_dir"' EXIT

shm_suites_hugepages() { # shm_suites_hugepages BUILD LABEL
  local b=$1 l=$2 got
  echo 64 > "$hugepages" 2>/dev/null || true
  got=$(cat "$hugepages" 2>/dev/null || echo 0)
  if [ "$got" -gt 0 ]; then
    suite "$l: shm suite, $got huge pages reserved" run_shm "$b"
  else
    skip "$l: shm suite, huge pages reserved" "cannot reserve 2 MiB pages (vm.nr_hugepages needs root and free memory)"
  fi
  if echo 0 > "$hugepages" 2>/dev/null || [ "$(cat "$hugepages" 2>/dev/null)" = 0 ]; then
    suite "$l: shm suite, no huge pages" run_shm "$b"
  else
    skip "$l: shm suite, no huge pages" "vm.nr_hugepages is $(cat "$hugepages") and cannot be set to 0"
  fi
  restore_hugepages
}

suites_for() { # suites_for BUILD LABEL
  local b=$1 l=$2
  local s
  for s in core sync io serve; do
    if uring_works "$b"; then
      suite "$l: $s suite, io_uring backend" run_criterion "$b" $s uring
    else
      skip "$l: $s suite, io_uring backend" "io_uring cannot be set up on this machine"
    fi
    suite "$l: $s suite, epoll backend" run_criterion "$b" $s epoll
  done
  if uring_works "$b"; then
    suite "$l: par suite, io_uring backend" par_suite "$b" uring
  else
    skip "$l: par suite, io_uring backend" "io_uring cannot be set up on this machine"
  fi
  suite "$l: par suite, epoll backend" par_suite "$b" epoll
  suite "$l: arch runner" "$b/tests/test-arch"
}

# ---- 0. what a reading of the code can check ----
suite "lint: atomics (no _Atomic cast to a plain pointer, atomic magic words, ordered atomics name their partner)" \
  python3 tests/lint/atomics.py runtime

# ---- 1. test build ----
log "build: test (warnings are errors)"
setup build-test --werror -Dfp_env=true -Dsanitize_hooks=true -Dtest_points=true -Dperf=true
suites_for build-test test
shm_suites_hugepages build-test test
suite "test: gdb backtrace through a coroutine" tests/arch/gdb_bt.sh build-test/tests/bt-demo
suite "test: the public headers from C++ (c++11, -Wpedantic)" build-test/tests/test-cxx-headers
suite "test: perf/lab and perf/compare (parser, sysctls put back after SIGINT and a kill, Mann-Whitney)" \
  tests/perf/test_lab.sh build-test

# ---- 2. sanitizers ----
log "build: asan+ubsan"
setup build-asan --werror -Db_sanitize=address,undefined -Db_lundef=false -Dsanitize_hooks=true -Dtest_points=true -Dperf=false
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp:print_suppressions=0
suites_for build-asan asan
suite "asan: shm suite" run_shm build-asan
unset ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS

# ---- 3. valgrind ----
if [ "$valgrind" = 1 ]; then
  # Criterion's runner exits 0 even when valgrind flags a test's process,
  # so every process logs to its own file and any report fails the suite.
  # The stack tests fork children that fault on purpose; the arch runner
  # covers the overflow path under valgrind.
  vg_clean() { # vg_clean CMD...
    local d; d=$(mktemp -d)
    local rc=0
    valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
      --suppressions=tests/valgrind.supp \
      --trace-children=yes --log-file="$d/vg.%p.log" "$@" || rc=$?
    # "==pid==" lines are reports; "--pid--" lines are valgrind's own notes
    # (such as its missing epoll_pwait2 wrapper, which our fallback covers)
    if cat "$d"/vg.*.log 2>/dev/null | grep -q '^==[0-9]*=='; then
      cat "$d"/vg.*.log; rc=99
    fi
    rm -rf "$d"
    return $rc
  }
  suite "valgrind: core suite" vg_clean build-test/tests/test-core --jobs "$jobs" --short-filename --filter '!(stack/*)'
  suite "valgrind: sync suite" vg_clean build-test/tests/test-sync --jobs "$jobs" --short-filename
  suite "valgrind: io suite" vg_clean build-test/tests/test-io --jobs "$jobs" --short-filename --filter '!(io/falls_back*)'
  suite "valgrind: arch runner" vg_clean build-test/tests/test-arch
  skip "valgrind: shm suite" "multi-process futex stress and kill tests are too slow under valgrind; ASan covers the shm suite"
else
  skip "valgrind" "--skip-valgrind"
fi

# ---- 4. aarch64 under qemu-user ----
if [ "$aarch64" = 1 ]; then
  log "build: aarch64 (cross)"
  # -Dnuma=disabled: libnuma.a carries symbol versions that a static link
  # into the shared library cannot keep; qemu-user has one node anyway
  setup build-arm64 --werror --cross-file arch/aarch64/cross.txt -Dfp_env=true -Dperf=false -Dnuma=disabled
  suite "aarch64: arch runner under qemu-aarch64-static" \
    qemu-aarch64-static -L /usr/aarch64-linux-gnu build-arm64/tests/test-arch
else
  skip "aarch64" "--skip-aarch64"
fi

log "summary"
for f in "${failures[@]:-}"; do [ -n "$f" ] && echo "failed: $f"; done
echo "suites: $passed passed, $failed failed"
[ "$failed" = 0 ]
