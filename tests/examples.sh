#!/bin/sh
# examples.sh — every example must run to completion and say it succeeded.
#
# Examples check their own results (a count, a sum, every byte echoed) and
# exit non-zero when something is off, so running them is a test of the
# library in the shape users copy.  Each gets a minute; none needs more
# than a second.
set -u
b=${top_builddir:-.}/examples
fail=0
for ex in hello_tasks "echo_server --selftest" jobs pipeline shared_counter \
          oneshot_result "chat --selftest" config_watch "config_reload --selftest" \
          "graceful_shutdown --selftest" counter kv_store socket_writer actor_pipeline; do
    prog=${ex%% *}
    if [ ! -x "$b/$prog" ]; then
        echo "FAIL: $prog was not built"
        fail=1
        continue
    fi
    # shellcheck disable=SC2086 # word splitting of the arguments is wanted
    if timeout 60 "$b"/$ex >/dev/null 2>"$prog.err"; then
        echo "ok: $ex"
        rm -f "$prog.err"
    else
        echo "FAIL: $ex (status $?); its stderr:"
        cat "$prog.err"
        fail=1
    fi
done
# The daemon's sample configuration (its settings and its supervision
# tree) must stay valid as the validation rules change.
cfg=${top_srcdir:-.}/examples/kvd/kvd.json
if timeout 60 "$b/kvd/kvd" --check "$cfg" >/dev/null 2>kvd.err; then
    echo "ok: kvd --check kvd.json"
    rm -f kvd.err
else
    echo "FAIL: kvd --check $cfg (status $?); its stderr:"
    cat kvd.err
    fail=1
fi
exit $fail
