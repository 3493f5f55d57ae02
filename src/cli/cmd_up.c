/*
 * bv up [service...]: build, pull and start the project's services in dependency order.
 */
#include <bv/error.h>
#include <bv/imageref.h>
#include <bv/project.h>
#include <bv/services.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

#include "util/banned.h"

static unsigned arg_timeout;
static bool arg_verbose;

static void on_output(const char *service, const char *line, void *payload)
{
	(void)payload;
	if (arg_verbose)
		/* the line is the service's own output, passed on as it is (like bv logs) */
		bv_cli_status("%s | %s\n", bv_cli_text(service), line);
}

static int run_up(int argc, char **argv)
{
	struct bv_services_cli sc;
	struct bv_error *err = NULL;
	struct bv_mirrors *mirrors = NULL;
	struct bv_services_up_options o = {0};
	/* the engine last: a project without services or mirrors it cannot read needs none */
	int r = bv_services_cli_begin(&sc, &bv_cmd_up, argc, argv, 0, -1, BV_SERVICES_CLI_LOCK);
	if (r >= 0)
		return r;
	if (bv_mirrors_load(&mirrors, &err) < 0) {
		r = bv_cli_report(err);
		goto out;
	}
	bv_strv_foreach (w, &sc.services->warnings)
		bv_cli_warning("%s", *w);
	if (!sc.services->n) {
		bv_cli_error("'%s' declares no [[services]]", sc.ctx.project->path);
		r = BV_EXIT_FAILURE;
		goto out;
	}
	r = bv_services_cli_open_engine(&sc);
	if (r)
		goto out;
	o.only = (const char *const *)sc.operands;
	o.n_only = (size_t)sc.n_operands;
	o.lock = sc.ctx.lock;
	o.mirrors = mirrors;
	o.timeout_ns = (uint64_t)arg_timeout * 1000000000u;
	o.events.on_event = bv_services_cli_on_event;
	o.events.on_output = on_output;
	r = bv_services_up(sc.engine, sc.services, &o, &err) < 0 ? bv_cli_report(err) : BV_EXIT_OK;
out:
	bv_mirrors_free(mirrors);
	bv_services_cli_end(&sc);
	return r;
}

static const struct bv_cli_option up_options[] = {
	{"timeout", 0, BV_OPT_UINT, &arg_timeout, "SECONDS",
	 "how long each service may take to become healthy (default: 120)"},
	{"verbose", 'v', BV_OPT_FLAG, &arg_verbose, NULL, "show build and pull output"},
	{NULL, 0, BV_OPT_FLAG, NULL, NULL, NULL},
};

const struct bv_cli_command bv_cmd_up = {
	.name = "up",
	.usage = "[--timeout <SECONDS>] [-v] [<service>...]",
	.summary = "start the project's services",
	.description =
		"Builds and pulls the images of the services bv.toml declares ([[services]]), then\n"
		"starts them on the Docker daemon (DOCKER_HOST, or Podman's service) in dependency\n"
		"order: a service starts once everything it depends on is healthy.  Containers\n"
		"are named bv-<project>-<service> on the network bv-<project>-net, where services\n"
		"reach each other by name; published ports bind to 127.0.0.1 unless bv.toml names\n"
		"an address.  A running container whose definition did not change, and that the\n"
		"engine still shows as bv made it (network, image, command, env, ports, volumes),\n"
		"is kept; any other is recreated, and what depends on it is restarted.  With\n"
		"service names, starts those and what they depend on.  Concurrent up, down and\n"
		"restart of one project run one at a time.",
	.options = up_options,
	.run = run_up,
};
