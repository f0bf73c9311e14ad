#!/usr/bin/env bash
# The project's test command; CI runs it through .ci/run.
#
#   ./test.sh            everything below, in this order
#   ./test.sh go         gofmt, go vet, staticcheck, go test -race, and the
#                        dockerfile's go build command
#   ./test.sh interop    the interop tests in test/interop (real binary,
#                        kcat, Python websockets, Chromium)
#
# It installs what it lacks and skips what is already there, so a second run
# is fast: staticcheck (pinned, with go install) and, for the interop tests,
# Debian's kcat, python3-websockets, chromium, curl, openssl, nginx-light and iproute2 (apt-get; as root, or
# through sudo) and playwright-core and ws (npm ci in test/interop; it never
# downloads a browser). Needs Go 1.26 and, for the interop tests, Node.js 20+
# with npm and a Debian-based system.
#
# go test includes docs_test.go, which checks every relative link and
# #anchor in README.md, CHANGELOG.md and docs/, and the table of close codes
# in docs/protocol.md against the code.
#
# Every step runs even after one fails; the exit status is 1 if any failed.
# The interop tests end with the line "interop: N passed, M failed".
set -u -o pipefail

STATICCHECK_VERSION=v0.8.2 # staticcheck 2026.2.2, which supports Go 1.26
GO_TEST_TIMEOUT=3m         # per test binary; the whole suite takes ~40 s here with a warm build cache
INTEROP_APT_PACKAGES=(kcat python3-websockets chromium curl openssl nginx-light iproute2)

cd "$(dirname "$0")" || exit 1
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 # the tests use Debian's Chromium

usage() { sed -n '2,9s/^# \{0,1\}//p' "$0"; }

mode=${1:-all}
case $mode in
all | go | interop) ;;
-h | --help)
	usage
	exit 0
	;;
*)
	usage >&2
	exit 2
	;;
esac

failed=()
step_start=0
step() {
	echo
	echo "==> $*"
	step_start=$SECONDS
}
# done_step NAME STATUS: records the outcome of the step that just ran. It
# writes to stderr so that the last line on stdout stays the test runner's
# own summary, which CI reads.
done_step() {
	if (($2 == 0)); then
		echo "==> $1: ok ($((SECONDS - step_start))s)" >&2
	else
		echo "==> $1: FAILED ($((SECONDS - step_start))s)" >&2
		failed+=("$1")
	fi
}

if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
	PATH=/usr/local/go/bin:$PATH
fi
if ! command -v go >/dev/null 2>&1; then
	echo "test.sh: go not found: install Go 1.26 and put it on PATH" >&2
	exit 1
fi

# as_root CMD...: runs CMD as root, through sudo when not root.
as_root() {
	if [[ $(id -u) == 0 ]]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		return 1
	fi
}

