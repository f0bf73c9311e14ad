#!/usr/bin/env bash
# librdkafka (kcat) produces into wsdest's embedded dev broker; Python
# websockets clients receive the records on /ws, /ws/{key}, ?key= and
# ?envelope=true.
# shellcheck source=test/interop/lib.sh
source "$(dirname "$0")/lib.sh"

start_wsdest kcat DEMO_DATA=false || finish
pass "kcat: wsdest with its dev broker on $BROKER is ready on :$WS_PORT"
run_checker kcat "$PY" "$INTEROP_DIR/ws_check.py" kcat --port "$WS_PORT" --broker "$BROKER" ||
	show_log wsdest "$WS_LOG"
rc=0
stop_bg "$WS_PID" TERM || rc=$?
if ((rc == 0)); then
	pass "kcat: wsdest exits with status 0 on SIGTERM"
else
	fail "kcat: wsdest exits with status 0 on SIGTERM: got $rc"
	show_log wsdest "$WS_LOG"
fi
finish
