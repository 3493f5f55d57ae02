/*
 * bv/registry.h - platforms as OCI names them ("linux/amd64", "linux/arm64/v8"), the progress
 * of image pulls and blob descriptors.  The CLI checks a --platform, compares it with this
 * machine's, draws the progress bv_install() reports (bv/install.h) and records the layers
 * its items list as descriptors.  The OCI Distribution API client itself (resolving
 * references to digests, pulling blobs into the store) is in
 * src/lib/oci/registry/registry-internal.h, for the library and its tests only.
 *
 * Calling sequence:
 *   char *p = NULL;
 *   if (bv_platform_normalize(&p, "linux/arm64", &err) < 0) ...     "linux/arm64/v8"
 *   if (!bv_platform_matches(bv_registry_default_platform(), p)) ... not this machine's
 *   free(p);
 *
 *   static void show(const struct bv_pull_progress *p, void *payload) { ... }
 *   struct bv_install_options o = {.progress = show, .progress_payload = ui};
 *
 * Progress: the callback runs inside the pull's transfer loop, throttled, for every image not
 * finished yet; the call in which an image has all its blobs has `finished` set.  What it is
 * passed is valid during the call only.
 *
 * Ownership: bv_platform_normalize() returns a new string; bv_registry_default_platform() a
 * static one.
 *
 * Errors: bv_platform_normalize() returns 0 or BV_EINVALID with a message in `err`; the output
 * is written only on success.  The library never prints.
 */
#ifndef BV_REGISTRY_H
#define BV_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bv_error;

/* Progress of one image during bv_registry_pull(); valid during the callback only. */
struct bv_pull_progress {
	size_t image;           /* index into the request array */
	const char *name;       /* the image as the user wrote it (formatted reference) */
	uint64_t bytes_done;    /* of this image's config and layers, present ones included */
	uint64_t bytes_total;   /* config + layers */
	uint64_t bytes_fetched; /* of bytes_done, those received by this pull (not already here) */
	size_t layers_done;     /* blobs (config included) in the store */
	size_t layers_total;    /* blobs (config included) */
	double rate;            /* bytes per second received by the whole pull, on average */
	bool finished;          /* the last call for this image */
};

typedef void (*bv_pull_progress_fn)(const struct bv_pull_progress *p, void *payload);

struct bv_descriptor {
	char *media_type;
	char *digest; /* "sha256:<hex>" */
	uint64_t size;
};

/*
 * This machine's platform, "linux/amd64", "linux/arm64/v8", ... (from uname); a static string.
 */
const char *bv_registry_default_platform(void);

/*
 * Platforms are "os/architecture[/variant]" as OCI writes them.  Normalised, the kernel's
 * names become OCI's (x86_64 -> amd64, aarch64 -> arm64) and an architecture's default
 * variant is spelt out (arm64 -> arm64/v8, arm -> arm/v7), so "linux/arm64" and
 * "linux/arm64/v8" are the same platform while "linux/arm/v6" and "linux/arm/v7" are not.
 * In an index, attestation manifests (BuildKit's provenance and SBOMs: platform
 * unknown/unknown, annotation vnd.docker.reference.type = attestation-manifest) are never
 * picked nor listed among the platforms an image has.
 */

/*
 * Checks `text` and writes its normalised form to *out (a new string).  BV_EINVALID with
 * "invalid platform '...'" for anything but two or three non-empty parts.
 */
int bv_platform_normalize(char **out, const char *text, struct bv_error **err);

/*
 * Does an image of platform `have` run where `want` is asked for?  Same os and architecture,
 * and the same variant after normalisation unless `want` has none.  False when either is
 * invalid.
 */
bool bv_platform_matches(const char *want, const char *have);

#endif
