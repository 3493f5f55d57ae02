/*
 * bv ps: the project's service containers, their state, health and published ports.
 */
#include <bv/error.h>
#include <bv/services.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "util/xalloc.h"

#include "util/banned.h"

static void print_rows(const struct bv_service_status *rows, size_t n)
{
	size_t w_service = strlen("SERVICE"), w_status = strlen("STATUS");
	size_t w_health = strlen("HEALTH");
	char **status = bv_xcalloc(n + 1, sizeof(*status));
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(rows[i].state, "exited"))
			status[i] = bv_xasprintf("exited (%d)", rows[i].exit_code);
		else
			status[i] = bv_xstrdup(rows[i].state);
		if (strlen(rows[i].service) > w_service)
			w_service = strlen(rows[i].service);
		if (strlen(status[i]) > w_status)
			w_status = strlen(status[i]);
		if (strlen(rows[i].health) > w_health)
			w_health = strlen(rows[i].health);
	}
	printf("%-*s  %-*s  %-*s  %s\n", (int)w_service, "SERVICE", (int)w_status, "STATUS",
	       (int)w_health, "HEALTH", "PORTS");
	for (size_t i = 0; i < n; i++) {
		printf("%-*s  %-*s  %-*s  %s\n", (int)w_service, bv_cli_text(rows[i].service),
		       (int)w_status, bv_cli_text(status[i]), (int)w_health,
		       rows[i].health[0] ? bv_cli_text(rows[i].health) : "-",
		       bv_cli_text(rows[i].ports));
		free(status[i]);
	}
	free(status);
}

static int run_ps(int argc, char **argv)
{
	struct bv_services_cli sc;
	struct bv_error *err = NULL;
	struct bv_service_status *rows = NULL;
	size_t n = 0;
	int r = bv_services_cli_begin(&sc, &bv_cmd_ps, argc, argv, 0, 0, true);
	if (r >= 0)
		return r;
	if (bv_services_ps(&rows, &n, sc.engine, sc.services, &err) < 0) {
		r = bv_cli_report(err);
	} else {
		print_rows(rows, n);
		r = BV_EXIT_OK;
	}
	bv_service_status_free(rows, n);
	bv_services_cli_end(&sc);
	return r;
}

static const struct bv_cli_option ps_options[] = {
	{NULL, 0, BV_OPT_FLAG, NULL, NULL, NULL},
};

const struct bv_cli_command bv_cmd_ps = {
	.name = "ps",
	.usage = "",
	.summary = "list the project's services",
	.description =
		"Lists the containers labelled as this project's, sorted by service name: their\n"
		"state (with the exit code of one that stopped), the verdict of its healthcheck\n"
		"('-' without one) and the ports they publish.",
	.options = ps_options,
	.run = run_ps,
};
