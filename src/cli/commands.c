/*
 * The command table, option parsing generated from option tables, and --help text.
 */
#include "config.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "util/buf.h"
#include "util/parse.h"
#include "util/strv.h"
#include "util/xalloc.h"

#include "util/banned.h"

/* One command per line, in `bv --help` order, so that adding one is a one-line change. */
/* clang-format off */
const struct bv_cli_command *const bv_cli_commands[] = {
	&bv_cmd_init,
	&bv_cmd_add,
	&bv_cmd_remove,
	&bv_cmd_sync,
	&bv_cmd_bundle,
	&bv_cmd_run,
	&bv_cmd_exec,
	&bv_cmd_shell,
	&bv_cmd_session,
	&bv_cmd_up,
	&bv_cmd_down,
	&bv_cmd_ps,
	&bv_cmd_logs,
	&bv_cmd_restart,
	&bv_cmd_lock,
	&bv_cmd_update,
	&bv_cmd_list,
	&bv_cmd_show,
	&bv_cmd_info,
	&bv_cmd_search,
	&bv_cmd_why,
	&bv_cmd_export,
	&bv_cmd_conformance,
	&bv_cmd_push,
	&bv_cmd_publish,
	&bv_cmd_data,
	&bv_cmd_cache,
	&bv_cmd_doctor,
	&bv_cmd_completions,
	&bv_cmd_help,
	&bv_cmd_version,
	NULL,
};
/* clang-format on */

const struct bv_cli_command *bv_cli_find_command(const char *name)
{
	for (size_t i = 0; bv_cli_commands[i]; i++)
		if (!strcmp(bv_cli_commands[i]->name, name))
			return bv_cli_commands[i];
	return NULL;
}

/* Optimal string alignment distance, enough to catch typos such as "isntall" or "lst". */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t *d;
	size_t result;
	if (la > 64 || lb > 64)
		return SIZE_MAX;
	d = bv_xcalloc((la + 1) * (lb + 1), sizeof(*d));
#define D(i, j) d[(i) * (lb + 1) + (j)]
	for (size_t i = 0; i <= la; i++)
		D(i, 0) = i;
	for (size_t j = 0; j <= lb; j++)
		D(0, j) = j;
	for (size_t i = 1; i <= la; i++) {
		for (size_t j = 1; j <= lb; j++) {
			size_t cost = a[i - 1] != b[j - 1];
			size_t best = D(i - 1, j) + 1;
			if (D(i, j - 1) + 1 < best)
				best = D(i, j - 1) + 1;
			if (D(i - 1, j - 1) + cost < best)
				best = D(i - 1, j - 1) + cost;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    D(i - 2, j - 2) + 1 < best)
				best = D(i - 2, j - 2) + 1;
			D(i, j) = best;
		}
	}
	result = D(la, lb);
#undef D
	free(d);
	return result;
}

const char *bv_cli_suggest_command(const char *name)
{
	const char *best = NULL;
	size_t best_distance = 3; /* more than two edits away is not a typo */
	for (size_t i = 0; bv_cli_commands[i]; i++) {
		size_t dist = edit_distance(name, bv_cli_commands[i]->name);
		if (dist < best_distance) {
			best_distance = dist;
			best = bv_cli_commands[i]->name;
		}
	}
	return best;
}

int bv_cli_unknown_command(const char *name)
{
	const char *guess = bv_cli_suggest_command(name);
	bv_cli_error("unknown command '%s'", name);
	if (guess)
		bv_cli_hint("did you mean '%s'?", guess);
	else
		bv_cli_hint("see 'bv --help' for the list of commands");
	return BV_EXIT_USAGE;
}

static size_t count_options(const struct bv_cli_option *opts)
{
	size_t n = 0;
	while (opts && opts[n].long_name)
		n++;
	return n;
}

#define VERSION_OPTION 1 /* getopt value of --version: below 256, no short option */
#define OFFLINE_OPTION 2

