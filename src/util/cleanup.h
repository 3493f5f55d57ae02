/*
 * cleanup.h - scope-bound release of resources through __attribute__((cleanup)).
 *
 * Calling sequence:
 *   _cleanup_free_ char *path = bv_xstrdup(p);     freed when `path` leaves scope
 *   _cleanup_close_ int fd = open(...);            closed when `fd` leaves scope (if >= 0)
 *   return TAKE_PTR(path);                         hands ownership to the caller
 *   *fd_out = TAKE_FD(fd);
 *
 * Ownership: a variable marked with a cleanup attribute owns what it points to until
 * TAKE_PTR()/TAKE_FD() moves the value out and leaves NULL / -1 behind.  Cleanup helpers accept
 * NULL and -1, so half-built objects release correctly on every error path.
 *
 * Errors: none; close(2) failures on cleanup are ignored because the data was already
 * committed (or abandoned) by the code that owned the descriptor.
 */
#ifndef BV_UTIL_CLEANUP_H
#define BV_UTIL_CLEANUP_H

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define _cleanup_(fn) __attribute__((cleanup(fn)))

/*
 * Defines `static inline void name(type *p)` calling `fn(*p)` when *p is not the empty value.
 * `type` is a type and `name` a name, so neither can be parenthesised.
 */
#define BV_DEFINE_CLEANUP(type, name, fn, empty)                                  \
	static inline void name(type *p) /* NOLINT(bugprone-macro-parentheses) */ \
	{                                                                         \
		if (*p != (empty))                                                \
			(void)fn(*p);                                             \
	}

static inline void bv_freep(void *p)
{
	free(*(void **)p);
}

static inline void bv_closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
}

BV_DEFINE_CLEANUP(FILE *, bv_fclosep, fclose, NULL)
BV_DEFINE_CLEANUP(DIR *, bv_closedirp, closedir, NULL)

#define _cleanup_free_     _cleanup_(bv_freep)
#define _cleanup_close_    _cleanup_(bv_closep)
#define _cleanup_fclose_   _cleanup_(bv_fclosep)
#define _cleanup_closedir_ _cleanup_(bv_closedirp)

/* Returns *pp and sets it to NULL, so the cleanup attribute no longer releases it. */
#define TAKE_PTR(ptr)                                         \
	__extension__({                                       \
		__typeof__(ptr) *bv_take_ptr_ = &(ptr);       \
		__typeof__(ptr) bv_take_val_ = *bv_take_ptr_; \
		*bv_take_ptr_ = NULL;                         \
		bv_take_val_;                                 \
	})

/* Returns fd and sets it to -1. */
#define TAKE_FD(fd)                              \
	__extension__({                          \
		int *bv_take_fdp_ = &(fd);       \
		int bv_take_fd_ = *bv_take_fdp_; \
		*bv_take_fdp_ = -1;              \
		bv_take_fd_;                     \
	})

#define BV_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
