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
	fflush(stdout);
	if (color_stderr)
		fprintf(stderr, "\033[%sm%s\033[0m ", color, prefix);
	else
		fprintf(stderr, "%s ", prefix);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
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

int bv_cli_report(struct bv_error *err)
{
	char *msg = bv_error_format(err);
	bv_cli_error("%s", msg);
	free(msg);
	bv_error_free(err);
	return BV_EXIT_FAILURE;
}
