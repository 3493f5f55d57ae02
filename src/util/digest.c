#include "digest.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

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

/*
 * Hashing needs none of the providers or engines a system openssl.cnf may configure, and
 * reading that file was most of the cost of bv's first digest (about 5 million
 * instructions, more than parsing a 1000-tool lock file's header).
 */
static const EVP_MD *sha256(void)
{
	static const EVP_MD *md;
	if (!md) {
		check(OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG |
						  OPENSSL_INIT_NO_ADD_ALL_CIPHERS |
						  OPENSSL_INIT_NO_ADD_ALL_DIGESTS,
					  NULL));
		md = EVP_sha256();
	}
	return md;
}

struct bv_sha256 *bv_sha256_new(void)
{
	struct bv_sha256 *h = bv_xcalloc(1, sizeof(*h));
	h->ctx = EVP_MD_CTX_new();
	check(h->ctx != NULL);
	check(EVP_DigestInit_ex(h->ctx, sha256(), NULL));
	return h;
}

void bv_sha256_update(struct bv_sha256 *h, const void *data, size_t len)
{
	check(EVP_DigestUpdate(h->ctx, data, len));
}

static void to_hex(const unsigned char *md, char out[BV_SHA256_HEX_LEN + 1])
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < BV_SHA256_HEX_LEN / 2; i++) {
		out[2 * i] = digits[md[i] >> 4];
		out[2 * i + 1] = digits[md[i] & 15];
	}
	out[BV_SHA256_HEX_LEN] = '\0';
}

void bv_sha256_final_hex(char out[BV_SHA256_HEX_LEN + 1], struct bv_sha256 *h)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	check(EVP_DigestFinal_ex(h->ctx, md, &n) && n == BV_SHA256_HEX_LEN / 2);
	to_hex(md, out);
	bv_sha256_free(h);
}

void bv_sha256_free(struct bv_sha256 *h)
{
	if (!h)
		return;
	EVP_MD_CTX_free(h->ctx);
	free(h);
}

void bv_sha256_hex(char out[BV_SHA256_HEX_LEN + 1], const void *data, size_t len)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	/* The one-shot call skips allocating a context, which dominates for small inputs. */
	check(EVP_Digest(data, len, md, &n, sha256(), NULL) && n == BV_SHA256_HEX_LEN / 2);
	to_hex(md, out);
}

uint64_t bv_fnv1a64(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t h = 14695981039346656037ULL;
	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 1099511628211ULL;
	}
	return h;
}

static bool is_lower_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

bool bv_sha256_hex_valid(const char *hex)
{
	size_t i;
	if (!hex)
		return false;
	for (i = 0; i < BV_SHA256_HEX_LEN; i++)
		if (!is_lower_hex(hex[i]))
			return false;
	return hex[i] == '\0';
}

bool bv_digest_valid(const char *s)
{
	return s && strncmp(s, BV_DIGEST_PREFIX, sizeof(BV_DIGEST_PREFIX) - 1) == 0 &&
	       bv_sha256_hex_valid(s + sizeof(BV_DIGEST_PREFIX) - 1);
}
