/*
 * digest.h - SHA-256 and ECDSA P-256 signatures through OpenSSL's EVP interface.
 *
 * Calling sequence:
 *   char hex[BV_SHA256_HEX_LEN + 1];
 *   bv_sha256_hex(hex, data, len);                 one buffer
 *
 *   struct bv_sha256 *h = bv_sha256_new();         a stream (downloads, files)
 *   bv_sha256_update(h, chunk, n); ...
 *   bv_sha256_final_hex(hex, h);                   also frees h
 *
 *   uint64_t h = bv_fnv1a64(text, len);           a name for a cache entry, no crypto
 *
 *   if (!bv_digest_valid(digest)) ...              before a digest names a file or is compared
 *
 * FNV-1a is for telling names apart where nobody gains from a collision (a directory per
 * registry URL, a file per project root whose content is checked anyway): SHA-256 there
 * would cost a millisecond of OpenSSL start-up on commands that otherwise hash nothing.
 *
 * libcrypto is loaded on the first call that needs it (digest.c says why); bv_base64_*_block
 * are OpenSSL's EVP_EncodeBlock/EVP_DecodeBlock and bv_crypto_version its OpenSSL_version
 * string, through that same loading.
 *
 * Ownership: a stream is owned by its caller until bv_sha256_final_hex() or bv_sha256_free().
 * Errors: none; OpenSSL failing to hash in memory means it is out of memory, which aborts,
 * and so does a libcrypto that cannot be loaded (with a message saying which).
 */
#ifndef BV_UTIL_DIGEST_H
#define BV_UTIL_DIGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BV_SHA256_HEX_LEN 64
#define BV_DIGEST_PREFIX  "sha256:"
/* strlen("sha256:") + 64: the length of every digest bv accepts. */
#define BV_DIGEST_LEN 71

struct bv_sha256;

/* EVP_EncodeBlock and EVP_DecodeBlock: the same arguments and results. */
int bv_base64_encode_block(unsigned char *out, const unsigned char *in, int len);
int bv_base64_decode_block(unsigned char *out, const unsigned char *in, int len);
/*
 * ECDSA over NIST P-256 with SHA-256 (what cosign's keys are), keys in PEM: a public key as
 * "BEGIN PUBLIC KEY", a private one unencrypted ("BEGIN PRIVATE KEY" or "BEGIN EC PRIVATE
 * KEY"; an encrypted key is refused, never asked a passphrase for).  Signatures are DER
 * (SEQUENCE of r and s), at most BV_ECDSA_SIG_MAX bytes, and must be in their one strict
 * encoding.  Any key that is not EC on P-256 counts as invalid.
 *   key_valid: whether `pem` holds such a key.
 *   verify:    1 the signature over `data` verifies, 0 it does not, -1 the key is invalid,
 *              -2 the signature is not strict DER.
 *   sign:      0 and a new DER signature in *sig_out (free()), -1 the key is invalid, -2
 *              signing failed.
 *   public_pem: the public half of a private key as a PEM "PUBLIC KEY" (a new string), NULL
 *              when the key is invalid.
 */
#define BV_ECDSA_SIG_MAX 72
bool bv_ecdsa_p256_key_valid(const char *pem, size_t len, bool private_key);
int bv_ecdsa_p256_verify(const char *pem, size_t pem_len, const void *data, size_t len,
			 const unsigned char *sig, size_t sig_len);
int bv_ecdsa_p256_sign(unsigned char **sig_out, size_t *sig_len, const char *pem, size_t pem_len,
		       const void *data, size_t len);
char *bv_ecdsa_p256_public_pem(const char *pem, size_t len);

/* OpenSSL_version(OPENSSL_VERSION), for bv version --verbose. */
const char *bv_crypto_version(void);

void bv_sha256_hex(char out[BV_SHA256_HEX_LEN + 1], const void *data, size_t len);

struct bv_sha256 *bv_sha256_new(void);
void bv_sha256_update(struct bv_sha256 *h, const void *data, size_t len);
void bv_sha256_final_hex(char out[BV_SHA256_HEX_LEN + 1], struct bv_sha256 *h);
void bv_sha256_free(struct bv_sha256 *h);

/*
 * Feeds what `fd` holds from its current position to EOF into `h` (EINTR is retried);
 * *count_out (may be NULL) gets the number of bytes.  -1 with errno on a read error, `h`
 * still the caller's.  bv_sha256_fd_hex() does the same into a stream of its own and gives
 * the digest as hex.
 */
int bv_sha256_update_fd(struct bv_sha256 *h, int fd, uint64_t *count_out);
int bv_sha256_fd_hex(int fd, char hex[BV_SHA256_HEX_LEN + 1], uint64_t *count_out);

/*
 * Whether `s` is a digest in the one form bv accepts: "sha256:", then exactly 64 lower-case
 * hex digits, then the end of the string.  NULL is not.  Digests come from registries,
 * bv.lock, manifests and directory names and often become path components, so this is the
 * single check for all of them (OCI allows other algorithms and upper case: bv does not).
 */
bool bv_digest_valid(const char *s);
/* The same for the hex part alone (a blob's file name): 64 lower-case hex digits, then NUL. */
bool bv_sha256_hex_valid(const char *hex);

/* 64-bit FNV-1a of `len` bytes (not a cryptographic hash; see above). */
uint64_t bv_fnv1a64(const void *data, size_t len);

#endif
