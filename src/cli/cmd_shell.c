/*
 * bv shell: a subshell with the project's shims on PATH and the prompt marked "(bv:<name>)".
 * bv replaces itself with the shell, so the shell's exit status is bv's.
 */
#include <bv/error.h>
#include <bv/lockfile.h>
#include <bv/project.h>
#include <bv/shims.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "util/cleanup.h"
#include "util/xalloc.h"

#include "util/banned.h"

static const char *arg_shell;

static int run_shell(int argc, char **argv)
{
	struct bv_cli_ctx ctx;
	_cleanup_free_ char *mark = NULL, *ps1 = NULL, *prompt_command = NULL;
	const char *shell = arg_shell ? arg_shell : getenv("SHELL");
	const char *old_pc = getenv("PROMPT_COMMAND");
	const char *name, *base;
	int first = 0, r;
	int status = bv_cli_begin(&bv_cmd_shell, argc, argv, 0, 0, &first);
	if (status >= 0)
		return status;
	if (!shell || !shell[0])
		shell = "/bin/sh";
	r = bv_cli_ctx_load(&ctx, BV_CTX_LOCK, NULL);
	if (r)
		return r;
	if (!bv_shims_current(ctx.project->root, ctx.lock)) {
		/* Stale shims: take the project lock, and look again at what it now protects
		 * (another bv may have changed bv.lock meanwhile, or fixed the shims already). */
		if ((r = bv_cli_ctx_take_lock(&ctx)))
			goto out;
		if (!bv_shims_current(ctx.project->root, ctx.lock) &&
		    (r = bv_cli_write_shims(&ctx)))
			goto out;
	}
	name = bv_project_display_name(ctx.project);
	mark = bv_xasprintf("(bv:%s) ", name);
	/* Shells that read PS1 from the environment (sh, dash, zsh) get it directly; bash
	 * resets it from its rc files, so PROMPT_COMMAND puts the mark back before each
	 * prompt, once. */
	ps1 = bv_xasprintf("%s$ ", mark);
	prompt_command =
		bv_xasprintf("case \"$PS1\" in \"%s\"*) ;; *) PS1=\"%s$PS1\" ;; esac%s%s", mark,
			     mark, old_pc && old_pc[0] ? ";" : "", old_pc ? old_pc : "");
	if ((r = bv_cli_export_project_env(&ctx)) || (r = bv_cli_setenv("BV_ACTIVE", name)) ||
	    (r = bv_cli_setenv("PS1", ps1)) ||
	    (r = bv_cli_setenv("PROMPT_COMMAND", prompt_command)))
		goto out;
	base = strrchr(shell, '/') ? strrchr(shell, '/') + 1 : shell;
	fprintf(stderr, "Entering the bv shell of '%s'; 'exit' leaves it\n", name);
	fflush(stdout);
	fflush(stderr);
	if (!strcmp(base, "fish")) {
		_cleanup_free_ char *init =
			bv_xasprintf("functions -c fish_prompt __bv_prompt; function fish_prompt; "
				     "printf '%s'; __bv_prompt; end",
				     mark);
		execl(shell, shell, "--init-command", init, (char *)NULL);
	} else {
		execl(shell, shell, (char *)NULL);
	}
	r = errno == ENOENT ? 127 : 126;
	bv_cli_error("could not start '%s': %s", shell, strerror(errno));
out:
	bv_cli_ctx_release(&ctx);
	return r;
}

static const struct bv_cli_option options[] = {
	{"shell", 0, BV_OPT_STRING, &arg_shell, "PATH", "the shell to start (default: $SHELL)"},
	{0},
};

const struct bv_cli_command bv_cmd_shell = {
	.name = "shell",
	.usage = "[--shell <path>]",
	.summary = "start a shell with the project's tools on PATH",
	.description = "Starts $SHELL (or --shell) with .bv/bin first on PATH, BV_ACTIVE and\n"
		       "BV_PROJECT_ROOT set, and the prompt marked with the project's name.",
	.options = options,
	.run = run_shell,
};
