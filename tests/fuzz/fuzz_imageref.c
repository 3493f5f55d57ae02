/*
 * libFuzzer target for the parsers that read text from registries and users: image
 * references, WWW-Authenticate challenges (and the token URL built from them), loopback
 * detection.
 *
 * Each input is tried as all of them.  A rejection must be BV_EINVALID with the module's
 * message prefix; an accepted reference must format to a canonical form that parses back to
 * the same fields and formats identically; an accepted Bearer challenge must have a realm, and
 * a token URL built from it must start with that realm.  A violation aborts, which libFuzzer
 * reports as a finding.
 */
#include <bv/error.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/oci/registry/auth-internal.h"
#include "lib/oci/registry/imageref-internal.h"
#include "util/xalloc.h"

#include "util/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

static void expect_invalid(struct bv_error *err, const char *prefix)
{
	if (!err || err->code != BV_EINVALID || strncmp(err->message, prefix, strlen(prefix)))
		abort();
	bv_error_free(err);
}

static void fuzz_reference(const char *text)
{
	struct bv_imageref ref = {0}, back = {0};
	struct bv_error *err = NULL;
	char *canonical, *again, *pinned;

	if (bv_imageref_parse(&ref, text, &err) < 0) {
		expect_invalid(err, "invalid image reference '");
		if (ref.registry || ref.repository || ref.tag || ref.digest)
			abort(); /* outputs only on success */
		return;
	}
	canonical = bv_imageref_format(&ref);
	if (bv_imageref_parse(&back, canonical, NULL) < 0)
		abort();
	if (!same(ref.registry, back.registry) || !same(ref.repository, back.repository) ||
	    !same(ref.tag, back.tag) || !same(ref.digest, back.digest))
		abort();
	again = bv_imageref_format(&back);
	if (strcmp(canonical, again))
		abort();
	pinned = bv_imageref_pinned(&ref, NULL);
	if (!ref.digest != !pinned)
		abort();
	if (!bv_imageref_api_host(ref.registry))
		abort();
	(void)bv_imageref_host_is_loopback(ref.registry);
	free(pinned);
	free(again);
	free(canonical);
	bv_imageref_release(&ref);
	bv_imageref_release(&back);
}

static void fuzz_challenge(const char *text)
{
	struct bv_www_auth a = {0};
	struct bv_error *err = NULL;
	char *url = NULL;

	if (bv_www_authenticate_parse(&a, text, &err) < 0) {
		expect_invalid(err, "invalid WWW-Authenticate header");
		if (a.scheme || a.realm || a.service || a.scope)
			abort();
		return;
	}
	if (a.scheme != BV_AUTH_BASIC && a.scheme != BV_AUTH_BEARER)
		abort();
	if (a.scheme == BV_AUTH_BEARER && !a.realm)
		abort();
	if (bv_auth_token_url(&url, &a, "repository:x/y:pull", &err) == 0) {
		if (!a.realm || strncmp(url, a.realm, strlen(a.realm)))
			abort();
		free(url);
	} else {
		expect_invalid(err, "");
	}
	bv_www_auth_release(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Both parsers take C strings: the input up to its first NUL. */
	char *text = bv_xstrndup((const char *)data, size);

	fuzz_reference(text);
	fuzz_challenge(text);
	(void)bv_imageref_host_is_loopback(text);
	free(text);
	return 0;
}
