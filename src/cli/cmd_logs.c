/*
 * bv logs <service> [-f] [--timestamps]: the log of a service's container.
 */
#include <bv/error.h>
#include <bv/services.h>
#include <stdio.h>

#include "cli.h"

#include "util/banned.h"

static bool arg_follow;
static bool arg_timestamps;
static bool output_closed;

/*
 * stdout lines to stdout, stderr lines to stderr; the engine's time in a column of its own.
 * The lines are the service's own output and pass as they are, as bv run's do.
 */
static int on_line(int stream, const char *timestamp, const char *line, void *payload)
{
	FILE *out = stream == 2 ? stderr : stdout;
	(void)payload;
	if (arg_timestamps)
		fprintf(out, "%-30s  %s\n", timestamp ? bv_cli_text(timestamp) : "-", line);
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
	struct bv_services_cli sc;
	struct bv_error *err = NULL;
	struct bv_services_log_options o = {.on_line = on_line};
	int r = bv_services_cli_begin(&sc, &bv_cmd_logs, argc, argv, 1, 1, true);
	if (r >= 0)
		return r;
	o.follow = arg_follow;
	o.timestamps = arg_timestamps;
	if (bv_services_logs(sc.engine, sc.services, sc.operands[0], &o, &err) < 0) {
		if (output_closed) {
			bv_error_free(err);
			r = BV_EXIT_FAILURE;
		} else {
			r = bv_cli_report(err);
		}
	} else {
		r = BV_EXIT_OK;
	}
	bv_services_cli_end(&sc);
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
