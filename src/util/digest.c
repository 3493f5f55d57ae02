#include "digest.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>

#include "xalloc.h"

#include "banned.h"

struct bv_sha256 {
	EVP_MD_CTX *ctx;
};

static void check(int ok)
{
	if (!ok)
		bv_oom();
}

struct bv_sha256 *bv_sha256_new(void)
{
	struct bv_sha256 *h = bv_xcalloc(1, sizeof(*h));
	h->ctx = EVP_MD_CTX_new();
	check(h->ctx != NULL);
	check(EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL));
	return h;
}

void bv_sha256_update(struct bv_sha256 *h, const void *data, size_t len)
{
	check(EVP_DigestUpdate(h->ctx, data, len));
}

void bv_sha256_final_hex(struct bv_sha256 *h, char out[BV_SHA256_HEX_LEN + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	check(EVP_DigestFinal_ex(h->ctx, md, &n));
	for (unsigned int i = 0; i < n && i < 32; i++)
		(void)snprintf(out + 2 * i, 3, "%02x", md[i]);
	out[BV_SHA256_HEX_LEN] = '\0';
	bv_sha256_free(h);
}

void bv_sha256_free(struct bv_sha256 *h)
{
	if (!h)
		return;
	EVP_MD_CTX_free(h->ctx);
	free(h);
}

void bv_sha256_hex(const void *data, size_t len, char out[BV_SHA256_HEX_LEN + 1])
{
	struct bv_sha256 *h = bv_sha256_new();
	bv_sha256_update(h, data, len);
	bv_sha256_final_hex(h, out);
}
