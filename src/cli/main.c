/*
 * bv: entry point.  Handles the global options, finds the command and runs it.
 * This is the only place that turns a command's return value into the process exit status.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#include "util/banned.h"

/*
 * A closed stdin, stdout or stderr would be taken by the next file bv opens (a lock, a
 * socket), and a tool run with it would read or write that file.  /dev/null fills the gap.
 */
static void fill_standard_fds(void)
{
	for (int fd = 0; fd < 3; fd++) {
		if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
			continue;
		int null = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
		if (null >= 0 && null != fd) {
			dup2(null, fd);
			close(null);
		}
	}
}

int main(int argc, char **argv)
{
	const struct bv_cli_command *cmd;
	unsigned verbose = 0;
	int i = 1;
	int status;

	/* Numbers and TOML floats are parsed and printed in the C locale, whatever the user's. */
	fill_standard_fds();
	setlocale(LC_ALL, "C");
	bv_cli_init_output();
	bv_cli_init_log(0); /* BV_LOG applies to shims too */
	if (argc > 0 && !bv_cli_is_own_name(argv[0]))
		return bv_cli_run_shim(argc, argv);

	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];
		const char *value = NULL;
		if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
			verbose++;
			continue;
		}
		if (a[1] == 'v') { /* -vv */
			size_t k = 1;
			while (a[k] == 'v')
				k++;
			if (!a[k]) {
				verbose += (unsigned)(k - 1);
				continue;
			}
		}
		if (!strcmp(a, "-q") || !strcmp(a, "--quiet") || !strcmp(a, "--offline")) {
			status = bv_cli_global_option(
				a[1] == 'q' || !strcmp(a, "--quiet") ? "quiet" : "offline", NULL);
			if (status)
				return status;
			continue;
		}
		if (!strcmp(a, "-C") || !strcmp(a, "--directory")) {
			if (i + 1 == argc) {
				bv_cli_error("option '%s' needs an argument", a);
				return BV_EXIT_USAGE;
			}
			value = argv[++i];
		} else if (!strncmp(a, "--directory=", 12)) {
			value = a + 12;
		} else if (!strncmp(a, "-C", 2)) {
			value = a + 2;
		}
		if (value) {
			bv_cli_init_log(verbose);
			if ((status = bv_cli_global_option("directory", value)))
				return status;
			continue;
		}
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			bv_cli_print_main_help(stdout);
			return BV_EXIT_OK;
		}
		if (!strcmp(a, "-V") || !strcmp(a, "--version")) {
			printf("bv %s\n", BV_VERSION);
			return BV_EXIT_OK;
		}
		if (!strcmp(a, "--")) {
			i++;
			break;
		}
		bv_cli_error("unknown option '%s'", a);
		bv_cli_hint("see 'bv --help'");
		return BV_EXIT_USAGE;
	}
	bv_cli_init_log(verbose);
	if (i == argc) {
		bv_cli_print_main_help(stderr);
		return BV_EXIT_USAGE;
	}
	cmd = bv_cli_find_command(argv[i]);
	if (!cmd)
		return bv_cli_unknown_command(argv[i]);
	status = cmd->run(argc - i, argv + i);
	if (fflush(stdout) == EOF || ferror(stdout)) {
		bv_cli_error("could not write to standard output");
		return BV_EXIT_FAILURE;
	}
	return status;
}
