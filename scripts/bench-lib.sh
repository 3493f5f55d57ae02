#!/bin/bash
# Sourced by the make bench scripts (bench-run.sh, bench-pull.sh, bench-scale.sh) for what
# they share with scripts/bench-issue18.sh, which runs them and gathers their figures into
# one table.
#
# bench_result KEY VALUE: when BENCH_RESULTS names a file, appends the line "KEY VALUE" to
# it (VALUE empty: the figure could not be measured; the caller's printed table says why).
# Without BENCH_RESULTS it does nothing, so each script alone prints what it always did.
bench_result() {
	[[ -n ${BENCH_RESULTS:-} ]] || return 0
	printf '%s %s\n' "$1" "${2:-}" >>"$BENCH_RESULTS"
}
