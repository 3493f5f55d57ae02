/*
 * libFuzzer target for what registries send back as JSON: image manifests, indexes (with
 * platforms, variants and BuildKit attestations) and bearer-token responses.
 *
 * The first byte picks the platform asked for; the rest is the document.  Invariants: a
 * refusal is BV_EINVALID or BV_ENOTFOUND with a message; an accepted index names a valid
 * "sha256:" digest for a platform that matches the one asked for (never an attestation); an
 * accepted manifest's total size is the sum of its config and layers; an accepted token is
 * non-empty and holds no NUL, CR or LF (it goes into an HTTP header).  A violation aborts.
 */
#include <bv/error.h>
#include <bv/registry.h>
#include <bv/store.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/oci/registry/registry-internal.h"
#include "util/digest.h"

#include "util/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const platforms[] = {"linux/amd64",    "linux/arm64",   "linux/arm/v7",
					"linux/arm64/v8", "linux/ppc64le", "unknown/unknown"};

static void check_document(const char *text, size_t len, const char *platform)
{
	struct bv_resolved r = {0};
	struct bv_error *err = NULL;
	int ret = bv_registry_parse_document(&r, text, len, platform, &err);

	if (ret < 0) {
		if (!err || (ret != BV_EINVALID && ret != BV_ENOTFOUND) || !err->message[0])
			abort();
		bv_error_free(err);
		return;
	}
	if (r.platform) {
		/* an index: the pick matches and is a real manifest digest */
		if (!r.manifest_digest || !bv_digest_valid(r.manifest_digest) ||
		    !bv_platform_matches(platform, r.platform) ||
		    !strncmp(r.platform, "unknown/", 8))
			abort();
	} else {
		uint64_t sum = r.config.size;
		for (size_t i = 0; i < r.n_layers; i++)
			sum += r.layers[i].size;
		if (sum != r.total_size)
			abort();
	}
	bv_resolved_release(&r);
}

static void check_token(const char *text, size_t len)
{
	char *token = NULL;
	int64_t expires = 0;
	int ret = bv_registry_parse_token(&token, &expires, text, len);

	if (ret < 0) {
		if (ret != BV_EINVALID || token)
			abort();
		return;
	}
	if (!token || !*token || strpbrk(token, "\r\n"))
		abort();
	free(token);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *platform;

	if (size < 1)
		return 0;
	platform = platforms[data[0] % (sizeof(platforms) / sizeof(platforms[0]))];
	check_document((const char *)data + 1, size - 1, platform);
	check_token((const char *)data + 1, size - 1);
	return 0;
}
