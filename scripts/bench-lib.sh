#!/bin/bash
# Sourced by the make bench scripts for what they share: the figures they hand to
# scripts/bench-issue18.sh, which runs several of them and gathers those figures into one
# table, and the loopback fixture registry most of them pull from.
#
# bench_result KEY VALUE: when BENCH_RESULTS names a file, appends the line "KEY VALUE" to
# it (VALUE empty: the figure could not be measured; the caller's printed table says why).
# Without BENCH_RESULTS it does nothing, so each script alone prints what it always did.
bench_result() {
	[[ -n ${BENCH_RESULTS:-} ]] || return 0
	printf '%s %s\n' "$1" "${2:-}" >>"$BENCH_RESULTS"
}

bench_fixtures=$(cd "$(dirname "${BASH_SOURCE[0]}")/../tests/fixtures" && pwd)
bench_started_registry=false

# bench_registry_up: the fixture registry (tests/fixtures/registry.sh) running, with the
# fixture images pushed (tests/fixtures/images.sh), and its host:port in BENCH_REGISTRY_ADDR.
# A registry this call had to start is stopped again by bench_registry_down, one that was
# already running is left alone.  A failed start or push shows its errors and returns 1.
bench_registry_up() {
	local out
	if ! "$bench_fixtures/registry.sh" status >/dev/null 2>&1; then
		out=$("$bench_fixtures/registry.sh" start 2>&1) || {
			printf '%s\n' "$out" >&2
			return 1
		}
		bench_started_registry=true
	fi
	out=$("$bench_fixtures/images.sh" push 2>&1 >/dev/null) || {
		printf '%s\n' "$out" >&2
		return 1
	}
	BENCH_REGISTRY_ADDR=$("$bench_fixtures/registry.sh" addr)
}

# bench_registry_down: for the scripts' exit traps; stops only what bench_registry_up started.
bench_registry_down() {
	if $bench_started_registry; then
		"$bench_fixtures/registry.sh" stop >/dev/null 2>&1 || true
		bench_started_registry=false
	fi
}
