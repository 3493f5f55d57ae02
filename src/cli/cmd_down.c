/*
 * bv down: stop and remove the project's service containers and its network.
 */
#include <bv/engine.h>
#include <bv/error.h>
#include <bv/project.h>
#include <bv/services.h>
#include <stdio.h>

#include "cli.h"

#include "util/banned.h"

static void on_event(const char *service, const char *what, void *payload)
{
	(void)payload;
	if (service)
		fprintf(stderr, "%s: %s\n", service, what);
	else
		fprintf(stderr, "%s\n", what);
}

static int run_down(int argc, char **argv)
{
	struct bv_cli_ctx ctx;
	struct bv_error *err = NULL;
	struct bv_services *s = NULL;
	struct bv_engine *e = NULL;
	struct bv_services_events events = {.on_event = on_event};
	int first = 0, r;
	int status = bv_cli_begin(&bv_cmd_down, argc, argv, 0, 0, &first);
	if (status >= 0)
		return status;
	r = bv_cli_ctx_load(&ctx, 0, NULL);
	if (r) {
		bv_cli_ctx_release(&ctx);
		return r;
	}
	if (bv_services_parse(&s, ctx.project, &err) < 0 || bv_engine_open(&e, NULL, &err) < 0)
		r = bv_cli_report(err);
	else
		r = bv_services_down(e, s, &events, &err) < 0 ? bv_cli_report(err) : BV_EXIT_OK;
	bv_engine_free(e);
	bv_services_free(s);
	bv_cli_ctx_release(&ctx);
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
		"still declares its service or not, then removes the project's network.  What is\n"
		"already gone is fine: running it twice succeeds.",
	.options = down_options,
	.run = run_down,
};
