#!/usr/bin/env bash
# Runs every Go fuzz target of the module for a short time. The targets are
# found by their declaration, so a new `func FuzzX(f *testing.F)` in any
# *_test.go file is run without being listed anywhere. `go test -fuzz` takes
# one target per run: the targets of a package run one after the other, and
# JOBS packages (default: the number of cores) at once, each run with one
# fuzzing worker.
#
#   scripts/fuzz.sh                 every target, FUZZTIME (default 3s) each
#   FUZZTIME=30s scripts/fuzz.sh    longer runs
#   scripts/fuzz.sh Cron            only the targets whose name matches
#
# A failing target leaves its input under its package's testdata/fuzz/FuzzX/;
# commit it with the fix, and every later `go test` replays it.
set -uo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-3s}
JOBS=${JOBS:-$(nproc)}
filter=${1:-.}

# "dir name" for every target, dir relative to the module root ("." for it).
mapfile -t targets < <(grep -rE --include='*_test.go' -o '^func Fuzz[A-Za-z0-9_]*\(' . |
	sed -E 's#^\./(.*)/[^/]*:func (Fuzz[A-Za-z0-9_]*)\($#\1 \2#; s#^\./[^/]*:func (Fuzz[A-Za-z0-9_]*)\($#. \1#' |
	awk -v f="$filter" '$2 ~ f' | sort -u)
if [ ${#targets[@]} -eq 0 ]; then
	echo "fuzz: no fuzz target matches '$filter'" >&2
	exit 1
fi
# Packages, those with the most targets first.
mapfile -t pkgs < <(printf '%s\n' "${targets[@]}" | awk '{print $1}' | sort | uniq -c | sort -rn | awk '{print $2}')
echo "fuzz: ${#targets[@]} targets in ${#pkgs[@]} packages, $FUZZTIME each, $JOBS at a time"

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
start=$SECONDS

# fuzz_package runs the package's targets one by one; a line per target
# goes to $logs/<n>.status, a failure's output to $logs/<n>.out.
fuzz_package() {
	local dir=$1 n=$2 pkg=./$1 name t0 out rc
	[ "$dir" = . ] && pkg=.
	for name in $(printf '%s\n' "${targets[@]}" | awk -v d="$dir" '$1 == d {print $2}'); do
		t0=$SECONDS
		out=$($GO test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" -parallel 1 "$pkg" 2>&1)
		rc=$?
		# On a busy machine the fuzzer can spend all of FUZZTIME replaying the
		# corpus and stop with "context deadline exceeded" and no failing input:
		# that is no finding, so run the target once more, for longer.
		if [ $rc -ne 0 ] && grep -q 'context deadline exceeded' <<<"$out" && ! grep -q 'Failing input written' <<<"$out"; then
			out=$($GO test -run '^$' -fuzz "^${name}\$" -fuzztime 20s -parallel 1 "$pkg" 2>&1)
			rc=$?
		fi
		if [ $rc -eq 0 ]; then
			echo "ok   $name ($pkg, $((SECONDS - t0))s)" >>"$logs/$n.status"
		else
			echo "FAIL $name ($pkg)" >>"$logs/$n.status"
			{ echo "--- $name ($pkg)"; echo "$out" | grep -v '^fuzz: elapsed' | tail -n 40; } >>"$logs/$n.out"
		fi
	done
}

n=0
for dir in "${pkgs[@]}"; do
	while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n; done
	fuzz_package "$dir" "$n" &
	n=$((n + 1))
done
wait
cat "$logs"/*.status
failed=$(cat "$logs"/*.status | grep -c '^FAIL' || true)
echo "fuzz: ${#targets[@]} targets in $((SECONDS - start))s"
if [ "$failed" -gt 0 ]; then
	cat "$logs"/*.out
	echo "fuzz: $failed targets failed (their inputs are under the packages' testdata/fuzz/)" >&2
	exit 1
fi
