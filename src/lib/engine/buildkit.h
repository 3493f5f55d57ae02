/*
 * buildkit.h - what a BuildKit build (POST /build?version=2) reports: its progress comes as
 * aux messages {"id": "moby.buildkit.trace", "aux": "<base64>"}, each a protobuf
 * moby.buildkit.v1.StatusResponse; this turns one into text lines.
 *
 * Calling sequence:
 *   struct bv_strv lines = BV_STRV_INIT;
 *   if (bv_buildkit_trace_lines(&lines, json_string_value(aux)) < 0) ... not a trace
 *   for each line: show it
 *   bv_strv_clear(&lines);
 *
 * What comes out: a vertex (a build step) once it completed ("[2/3] RUN make",
 * "[1/3] FROM x CACHED") or failed ("[3/3] RUN false ERROR: exit code: 1"), and each line
 * a step printed.  Timings and the status of layer transfers are dropped.
 *
 * Ownership: lines are appended to `out` (owned by the caller).
 * Errors: -EINVAL when the text is not base64 or the message not a StatusResponse (the
 * caller shows nothing for it); lines found before the fault are kept.
 */
#ifndef BV_LIB_ENGINE_BUILDKIT_H
#define BV_LIB_ENGINE_BUILDKIT_H

#include <stddef.h>
#include <stdint.h>

#include "util/strv.h"

int bv_buildkit_trace_lines(struct bv_strv *out, const char *b64);

/* Decodes standard base64 (padding optional); NULL for bad input.  *len_out is the size. */
uint8_t *bv_buildkit_base64(const char *text, size_t *len_out);

#endif
