#!/bin/sh
# test-all.sh — the whole test suite: `make check` in a plain build, under
# AddressSanitizer + UndefinedBehaviorSanitizer, and under ThreadSanitizer,
# each in its own build directory under build/, then `make distcheck`.
# Stops at the first failure and prints that suite's log.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
[ -x configure ] || autoreconf -fi
jobs=$(nproc 2>/dev/null || echo 2)

run() { # name, configure flags...
    name=$1; shift
    dir="$top/build/$name"
    mkdir -p "$dir"
    echo "== $name: configure $*"
    (cd "$dir" && "$top/configure" -q "$@" >configure.log 2>&1) || { cat "$dir/configure.log"; exit 1; }
    (cd "$dir" && make -j"$jobs" >make.log 2>&1) || { tail -50 "$dir/make.log"; exit 1; }
    echo "== $name: make check"
    if ! (cd "$dir" && make -j"$jobs" check >check.log 2>&1); then
        grep -E '^(PASS|FAIL|ERROR|XFAIL|SKIP):' "$dir/check.log" || true
        for log in "$dir"/tests/*.log; do
            grep -q -E '^(FAIL|ERROR)' "${log%.log}.trs" 2>/dev/null && { echo "--- $log"; tail -60 "$log"; }
        done
        exit 1
    fi
    grep -E '^(PASS|FAIL|ERROR|SKIP):|^# (TOTAL|PASS|FAIL)' "$dir/check.log"
    cat "$dir"/tests/test_*.log | grep -E '^[0-9]+%: Checks' || true
}

run plain
run asan --enable-sanitizers=address,undefined
run tsan --enable-sanitizers=thread
echo "== plain: make distcheck"
(cd "$top/build/plain" && make -j"$jobs" distcheck >distcheck.log 2>&1) || { tail -60 "$top/build/plain/distcheck.log"; exit 1; }
echo "== all suites passed"
