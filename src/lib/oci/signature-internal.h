/*
 * signature-internal.h - the parts of signature checking that need no network: the .sig
 * manifest, simple-signing payloads, the signature annotation and the verdict over a set of
 * layers (bv/signature.h has the rules).  For the library and its unit tests.
 *
 * Calling sequence:
 *   struct bv_signature_layer *layers = NULL; size_t n = 0;
 *   if (bv_signature_parse_manifest(&layers, &n, body, len, &err) < 0) ...
 *   ... fetch each layers[i].desc blob, set layers[i].payload and .payload_len ...
 *   if (bv_signature_check(layers, n, digest, keys, n_keys, "ref@digest", &err) < 0) ...
 *   bv_signature_layers_free(layers, n);
 *
 * Ownership: parsed layers own their descriptor and annotation (free with
 * bv_signature_layers_free()); payloads are borrowed.  New strings from the builders.
 *
 * Errors: 0 or BV_EINVALID with a message; outputs written only on success.
 */
#ifndef BV_LIB_SIGNATURE_INTERNAL_H
#define BV_LIB_SIGNATURE_INTERNAL_H

#include <bv/registry.h>
#include <stdbool.h>
#include <stddef.h>

struct bv_error;

#define BV_SIGNATURE_MEDIA_TYPE  "application/vnd.dev.cosign.simplesigning.v1+json"
#define BV_SIGNATURE_ANNOTATION  "dev.cosignproject.cosign/signature"
#define BV_SIGNATURE_TYPE        "cosign container image signature"
#define BV_SIGNATURE_PAYLOAD_MAX (64u << 10)
#define BV_SIGNATURE_LAYERS_MAX  64
#define BV_SIGNATURE_KEY_MAX     (16u << 10) /* a PEM key file */

struct bv_signature_layer {
	struct bv_descriptor desc;
	char *signature; /* the annotation's base64 text, NULL when absent */
	const char *payload;
	size_t payload_len;
};

/* The layers of a .sig manifest with the simple-signing media type (others are skipped). */
int bv_signature_parse_manifest(struct bv_signature_layer **out, size_t *n, const char *body,
				size_t len, struct bv_error **err);
void bv_signature_layers_free(struct bv_signature_layer *layers, size_t n);

/*
 * Strict base64 (RFC 4648, padded, no blanks, unused bits zero) of at most `max` decoded
 * bytes into a new buffer; BV_EINVALID otherwise.
 */
int bv_signature_base64_decode(unsigned char **out, size_t *out_len, const char *text, size_t max);
/* Base64 of `len` bytes, a new string. */
char *bv_signature_base64_encode(const void *data, size_t len);

/*
 * Reads a simple-signing payload: a JSON object with exactly "critical" (identity with a
 * string docker-reference, image with a valid docker-manifest-digest, type) and optionally
 * "optional" (an object or null).  The digest (new string) goes to *digest_out; the type
 * must be BV_SIGNATURE_TYPE.
 */
int bv_signature_parse_payload(char **digest_out, const char *payload, size_t len,
			       struct bv_error **err);
/* The payload bv signs for `docker_reference` ("registry/repository") and `digest`. */
char *bv_signature_payload_new(const char *docker_reference, const char *digest);

/* The .sig tag of `digest`: "sha256-<hex>.sig" (a new string). */
char *bv_signature_tag(const char *digest);

/*
 * The verdict: 0 when a layer is acceptable for `digest` with one of the PEM `keys`;
 * BV_EINVALID with the message for the image `label` otherwise.
 */
int bv_signature_check(const struct bv_signature_layer *layers, size_t n, const char *digest,
		       const char *const *keys, size_t n_keys, const char *label,
		       struct bv_error **err);

#endif
