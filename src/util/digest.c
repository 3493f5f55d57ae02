#include "digest.h"

#include <dlfcn.h>
#include <errno.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "xalloc.h"

#include "banned.h"

/* The soname of the OpenSSL 3 libcrypto meson.build asks for (Debian's libssl3). */
#define CRYPTO_SONAME "libcrypto.so.3"

/* Every libcrypto function bv calls, with the prototype of OpenSSL's own header. */
#define CRYPTO_FUNCTIONS(X)    \
	X(OPENSSL_init_crypto) \
	X(OpenSSL_version)     \
	X(EVP_sha256)          \
	X(EVP_MD_CTX_new)      \
	X(EVP_MD_CTX_free)     \
	X(EVP_DigestInit_ex)   \
	X(EVP_DigestUpdate)    \
	X(EVP_DigestFinal_ex)  \
	X(EVP_Digest)          \
	X(EVP_EncodeBlock)     \
	X(EVP_DecodeBlock)     \
	ECDSA_FUNCTIONS(X)

/* For signatures (bv_ecdsa_p256_*): keys from PEM, DER signatures, EVP sign and verify. */
#define ECDSA_FUNCTIONS(X)         \
	X(BIO_new_mem_buf)         \
	X(BIO_new)                 \
	X(BIO_s_mem)               \
	X(BIO_ctrl)                \
	X(BIO_free)                \
	X(PEM_write_bio_PUBKEY)    \
	X(PEM_read_bio_PUBKEY)     \
	X(PEM_read_bio_PrivateKey) \
	X(EVP_PKEY_free)           \
	X(EVP_PKEY_is_a)           \
	X(EVP_PKEY_get_group_name) \
	X(EVP_DigestVerifyInit)    \
	X(EVP_DigestVerify)        \
	X(EVP_DigestSignInit)      \
	X(EVP_DigestSign)          \
	X(d2i_ECDSA_SIG)           \
	X(i2d_ECDSA_SIG)           \
	X(ECDSA_SIG_free)          \
	X(ERR_clear_error)

static struct crypto_api {
#define SLOT(f) __typeof__(f) *f; /* NOLINT(bugprone-macro-parentheses): f declares a member */
	CRYPTO_FUNCTIONS(SLOT)
#undef SLOT
} crypto_api;

static _Noreturn void crypto_missing(const char *what, const char *why)
{
	char msg[512];
	int n = snprintf(msg, sizeof(msg),
			 "fatal: could not load libcrypto (" CRYPTO_SONAME
			 "): %s%s; install libssl3\n",
			 what ? what : "unknown error", why);
	ssize_t ignored = write(STDERR_FILENO, msg, n > 0 ? (size_t)n : 0);
	(void)ignored;
	abort();
}

/* POSIX's way from dlsym() to a function pointer (as the libarchive loader does). */
static void load(void *handle, const char *name, void **slot)
{
	*slot = dlsym(handle, name);
	if (!*slot)
		crypto_missing(name, " is missing");
}

/*
 * libcrypto is loaded on first use, like libcurl and libarchive: linked in, its 17,000
 * relocations cost every bv process about 1.3 ms at start (perf stat), and most commands
 * (bv list, bv lock --check, a shim) hash nothing.  It is part of every bv installation, so
 * not finding it is fatal, like running out of memory.
 */
static const struct crypto_api *crypto(void)
{
	static bool loaded;
	void *handle;
	if (loaded)
		return &crypto_api;
	handle = dlopen(CRYPTO_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (!handle)
		crypto_missing(dlerror(), "");
#define LOAD(f) load(handle, #f, (void **)&crypto_api.f);
	CRYPTO_FUNCTIONS(LOAD)
#undef LOAD
	loaded = true;
	return &crypto_api;
}

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
		check(crypto()->OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG |
							    OPENSSL_INIT_NO_ADD_ALL_CIPHERS |
							    OPENSSL_INIT_NO_ADD_ALL_DIGESTS,
						    NULL));
		md = crypto()->EVP_sha256();
	}
	return md;
}

struct bv_sha256 *bv_sha256_new(void)
{
	struct bv_sha256 *h = bv_xcalloc(1, sizeof(*h));
	h->ctx = crypto()->EVP_MD_CTX_new();
	check(h->ctx != NULL);
	check(crypto()->EVP_DigestInit_ex(h->ctx, sha256(), NULL));
	return h;
}

