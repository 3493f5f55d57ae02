/*
 * bv/push.h - pushing an image to an OCI registry (bv push): from an OCI image layout on disk,
 * from bv's own store, or copied from another registry (or repository) by digest.
 *
 * Calling sequence:
 *   struct bv_push_result res = {0};
 *   struct bv_push_options o = {0};
 *   if (bv_push(&res, "oci:/tmp/layout:samtools", "127.0.0.1:5000/tools/samtools:1.16", &o,
 *               &err) < 0) ...
 *   printf("Pushed %s\n", res.reference); "127.0.0.1:5000/tools/samtools:1.16@sha256:..."
 *   bv_push_result_release(&res);
 *
 * Sources:
 *   oci:DIR[:TAG]   an OCI image layout as skopeo and umoci write it; TAG is the
 *                   org.opencontainers.image.ref.name of an entry of index.json, and may be
 *                   left out when the layout holds one image
 *   store:NAME      an image of bv's store (the names bv cache list shows); an image bv pulled
 *                   as Docker schema 2 is pushed as the registry served it, not as the OCI
 *                   view bv keeps beside it
 *   [docker://]REF  an image in a registry: copied by digest with every platform of an index,
 *                   its blobs passing through the store (verified) unless the destination
 *                   can mount them from the source repository of the same registry
 *
 * What is pushed keeps its digests: the documents' bytes are sent as they are (what `skopeo
 * copy --preserve-digests --all` does).  Every blob of a local source is hashed before the
 * first request, so a damaged layout pushes nothing.  The destination gets its manifests
 * children first and the top one last, by tag when `dest` has one, by digest otherwise.
 *
 * Environment: BV_PUSH_CHUNK_SIZE (bytes) replaces the chunk size of options (blobs larger
 * than it go up in PATCH chunks of that size; default 64 MiB).
 *
 * Ownership: inputs are borrowed; the result's strings are new (bv_push_result_release()).
 *
 * Errors: BV_EINVALID for a malformed source or destination, a blob or document that does not
 * match its digest, an answer whose digest is not the one sent; BV_ENOTFOUND for a missing
 * layout, tag or image; BV_ERR for the rest (refused access says to log in).  Nothing prints.
 */
#ifndef BV_PUSH_H
#define BV_PUSH_H

#include <stddef.h>
#include <stdint.h>

struct bv_error;

struct bv_push_options {
	unsigned jobs;       /* parallel uploads; 0: BV_JOBS, else 8 */
	uint64_t chunk_size; /* 0: BV_PUSH_CHUNK_SIZE, else 64 MiB */
};

struct bv_push_result {
	char *reference; /* registry/repository[:tag]@digest */
	char *digest;    /* of the top manifest or index */
	size_t manifests;
	size_t blobs_present, blobs_mounted, blobs_uploaded;
	uint64_t bytes_uploaded;
};

int bv_push(struct bv_push_result *out, const char *source, const char *dest,
	    const struct bv_push_options *o, struct bv_error **err);

/* Frees the strings and zeroes the struct. */
void bv_push_result_release(struct bv_push_result *r);

#endif
