/*
 * bv/conformance.h - the registry's smoke test (`bv conformance`): every tool's newest
 * version is resolved, pulled by digest and each exposed binary is run with its probes.
 *
 * Calling sequence (bv conformance):
 *   struct bv_conformance_options o = {.backend = flag, .jobs = 4, .on_result = print};
 *   json_t *results;
 *   if (bv_conformance_run(&results, idx, types, ids, n, &o, &err) < 0) ...
 *   results: [{"id", "version", "status": "pass"|"fail"|"skip", "message", "binaries": [...],
 *              "seconds"}, ...] in the order of `ids`
 *   json_decref(results);
 *
 * The probes follow upstream's runner: `[tool.smoke] probes` pins one argument for a binary,
 * `[tool.smoke] skip` leaves binaries out, and any other binary tries "--version",
 * "-version", "--help", "-h", "-v", "version" and no argument, in that order, until one is
 * alive: it exits 0 or writes at least 30 bytes to stdout and stderr together.  Each probe
 * runs as `bv run` would run it (bv/runplan.h: a temporary directory as /workspace, the
 * manifest's entrypoint env), with stdin from /dev/null, no GPU (upstream forces none) and a
 * timeout after which its process group is killed.  On a backend that runs from bv's store
 * (native) each declared binary must also be an executable file along the image's PATH in
 * its root filesystem; on the others a probe that exits 127 (how engines and shells report
 * a command that does not exist, with a message long enough to look alive) means the same.
 *
 * Tools run in child processes, `jobs` at a time (bv uses no threads: the native backend
 * unshares, and it forks), each reporting its result as JSON through a memory file; the
 * on_result callback sees each as its child finishes.
 *
 * Ownership: inputs are borrowed; *results_out is a new reference; the callback's value is a
 * borrowed reference valid during the call.
 *
 * Errors: a tool that fails is a result, not an error; errors are a child that could not be
 * started or that died without a result.
 */
#ifndef BV_CONFORMANCE_H
#define BV_CONFORMANCE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct bv_error;
struct bv_index;
struct bv_types;

struct bv_conformance_options {
	const char *backend;         /* --backend; NULL: BV_BACKEND, then auto */
	bool skip_gpu;               /* skip tools whose [tool.hardware] needs a GPU */
	bool skip_reference_data;    /* skip tools with required reference data */
	bool skip_deprecated;        /* skip tools whose newest version is deprecated */
	unsigned jobs;               /* tools at once; 0: one */
	unsigned probe_timeout_s;    /* 0: 30 */
	const char *const *host_env; /* what runs pass through (bv/runplan.h); may be NULL */
	void (*on_result)(const json_t *result, void *payload);
	void *payload;
};

int bv_conformance_run(json_t **results_out, const struct bv_index *idx,
		       const struct bv_types *types, const char *const *ids, size_t n,
		       const struct bv_conformance_options *o, struct bv_error **err);

#endif
