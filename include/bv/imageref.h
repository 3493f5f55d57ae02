/*
 * bv/imageref.h - registry mirrors: where bv pulls an image's registry from instead, and which
 * hosts may be reached over plain HTTP.  The CLI loads the set and hands it to the library;
 * the image references themselves ("quay.io/biocontainers/samtools:1.21@sha256:...") and the
 * look-ups in the set are in src/lib/oci/registry/imageref-internal.h, for the library and its
 * tests only.
 *
 * Calling sequence:
 *   struct bv_mirrors *m = NULL;
 *   if (bv_mirrors_load(&m, &err) < 0) ...
 *   ... hand m to the library (bv_services_up_options.mirrors, ...)
 *   bv_mirrors_free(m);
 *
 * Mirrors: BV_MIRRORS="quay.io=127.0.0.1:5000,docker.io=mirror.local" and the file
 * $XDG_CONFIG_HOME/bv/mirrors.toml (else ~/.config/bv/mirrors.toml):
 *   [mirrors]
 *   "quay.io" = "127.0.0.1:5000"
 *   [insecure]
 *   registries = ["mirror.local:5000"]         plain HTTP is allowed for these
 * Both are read; an entry of BV_MIRRORS replaces the file's entry for the same source
 * registry, so a test or CI job can redirect one registry without editing the user's file.
 * A missing file is an empty set.  The insecure list only lists hosts; whether loopback hosts
 * may use plain HTTP as well is the caller's decision (bv_imageref_host_is_loopback()).
 *
 * Ownership: the set belongs to the caller of bv_mirrors_load() until bv_mirrors_free().
 *
 * Errors: bv_mirrors_load() returns BV_EINVALID for a malformed BV_MIRRORS or file
 * ("path:line:column: ..."), BV_ERR when the file cannot be read.  The output is written only
 * on success.
 */
#ifndef BV_IMAGEREF_H
#define BV_IMAGEREF_H

struct bv_error;
struct bv_mirrors;

int bv_mirrors_load(struct bv_mirrors **out, struct bv_error **err);

/* Accepts NULL. */
void bv_mirrors_free(struct bv_mirrors *m);

#endif