void bv_sha256_update(struct bv_sha256 *h, const void *data, size_t len)
{
	check(crypto_api.EVP_DigestUpdate(h->ctx, data, len));
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
	check(crypto_api.EVP_DigestFinal_ex(h->ctx, md, &n) && n == BV_SHA256_HEX_LEN / 2);
	to_hex(md, out);
	bv_sha256_free(h);
}

void bv_sha256_free(struct bv_sha256 *h)
{
	if (!h)
		return;
	crypto_api.EVP_MD_CTX_free(h->ctx);
	free(h);
}

void bv_sha256_hex(char out[BV_SHA256_HEX_LEN + 1], const void *data, size_t len)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	/* The one-shot call skips allocating a context, which dominates for small inputs. */
	check(crypto()->EVP_Digest(data, len, md, &n, sha256(), NULL) &&
	      n == BV_SHA256_HEX_LEN / 2);
	to_hex(md, out);
}

int bv_base64_encode_block(unsigned char *out, const unsigned char *in, int len)
{
	return crypto()->EVP_EncodeBlock(out, in, len);
}

int bv_base64_decode_block(unsigned char *out, const unsigned char *in, int len)
{
	return crypto()->EVP_DecodeBlock(out, in, len);
}

/* A passphrase callback that has none: an encrypted key fails instead of asking the tty. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

/* The key in `pem` if it is an EC key on P-256, else NULL. */
static EVP_PKEY *p256_key(const char *pem, size_t len, bool private_key)
{
	const struct crypto_api *c = crypto();
	EVP_PKEY *key = NULL;
	BIO *bio;
	char group[64];
	size_t glen = 0;

	(void)sha256(); /* OpenSSL initialised without reading openssl.cnf */
	if (len > INT32_MAX)
		return NULL;
	bio = c->BIO_new_mem_buf(pem, (int)len);
	check(bio != NULL);
	key = private_key ? c->PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL)
			  : c->PEM_read_bio_PUBKEY(bio, NULL, no_passphrase, NULL);
	c->BIO_free(bio);
	if (key && (!c->EVP_PKEY_is_a(key, "EC") ||
		    !c->EVP_PKEY_get_group_name(key, group, sizeof(group), &glen) ||
		    (strcmp(group, "prime256v1") != 0 && strcmp(group, "P-256") != 0))) {
		c->EVP_PKEY_free(key);
		key = NULL;
	}
	c->ERR_clear_error();
	return key;
}

bool bv_ecdsa_p256_key_valid(const char *pem, size_t len, bool private_key)
{
	EVP_PKEY *key = p256_key(pem, len, private_key);
	crypto_api.EVP_PKEY_free(key);
	return key != NULL;
}

char *bv_ecdsa_p256_public_pem(const char *pem, size_t len)
{
	const struct crypto_api *c = crypto();
	EVP_PKEY *key = p256_key(pem, len, true);
	char *data = NULL, *out = NULL;
	BIO *bio;
	long n;

	if (!key)
		return NULL;
	bio = c->BIO_new(c->BIO_s_mem());
	check(bio != NULL);
	/* BIO_get_mem_data() is this BIO_ctrl() call spelled as a macro */
	if (c->PEM_write_bio_PUBKEY(bio, key) == 1 &&
	    (n = c->BIO_ctrl(bio, BIO_CTRL_INFO, 0, &data)) > 0 && data)
		out = bv_xstrndup(data, (size_t)n);
	c->BIO_free(bio);
	c->EVP_PKEY_free(key);
	c->ERR_clear_error();
	return out;
}

