/*
 * bv restart <service>: restart one service's container and wait until it is healthy.
 */
#include <bv/error.h>
#include <bv/services.h>

#include "cli.h"

#include "util/banned.h"

static unsigned arg_timeout;

static int run_restart(int argc, char **argv)
{
	struct bv_services_cli sc;
	struct bv_error *err = NULL;
	struct bv_services_events events = {.on_event = bv_services_cli_on_event};
	int r = bv_services_cli_begin(&sc, &bv_cmd_restart, argc, argv, 1, 1,
				      BV_SERVICES_CLI_ENGINE | BV_SERVICES_CLI_LOCK);
	if (r >= 0)
		return r;
	if (bv_services_restart(sc.engine, sc.services, sc.operands[0],
				(uint64_t)arg_timeout * 1000000000u, &events, &err) < 0)
		r = bv_cli_report(err);
	else
		r = BV_EXIT_OK;
	bv_services_cli_end(&sc);
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
