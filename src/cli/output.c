/*
 * Terminal output: one error line per failure, colour only for a terminal.
 *
 * Colour follows the no-color.org convention: never when NO_COLOR is set to anything, never
 * when TERM is "dumb", and otherwise only when the stream is a terminal.
 */
#include <bv/error.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "util/buf.h"

#include "util/banned.h"

static bool color_stdout, color_stderr;

static bool want_color(int fd)
{
	const char *term = getenv("TERM");
	if (getenv("NO_COLOR"))
		return false;
	if (term && !strcmp(term, "dumb"))
		return false;
	return isatty(fd) == 1;
}

void bv_cli_init_output(void)
{
	color_stdout = want_color(STDOUT_FILENO);
	color_stderr = want_color(STDERR_FILENO);
}

bool bv_cli_color(FILE *stream)
{
	return stream == stderr ? color_stderr : stream == stdout ? color_stdout : false;
}

__attribute__((format(printf, 3, 0))) static void vreport(const char *prefix, const char *color,
							  const char *fmt, va_list ap)
{
	struct bv_buf msg = BV_BUF_INIT, shown = BV_BUF_INIT;
	fflush(stdout);
	/* messages quote names, paths and registry text: nothing in them may drive the terminal */
	bv_buf_vprintf(&msg, fmt, ap);
	bv_buf_add_printable(&shown, msg.buf, true);
	if (color_stderr)
		fprintf(stderr, "\033[%sm%s\033[0m %s\n", color, prefix, shown.buf);
	else
		fprintf(stderr, "%s %s\n", prefix, shown.buf);
	bv_buf_release(&msg);
	bv_buf_release(&shown);
}

void bv_cli_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vreport("error:", "1;31", fmt, ap);
	va_end(ap);
}

void bv_cli_warning(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vreport("warning:", "1;33", fmt, ap);
	va_end(ap);
}

void bv_cli_hint(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vreport("hint:", "1;36", fmt, ap);
	va_end(ap);
}

const char *bv_cli_text(const char *s)
{
	static struct bv_buf ring[16];
	static size_t next;
	struct bv_buf *b;
	if (!s || bv_text_is_printable(s, false))
		return s;
	b = &ring[next];
	next = (next + 1) % (sizeof(ring) / sizeof(ring[0]));
	if (!b->alloc)
		bv_buf_init(b, 64);
	bv_buf_reset(b);
	bv_buf_add_printable(b, s, false);
	return b->buf;
}

int bv_cli_report(struct bv_error *err)
{
	char *msg = bv_error_format(err);
	bv_cli_error("%s", msg);
	free(msg);
	bv_error_free(err);
	return BV_EXIT_FAILURE;
}
