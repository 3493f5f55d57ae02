/*
 * bv shell: a subshell with the project's shims on PATH and the prompt marked "(bv:<name>)".
 * bv replaces itself with the shell, so the shell's exit status is bv's.
 *
 * No shell code is ever built from data.  The name travels in BV_ACTIVE (escaped for a
 * terminal, bv_cli_text) and every prompt snippet below is a fixed string that expands
 * "${BV_ACTIVE}" when the prompt is drawn, so a project called "p$(id)" or "%d" shows as
 * itself: a parameter expansion's result is never parsed again (POSIX sh, bash, zsh with
 * PROMPT_SUBST), zsh without PROMPT_SUBST gets the name with its prompt escapes doubled, and
 * fish prints it with printf '%s'.
 */
#include <bv/error.h>
#include <bv/lockfile.h>
#include <bv/paths.h>
#include <bv/project.h>
#include <bv/shims.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/xalloc.h"

#include "util/banned.h"

static const char *arg_shell;

/* Every POSIX sh (dash, ksh, busybox) expands parameters in PS1; bash too. */
static const char posix_ps1[] = "(bv:${BV_ACTIVE}) $ ";

/* bash resets PS1 in its rc files, so this puts the mark back before each prompt, once. */
static const char bash_prompt_command[] =
	"case \"$PS1\" in '(bv:${BV_ACTIVE}) '*) ;; *) PS1='(bv:${BV_ACTIVE}) '\"$PS1\" ;; esac";

/* fish: after config.fish, the user's fish_prompt behind the mark. */
static const char fish_init[] =
	"functions -q fish_prompt; and functions -c fish_prompt __bv_fish_prompt\n"
	"function fish_prompt\n"
	"    printf '(bv:%s) ' \"$BV_ACTIVE\"\n"
	"    functions -q __bv_fish_prompt; and __bv_fish_prompt\n"
	"end\n";

/*
 * zsh has no option to run code after its rc files, so bv points ZDOTDIR at these two files
 * (in the cache): each runs the user's own file of the same name with the user's ZDOTDIR
 * (passed in BV_USER_ZDOTDIR, unset when the user had none), and .zshrc then adds a precmd
 * hook that marks the prompt.
 */
static const char zsh_zshenv[] =
	"# written by bv shell; bv rewrites it\n"
	"__bv_zdotdir=$ZDOTDIR\n"
	"if [[ -n ${BV_USER_ZDOTDIR+x} ]]; then ZDOTDIR=$BV_USER_ZDOTDIR; else unset ZDOTDIR; fi\n"
	"[[ -r ${ZDOTDIR:-$HOME}/.zshenv ]] && builtin source ${ZDOTDIR:-$HOME}/.zshenv\n"
	"if [[ -n ${ZDOTDIR+x} ]]; then BV_USER_ZDOTDIR=$ZDOTDIR; else unset BV_USER_ZDOTDIR; fi\n"
	"ZDOTDIR=$__bv_zdotdir\n"
	"unset __bv_zdotdir\n";
static const char zsh_zshrc[] =
	"# written by bv shell; bv rewrites it\n"
	"if [[ -n ${BV_USER_ZDOTDIR+x} ]]; then ZDOTDIR=$BV_USER_ZDOTDIR; else unset ZDOTDIR; fi\n"
	"unset BV_USER_ZDOTDIR\n"
	"[[ -r ${ZDOTDIR:-$HOME}/.zshrc ]] && builtin source ${ZDOTDIR:-$HOME}/.zshrc\n"
	"__bv_prompt() {\n"
	"  local mark\n"
	"  __bv_name=${BV_ACTIVE//\\%/%%}\n"
	"  [[ -o promptbang ]] && __bv_name=${__bv_name//\\!/!!}\n"
	"  if [[ -o promptsubst ]]; then mark='(bv:${__bv_name}) '; else mark=\"(bv:$__bv_name) \"; fi\n"
	"  [[ $PS1 == \"$mark\"* ]] || PS1=$mark$PS1\n"
	"}\n"
	"typeset -ga precmd_functions\n"
	"precmd_functions+=(__bv_prompt)\n";

