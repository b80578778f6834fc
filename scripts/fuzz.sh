#!/usr/bin/env bash
# Runs every Go fuzz target of the module for a short time, one after the
# other (go test -fuzz takes one target per run). The targets are found by
# their declaration, so a new `func FuzzX(f *testing.F)` in any *_test.go
# file is run without being listed anywhere.
#
#   scripts/fuzz.sh                 every target, FUZZTIME (default 5s) each
#   FUZZTIME=30s scripts/fuzz.sh    longer runs
#   scripts/fuzz.sh FuzzParse       only the targets whose name matches
#
# A failing target leaves its input under the package's testdata/fuzz/FuzzX/;
# commit it with the fix, and every later `go test` replays it.
set -uo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-5s}
filter=${1:-.}

mapfile -t targets < <(grep -rE --include='*_test.go' -o '^func Fuzz[A-Za-z0-9_]*\(' . \
	| sed -E 's#^\./(.*)/[^/]*:func (Fuzz[A-Za-z0-9_]*)\($#\1 \2#; s#^\./[^/]*:func (Fuzz[A-Za-z0-9_]*)\($#. \1#' \
	| grep -E " .*${filter}" | sort -u)
if [ ${#targets[@]} -eq 0 ]; then
	echo "fuzz: no fuzz target matches '$filter'" >&2
	exit 1
fi
echo "fuzz: ${#targets[@]} targets, $FUZZTIME each"
failed=()
start=$SECONDS
for t in "${targets[@]}"; do
	read -r dir name <<<"$t"
	pkg=./$dir
	[ "$dir" = . ] && pkg=.
	t0=$SECONDS
	if out=$($GO test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" "$pkg" 2>&1); then
		echo "ok   $name ($pkg, $((SECONDS - t0))s)"
	else
		echo "FAIL $name ($pkg)"
		echo "$out" | tail -n 40
		failed+=("$name")
	fi
done
echo "fuzz: ${#targets[@]} targets in $((SECONDS - start))s"
if [ ${#failed[@]} -gt 0 ]; then
	echo "fuzz: failed: ${failed[*]} (inputs under the packages' testdata/fuzz/)" >&2
	exit 1
fi
