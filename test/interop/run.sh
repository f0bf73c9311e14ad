#!/usr/bin/env bash
# Interop tests: the real wsdest binary, driven from outside by programs this
# project did not write (kcat/librdkafka, Python websockets, Chromium).
#
#   test/interop/run.sh [TEST...]    TEST: kcat python_auth browser sse_restart client viewer readme_examples busy_ports readme_run edges nginx_replicas
#
# Needs: go, curl, kcat, /usr/bin/python3 with python3-websockets, chromium, nginx, ip (iproute2),
# node with `npm ci` run in test/interop. ./test.sh installs them.
# Prints PASS/FAIL per check and, last, "interop: N passed, M failed".
set -u -o pipefail

dir=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$dir/../.." && pwd)
all=(kcat python_auth browser sse_restart client viewer readme_examples busy_ports readme_run edges nginx_replicas)
tests=("$@")
((${#tests[@]})) || tests=("${all[@]}")

tmp=$(mktemp -d "${TMPDIR:-/tmp}/wsdest-interop-run.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

passed=0 failed=0
summary() {
	echo "interop: $passed passed, $failed failed"
	exit $((failed > 0 ? 1 : 0))
}

for t in "${tests[@]}"; do
	if [[ ! -f $dir/$t.sh ]]; then
		echo "FAIL interop: no test named $t (have: ${all[*]})"
		failed=$((failed + 1))
	fi
done
((failed == 0)) || summary

echo "--- interop: building wsdest"
if (cd "$root" && go build -o "$tmp/wsdest" ./cmd/wsdest); then
	passed=$((passed + 1))
	echo "PASS interop: go build ./cmd/wsdest"
else
	failed=$((failed + 1))
	echo "FAIL interop: go build ./cmd/wsdest"
	summary
fi
export WSDEST_BIN=$tmp/wsdest

for t in "${tests[@]}"; do
	echo "--- interop: $t"
	start=$SECONDS
	timeout -k 15 300 bash "$dir/$t.sh" 2>&1 | tee "$tmp/$t.out"
	rc=${PIPESTATUS[0]}
	p=$(grep -c '^PASS ' "$tmp/$t.out")
	f=$(grep -c '^FAIL ' "$tmp/$t.out")
	if ((rc == 124 || rc == 137)); then
		echo "FAIL $t: timed out after 300s"
		f=$((f + 1))
	elif ((rc != 0 && f == 0)); then
		echo "FAIL $t: exited with status $rc"
		f=$((f + 1))
	elif ((p + f == 0)); then
		echo "FAIL $t: reported no check"
		f=1
	fi
	passed=$((passed + p)) failed=$((failed + f))
	echo "--- interop: $t: $p passed, $f failed ($((SECONDS - start))s)"
done
summary
