/*
 * bv init [<name>]: create bv.toml in the current directory.
 *
 * bv init takes no project lock: there is no project yet to protect, and creating .bv/ in a
 * directory that is not a project would be a side effect of its own.  Its one write is made
 * safe by itself instead: bv.toml is created complete and only if absent
 * (bv_write_file_new(): renameat2 RENAME_NOREPLACE), so of two concurrent inits exactly one
 * succeeds and the other reports "already exists"; no other command runs on a directory
 * without bv.toml.
 */
#include <bv/error.h>
#include <bv/project.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/fs.h"

#include "util/banned.h"

static const char *arg_registry;

int bv_cli_create_project(char **path_out, const char *name, const char *registry)
{
	char cwd[PATH_MAX];
	_cleanup_free_ char *path = NULL, *text = NULL;
	struct bv_buf b = BV_BUF_INIT;
	struct bv_error *err = NULL;
	if (!getcwd(cwd, sizeof(cwd))) {
		if (errno == ERANGE || errno == ENAMETOOLONG)
			bv_cli_error("the current directory's path is longer than %d bytes, which "
				     "files cannot be opened by; use a shorter path",
				     PATH_MAX);
		else
			bv_cli_error("cannot find the current directory: %s", strerror(errno));
		return BV_EXIT_FAILURE;
	}
	if (!name)
		name = strrchr(cwd, '/') + 1;
	if (!name[0] || strchr(name, '\n') || strchr(name, '"') || strchr(name, '\\')) {
		bv_cli_error("invalid project name '%s'", name);
		return BV_EXIT_USAGE;
	}
	path = bv_path_join(cwd, "bv.toml");
	if (bv_path_exists(path)) {
		bv_cli_error("'%s' already exists", path);
		return BV_EXIT_FAILURE;
	}
	text = bv_project_template(name);
	bv_buf_puts(&b, text);
	if (registry) {
		if (strchr(registry, '"') || strchr(registry, '\\') || strchr(registry, '\n')) {
			bv_buf_release(&b);
			bv_cli_error("invalid registry URL '%s'", registry);
			return BV_EXIT_USAGE;
		}
		bv_buf_printf(&b, "\n[registry]\nurl = \"%s\"\n", registry);
	}
	if (bv_write_file_new(path, b.buf, b.len, 0644, &err) < 0) {
		bv_buf_release(&b);
		return bv_cli_report(err);
	}
	bv_buf_release(&b);
	bv_cli_status("Created '%s' for project '%s'\n", bv_cli_text(path), bv_cli_text(name));
	if (path_out)
		*path_out = TAKE_PTR(path);
	return BV_EXIT_OK;
}

static int run_init(int argc, char **argv)
{
	int first = 0;
	int status = bv_cli_begin(&bv_cmd_init, argc, argv, 0, 1, &first);
	if (status >= 0)
		return status;
	return bv_cli_create_project(NULL, first < argc ? argv[first] : NULL, arg_registry);
}

static const struct bv_cli_option init_options[] = {
	{"registry", 0, BV_OPT_STRING, &arg_registry, "URL", "registry to record in bv.toml"},
	{NULL, 0, BV_OPT_FLAG, NULL, NULL, NULL},
};

const struct bv_cli_command bv_cmd_init = {
	.name = "init",
	.usage = "[--registry <URL>] [<name>]",
	.summary = "create a bv.toml in the current directory",
	.description =
		"Creates bv.toml for a new project named <name> (default: the directory's name).\nIt refuses to overwrite an existing bv.toml.",
	.options = init_options,
	.run = run_init,
};