apt_updated=false
# ensure_apt PACKAGE...: installs the Debian packages that are missing.
ensure_apt() {
	local p missing=()
	for p in "$@"; do
		dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed || missing+=("$p")
	done
	((${#missing[@]})) || return 0
	if ! command -v apt-get >/dev/null 2>&1 || { [[ $(id -u) != 0 ]] && ! command -v sudo >/dev/null 2>&1; }; then
		echo "test.sh: missing ${missing[*]}: install these Debian packages (as root: apt-get install ${missing[*]}) and run again" >&2
		return 1
	fi
	echo "installing with apt-get: ${missing[*]}"
	local log
	log=$(mktemp "${TMPDIR:-/tmp}/wsdest-apt.XXXXXX")
	if ! $apt_updated; then
		if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get update >"$log" 2>&1; then
			tail -n 20 "$log" >&2
			rm -f "$log"
			echo "test.sh: apt-get update failed" >&2
			return 1
		fi
		apt_updated=true
	fi
	if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >"$log" 2>&1; then
		tail -n 30 "$log" >&2
		rm -f "$log"
		echo "test.sh: apt-get install ${missing[*]} failed" >&2
		return 1
	fi
	rm -f "$log"
}

# staticcheck_bin: prints the path of the pinned staticcheck, installing it
# into a versioned cache directory the first time.
staticcheck_bin() {
	local dir=${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/wsdest-tools/staticcheck-$STATICCHECK_VERSION
	if [[ ! -x $dir/staticcheck ]]; then
		echo "installing staticcheck $STATICCHECK_VERSION into $dir" >&2
		GOBIN=$dir go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION" >&2 || return 1
	fi
	echo "$dir/staticcheck"
}

run_go() {
	local rc

	step "gofmt -l"
	local files unformatted=""
	mapfile -t files < <(find . \( -name .git -o -name node_modules \) -prune -o -name '*.go' -print)
	if ((${#files[@]} == 0)); then
		echo "no Go files found"
		rc=1
	else
		unformatted=$(gofmt -l "${files[@]}" 2>&1)
		rc=$?
	fi
	if [[ -n $unformatted ]]; then
		echo "$unformatted"
		echo "these files need gofmt -w"
		rc=1
	fi
	done_step gofmt "$rc"

	step "go vet ./..."
	go vet ./... 2>&1
	done_step "go vet" $?

	step "staticcheck ./... ($STATICCHECK_VERSION)"
	local sc
	if sc=$(staticcheck_bin); then
		"$sc" ./... 2>&1
		rc=$?
	else
		echo "test.sh: could not install staticcheck $STATICCHECK_VERSION"
		rc=1
	fi
	done_step staticcheck "$rc"

	step "go test -race -count=1 -timeout $GO_TEST_TIMEOUT ./..."
	# The race detector needs cgo, hence a C compiler.
	if ! command -v "$(go env CC)" >/dev/null 2>&1; then
		ensure_apt gcc libc6-dev
	fi
	go test -race -count=1 -timeout "$GO_TEST_TIMEOUT" ./... 2>&1
	done_step "go test" $?

	run_dockerfile_build
}

# run_dockerfile_build: runs the dockerfile's `go build` line exactly as
# written (only its -o path moved to a scratch directory), so the image's
# build cannot rot while no Docker is at hand, and checks what it made: a
# static (CGO_ENABLED=0), -trimpath binary that starts (-version), built by
# the Go release the image's golang tag names.
run_dockerfile_build() {
	step "dockerfile: its go build command"
	local rc=0 lines line tmp
	mapfile -t lines < <(grep -E '^RUN .*go build' dockerfile)
	if ((${#lines[@]} != 1)); then
		echo "dockerfile: want exactly one 'RUN ... go build' line, found ${#lines[@]}"
		done_step "dockerfile build" 1
		return
	fi
	line=${lines[0]#RUN }
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/wsdest-dockerfile.XXXXXX")
	if [[ $line != *" -o /out/wsdest "* ]]; then
		echo "dockerfile: the go build line must write -o /out/wsdest (the COPY --from=build path)"
		rc=1
	elif ! (set -x && bash -c "${line/ -o \/out\/wsdest / -o $tmp/wsdest }"); then
		rc=1
	else
		local info want_go
		info=$(go version -m "$tmp/wsdest")
		grep -q 'build	CGO_ENABLED=0' <<<"$info" || { echo "dockerfile build: not CGO_ENABLED=0"; rc=1; }
		grep -q 'build	-trimpath=true' <<<"$info" || { echo "dockerfile build: not -trimpath"; rc=1; }
		"$tmp/wsdest" -version || { echo "dockerfile build: wsdest -version failed"; rc=1; }
		want_go=$(sed -n 's/^go \([0-9]*\.[0-9]*\).*/\1/p' go.mod)
		if ! grep -q "^FROM golang:$want_go[-.]" dockerfile; then
			echo "dockerfile: the build image is not golang:$want_go (go.mod says go $want_go)"
			rc=1
		fi
	fi
	rm -rf "$tmp"
	done_step "dockerfile build" "$rc"
}

run_interop() {
	local rc=0

	step "interop prerequisites: ${INTEROP_APT_PACKAGES[*]}, playwright-core, ws"
	ensure_apt "${INTEROP_APT_PACKAGES[@]}" || rc=1
	if ! command -v npm >/dev/null 2>&1; then
		echo "test.sh: npm not found: install Node.js 20 or later with npm" >&2
		rc=1
	else
		# npm ci only when the lock file changed since the last install.
		local stamp=test/interop/node_modules/.wsdest-installed-lock
		if ! cmp -s test/interop/package-lock.json "$stamp" 2>/dev/null; then
			if (cd test/interop && npm ci --no-audit --no-fund --loglevel=error); then
				cp test/interop/package-lock.json "$stamp"
			else
				echo "test.sh: npm ci in test/interop failed" >&2
				rc=1
			fi
		fi
	fi
	done_step "interop prerequisites" "$rc"

	step "interop tests (test/interop/run.sh)"
	test/interop/run.sh
	done_step "interop tests" $?
}

case $mode in
all)
	run_go
	run_interop
	;;
go) run_go ;;
interop) run_interop ;;
esac

if ((${#failed[@]})); then
	echo "test.sh: FAILED: ${failed[*]}" >&2
	exit 1
fi
echo "test.sh: all passed" >&2
exit 0
