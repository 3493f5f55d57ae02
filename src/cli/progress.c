/*
 * Pull progress: one line per image, redrawn on a terminal at most every 100 ms.  Elsewhere
 * (logs, CI, pipes, TERM=dumb) plain lines without escapes: one per image every few seconds
 * while it downloads, and one when it is done that says how much was downloaded.
 */
#include <bv/registry.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "util/cleanup.h"
#include "util/parse.h"

#include "util/banned.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void human(char *out, size_t len, double bytes)
{
	bv_cli_format_size(out, len, (int64_t)bytes);
}

/* BV_PROGRESS_INTERVAL_MS overrides the seconds between plain lines (tests, quiet logs). */
static double line_interval_s(void)
{
	const char *v = getenv("BV_PROGRESS_INTERVAL_MS");
	unsigned ms;
	if (v && bv_parse_uint(&ms, v) == 0)
		return (double)ms / 1000.0;
	return BV_CLI_PROGRESS_LINE_S;
}

void bv_cli_pull_progress(const struct bv_pull_progress *p, void *payload)
{
	if (bv_cli_quiet)
		return;
	struct bv_cli_progress *state = payload;
	char done[32], total[32], rate[32], fetched[32];
	size_t layers_done, layers_total;
	bool tty = bv_cli_terminal_draws(STDERR_FILENO);
	double t = now_s();
	double *last_line = &state->last_line[p->image % BV_ARRAY_SIZE(state->last_line)];
	if (!state->started)
		state->started = t;
	if (!p->finished) {
		if (tty && t - state->last_draw < 0.1)
			return;
		/* logs and pipes: a line every few seconds, so a long pull is not silence */
		if (!tty && t - (*last_line ? *last_line : state->started) < line_interval_s())
			return;
	}
	state->last_draw = t;
	*last_line = t;
	human(done, sizeof(done), (double)p->bytes_done);
	human(total, sizeof(total), (double)p->bytes_total);
	human(rate, sizeof(rate), p->rate);
	human(fetched, sizeof(fetched), (double)p->bytes_fetched);
	/* The registry counts the config among the blobs; people count layers. */
	layers_done = p->layers_done ? p->layers_done - 1 : 0;
	layers_total = p->layers_total ? p->layers_total - 1 : 0;
	if (layers_done > layers_total)
		layers_done = layers_total;
	if (tty && !p->finished) {
		bv_cli_status("\r\033[K%s  %s / %s  %s/s  layers %zu/%zu", bv_cli_text(p->name),
			      done, total, rate, layers_done, layers_total);
		return;
	}
	if (tty)
		fputs("\r\033[K", stderr);
	if (!p->finished)
		bv_cli_status("Pulling %s: %s / %s (%s/s), layers %zu/%zu\n", bv_cli_text(p->name),
			      done, total, rate, layers_done, layers_total);
	else if (p->bytes_fetched == 0)
		bv_cli_status("%s: already in the store (%s, %zu layer%s)\n", bv_cli_text(p->name),
			      total, layers_total, layers_total == 1 ? "" : "s");
	else if (p->bytes_fetched < p->bytes_total)
		bv_cli_status("Pulled %s (%s of %s downloaded, %zu layer%s)\n",
			      bv_cli_text(p->name), fetched, total, layers_total,
			      layers_total == 1 ? "" : "s");
	else
		bv_cli_status("Pulled %s (%s, %zu layer%s)\n", bv_cli_text(p->name), total,
			      layers_total, layers_total == 1 ? "" : "s");
}
