/*
 * buf.h - growable byte buffer that is always NUL-terminated.
 *
 * Calling sequence:
 *   struct bv_buf b = BV_BUF_INIT;
 *   bv_buf_puts(&b, "name = ");
 *   bv_buf_printf(&b, "%d\n", 3);
 *   use b.buf / b.len;
 *   bv_buf_release(&b);              or: char *s = bv_buf_detach(&b, &len);
 *
 * Invariants: `buf` is never NULL and buf[len] == '\0', so b.buf is always a valid C string
 * (the bytes may also contain NULs; `len` is authoritative).  A buffer with alloc == 0 points
 * at a shared empty string and owns no memory.
 *
 * Ownership: the buffer owns `buf` until bv_buf_detach() hands it to the caller.
 *
 * Errors: none; growth aborts on out-of-memory (xalloc.h).  The bounded readers that fill a
 * buffer from a file or descriptor, bv_buf_read_file() and bv_buf_read_fd(), are in fs.h: they
 * report through struct bv_error, which is itself built on this buffer, so buf stays below
 * error and the readers sit above both.
 */
#ifndef BV_UTIL_BUF_H
#define BV_UTIL_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

extern char bv_buf_empty[];

struct bv_buf {
	char *buf;
	size_t len;
	size_t alloc;
};

#define BV_BUF_INIT                                       \
	{                                                 \
		.buf = bv_buf_empty, .len = 0, .alloc = 0 \
	}

void bv_buf_init(struct bv_buf *b, size_t hint);
void bv_buf_release(struct bv_buf *b);
/* Keeps the allocation, sets len to 0. */
void bv_buf_reset(struct bv_buf *b);
/* Ensures room for `extra` more bytes plus the terminating NUL. */
void bv_buf_grow(struct bv_buf *b, size_t extra);
/* Sets len (<= alloc - 1) and terminates. */
void bv_buf_setlen(struct bv_buf *b, size_t len);

void bv_buf_add(struct bv_buf *b, const void *data, size_t len);
void bv_buf_puts(struct bv_buf *b, const char *s);
void bv_buf_putc(struct bv_buf *b, char c);
__attribute__((format(printf, 2, 3))) void bv_buf_printf(struct bv_buf *b, const char *fmt, ...);
__attribute__((format(printf, 2, 0))) void bv_buf_vprintf(struct bv_buf *b, const char *fmt,
							  va_list ap);

/*
 * Appends `s` as text that is safe to show on a terminal: valid UTF-8 is copied, except the
 * C0 and C1 control characters and DEL, which are written as "\xNN" per byte (ESC becomes
 * "\x1b"), as is every byte that is not part of a valid UTF-8 sequence.  Tab is kept, and
 * newline too when `keep_newlines`.  Returns whether anything was escaped.
 */
bool bv_buf_add_printable(struct bv_buf *b, const char *s, bool keep_newlines);
/*
 * The length (1 to 4) of the valid UTF-8 sequence at `s`, its code point in *cp, or 0 when
 * `s` does not start one: overlong forms, surrogates and code points above U+10FFFF are
 * invalid (RFC 3629); "" gives 1 and U+0000.
 */
size_t bv_utf8_decode(const char *s, unsigned *cp);
/* Whether bv_buf_add_printable() would copy `s` unchanged. */
bool bv_text_is_printable(const char *s, bool keep_newlines);

/* Returns the string (never NULL) and leaves `b` empty; stores the length in *len if given. */
char *bv_buf_detach(struct bv_buf *b, size_t *len);

static inline void bv_buf_releasep(struct bv_buf *b)
{
	bv_buf_release(b);
}
#define _cleanup_buf_ __attribute__((cleanup(bv_buf_releasep)))

#endif
