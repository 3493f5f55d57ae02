/*
 * bv restart <service>: restart one service's container and wait until it is healthy.
 */
#include <bv/engine.h>
#include <bv/error.h>
#include <bv/project.h>
#include <bv/services.h>
#include <stdio.h>

#include "cli.h"

#include "util/banned.h"

static unsigned arg_timeout;

static void on_event(const char *service, const char *what, void *payload)
{
	(void)payload;
	if (service)
		fprintf(stderr, "%s: %s\n", service, what);
	else
		fprintf(stderr, "%s\n", what);
}

static int run_restart(int argc, char **argv)
{
	struct bv_cli_ctx ctx;
	struct bv_error *err = NULL;
	struct bv_services *s = NULL;
	struct bv_engine *e = NULL;
	struct bv_services_events events = {.on_event = on_event};
	int first = 0, r;
	int status = bv_cli_begin(&bv_cmd_restart, argc, argv, 1, 1, &first);
	if (status >= 0)
		return status;
	r = bv_cli_ctx_load(&ctx, 0, NULL);
	if (r) {
		bv_cli_ctx_release(&ctx);
		return r;
	}
	if (bv_services_parse(&s, ctx.project, &err) < 0 || bv_engine_open(&e, NULL, &err) < 0 ||
	    bv_services_restart(e, s, argv[first], (uint64_t)arg_timeout * 1000000000u, &events,
				&err) < 0)
		r = bv_cli_report(err);
	else
		r = BV_EXIT_OK;
	bv_engine_free(e);
	bv_services_free(s);
	bv_cli_ctx_release(&ctx);
	return r;
}

static const struct bv_cli_option restart_options[] = {
	{"timeout", 0, BV_OPT_UINT, &arg_timeout, "SECONDS",
	 "how long it may take to become healthy again (default: 120)"},
	{NULL, 0, BV_OPT_FLAG, NULL, NULL, NULL},
};

const struct bv_cli_command bv_cmd_restart = {
	.name = "restart",
	.usage = "[--timeout <SECONDS>] <service>",
	.summary = "restart a service",
	.description = "Restarts the container of one service and waits until it is healthy\n"
		       "again (or running, when it has no healthcheck).",
	.options = restart_options,
	.run = run_restart,
};
