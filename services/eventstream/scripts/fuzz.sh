#!/usr/bin/env bash
# Runs every Fuzz target in the given packages for FUZZTIME (default 5s) each,
# so CI exercises the fuzzers for a short, fixed time. Targets are discovered
# with `go test -list`, so a new Fuzz function is picked up without editing
# anything. A failure leaves its input in the package's testdata/fuzz.
set -euo pipefail
fuzztime="${FUZZTIME:-5s}"
[ $# -gt 0 ] || set -- $(go list -m -f "{{.Dir}}/...")

# One `go test -list` over all packages prints each package's Fuzz targets
# followed by an "ok <package>" line; turn that into "<package> <targets...>".
targets="$(go test -run '^$' -list '^Fuzz' "$@" | awk '
	/^Fuzz/ { names = names " " $1; next }
	/^ok /  { if (names != "") print $2 names; names = "" }')"

count=0
start=$(date +%s)
while read -r pkg names; do
	[ -n "$pkg" ] || continue
	for name in $names; do
		echo "fuzz: $pkg $name ($fuzztime)"
		go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg"
		count=$((count + 1))
	done
done <<< "$targets"
echo "fuzz: $count targets fuzzed in $(( $(date +%s) - start ))s"
