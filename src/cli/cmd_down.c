/*
 * bv down [--volumes]: stop and remove the project's service containers and its network
 * (and with --volumes its named volumes).
 */
#include <bv/error.h>
#include <bv/services.h>

#include "cli.h"

#include "util/banned.h"

static bool arg_volumes;

static int run_down(int argc, char **argv)
{
	struct bv_services_cli sc;
	struct bv_error *err = NULL;
	struct bv_services_events events = {.on_event = bv_services_cli_on_event};
	int r = bv_services_cli_begin(&sc, &bv_cmd_down, argc, argv, 0, 0,
				      BV_SERVICES_CLI_ENGINE | BV_SERVICES_CLI_LOCK);
	if (r >= 0)
		return r;
	r = bv_services_down(sc.engine, sc.services, &events, &err);
	if (r >= 0 && arg_volumes)
		r = bv_services_remove_volumes(sc.engine, sc.services, &events, &err);
	r = r < 0 ? bv_cli_report(err) : BV_EXIT_OK;
	bv_services_cli_end(&sc);
	return r;
}

static const struct bv_cli_option down_options[] = {
	{"volumes", 'v', BV_OPT_FLAG, &arg_volumes, NULL,
	 "also remove the named volumes of [volumes] (anonymous ones go with their containers)"},
	{NULL, 0, BV_OPT_FLAG, NULL, NULL, NULL},
};

const struct bv_cli_command bv_cmd_down = {
	.name = "down",
	.usage = "[-v|--volumes]",
	.summary = "stop and remove the project's services",
	.description =
		"Stops and removes every container labelled as this project's, whether bv.toml\n"
		"still declares its service or not, then the networks labelled as its own.  What is\n"
		"already gone is fine: running it twice succeeds.  Named volumes are kept, so\n"
		"data survives a down and up, unless --volumes is given; anonymous volumes are\n"
		"removed with their containers.",
	.options = down_options,
	.run = run_down,
};
