/*
 * bv/apptainer.h - the full check of the Apptainer (Singularity) backend's SIF cache, for
 * `bv cache verify`.  The backend itself is bv_runtime_apptainer_new() (bv/runtime.h).  Its
 * pure parts (the docker:// source of a pull, the command lines of `apptainer pull` and
 * `apptainer run`, where SIF files live), which only the library and its tests use, are in
 * src/lib/runtime/apptainer-internal.h.
 *
 * SIF cache, under bv's cache directory (bv/paths.h), keyed by the registry manifest digest
 * bv.lock records, so the same bv.lock serves native, Docker and Apptainer:
 *   sif/sha256-<hex>.sif        the image, published by rename(2) only once complete
 *   sif/sha256-<hex>.sif.json   its record: the SIF's own sha256, size and mtime, written
 *                               (atomically) before the SIF is renamed into place
 *   sif/sha256-<hex>.lock       OFD lock held while one process pulls that image
 *   sif/tmp/<hex>.<pid>.<random>.sif   staging files, one per pull attempt
 * A SIF counts as present when it exists and its size and modification time (nanoseconds)
 * are those of its record: a cheap test fit for every `bv run` on a shared file system.  A
 * SIF that fails it is re-hashed by `bv sync` (a copy or `touch` only refreshes the record;
 * different bytes are deleted and pulled again), and bv_apptainer_verify() hashes every SIF
 * in full for `bv cache verify`.
 *
 * Ownership: problems are appended to the caller's vector, which owns them.
 *
 * Errors: 0 or a negative enum bv_error_code with a message in `err`.
 */
#ifndef BV_APPTAINER_H
#define BV_APPTAINER_H

#include <stdint.h>

struct bv_error;
struct bv_strv;

/*
 * Hashes every SIF under <cache_dir>/sif and appends one line per problem to `problems`:
 *   "SIF sha256-<hex>.sif: no record"
 *   "SIF sha256-<hex>.sif: sha256:<actual> does not match its record (sha256:<recorded>)"
 *   "SIF sha256-<hex>.sif: record cannot be read: ..."
 * `checked_out` (may be NULL) gets the number of SIF files looked at.  Returns 0 whatever it
 * finds; a missing sif directory is an empty cache.
 */
int bv_apptainer_verify(struct bv_strv *problems, uint64_t *checked_out, const char *cache_dir,
			struct bv_error **err);

#endif