/* Writes the zsh start-up files into <cache>/shell/zsh and points ZDOTDIR there. */
static int setup_zsh(void)
{
	_cleanup_free_ char *cache = NULL, *dir = NULL, *env = NULL, *rc = NULL;
	const char *user = getenv("ZDOTDIR");
	struct bv_error *err = NULL;
	int r;
	if (bv_cache_dir(&cache, &err) < 0)
		return bv_cli_report(err);
	dir = bv_path_join(cache, "shell/zsh");
	env = bv_path_join(dir, ".zshenv");
	rc = bv_path_join(dir, ".zshrc");
	if (bv_mkdir_p(dir, 0755, &err) < 0 ||
	    bv_write_file_atomic(env, zsh_zshenv, strlen(zsh_zshenv), 0644, &err) < 0 ||
	    bv_write_file_atomic(rc, zsh_zshrc, strlen(zsh_zshrc), 0644, &err) < 0)
		return bv_cli_report(err);
	if (user)
		r = bv_cli_setenv("BV_USER_ZDOTDIR", user);
	else
		r = unsetenv("BV_USER_ZDOTDIR") ? BV_EXIT_FAILURE : BV_EXIT_OK;
	return r ? r : bv_cli_setenv("ZDOTDIR", dir);
}

/* PROMPT_COMMAND: the mark first, then what the caller had (its own code, kept as is). */
static char *prompt_command(void)
{
	const char *old = getenv("PROMPT_COMMAND");
	if (!old || !old[0])
		return bv_xstrdup(bash_prompt_command);
	if (!strncmp(old, bash_prompt_command, strlen(bash_prompt_command)))
		return bv_xstrdup(old); /* a bv shell inside a bv shell */
	return bv_xasprintf("%s\n%s", bash_prompt_command, old);
}

static int run_shell(int argc, char **argv)
{
	struct bv_cli_ctx ctx;
	_cleanup_free_ char *pc = NULL, *name = NULL;
	const char *shell, *base;
	int first = 0, r;
	int status = bv_cli_begin(&bv_cmd_shell, argc, argv, 0, 0, &first);
	if (status >= 0)
		return status;
	/* only now: bv_cli_begin() is what sets arg_shell from --shell */
	shell = arg_shell ? arg_shell : getenv("SHELL");
	if (!shell || !shell[0])
		shell = "/bin/sh";
	base = strrchr(shell, '/') ? strrchr(shell, '/') + 1 : shell;
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
	name = bv_xstrdup(bv_cli_text(bv_project_display_name(ctx.project)));
	pc = prompt_command();
	if ((r = bv_cli_export_project_env(&ctx)) || (r = bv_cli_setenv("BV_ACTIVE", name)) ||
	    (r = bv_cli_setenv("PROMPT_COMMAND", pc)))
		goto out;
	if (!strcmp(base, "zsh") || !strcmp(base, "fish"))
		(void)unsetenv(
			"PS1"); /* their own prompts take the mark; a POSIX one would not fit */
	else if ((r = bv_cli_setenv("PS1", posix_ps1)))
		goto out;
	if (!strcmp(base, "zsh") && (r = setup_zsh()))
		goto out;
	bv_cli_status("Entering the bv shell of '%s'; 'exit' leaves it\n", name);
	fflush(stdout);
	fflush(stderr);
	if (!strcmp(base, "fish"))
		execl(shell, shell, "--init-command", fish_init, (char *)NULL);
	else
		execl(shell, shell, (char *)NULL);
	r = errno == ENOENT ? BV_EXIT_NOT_FOUND : BV_EXIT_NOT_EXECUTABLE;
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
		       "BV_PROJECT_ROOT set, and the prompt marked with the project's name\n"
		       "(bash, zsh, fish and POSIX sh; the name is never run as shell code).",
	.options = options,
	.run = run_shell,
};
