#include "config.h"

#include <jansson.h>
#include <stdio.h>

#include "cli.h"
#include "util/digest.h"

#include "util/banned.h"

static bool arg_verbose;

static int run_version(int argc, char **argv)
{
	int first = 0;
	int status = bv_cli_begin(&bv_cmd_version, argc, argv, 0, 0, &first);
	if (status >= 0)
		return status;
	printf("bv %s\n", BV_VERSION);
	if (arg_verbose) {
		printf("jansson %s\n", jansson_version_str());
		printf("%s\n", bv_crypto_version());
	}
	return BV_EXIT_OK;
}

static const struct bv_cli_option version_options[] = {
	{"verbose", 'v', BV_OPT_FLAG, &arg_verbose, NULL,
	 "also print the versions of the libraries"},
	{NULL, 0, BV_OPT_FLAG, NULL, NULL, NULL},
};

const struct bv_cli_command bv_cmd_version = {
	.name = "version",
	.usage = "[--verbose]",
	.summary = "print the version of bv",
	.description = "Prints the version of bv and, with --verbose, of the libraries it uses.",
	.options = version_options,
	.run = run_version,
};
