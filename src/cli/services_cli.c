/*
 * What bv up, down, ps, logs and restart share: the command line, the project, its
 * [[services]] and the engine, loaded in that order and released together (cli.h).
 */
#include <bv/engine.h>
#include <bv/error.h>
#include <bv/paths.h>
#include <bv/services.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "util/cleanup.h"

#include "util/banned.h"

static void say_waiting(const char *lock_path, void *payload)
{
	(void)lock_path;
	(void)payload;
	fprintf(stderr, "Waiting for another bv up, down or restart of this project\n");
}

int bv_services_cli_begin(struct bv_services_cli *sc, const struct bv_cli_command *cmd, int argc,
			  char **argv, int min_operands, int max_operands, unsigned open_engine)
{
	struct bv_error *err = NULL;
	int first = 0, r;
	memset(sc, 0, sizeof(*sc));
	r = bv_cli_begin(cmd, argc, argv, min_operands, max_operands, &first);
	if (r >= 0)
		return r;
	sc->operands = argv + first;
	sc->n_operands = argc - first;
	if (open_engine & BV_SERVICES_CLI_LOCK) {
		_cleanup_free_ char *root = NULL;
		/* the lock before bv.toml is read: a command that waited acts on what is there
		 * when its turn comes, not on what was there when it began */
		if (bv_project_find(&root, NULL, &err) < 0 ||
		    bv_services_lock(&sc->lock, root, say_waiting, NULL, &err) < 0)
			return bv_cli_report(err);
	}
	r = bv_cli_ctx_load(&sc->ctx, 0, NULL);
	if (r == 0 && bv_services_parse(&sc->services, sc->ctx.project, &err) < 0)
		r = bv_cli_report(err);
	if (r == 0 && (open_engine & BV_SERVICES_CLI_ENGINE))
		r = bv_services_cli_open_engine(sc);
	if (r) {
		bv_services_cli_end(sc);
		return r;
	}
	return -1;
}

int bv_services_cli_open_engine(struct bv_services_cli *sc)
{
	struct bv_error *err = NULL;
	if (bv_engine_open(&sc->engine, NULL, &err) < 0)
		return bv_cli_report(err);
	return 0;
}

void bv_services_cli_end(struct bv_services_cli *sc)
{
	bv_engine_free(sc->engine);
	bv_services_free(sc->services);
	bv_cli_ctx_release(&sc->ctx);
	bv_services_unlock(sc->lock);
	memset(sc, 0, sizeof(*sc));
}

void bv_services_cli_on_event(const char *service, const char *what, void *payload)
{
	(void)payload;
	if (service)
		bv_cli_status("%s: %s\n", bv_cli_text(service), bv_cli_text(what));
	else
		bv_cli_status("%s\n", bv_cli_text(what));
}
