/*
 * xalloc.h - allocation that never returns NULL.
 *
 * Calling sequence: use bv_xmalloc()/bv_xcalloc()/bv_xrealloc()/bv_xstrdup()/bv_xstrndup()/
 * bv_xasprintf() wherever malloc() and friends would be used; release with free().
 *
 * Ownership: every returned pointer is new and owned by the caller.
 *
 * Errors: running out of memory is not an error that callers can handle sensibly, so these
 * functions write one line to stderr and abort(3).  This is the single place outside src/cli/
 * that writes to the terminal; it uses write(2) only, because stdio may itself need memory.
 * bv_xcalloc() and bv_xreallocarray() also abort when n * size overflows.
 */
#ifndef BV_UTIL_XALLOC_H
#define BV_UTIL_XALLOC_H

#include <stdarg.h>
#include <stddef.h>

__attribute__((noreturn)) void bv_oom(void);

__attribute__((malloc, returns_nonnull)) void *bv_xmalloc(size_t size);
__attribute__((malloc, returns_nonnull)) void *bv_xcalloc(size_t n, size_t size);
__attribute__((returns_nonnull)) void *bv_xrealloc(void *ptr, size_t size);
__attribute__((returns_nonnull)) void *bv_xreallocarray(void *ptr, size_t n, size_t size);
__attribute__((malloc, returns_nonnull)) char *bv_xstrdup(const char *s);
__attribute__((malloc, returns_nonnull)) char *bv_xstrndup(const char *s, size_t n);
__attribute__((malloc, returns_nonnull, format(printf, 1, 2))) char *bv_xasprintf(const char *fmt,
										  ...);
__attribute__((malloc, returns_nonnull, format(printf, 1, 0))) char *bv_xvasprintf(const char *fmt,
										   va_list ap);

/*
 * Grows `*array` (of `*alloc` elements of `size` bytes) so it can hold at least `need` elements.
 * Growth is geometric, so appending n elements one by one costs O(n).
 */
void bv_grow(void **array, size_t *alloc, size_t need, size_t size);
#define BV_GROW(array, alloc, need) bv_grow((void **)&(array), &(alloc), (need), sizeof(*(array)))

#endif
