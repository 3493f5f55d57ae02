/*
 * Terminal output: one error line per failure, colour only for a terminal.
 *
 * Colour follows the no-color.org convention: never when NO_COLOR is set to anything, never
 * when TERM is "dumb", and otherwise only when the stream is a terminal.
 */
#include <bv/error.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "util/buf.h"
#include "util/log.h"

#include "util/banned.h"

static bool color_stdout, color_stderr;
bool bv_cli_quiet;

void bv_cli_status(const char *fmt, ...)
{
	va_list ap;
	if (bv_cli_quiet)
		return;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
}

static void print_log(enum bv_log_level level, const char *message)
{
	static const char *const names[] = {"warn", "info", "debug", "trace"};
	struct bv_buf shown = BV_BUF_INIT;
	bv_buf_add_printable(&shown, message, false);
	fprintf(stderr, "bv: %s: %s\n", names[level], shown.buf);
	bv_buf_release(&shown);
}

void bv_cli_init_log(unsigned verbose)
{
	const char *env = getenv("BV_LOG");
	int level = verbose >= 2 ? BV_LOG_TRACE : verbose == 1 ? BV_LOG_DEBUG : BV_LOG_WARN;
	if (env && env[0]) {
		int from_env = bv_log_parse_level(env);
		if (from_env < 0)
			bv_cli_warning("BV_LOG='%s' is not warn, info, debug or trace; ignored",
				       env);
		else if (from_env > level)
			level = from_env;
	}
	bv_log_set_level((enum bv_log_level)level);
	bv_log_set_sink(print_log);
}

int bv_cli_global_option(const char *name, const char *value)
{
	if (!strcmp(name, "directory")) {
		if (!value[0] || chdir(value) < 0) {
			bv_cli_error("cannot change to directory '%s': %s", value,
				     value[0] ? strerror(errno) : "empty name");
			return BV_EXIT_USAGE;
		}
		bv_logf(BV_LOG_DEBUG, "working directory: %s", value);
	} else if (!strcmp(name, "quiet")) {
		bv_cli_quiet = true;
	} else if (!strcmp(name, "offline")) {
		if (setenv("BV_OFFLINE", "1", 1) < 0) {
			bv_cli_error("could not set BV_OFFLINE: %s", strerror(errno));
			return BV_EXIT_FAILURE;
		}
	}
	return 0;
}

bool bv_cli_terminal_draws(int fd)
{
	const char *term = getenv("TERM");
	return isatty(fd) == 1 && !(term && !strcmp(term, "dumb"));
}

static bool want_color(int fd)
{
	return !getenv("NO_COLOR") && bv_cli_terminal_draws(fd);
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

static unsigned warnings_shown;

unsigned bv_cli_warnings_shown(void)
{
	return warnings_shown;
}

void bv_cli_warning(const char *fmt, ...)
{
	va_list ap;
	warnings_shown++;
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

bool bv_cli_confirm(const char *question)
{
	char line[16];
	bv_cli_status("%s [y/N] ", question);
	fflush(stderr);
	if (!fgets(line, sizeof(line), stdin))
		return false;
	return line[0] == 'y' || line[0] == 'Y';
}
