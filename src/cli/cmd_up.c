/*
 * bv up [service...]: build, pull and start the project's services in dependency order.
 */
#include <bv/engine.h>
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

static void on_event(const char *service, const char *what, void *payload)
{
	(void)payload;
	if (service)
		fprintf(stderr, "%s: %s\n", service, what);
	else
		fprintf(stderr, "%s\n", what);
}

static void on_output(const char *service, const char *line, void *payload)
{
	(void)payload;
	if (arg_verbose)
		fprintf(stderr, "%s | %s\n", service, line);
}

static int run_up(int argc, char **argv)
{
	struct bv_cli_ctx ctx;
	struct bv_error *err = NULL;
	struct bv_services *s = NULL;
	struct bv_engine *e = NULL;
	struct bv_mirrors *mirrors = NULL;
	struct bv_services_up_options o = {0};
	int first = 0, r;
	int status = bv_cli_begin(&bv_cmd_up, argc, argv, 0, -1, &first);
	if (status >= 0)
		return status;
	r = bv_cli_ctx_load(&ctx, 0, NULL);
	if (r) {
		bv_cli_ctx_release(&ctx);
		return r;
	}
	if (bv_services_parse(&s, ctx.project, &err) < 0 || bv_mirrors_load(&mirrors, &err) < 0) {
		r = bv_cli_report(err);
		goto out;
	}
	bv_strv_foreach (w, &s->warnings)
		bv_cli_warning("%s", *w);
	if (!s->n) {
		bv_cli_error("'%s' declares no [[services]]", ctx.project->path);
		r = BV_EXIT_FAILURE;
		goto out;
	}
	if (bv_engine_open(&e, NULL, &err) < 0) {
		r = bv_cli_report(err);
		goto out;
	}
	o.only = (const char *const *)argv + first;
	o.n_only = (size_t)(argc - first);
	o.lock = ctx.lock;
	o.mirrors = mirrors;
	o.timeout_ns = (uint64_t)arg_timeout * 1000000000u;
	o.events.on_event = on_event;
	o.events.on_output = on_output;
	r = bv_services_up(e, s, &o, &err) < 0 ? bv_cli_report(err) : BV_EXIT_OK;
out:
	bv_engine_free(e);
	bv_mirrors_free(mirrors);
	bv_services_free(s);
	bv_cli_ctx_release(&ctx);
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
		"an address.  A running container whose definition did not change is kept.  With\n"
		"service names, starts those and what they depend on.",
	.options = up_options,
	.run = run_up,
};
