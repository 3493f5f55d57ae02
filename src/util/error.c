#include <bv/error.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "xalloc.h"

#include "banned.h"

__attribute__((format(printf, 3, 0))) static struct bv_error *error_new(int code, int sys_errno,
									const char *fmt, va_list ap)
{
	struct bv_error *e = bv_xcalloc(1, sizeof(*e));
	e->code = code < 0 ? code : BV_ERR;
	e->sys_errno = sys_errno;
	e->message = bv_xvasprintf(fmt, ap);
	return e;
}

static void error_store(struct bv_error **err, struct bv_error *e)
{
	if (!err) {
		bv_error_free(e);
		return;
	}
	/* An error left unhandled by a caller is replaced rather than leaked. */
	bv_error_free(*err);
	*err = e;
}

int bv_error_setc(struct bv_error **err, int code, int sys_errno, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	error_store(err, error_new(code, sys_errno, fmt, ap));
	va_end(ap);
	return code < 0 ? code : BV_ERR;
}

int bv_error_set(struct bv_error **err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	error_store(err, error_new(BV_ERR, 0, fmt, ap));
	va_end(ap);
	return BV_ERR;
}

int bv_error_set_errno(struct bv_error **err, const char *fmt, ...)
{
	int saved = errno;
	va_list ap;
	va_start(ap, fmt);
	error_store(err, error_new(BV_ERR, saved, fmt, ap));
	va_end(ap);
	errno = saved;
	return BV_ERR;
}

int bv_error_wrap(struct bv_error **err, int code, const char *fmt, ...)
{
	struct bv_error *e;
	va_list ap;
	if (code >= 0)
		code = BV_ERR;
	if (!err)
		return code;
	va_start(ap, fmt);
	e = error_new(code, 0, fmt, ap);
	va_end(ap);
	e->cause = *err;
	*err = e;
	return code;
}

int bv_error_errno(const struct bv_error *err)
{
	int found = 0;
	for (; err; err = err->cause)
		if (err->sys_errno)
			found = err->sys_errno;
	return found;
}

int bv_error_root_code(const struct bv_error *err)
{
	if (!err)
		return BV_OK;
	while (err->cause)
		err = err->cause;
	return err->code;
}

char *bv_error_format(const struct bv_error *err)
{
	struct bv_buf b = BV_BUF_INIT;
	int sys = bv_error_errno(err);
	for (const struct bv_error *e = err; e; e = e->cause) {
		if (b.len)
			bv_buf_puts(&b, ": ");
		bv_buf_puts(&b, e->message);
	}
	if (sys)
		bv_buf_printf(&b, ": %s", strerror(sys));
	if (!b.len)
		bv_buf_puts(&b, "unknown error");
	return bv_buf_detach(&b, NULL);
}

void bv_error_free(struct bv_error *err)
{
	while (err) {
		struct bv_error *cause = err->cause;
		free(err->message);
		free(err);
		err = cause;
	}
}
