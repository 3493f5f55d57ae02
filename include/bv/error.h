/*
 * bv/error.h - error values passed from the library to its callers.
 *
 * Calling sequence:
 *   struct bv_error *err = NULL;
 *   if (bv_something(..., &err) < 0) {
 *           char *text = bv_error_format(err);   "could not read 'bv.toml': No such file..."
 *           ...
 *           free(text);
 *           bv_error_free(err);
 *   }
 *
 * Inside the library a failing function records what failed with bv_error_set() (or
 * bv_error_set_errno() right after a failed system call) and returns its result:
 *   return bv_error_set_errno(err, "could not open '%s'", path);
 * A caller that adds context wraps the error it received instead of replacing it:
 *   if (r < 0)
 *           return bv_error_wrap(err, r, "could not load project '%s'", dir);
 *
 * Ownership: the error belongs to whoever passed `err`; free it with bv_error_free().  `err` may
 * be NULL when the caller does not want the details; the return code is still negative.
 *
 * Return codes: 0 is success and every failure is negative.  Most failures are BV_ERR (-1);
 * the few outcomes a caller is expected to branch on have their own codes below.
 *
 * Messages follow git's rules: lower case, no final period, say what failed first, and quote
 * the subject ('%s').  The errno text is appended once, at the end, by bv_error_format().
 */
#ifndef BV_ERROR_H
#define BV_ERROR_H

enum bv_error_code {
	BV_OK = 0,
	BV_ERR = -1,       /* anything without a more specific code */
	BV_ENOTFOUND = -2, /* the thing looked up does not exist */
	BV_EEXISTS = -3,   /* the thing to be created exists already */
	BV_EINVALID = -4,  /* malformed input (syntax, schema, value) */
	BV_EUSAGE = -5,    /* the command line is wrong */
};

struct bv_error {
	int code;               /* one of enum bv_error_code */
	int sys_errno;          /* errno of the failure, 0 when no system call failed */
	char *message;          /* this level's message, without the errno text */
	struct bv_error *cause; /* the error this one adds context to, or NULL */
};

/* Records a failure; returns `code` (which must be negative). */
__attribute__((format(printf, 4, 5))) int bv_error_setc(struct bv_error **err, int code,
							int sys_errno, const char *fmt, ...);

/* Records a failure with code BV_ERR and no errno; returns BV_ERR. */
__attribute__((format(printf, 2, 3))) int bv_error_set(struct bv_error **err, const char *fmt, ...);

/* Records a failure with the current errno; returns BV_ERR (errno is preserved). */
__attribute__((format(printf, 2, 3))) int bv_error_set_errno(struct bv_error **err, const char *fmt,
							     ...);

/*
 * Adds a context line on top of the error in *err (or records a new one when *err is NULL) and
 * returns `code`, which is normally the code the failing callee returned.
 */
__attribute__((format(printf, 3, 4))) int bv_error_wrap(struct bv_error **err, int code,
							const char *fmt, ...);

/* The errno of the innermost error that has one, or 0. */
int bv_error_errno(const struct bv_error *err);

/* The code of the innermost error (the root cause), or BV_OK for NULL. */
int bv_error_root_code(const struct bv_error *err);

/* New string "outer: inner: root[: strerror]"; the caller frees it. */
char *bv_error_format(const struct bv_error *err);

/* Frees the whole chain; accepts NULL. */
void bv_error_free(struct bv_error *err);

#endif
