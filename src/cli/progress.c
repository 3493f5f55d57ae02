/*
 * Pull progress: one line per image, redrawn on a terminal at most every 100 ms, and a single
 * plain line per finished image otherwise (logs, CI, pipes).
 */
#include <bv/registry.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

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

void bv_cli_pull_progress(const struct bv_pull_progress *p, void *payload)
{
	struct bv_cli_progress *state = payload;
	char done[32], total[32], rate[32];
	size_t layers_done, layers_total;
	bool tty = isatty(STDERR_FILENO) == 1;
	double t = now_s();
	if (!p->finished && (!tty || t - state->last_draw < 0.1))
		return;
	state->last_draw = t;
	human(done, sizeof(done), (double)p->bytes_done);
	human(total, sizeof(total), (double)p->bytes_total);
	human(rate, sizeof(rate), p->rate);
	/* The registry counts the config among the blobs; people count layers. */
	layers_done = p->layers_done ? p->layers_done - 1 : 0;
	layers_total = p->layers_total ? p->layers_total - 1 : 0;
	if (layers_done > layers_total)
		layers_done = layers_total;
	if (tty)
		fprintf(stderr, "\r\033[K%s  %s / %s  %s/s  layers %zu/%zu%s", bv_cli_text(p->name),
			done, total, rate, p->layers_done, p->layers_total,
			p->finished ? "\n" : "");
	else
		fprintf(stderr, "Pulled %s (%s, %zu layer%s)\n", bv_cli_text(p->name), total,
			layers_total, layers_total == 1 ? "" : "s");
}
