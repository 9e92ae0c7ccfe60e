#!/usr/bin/env bash
# Runs every Fuzz target in the given packages (default: every module of
# go.work) for FUZZTIME (default 5s) each, so CI exercises the fuzzers for a
# short, fixed time. Targets are discovered with `go test -list`, so a new
# Fuzz function is picked up without editing anything. A failing input is
# written to the package's testdata/fuzz/<target>/ and fails the run.
set -euo pipefail
fuzztime="${FUZZTIME:-5s}"
[ $# -gt 0 ] || set -- $(go list -m -f "{{.Dir}}/...")

# Targets are read from the sources, "<package> <targets...>" per package
# with a `func FuzzX(` in its test files: `go list` builds nothing, where
# `go test -list` compiled and linked every package's test binary (about two
# minutes of a fresh machine's make test) only to print the names.
targets="$(go list -f '{{.ImportPath}} {{.Dir}}' "$@" | while read -r pkg dir; do
	names="$(cat "$dir"/*_test.go 2> /dev/null | sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' | sort -u | tr '\n' ' ')"
	[ -z "$names" ] || echo "$pkg $names"
done)"

out="$(mktemp)"
trap 'rm -f "$out"' EXIT
count=0 flaked=0
start=$(date +%s)
while read -r pkg names; do
	[ -n "$pkg" ] || continue
	for name in $names; do
		echo "fuzz: $pkg $name ($fuzztime)"
		if go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg" 2>&1 | tee "$out"; then
			count=$((count + 1))
			continue
		fi
		# Go 1.26's fuzz coordinator can report the end of -fuzztime itself
		# as a failure ("context deadline exceeded", no input written;
		# golang/go#75804, fixed in Go 1.27). Anything else, or any written
		# input, is a real failure.
		if ! grep -q 'Failing input written to' "$out" &&
			grep -A1 -- "--- FAIL: ${name} " "$out" | grep -q '^    context deadline exceeded$'; then
			echo "fuzz: $name: deadline race of the Go fuzz coordinator (golang/go#75804), not a failing input; continuing"
			count=$((count + 1)) flaked=$((flaked + 1))
			continue
		fi
		echo "fuzz: $pkg $name FAILED"
		exit 1
	done
done <<< "$targets"
echo "fuzz: $count targets fuzzed in $(( $(date +%s) - start ))s ($flaked ended by the coordinator's deadline race)"
