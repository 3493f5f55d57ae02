/*
 * strv.h - NULL-terminated vector of owned strings (argv, env, path lists).
 *
 * Calling sequence:
 *   struct bv_strv v = BV_STRV_INIT;
 *   bv_strv_push(&v, "samtools");
 *   bv_strv_pushf(&v, "--threads=%d", n);
 *   execv(v.v[0], v.v);                 v.v is always NULL-terminated
 *   bv_strv_clear(&v);
 *
 * Invariants: `v` is never NULL (an empty vector points at a shared { NULL }) and v[n] == NULL.
 *
 * Ownership: the vector owns every string in it.  bv_strv_push() copies its argument;
 * bv_strv_push_take() takes ownership of an allocated string.  bv_strv_detach() hands the
 * array to the caller, who frees it with bv_strv_free().
 *
 * Errors: none; out-of-memory aborts.
 */
#ifndef BV_UTIL_STRV_H
#define BV_UTIL_STRV_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

extern char *bv_strv_empty[];

struct bv_strv {
	char **v;
	size_t n;
	size_t alloc;
};

#define BV_STRV_INIT                                   \
	{                                              \
		.v = bv_strv_empty, .n = 0, .alloc = 0 \
	}

/* `s` names the loop variable, so it cannot be parenthesised. */
#define bv_strv_foreach(s, vec) \
	for (char **s = (vec)->v; *s; s++) /* NOLINT(bugprone-macro-parentheses) */

void bv_strv_init(struct bv_strv *v);
void bv_strv_clear(struct bv_strv *v);
const char *bv_strv_push(struct bv_strv *v, const char *s);
const char *bv_strv_push_take(struct bv_strv *v, char *s);
__attribute__((format(printf, 2, 3))) const char *bv_strv_pushf(struct bv_strv *v, const char *fmt,
								...);
void bv_strv_pushv(struct bv_strv *v, const char *const *items);
/* Removes and frees the last element, if any. */
void bv_strv_pop(struct bv_strv *v);
bool bv_strv_contains(const struct bv_strv *v, const char *s);
/* Environment vectors of "K=V": the index of the entry for the first `len` bytes of `key`. */
ssize_t bv_strv_env_find(const struct bv_strv *env, const char *key, size_t len);
/* "K=V" into `env`, replacing the entry for the same K (a later setting wins, as in docker). */
void bv_strv_env_set(struct bv_strv *env, const char *entry);
void bv_strv_sort(struct bv_strv *v);
/* Returns the NULL-terminated array and leaves `v` empty. */
char **bv_strv_detach(struct bv_strv *v);
/* Frees an array returned by bv_strv_detach(); accepts NULL. */
void bv_strv_free(char **array);

static inline void bv_strv_clearp(struct bv_strv *v)
{
	bv_strv_clear(v);
}
#define _cleanup_strv_ __attribute__((cleanup(bv_strv_clearp)))

#endif