int bv_cli_parse_options(const struct bv_cli_command *cmd, int argc, char **argv)
{
	size_t n = count_options(cmd->options);
	struct option *longopts = bv_xcalloc(n + 6, sizeof(*longopts));
	struct bv_buf shortopts = BV_BUF_INIT;
	int result = -1;

	/* '+' stops at the first operand; ':' reports a missing argument as ':'. */
	bv_buf_puts(&shortopts, cmd->stop_at_operand ? "+:hC:q" : ":hC:q");
	for (size_t i = 0; i < n; i++) {
		const struct bv_cli_option *o = &cmd->options[i];
		longopts[i].name = o->long_name;
		longopts[i].has_arg = o->kind == BV_OPT_FLAG ? no_argument : required_argument;
		longopts[i].val = 256 + (int)i;
		if (o->short_name) {
			bv_buf_putc(&shortopts, o->short_name);
			if (o->kind != BV_OPT_FLAG)
				bv_buf_putc(&shortopts, ':');
		}
	}
	longopts[n].name = "help";
	longopts[n].val = 'h';
	/* --version works after any command, as upstream's clap propagates it */
	longopts[n + 1].name = "version";
	longopts[n + 1].val = VERSION_OPTION;
	/* the global options, after the command's name as well as before it */
	longopts[n + 2] = (struct option){"directory", required_argument, NULL, 'C'};
	longopts[n + 3] = (struct option){"quiet", no_argument, NULL, 'q'};
	longopts[n + 4] = (struct option){"offline", no_argument, NULL, OFFLINE_OPTION};

	opterr = 0;
	optind = 1;
	for (;;) {
		int longindex = -1;
		int c = getopt_long(argc, argv, shortopts.buf, longopts, &longindex);
		const struct bv_cli_option *o = NULL;
		if (c == -1)
			break;
		if (c == 'h') {
			bv_cli_print_command_help(stdout, cmd);
			result = -2;
			goto out;
		}
		if (c == 'C' || c == 'q' || c == OFFLINE_OPTION) {
			int status = bv_cli_global_option(c == 'C'   ? "directory"
							  : c == 'q' ? "quiet"
								     : "offline",
							  optarg);
			if (status) {
				result = -1;
				goto out;
			}
			continue;
		}
		if (c == VERSION_OPTION) {
			printf("bv %s\n", BV_VERSION);
			result = -2;
			goto out;
		}
		if (c == '?') {
			if (optopt)
				bv_cli_error("unknown option '-%c' for 'bv %s'", optopt, cmd->name);
			else
				bv_cli_error("unknown option '%s' for 'bv %s'", argv[optind - 1],
					     cmd->name);
			bv_cli_hint("see 'bv %s --help'", cmd->name);
			goto out;
		}
		if (c == ':') {
			bv_cli_error("option '%s' needs an argument", argv[optind - 1]);
			goto out;
		}
		if (c >= 256) {
			o = &cmd->options[c - 256];
		} else {
			for (size_t i = 0; i < n; i++)
				if (cmd->options[i].short_name == c)
					o = &cmd->options[i];
		}
		if (!o)
			abort(); /* getopt returned a character the table did not declare */
		switch (o->kind) {
		case BV_OPT_FLAG:
			*(bool *)o->dest = true;
			break;
		case BV_OPT_STRING:
			*(const char **)o->dest = optarg;
			break;
		case BV_OPT_LIST:
			bv_strv_push((struct bv_strv *)o->dest, optarg);
			break;
		case BV_OPT_UINT:
			if (bv_parse_uint((unsigned *)o->dest, optarg) < 0) {
				bv_cli_error(
					"invalid value '%s' for '--%s': expected a whole number",
					optarg, o->long_name);
				goto out;
			}
			break;
		}
	}
	result = optind;
out:
	free(longopts);
	bv_buf_release(&shortopts);
	return result;
}

