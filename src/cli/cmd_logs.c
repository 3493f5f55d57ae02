/*
 * bv logs <service> [-f] [--timestamps]: the log of a service's container.
 */
#include <bv/engine.h>
#include <bv/error.h>
#include <bv/project.h>
#include <bv/services.h>
#include <stdio.h>

#include "cli.h"

#include "util/banned.h"

static bool arg_follow;
static bool arg_timestamps;
static bool output_closed;

/* stdout lines to stdout, stderr lines to stderr; the engine's time in a column of its own */
static int on_line(int stream, const char *timestamp, const char *line, void *payload)
{
	FILE *out = stream == 2 ? stderr : stdout;
	(void)payload;
	if (arg_timestamps)
		fprintf(out, "%-30s  %s\n", timestamp ? timestamp : "-", line);
	else
		fprintf(out, "%s\n", line);
	if (arg_follow)
		fflush(out);
	if (ferror(out)) {
		output_closed = true; /* e.g. `bv logs web | head`: stop reading */
		return -1;
	}
	return 0;
}

static int run_logs(int argc, char **argv)
{
	struct bv_cli_ctx ctx;
	struct bv_error *err = NULL;
	struct bv_services *s = NULL;
	struct bv_engine *e = NULL;
	struct bv_services_log_options o = {.on_line = on_line};
	int first = 0, r;
	int status = bv_cli_begin(&bv_cmd_logs, argc, argv, 1, 1, &first);
	if (status >= 0)
		return status;
	r = bv_cli_ctx_load(&ctx, 0, NULL);
	if (r) {
		bv_cli_ctx_release(&ctx);
		return r;
	}
	o.follow = arg_follow;
	o.timestamps = arg_timestamps;
	if (bv_services_parse(&s, ctx.project, &err) < 0 || bv_engine_open(&e, NULL, &err) < 0) {
		r = bv_cli_report(err);
	} else if (bv_services_logs(e, s, argv[first], &o, &err) < 0) {
		if (output_closed) {
			bv_error_free(err);
			r = BV_EXIT_FAILURE;
		} else {
			r = bv_cli_report(err);
		}
	} else {
		r = BV_EXIT_OK;
	}
	bv_engine_free(e);
	bv_services_free(s);
	bv_cli_ctx_release(&ctx);
	return r;
}

static const struct bv_cli_option logs_options[] = {
	{"follow", 'f', BV_OPT_FLAG, &arg_follow, NULL, "keep printing new lines as they come"},
	{"timestamps", 't', BV_OPT_FLAG, &arg_timestamps, NULL,
	 "show the time the engine recorded for each line, in a column before it"},
	{NULL, 0, BV_OPT_FLAG, NULL, NULL, NULL},
};

const struct bv_cli_command bv_cmd_logs = {
	.name = "logs",
	.usage = "[-f] [--timestamps] <service>",
	.summary = "show a service's log",
	.description = "Prints the log of a service's container: what it wrote to stdout on\n"
		       "stdout, what it wrote to stderr on stderr.",
	.options = logs_options,
	.run = run_logs,
};
