#!/usr/bin/env bash
# wsdest's own viewer page in Debian's Chromium (playwright-core): it loads
# with no console error and no request leaving wsdest, shows the demo keys
# and fields, draws charts, updates live, applies a server-side view (a
# where filter and a field list, reconnecting with them; a filter that does
# not compile is refused with its position), honours ?token= (an API key, or a
# JWT whose grant it keeps to) and says so when a token is wrong, says the
# data is unavailable when the Kafka broker does not answer, and reconnects
# by itself after wsdest restarts, and opens full on a quiet topic (the
# snapshot; with SNAPSHOT=false it goes on without).
# Screenshots go to $VIEWER_SHOTS (default: a scratch directory, removed).
# shellcheck source=test/interop/lib.sh
source "$(dirname "$0")/lib.sh"

CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
if [[ ! -x $CHROMIUM ]]; then
	fail "viewer: $CHROMIUM not found (apt-get install chromium)"
	finish
fi
if [[ ! -d $INTEROP_DIR/node_modules/playwright-core ]]; then
	fail "viewer: playwright-core not installed (cd test/interop && npm ci)"
	finish
fi
shots=${VIEWER_SHOTS:-$WORK/shots}
mkdir -p "$shots"

start_wsdest viewer-open DEMO_INTERVAL=100ms || finish
open_port=$WS_PORT open_log=$WS_LOG
key=viewer-key-$RANDOM$RANDOM
secret=viewer-jwt-secret-$RANDOM$RANDOM-0123456789abcdef
start_wsdest viewer-auth AUTH_API_KEYS="$key" AUTH_JWT_SECRET="$secret" DEMO_INTERVAL=100ms || finish
auth_port=$WS_PORT auth_log=$WS_LOG
pw=pw-$RANDOM$RANDOM
start_wsdest viewer-basic WS_USERNAME=viewer WS_PASSWORD="$pw" DEMO_INTERVAL=100ms || finish
basic_port=$WS_PORT basic_pid=$WS_PID basic_log=$WS_LOG
pass "viewer: three wsdest instances ready (no auth :$open_port, API key :$auth_port, Basic :$basic_port)"

# A JWT granting sensor-2 alone, minted as docs/protocol.md shows.
b64() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
jwt_head=$(printf '{"alg":"HS256","typ":"JWT"}' | b64)
jwt_body=$(printf '{"sub":"viewer","keys":["sensor-2"],"exp":%d}' $(($(date +%s) + 3600)) | b64)
jwt_sig=$(printf '%s.%s' "$jwt_head" "$jwt_body" | openssl dgst -sha256 -hmac "$secret" -binary | b64)
jwt=$jwt_head.$jwt_body.$jwt_sig

# Non-browser clients keep their answers on the same paths.
if [[ $(http_status "http://127.0.0.1:$open_port/") == 426 ]] &&
	[[ $(curl -sS -m 5 -o /dev/null -w '%{http_code} %{content_type}' -H 'Accept: text/html' "http://127.0.0.1:$open_port/sensor-1") == "200 text/html; charset=utf-8" ]]; then
	pass "viewer: curl without Accept: text/html still gets 426; with it, the page"
else
	fail "viewer: curl gets 426 and a browser Accept gets the page"
fi

run_checker viewer env CHROMIUM="$CHROMIUM" \
	node "$INTEROP_DIR/viewer.mjs" --open-port "$open_port" --auth-port "$auth_port" --key "$key" --jwt "$jwt" \
	--basic-port "$basic_port" --basic "viewer:$pw" --shots "$shots" || {
	show_log wsdest-open "$open_log"
	show_log wsdest-auth "$auth_log"
	show_log wsdest-basic "$basic_log"
}
stop_bg "$basic_pid" # the others stop at exit

# A Kafka broker that does not answer: the page must say the data is
# unavailable. /readyz stays 503, so wait for /healthz.
down_port=$(free_port) && dead_broker=127.0.0.1:$(free_port) || fail "viewer: no free port"
mapfile -t env_args < <(clean_env)
start_bg "$WORK/viewer-down.log" env -i -C "$WORK" "${env_args[@]}" \
	PORT="$down_port" Quix__Broker__Address="$dead_broker" input=t "$WSDEST_BIN"
