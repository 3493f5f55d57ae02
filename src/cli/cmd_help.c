#include <string.h>

#include "cli.h"

#include "util/banned.h"

static int run_help(int argc, char **argv)
{
	const struct bv_cli_command *cmd;
	int first = 0;
	int status;

	/* The build's man page generator (data/man/meson.build): hidden, not in help_options. */
	if ((argc == 2 || argc == 3) && !strcmp(argv[1], "--man")) {
		cmd = argc == 3 ? bv_cli_find_command(argv[2]) : NULL;
		if (argc == 3 && !cmd)
			return bv_cli_unknown_command(argv[2]);
		bv_cli_print_man(stdout, cmd);
		return BV_EXIT_OK;
	}
	status = bv_cli_begin(&bv_cmd_help, argc, argv, 0, 1, &first);
	if (status >= 0)
		return status;
	if (first == argc) {
		bv_cli_print_main_help(stdout);
		return BV_EXIT_OK;
	}
	cmd = bv_cli_find_command(argv[first]);
	if (!cmd)
		return bv_cli_unknown_command(argv[first]);
	bv_cli_print_command_help(stdout, cmd);
	return BV_EXIT_OK;
}

static const struct bv_cli_option help_options[] = {
	{NULL, 0, BV_OPT_FLAG, NULL, NULL, NULL},
};

const struct bv_cli_command bv_cmd_help = {
	.name = "help",
	.usage = "[<command>]",
	.summary = "show help for bv or for one command",
	.description = "Shows the list of commands, or the usage and options of <command>.",
	.options = help_options,
	.run = run_help,
	.operands = BV_OPERANDS_COMMANDS,
};