int bv_cli_begin(const struct bv_cli_command *cmd, int argc, char **argv, int min_operands,
		 int max_operands, int *first_out)
{
	int first = bv_cli_parse_options(cmd, argc, argv);
	int n;
	if (first == -2)
		return BV_EXIT_OK;
	if (first < 0)
		return BV_EXIT_USAGE;
	n = argc - first;
	if (n < min_operands || (max_operands >= 0 && n > max_operands)) {
		if (max_operands == 0)
			bv_cli_error("'bv %s' takes no arguments", cmd->name);
		else if (n < min_operands)
			bv_cli_error("'bv %s' needs %s", cmd->name,
				     min_operands == max_operands ? "an argument"
								  : "more arguments");
		else
			bv_cli_error("'bv %s' takes at most %d argument%s", cmd->name, max_operands,
				     max_operands == 1 ? "" : "s");
		bv_cli_hint("usage: bv %s %s", cmd->name, cmd->usage);
		return BV_EXIT_USAGE;
	}
	*first_out = first;
	return -1;
}

static void print_option_rows(FILE *out, const struct bv_cli_option *opts, bool with_help)
{
	size_t n = count_options(opts), width = 0;
	struct bv_buf *cells = bv_xcalloc(n + 1, sizeof(*cells));
	for (size_t i = 0; i <= n; i++) {
		bv_buf_init(&cells[i], 0);
		if (i == n) {
			if (with_help)
				bv_buf_puts(&cells[i], "-h, --help");
		} else {
			const struct bv_cli_option *o = &opts[i];
			if (o->short_name)
				bv_buf_printf(&cells[i], "-%c, ", o->short_name);
			else
				bv_buf_puts(&cells[i], "    ");
			bv_buf_printf(&cells[i], "--%s", o->long_name);
			if (o->arg_name)
				bv_buf_printf(&cells[i], " <%s>", o->arg_name);
		}
		if (cells[i].len > width)
			width = cells[i].len;
	}
	for (size_t i = 0; i < n; i++)
		fprintf(out, "  %-*s  %s\n", (int)width, cells[i].buf, opts[i].help);
	if (with_help)
		fprintf(out, "  %-*s  %s\n", (int)width, cells[n].buf, "show this help");
	for (size_t i = 0; i <= n; i++)
		bv_buf_release(&cells[i]);
	free(cells);
}

void bv_cli_print_command_help(FILE *out, const struct bv_cli_command *cmd)
{
	fprintf(out, "usage: bv %s%s%s\n\n", cmd->name, cmd->usage[0] ? " " : "", cmd->usage);
	fprintf(out, "%s\n\n", cmd->description);
	fprintf(out, "Options:\n");
	print_option_rows(out, cmd->options, true);
}

const struct bv_cli_option bv_cli_global_options[] = {
	{"version", 'V', BV_OPT_FLAG, NULL, NULL, "print the version and exit"},
	{"directory", 'C', BV_OPT_STRING, NULL, "DIR", "run as if started in DIR"},
	{"quiet", 'q', BV_OPT_FLAG, NULL, NULL, "no status lines, only errors and results"},
	{"verbose", 'v', BV_OPT_FLAG, NULL, NULL,
	 "diagnostics on stderr; twice for more (also BV_LOG=debug|trace)"},
	{"offline", 0, BV_OPT_FLAG, NULL, NULL,
	 "never use the network; fail clearly when something would need it"},
	{NULL, 0, BV_OPT_FLAG, NULL, NULL, NULL},
};

void bv_cli_print_main_help(FILE *out)
{
	size_t width = 0;
	fprintf(out, "usage: bv [--version] [--help] [-C <DIR>] [-q] [-v] [--offline] <command> "
		     "[<args>]\n\n"
		     "bv installs bioinformatics tools as OCI container images pinned by digest\n"
		     "in bv.lock, and runs them as if they were installed.\n\n"
		     "Commands:\n");
	for (size_t i = 0; bv_cli_commands[i]; i++)
		if (strlen(bv_cli_commands[i]->name) > width)
			width = strlen(bv_cli_commands[i]->name);
	for (size_t i = 0; bv_cli_commands[i]; i++)
		fprintf(out, "  %-*s  %s\n", (int)width, bv_cli_commands[i]->name,
			bv_cli_commands[i]->summary);
	fprintf(out, "\nOptions:\n");
	print_option_rows(out, bv_cli_global_options, true);
	fprintf(out, "\nRun 'bv help <command>' or 'bv <command> --help' for more on a command.\n");
}