int bv_ecdsa_p256_verify(const char *pem, size_t pem_len, const void *data, size_t len,
			 const unsigned char *sig, size_t sig_len)
{
	const struct crypto_api *c = crypto();
	EVP_PKEY *key = p256_key(pem, pem_len, false);
	EVP_MD_CTX *ctx;
	ECDSA_SIG *parsed;
	const unsigned char *p = sig;
	unsigned char again[BV_ECDSA_SIG_MAX + 16], *q = again;
	int n, ok;

	if (!key)
		return -1;
	/* strict DER: what parses must encode back to the same bytes, nothing after it */
	parsed = sig_len <= BV_ECDSA_SIG_MAX ? c->d2i_ECDSA_SIG(NULL, &p, (long)sig_len) : NULL;
	if (!parsed || p != sig + sig_len) {
		c->ECDSA_SIG_free(parsed);
		c->EVP_PKEY_free(key);
		c->ERR_clear_error();
		return -2;
	}
	n = c->i2d_ECDSA_SIG(parsed, NULL);
	ok = n > 0 && (size_t)n == sig_len && c->i2d_ECDSA_SIG(parsed, &q) == n &&
	     !memcmp(again, sig, sig_len);
	c->ECDSA_SIG_free(parsed);
	if (!ok) {
		c->EVP_PKEY_free(key);
		c->ERR_clear_error();
		return -2;
	}
	ctx = c->EVP_MD_CTX_new();
	check(ctx != NULL);
	ok = c->EVP_DigestVerifyInit(ctx, NULL, sha256(), NULL, key) == 1 &&
	     c->EVP_DigestVerify(ctx, sig, sig_len, data, len) == 1;
	c->EVP_MD_CTX_free(ctx);
	c->EVP_PKEY_free(key);
	c->ERR_clear_error();
	return ok ? 1 : 0;
}

int bv_ecdsa_p256_sign(unsigned char **sig_out, size_t *sig_len, const char *pem, size_t pem_len,
		       const void *data, size_t len)
{
	const struct crypto_api *c = crypto();
	EVP_PKEY *key = p256_key(pem, pem_len, true);
	EVP_MD_CTX *ctx;
	unsigned char *sig;
	size_t n = 0;
	int ok;

	if (!key)
		return -1;
	ctx = c->EVP_MD_CTX_new();
	check(ctx != NULL);
	ok = c->EVP_DigestSignInit(ctx, NULL, sha256(), NULL, key) == 1 &&
	     c->EVP_DigestSign(ctx, NULL, &n, data, len) == 1 && n > 0;
	sig = ok ? bv_xmalloc(n) : NULL;
	ok = ok && c->EVP_DigestSign(ctx, sig, &n, data, len) == 1;
	c->EVP_MD_CTX_free(ctx);
	c->EVP_PKEY_free(key);
	c->ERR_clear_error();
	if (!ok) {
		free(sig);
		return -2;
	}
	*sig_out = sig;
	*sig_len = n;
	return 0;
}

const char *bv_crypto_version(void)
{
	return crypto()->OpenSSL_version(OPENSSL_VERSION);
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

/* 1 for '0'-'9' and 'a'-'f': a table, since every digest of a lock, index snapshot and
 * root filesystem path is checked (two ranges per character cost three times as much) */
static const unsigned char lower_hex[256] = {
	['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
	['8'] = 1, ['9'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1,
};

bool bv_sha256_hex_valid(const char *hex)
{
	const unsigned char *h = (const unsigned char *)hex;
	size_t i;
	if (!hex)
		return false;
	/* a NUL is not in the table: the loop never reads past the end of a short string */
	for (i = 0; i < BV_SHA256_HEX_LEN; i++)
		if (!lower_hex[h[i]])
			return false;
	return h[i] == '\0';
}

bool bv_digest_valid(const char *s)
{
	return s && strncmp(s, BV_DIGEST_PREFIX, sizeof(BV_DIGEST_PREFIX) - 1) == 0 &&
	       bv_sha256_hex_valid(s + sizeof(BV_DIGEST_PREFIX) - 1);
}

/* on the heap: 1 MiB makes few read(2) calls for large blobs */
#define HASH_READ_SIZE (1u << 20)

int bv_sha256_update_fd(struct bv_sha256 *h, int fd, uint64_t *count_out)
{
	char *buf = bv_xmalloc(HASH_READ_SIZE);
	uint64_t count = 0;
	int ret = 0;
	for (;;) {
		ssize_t n = read(fd, buf, HASH_READ_SIZE);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -1;
			break;
		}
		if (n == 0)
			break;
		bv_sha256_update(h, buf, (size_t)n);
		count += (uint64_t)n;
	}
	free(buf);
	if (ret == 0 && count_out)
		*count_out = count;
	return ret;
}

int bv_sha256_fd_hex(int fd, char hex[BV_SHA256_HEX_LEN + 1], uint64_t *count_out)
{
	struct bv_sha256 *h = bv_sha256_new();
	if (bv_sha256_update_fd(h, fd, count_out) < 0) {
		int saved = errno;
		bv_sha256_free(h);
		errno = saved;
		return -1;
	}
	bv_sha256_final_hex(hex, h);
	return 0;
}
