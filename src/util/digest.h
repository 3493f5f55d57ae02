/*
 * digest.h - SHA-256 through OpenSSL's EVP interface.
 *
 * Calling sequence:
 *   char hex[BV_SHA256_HEX_LEN + 1];
 *   bv_sha256_hex(data, len, hex);                 one buffer
 *
 *   struct bv_sha256 *h = bv_sha256_new();         a stream (downloads, files)
 *   bv_sha256_update(h, chunk, n); ...
 *   bv_sha256_final_hex(h, hex);                   also frees h
 *
 *   uint64_t h = bv_fnv1a64(text, len);           a name for a cache entry, no crypto
 *
 * FNV-1a is for telling names apart where nobody gains from a collision (a directory per
 * registry URL, a file per project root whose content is checked anyway): SHA-256 there
 * would cost a millisecond of OpenSSL start-up on commands that otherwise hash nothing.
 *
 * Ownership: a stream is owned by its caller until bv_sha256_final_hex() or bv_sha256_free().
 * Errors: none; OpenSSL failing to hash in memory means it is out of memory, which aborts.
 */
#ifndef BV_UTIL_DIGEST_H
#define BV_UTIL_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#define BV_SHA256_HEX_LEN 64

struct bv_sha256;

void bv_sha256_hex(const void *data, size_t len, char out[BV_SHA256_HEX_LEN + 1]);

struct bv_sha256 *bv_sha256_new(void);
void bv_sha256_update(struct bv_sha256 *h, const void *data, size_t len);
void bv_sha256_final_hex(struct bv_sha256 *h, char out[BV_SHA256_HEX_LEN + 1]);
void bv_sha256_free(struct bv_sha256 *h);

/* 64-bit FNV-1a of `len` bytes (not a cryptographic hash; see above). */
uint64_t bv_fnv1a64(const void *data, size_t len);

#endif