down_pid=$BG_PID
if wait_http "http://127.0.0.1:$down_port/healthz" 20 "$down_pid"; then
	run_checker viewer-down env CHROMIUM="$CHROMIUM" \
		node "$INTEROP_DIR/viewer.mjs" --down-port "$down_port" --shots "$shots" || show_log viewer-down "$WORK/viewer-down.log"
else
	fail "viewer: wsdest with an unreachable broker did not start"
	show_log viewer-down "$WORK/viewer-down.log"
fi
stop_bg "$down_pid"

# A quiet topic: the demo's one round at start-up, then nothing for an
# hour. The page must open full (the snapshot), not empty.
start_wsdest viewer-quiet DEMO_INTERVAL=1h || finish
quiet_pid=$WS_PID quiet_port=$WS_PORT quiet_log=$WS_LOG
run_checker viewer-quiet env CHROMIUM="$CHROMIUM" \
	node "$INTEROP_DIR/viewer.mjs" --quiet-port "$quiet_port" --shots "$shots" || show_log viewer-quiet "$quiet_log"
stop_bg "$quiet_pid"

# SNAPSHOT=false: the page's snapshot=true is refused (400); it goes on
# without one.
start_wsdest viewer-nosnap SNAPSHOT=false DEMO_INTERVAL=100ms || finish
nosnap_pid=$WS_PID nosnap_port=$WS_PORT nosnap_log=$WS_LOG
run_checker viewer-nosnap env CHROMIUM="$CHROMIUM" \
	node "$INTEROP_DIR/viewer.mjs" --nosnap-port "$nosnap_port" --shots "$shots" || show_log viewer-nosnap "$nosnap_log"
stop_bg "$nosnap_pid"

# Restart: the page is open while wsdest stops and starts again on the same
# port (with a new dev broker on the same address).
start_wsdest viewer-restart DEMO_INTERVAL=100ms || finish
restart_pid=$WS_PID restart_port=$WS_PORT restart_broker=$BROKER
mapfile -t env_args < <(clean_env)
node_out=$WORK/viewer-restart.out
restarted=$WORK/restarted
: >"$node_out" # before the loop below reads it
timeout -k 5 120 env CHROMIUM="$CHROMIUM" node "$INTEROP_DIR/viewer.mjs" \
	--restart-port "$restart_port" --restarted "$restarted" --shots "$shots" >"$node_out" 2>&1 &
node_pid=$!
for ((i = 0; i < 600; i++)); do
	grep -q '^stop-now' "$node_out" && break
	kill -0 "$node_pid" 2>/dev/null || break
	sleep 0.1
done
if grep -q '^stop-now' "$node_out"; then
	stop_bg "$restart_pid"
	sleep 2 # the page notices and backs off while nothing listens
	start_bg "$WORK/viewer-restart-2.log" env -i -C "$WORK" "${env_args[@]}" \
		PORT="$restart_port" DEV_BROKER_ADDR="$restart_broker" DEMO_INTERVAL=100ms "$WSDEST_BIN"
	if wait_http "http://127.0.0.1:$restart_port/readyz" 20 "$BG_PID"; then
		pass "viewer: wsdest restarted on :$restart_port"
	else
		fail "viewer: wsdest restarted on :$restart_port"
		show_log viewer-restart-2 "$WORK/viewer-restart-2.log"
	fi
	touch "$restarted"
fi
rc=0
wait "$node_pid" || rc=$?
grep -v '^stop-now' "$node_out"
nfail=$(grep -c '^FAIL ' "$node_out")
FAILURES=$((FAILURES + nfail))
if ((rc != 0 && nfail == 0)); then
	fail "viewer (restart): viewer.mjs exited with status $rc"
fi
if [[ -n ${VIEWER_SHOTS:-} ]]; then
	echo "screenshots in $shots: $(cd "$shots" && echo *.png)"
fi
finish
