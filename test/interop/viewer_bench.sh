#!/usr/bin/env bash
# The viewer under load: wsdest with its dev broker (no demo data), the
# viewer open in headless Chromium (viewer_bench.mjs), and wsbench producing
# RATE records/s of about 300 bytes over 20 keys, with one wsbench client
# connected besides the page. Prints the page's figures as one JSON line.
# A benchmark, not a test; run it alone on the machine:
#
#   flock /tmp/wsdest-bench.lock test/interop/viewer_bench.sh RATE [SECONDS]
# shellcheck source=test/interop/lib.sh
source "$(dirname "$0")/lib.sh"
rate=${1:?usage: viewer_bench.sh RATE [SECONDS]}
secs=${2:-20}

start_wsdest viewer-bench DEMO_DATA=false || finish
bench=$WORK/wsbench
(cd "$REPO_ROOT" && go build -o "$bench" ./cmd/wsbench) || { fail "build wsbench"; finish; }
out=$WORK/page.out
: >"$out"
node "$INTEROP_DIR/viewer_bench.mjs" --port "$WS_PORT" --seconds "$secs" ${VIEWER_BENCH_SHOT:+--shot "$VIEWER_BENCH_SHOT"} >"$out" 2>&1 &
page=$!
for ((i = 0; i < 300; i++)); do
	grep -q '^ready' "$out" && break
	sleep 0.1
done
"$bench" -url "ws://127.0.0.1:$WS_PORT/ws" -brokers "$BROKER" -clients 1 -keys 20 -size 300 -idle 1s \
	-rate "$rate" -duration "$((secs + 6))s" >"$WORK/wsbench.json" 2>"$WORK/wsbench.err" &
load=$!
wait "$page"
kill "$load" 2>/dev/null
wait "$load" 2>/dev/null
grep -v '^{\|^ready' "$out" # a profile, with VIEWER_BENCH_PROFILE=1
if grep -q '^{' "$out"; then
	pass "viewer bench at $rate records/s: $(grep '^{' "$out")"
else
	fail "viewer bench at $rate records/s: $(tail -5 "$out")"
fi
finish
