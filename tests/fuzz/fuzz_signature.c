/*
 * libFuzzer target for what a registry's signature manifests hold (bv/signature.h): the .sig
 * manifest, simple-signing payloads and the base64 signature annotation.
 *
 * The first byte picks the reader (mod 3: payload, manifest, base64); the rest is its input.
 * Invariants: a refusal is BV_EINVALID with a message; an accepted payload names a valid
 * digest; an accepted manifest has at most BV_SIGNATURE_LAYERS_MAX layers, each of the
 * simple-signing media type with a valid digest; accepted base64 encodes back to the same
 * text (one text per byte string) and stays under its cap.  A violation aborts.
 */
#include <bv/error.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/oci/signature-internal.h"
#include "util/digest.h"

#include "util/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void refused(int ret, struct bv_error *err)
{
	if (ret != BV_EINVALID || !err || !err->message[0])
		abort();
	bv_error_free(err);
}

static void check_payload(const char *text, size_t len)
{
	struct bv_error *err = NULL;
	char *digest = NULL;
	int ret = bv_signature_parse_payload(&digest, text, len, &err);
	if (ret < 0) {
		refused(ret, err);
		return;
	}
	if (!bv_digest_valid(digest))
		abort();
	free(digest);
}

static void check_manifest(const char *text, size_t len)
{
	struct bv_error *err = NULL;
	struct bv_signature_layer *layers = NULL;
	size_t n = 0;
	int ret = bv_signature_parse_manifest(&layers, &n, text, len, &err);
	if (ret < 0) {
		refused(ret, err);
		return;
	}
	if (n > BV_SIGNATURE_LAYERS_MAX)
		abort();
	for (size_t i = 0; i < n; i++)
		if (strcmp(layers[i].desc.media_type, BV_SIGNATURE_MEDIA_TYPE) != 0 ||
		    !bv_digest_valid(layers[i].desc.digest))
			abort();
	bv_signature_layers_free(layers, n);
}

static void check_base64(const char *text)
{
	unsigned char *out = NULL;
	size_t len = 0;
	char *again;
	if (bv_signature_base64_decode(&out, &len, text, BV_ECDSA_SIG_MAX) < 0)
		return;
	if (len > BV_ECDSA_SIG_MAX)
		abort();
	again = bv_signature_base64_encode(out, len);
	if (strcmp(again, text) != 0)
		abort();
	free(again);
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text;
	if (size < 1 || size > (1u << 20))
		return 0;
	/* a NUL-terminated copy: the readers take lengths, base64 takes a C string */
	text = malloc(size);
	if (!text)
		return 0;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	switch (data[0] % 3) {
	case 0:
		check_payload(text, size - 1);
		break;
	case 1:
		check_manifest(text, size - 1);
		break;
	default:
		check_base64(text);
		break;
	}
	free(text);
	return 0;
}
