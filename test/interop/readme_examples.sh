#!/usr/bin/env bash
# The README's client examples, taken from README.md as written (the fenced
# block after each "<!-- readme-example: NAME -->" marker) and run against
# a live wsdest with demo data, with only localhost:8000 replaced by its
# address: Python with Debian's websockets, and the Node.js example on this
# machine's Node twice, once with the `ws` package and once with
# --experimental-websocket (Node 20's built-in WebSocket; Node 22+ has it
# unflagged).
# shellcheck source=test/interop/lib.sh
source "$(dirname "$0")/lib.sh"

# example NAME: prints the README's fenced block after the NAME marker.
example() {
	awk -v m="<!-- readme-example: $1 -->" '
		$0 == m { found = 1; next }
		found && /^```/ { if (inside) exit; inside = 1; next }
		inside { print }
	' "$REPO_ROOT/README.md"
}

start_wsdest readme-examples DEMO_INTERVAL=50ms || finish
url=127.0.0.1:$WS_PORT

# run_example NAME FILE CMD...: runs CMD for 4 s (it streams forever) and
# checks that it printed demo records.
run_example() {
	local name=$1 file=$2 out
	shift 2
	out=$(cd "$WORK" && timeout 4 "$@" "$file" 2>&1)
	local n
	n=$(grep -c 'Timestamp' <<<"$out")
	if ((n >= 5)) && ! grep -qi 'error' <<<"$out"; then
		pass "readme example $name: prints demo records ($n lines)"
	else
		fail "readme example $name: want >= 5 demo records, got $n: $(head -c 400 <<<"$out")"
	fi
}

py=$WORK/example.py
example python | sed "s/localhost:8000/$url/g" >"$py"
if [[ -s $py ]]; then
	run_example "python (Debian's python3-websockets)" "$py" "$PY"
else
	fail "readme example python: no block after <!-- readme-example: python --> in README.md"
fi

js=$WORK/client.mjs
example node | sed "s/localhost:8000/$url/g" >"$js"
if [[ -s $js ]]; then
	ln -s "$INTEROP_DIR/node_modules" "$WORK/node_modules" # for import('ws')
	node_major=$(node -p 'process.versions.node.split(".")[0]')
	if ((node_major < 22)); then
		run_example "node $(node --version) with the ws package" "$js" node
		run_example "node $(node --version) --experimental-websocket" "$js" node --experimental-websocket
	else
		run_example "node $(node --version) (built-in WebSocket)" "$js" node
	fi
else
	fail "readme example node: no block after <!-- readme-example: node --> in README.md"
fi
finish
