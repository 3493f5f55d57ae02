/*
 * bv down: stop and remove the project's service containers and its network.
 */
#include <bv/error.h>
#include <bv/services.h>

#include "cli.h"

#include "util/banned.h"

static int run_down(int argc, char **argv)
{
	struct bv_services_cli sc;
	struct bv_error *err = NULL;
	struct bv_services_events events = {.on_event = bv_services_cli_on_event};
	int r = bv_services_cli_begin(&sc, &bv_cmd_down, argc, argv, 0, 0,
				      BV_SERVICES_CLI_ENGINE | BV_SERVICES_CLI_LOCK);
	if (r >= 0)
		return r;
	r = bv_services_down(sc.engine, sc.services, &events, &err) < 0 ? bv_cli_report(err)
									: BV_EXIT_OK;
	bv_services_cli_end(&sc);
	return r;
}

static const struct bv_cli_option down_options[] = {
	{NULL, 0, BV_OPT_FLAG, NULL, NULL, NULL},
};

const struct bv_cli_command bv_cmd_down = {
	.name = "down",
	.usage = "",
	.summary = "stop and remove the project's services",
	.description =
		"Stops and removes every container labelled as this project's, whether bv.toml\n"
		"still declares its service or not, then the networks labelled as its own.  What is\n"
		"already gone is fine: running it twice succeeds.",
	.options = down_options,
	.run = run_down,
};
