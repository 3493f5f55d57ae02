/*
 * bv completions bash|zsh|fish: a completion script generated from the command table and
 * each command's option table, so it never disagrees with the parser.  What depends on the
 * project (tool ids, binaries, dataset ids) is asked of bv itself at completion time through
 * the hidden `bv completions --list tools|binaries|runnable|datasets`, which prints one word
 * per line, never uses the network and prints nothing (exit 0) when there is nothing to offer.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "bv/data.h"
#include "bv/error.h"
#include "bv/index.h"
#include "bv/lockfile.h"
#include "bv/paths.h"
#include "bv/project.h"
#include "cli.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/strv.h"

#include "util/banned.h"

/* ------------------------------------------------------------------------------------------ */
/* --list: the dynamic words */

/* The project's bv.lock, or NULL: outside a project or with a broken lock there is nothing. */
static struct bv_lockfile *load_lock(void)
{
	_cleanup_free_ char *root = NULL, *path = NULL;
	struct bv_lockfile *lock = NULL;
	struct bv_error *err = NULL;
	if (bv_project_find(&root, NULL, &err) < 0) {
		bv_error_free(err);
		return NULL;
	}
	path = bv_path_join(root, "bv.lock");
	if (bv_lockfile_load(&lock, path, &err) < 0) {
		bv_error_free(err);
		return NULL;
	}
	return lock;
}

static void list_lock(struct bv_strv *out, bool tools, bool binaries)
{
	struct bv_lockfile *lock = load_lock();
	for (size_t i = 0; lock && tools && i < lock->n_tools; i++)
		bv_strv_push(out, lock->tools[i].tool_id);
	for (size_t i = 0; lock && binaries && i < lock->n_binary_index; i++)
		if (!bv_strv_contains(out, lock->binary_index[i].binary))
			bv_strv_push(out, lock->binary_index[i].binary);
	bv_lockfile_free(lock);
}

/* The registry's dataset ids from its copy in the cache (or its directory), never fetched:
 * a completion must answer at once, and a TAB must not start a git clone. */
static void list_datasets(struct bv_strv *out)
{
	_cleanup_free_ char *root = NULL;
	struct bv_project *project = NULL;
	struct bv_index *idx = NULL;
	struct bv_error *err = NULL;
	char **ids = NULL;
	size_t n = 0;

	if (bv_project_find(&root, NULL, &err) < 0 || bv_project_load(&project, root, &err) < 0) {
		bv_error_free(err);
		err = NULL;
	}
	if (bv_index_open(&idx,
			  bv_registry_url_choose(NULL, project ? project->registry_url : NULL),
			  BV_INDEX_OFFLINE, &err) < 0 ||
	    bv_data_registry_ids(&ids, &n, idx, &err) < 0)
		bv_error_free(err);
	for (size_t i = 0; i < n; i++) {
		bv_strv_push(out, ids[i]);
		free(ids[i]);
	}
	free(ids);
	bv_index_free(idx);
	bv_project_free(project);
}

static int list_words(const char *what)
{
	struct bv_strv words = BV_STRV_INIT;
	if (!strcmp(what, "tools"))
		list_lock(&words, true, false);
	else if (!strcmp(what, "binaries"))
		list_lock(&words, false, true);
	else if (!strcmp(what, "runnable"))
		list_lock(&words, true, true);
	else if (!strcmp(what, "datasets"))
		list_datasets(&words);
	else {
		bv_cli_error("unknown list '%s'; expected tools, binaries, runnable or datasets",
			     what);
		return BV_EXIT_USAGE;
	}
	for (size_t i = 0; i < words.n; i++)
		printf("%s\n", words.v[i]);
	bv_strv_clear(&words);
	return BV_EXIT_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* What the scripts are generated from */

static const char *operands_word(enum bv_cli_operands o)
{
	switch (o) {
	case BV_OPERANDS_FILES:
		return "files";
	case BV_OPERANDS_TOOLS:
		return "tools";
	case BV_OPERANDS_RUNNABLE:
		return "runnable";
	case BV_OPERANDS_DATASETS:
		return "datasets";
	case BV_OPERANDS_COMMANDS:
		return "commands";
	case BV_OPERANDS_NONE:
		break;
	}
	return "none";
}

/* What an option's argument is: "dir", "file" or "" (free text), from its <ARG> name. */
static const char *arg_kind(const struct bv_cli_option *o)
{
	if (o->kind == BV_OPT_FLAG || !o->arg_name)
		return "";
	if (!strcmp(o->arg_name, "DIR"))
		return "dir";
	if (!strcmp(o->arg_name, "FILE") || !strcmp(o->arg_name, "PATH"))
		return "file";
	return "";
}

/* The options any command takes after its name, as bv_cli_parse_options() adds them. */
static const struct bv_cli_option command_globals[] = {
	{"help", 'h', BV_OPT_FLAG, NULL, NULL, "show this help"},
	{"version", 0, BV_OPT_FLAG, NULL, NULL, "print the version and exit"},
	{"directory", 'C', BV_OPT_STRING, NULL, "DIR", "run as if started in DIR"},
	{"quiet", 'q', BV_OPT_FLAG, NULL, NULL, "no status lines, only errors and results"},
	{"offline", 0, BV_OPT_FLAG, NULL, NULL,
	 "never use the network; fail clearly when something would need it"},
	{NULL, 0, BV_OPT_FLAG, NULL, NULL, NULL},
};

static const struct bv_cli_option main_help[] = {
	{"help", 'h', BV_OPT_FLAG, NULL, NULL, "show the help"},
	{NULL, 0, BV_OPT_FLAG, NULL, NULL, NULL},
};

/* Calls fn for each option of `cmd` (NULL: before any command), then the global ones. */
static void each_option(const struct bv_cli_command *cmd,
			void (*fn)(const struct bv_cli_option *o, void *payload), void *payload)
{
	const struct bv_cli_option *tables[] = {
		cmd ? cmd->options : bv_cli_global_options,
		cmd ? command_globals : main_help,
	};
	for (size_t t = 0; t < 2; t++)
		for (size_t i = 0; tables[t] && tables[t][i].long_name; i++)
			fn(&tables[t][i], payload);
}

/* `s` in single quotes for a POSIX shell or zsh. */
static void put_sq(FILE *out, const char *s)
{
	fputc('\'', out);
	for (; *s; s++) {
		if (*s == '\'')
			fputs("'\\''", out);
		else
			fputc(*s, out);
	}
	fputc('\'', out);
}

/* `s` in single quotes for fish, where \ and ' are escaped inside them. */
static void put_fish_sq(FILE *out, const char *s)
{
	fputc('\'', out);
	for (; *s; s++) {
		if (*s == '\'' || *s == '\\')
			fputc('\\', out);
		fputc(*s, out);
	}
	fputc('\'', out);
}

struct words {
	FILE *out;
	const char *want; /* "all", "arg", "dir" or "file": which options to print */
	bool any;
};

static bool wanted(const struct bv_cli_option *o, const char *want)
{
	if (!strcmp(want, "all"))
		return true;
	if (!strcmp(want, "arg"))
		return o->kind != BV_OPT_FLAG;
	return !strcmp(arg_kind(o), want);
}

static void put_option_words(const struct bv_cli_option *o, void *payload)
{
	struct words *w = payload;
	if (!wanted(o, w->want))
		return;
	fprintf(w->out, "%s--%s", w->any ? " " : "", o->long_name);
	if (o->short_name)
		fprintf(w->out, " -%c", o->short_name);
	w->any = true;
}

/* "--a -x --b" of `cmd`'s options matching `want` (see struct words). */
static void put_options(FILE *out, const struct bv_cli_command *cmd, const char *want)
{
	struct words w = {out, want, false};
	each_option(cmd, put_option_words, &w);
}

/*
 * The part of the bash and zsh scripts that holds the table: _bv_spec CMD sets opts,
 * argopts, dirargs, fileargs, subs, ops and stop for a command (before any: CMD empty), and
 * _bv_subops CMD SUB sets ops for a subcommand.  Both shells scope these dynamically, so
 * the caller's locals are what they set.
 */
static void put_sh_spec_case(FILE *out, const struct bv_cli_command *c)
{
	fprintf(out, "\t%s)\n\t\topts='", c ? c->name : "''");
	put_options(out, c, "all");
	fputs("'\n\t\targopts=' ", out);
	put_options(out, c, "arg");
	fputs(" '\n\t\tdirargs=' ", out);
	put_options(out, c, "dir");
	fputs(" '\n\t\tfileargs=' ", out);
	put_options(out, c, "file");
	fputs(" '\n\t\tsubs='", out);
	for (size_t k = 0; c && c->subcommands && c->subcommands[k].name; k++)
		fprintf(out, "%s%s", k ? " " : "", c->subcommands[k].name);
	fprintf(out, "'\n\t\tops=%s\n\t\tstop=%s\n\t\t;;\n",
		operands_word(c ? c->operands : BV_OPERANDS_NONE),
		c && c->stop_at_operand ? "1" : "");
}

static void put_sh_spec(FILE *out)
{
	fputs("_bv_spec() {\n\tcase $1 in\n", out);
	put_sh_spec_case(out, NULL);
	for (size_t i = 0; bv_cli_commands[i]; i++)
		put_sh_spec_case(out, bv_cli_commands[i]);
	fputs("\t*) opts= argopts= dirargs= fileargs= subs= ops=none stop= ;;\n\tesac\n}\n\n", out);

	fputs("_bv_subops() {\n\tcase \"$1 $2\" in\n", out);
	for (size_t i = 0; bv_cli_commands[i]; i++) {
		const struct bv_cli_command *c = bv_cli_commands[i];
		for (size_t k = 0; c->subcommands && c->subcommands[k].name; k++)
			fprintf(out, "\t'%s %s') ops=%s ;;\n", c->name, c->subcommands[k].name,
				operands_word(c->subcommands[k].operands));
	}
	fputs("\t*) ops=none ;;\n\tesac\n}\n\n", out);
}

/*
 * The walk over the words before the cursor both shells share: finds the command, its
 * subcommand, how many operands came before, the -C directory to pass on to --list, and
 * whether the word under the cursor is an option's value (then prev is that option).
 * `first` is the index of the first word after "bv": 1 in bash, 2 in zsh.
 */
static void put_sh_walk(FILE *out, const char *words, const char *cword, int first)
{
	fprintf(out,
		"\tlocal i w cmd= sub= nops=0 skip= tool= dir=()\n"
		"\tlocal opts argopts dirargs fileargs subs ops stop\n"
		"\t_bv_spec ''\n"
		"\tfor ((i = %d; i < %s; i++)); do\n"
		"\t\tw=${%s[i]}\n"
		"\t\tif [[ -n $skip ]]; then\n"
		"\t\t\tskip=\n"
		"\t\t\tcontinue\n"
		"\t\tfi\n"
		"\t\tif [[ -n $stop && $nops -gt 0 ]]; then\n"
		"\t\t\ttool=1 # the rest belongs to the tool\n"
		"\t\t\tbreak\n"
		"\t\tfi\n"
		"\t\tcase $w in\n"
		"\t\t-C | --directory)\n"
		"\t\t\tdir=(-C \"${%s[i + 1]}\")\n"
		"\t\t\tskip=1\n"
		"\t\t\tcontinue\n"
		"\t\t\t;;\n"
		"\t\t-C?*) dir=(\"$w\") ; continue ;;\n"
		"\t\t--directory=*) dir=(-C \"${w#--directory=}\") ; continue ;;\n"
		"\t\t-*)\n"
		"\t\t\t[[ $argopts == *\" $w \"* ]] && skip=1\n"
		"\t\t\tcontinue\n"
		"\t\t\t;;\n"
		"\t\tesac\n"
		"\t\tif [[ -z $cmd ]]; then\n"
		"\t\t\tcmd=$w\n"
		"\t\t\t_bv_spec \"$cmd\"\n"
		"\t\telif [[ -n $subs && -z $sub ]]; then\n"
		"\t\t\tsub=$w\n"
		"\t\t\t_bv_subops \"$cmd\" \"$sub\"\n"
		"\t\telse\n"
		"\t\t\tnops=$((nops + 1))\n"
		"\t\tfi\n"
		"\tdone\n"
		"\t[[ -n $stop && $nops -gt 0 ]] && tool=1\n",
		first, cword, words, words);
}

static void put_bash(FILE *out)
{
	fputs("# bash completion for bv, generated by 'bv completions bash' from its command "
	      "table\n\n",
	      out);
	put_sh_spec(out);
	fputs("_bv() {\n"
	      "\tlocal cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}\n"
	      "\tlocal bv=${COMP_WORDS[0]} list\n",
	      out);
	put_sh_walk(out, "COMP_WORDS", "COMP_CWORD", 1);
	fputs("\tCOMPREPLY=()\n"
	      "\tif [[ -n $tool ]]; then\n"
	      "\t\tCOMPREPLY=($(compgen -f -- \"$cur\"))\n"
	      "\telif [[ -n $skip ]]; then\n"
	      "\t\tif [[ \" -C --directory $dirargs \" == *\" $prev \"* ]]; then\n"
	      "\t\t\tCOMPREPLY=($(compgen -d -- \"$cur\"))\n"
	      "\t\telif [[ $fileargs == *\" $prev \"* ]]; then\n"
	      "\t\t\tCOMPREPLY=($(compgen -f -- \"$cur\"))\n"
	      "\t\tfi\n"
	      "\telif [[ $cur == -* ]]; then\n"
	      "\t\tCOMPREPLY=($(compgen -W \"$opts\" -- \"$cur\"))\n"
	      "\telif [[ -z $cmd ]]; then\n"
	      "\t\tCOMPREPLY=($(compgen -W \"$(_bv_commands)\" -- \"$cur\"))\n"
	      "\telif [[ -n $subs && -z $sub ]]; then\n"
	      "\t\tCOMPREPLY=($(compgen -W \"$subs\" -- \"$cur\"))\n"
	      "\telse\n"
	      "\t\tcase $ops in\n"
	      "\t\tfiles) COMPREPLY=($(compgen -f -- \"$cur\")) ;;\n"
	      "\t\tcommands) COMPREPLY=($(compgen -W \"$(_bv_commands)\" -- \"$cur\")) ;;\n"
	      "\t\ttools | runnable | datasets)\n"
	      "\t\t\tif [[ $ops != runnable || $nops -eq 0 ]]; then\n"
	      "\t\t\t\tlist=$(\"$bv\" \"${dir[@]}\" completions --list \"$ops\" 2>/dev/null)\n"
	      "\t\t\t\tCOMPREPLY=($(compgen -W \"$list\" -- \"$cur\"))\n"
	      "\t\t\tfi\n"
	      "\t\t\t;;\n"
	      "\t\tesac\n"
	      "\tfi\n"
	      "}\n\n",
	      out);
	fputs("_bv_commands() {\n\techo", out);
	for (size_t i = 0; bv_cli_commands[i]; i++)
		fprintf(out, " %s", bv_cli_commands[i]->name);
	fputs("\n}\n\ncomplete -F _bv -o filenames bv\n", out);
}

static void put_zsh_describe(const struct bv_cli_option *o, void *payload)
{
	FILE *out = payload;
	char buf[128];
	snprintf(buf, sizeof(buf), "--%s:%s", o->long_name, o->help);
	fputs("\t\t", out);
	put_sq(out, buf);
	fputs("\n", out);
	if (o->short_name) {
		snprintf(buf, sizeof(buf), "-%c:%s", o->short_name, o->help);
		fputs("\t\t", out);
		put_sq(out, buf);
		fputs("\n", out);
	}
}

static void put_zsh(FILE *out)
{
	fputs("#compdef bv\n"
	      "# zsh completion for bv, generated by 'bv completions zsh' from its command table\n\n",
	      out);
	put_sh_spec(out);
	fputs("_bv_option_descriptions() {\n\tcase $1 in\n", out);
	for (size_t i = 0; i == 0 || bv_cli_commands[i - 1]; i++) {
		const struct bv_cli_command *c = i ? bv_cli_commands[i - 1] : NULL;
		fprintf(out, "\t%s) reply=(\n", c ? c->name : "''");
		each_option(c, put_zsh_describe, out);
		fputs("\t) ;;\n", out);
	}
	fputs("\tesac\n}\n\n", out);
	fputs("_bv() {\n"
	      "\temulate -L zsh\n"
	      "\tlocal cur=${words[CURRENT]} prev=${words[CURRENT - 1]} bv=${words[1]}\n"
	      "\tlocal -a reply commands list\n",
	      out);
	put_sh_walk(out, "words", "CURRENT", 2);
	fputs("\tcommands=(\n", out);
	for (size_t i = 0; bv_cli_commands[i]; i++) {
		char buf[160];
		snprintf(buf, sizeof(buf), "%s:%s", bv_cli_commands[i]->name,
			 bv_cli_commands[i]->summary);
		fputs("\t\t", out);
		put_sq(out, buf);
		fputs("\n", out);
	}
	fputs("\t)\n"
	      "\tif [[ -n $tool ]]; then\n"
	      "\t\t_files\n"
	      "\telif [[ -n $skip ]]; then\n"
	      "\t\tif [[ \" -C --directory $dirargs \" == *\" $prev \"* ]]; then\n"
	      "\t\t\t_directories\n"
	      "\t\telif [[ $fileargs == *\" $prev \"* ]]; then\n"
	      "\t\t\t_files\n"
	      "\t\tfi\n"
	      "\telif [[ $cur == -* ]]; then\n"
	      "\t\t_bv_option_descriptions \"$cmd\"\n"
	      "\t\t_describe -t options option reply\n"
	      "\telif [[ -z $cmd ]]; then\n"
	      "\t\t_describe -t commands command commands\n"
	      "\telif [[ -n $subs && -z $sub ]]; then\n"
	      "\t\tcompadd -- ${=subs}\n"
	      "\telse\n"
	      "\t\tcase $ops in\n"
	      "\t\tfiles) _files ;;\n"
	      "\t\tcommands) _describe -t commands command commands ;;\n"
	      "\t\ttools | runnable | datasets)\n"
	      "\t\t\tif [[ $ops != runnable || $nops -eq 0 ]]; then\n"
	      "\t\t\t\tlist=(${(f)\"$(\"$bv\" \"${dir[@]}\" completions --list \"$ops\" "
	      "2>/dev/null)\"})\n"
	      "\t\t\t\tcompadd -- \"${list[@]}\"\n"
	      "\t\t\tfi\n"
	      "\t\t\t;;\n"
	      "\t\tesac\n"
	      "\tfi\n"
	      "}\n\n"
	      "if [[ $zsh_eval_context[-1] == loadautofunc ]]; then\n"
	      "\t_bv \"$@\"\n"
	      "else\n"
	      "\tcompdef _bv bv\n"
	      "fi\n",
	      out);
}

struct fish_ctx {
	FILE *out;
	const char *cond;
};

static void put_fish_option(const struct bv_cli_option *o, void *payload)
{
	struct fish_ctx *f = payload;
	const char *kind = arg_kind(o);
	fprintf(f->out, "complete -c bv -n '%s' -l %s", f->cond, o->long_name);
	if (o->short_name)
		fprintf(f->out, " -s %c", o->short_name);
	if (!strcmp(kind, "dir"))
		fputs(" -x -a '(__fish_complete_directories)'", f->out);
	else if (!strcmp(kind, "file"))
		fputs(" -r -F", f->out);
	else if (o->kind != BV_OPT_FLAG)
		fputs(" -x", f->out);
	fputs(" -d ", f->out);
	put_fish_sq(f->out, o->help);
	fputs("\n", f->out);
}

static void put_fish(FILE *out)
{
	fputs("# fish completion for bv, generated by 'bv completions fish' from its command "
	      "table\n\n",
	      out);
	/* __bv_spec CMD: its options that take a value, its subcommands, what its operands are
	 * and whether they end its options; __bv_spec "CMD SUB": what SUB's operands are */
	fputs("function __bv_spec\n\tswitch $argv[1]\n", out);
	for (size_t i = 0; bv_cli_commands[i]; i++) {
		const struct bv_cli_command *c = bv_cli_commands[i];
		fprintf(out, "\t\tcase %s\n\t\t\techo ' ", c->name);
		put_options(out, c, "arg");
		fputs(" '\n\t\t\techo '", out);
		for (size_t k = 0; c->subcommands && c->subcommands[k].name; k++)
			fprintf(out, "%s%s", k ? " " : "", c->subcommands[k].name);
		fprintf(out, "'\n\t\t\techo %s\n\t\t\techo %s\n", operands_word(c->operands),
			c->stop_at_operand ? "stop" : "go");
		for (size_t k = 0; c->subcommands && c->subcommands[k].name; k++)
			fprintf(out, "\t\tcase '%s %s'\n\t\t\techo %s\n", c->name,
				c->subcommands[k].name, operands_word(c->subcommands[k].operands));
	}
	fputs("\t\tcase '* *'\n\t\t\techo none\n\tend\nend\n\n", out);
	/* where the cursor is: prints state, cmd, sub, operands before, and the -C argument */
	fputs("function __bv_state\n"
	      "\tset -l toks (commandline -opc)\n"
	      "\tset -e toks[1]\n"
	      "\tset -l cmd ''; set -l sub ''; set -l nops 0; set -l skip 0; set -l dir ''\n"
	      "\tset -l spec ' ' '' none go\n"
	      "\tfor w in $toks\n"
	      "\t\tif test $skip = 1\n"
	      "\t\t\tset skip 0\n"
	      "\t\t\tcontinue\n"
	      "\t\telse if test $skip = C\n"
	      "\t\t\tset dir $w\n"
	      "\t\t\tset skip 0\n"
	      "\t\t\tcontinue\n"
	      "\t\tend\n"
	      "\t\tif test $spec[4] = stop -a $nops -gt 0\n"
	      "\t\t\techo tool; echo $cmd; echo $sub; echo $nops; echo $dir\n"
	      "\t\t\treturn\n"
	      "\t\tend\n"
	      "\t\tswitch $w\n"
	      "\t\t\tcase -C --directory\n"
	      "\t\t\t\tset skip C\n"
	      "\t\t\t\tcontinue\n"
	      "\t\t\tcase '-*'\n"
	      "\t\t\t\tif string match -q -- \"* $w *\" \"$spec[1]\"\n"
	      "\t\t\t\t\tset skip 1\n"
	      "\t\t\t\tend\n"
	      "\t\t\t\tcontinue\n"
	      "\t\tend\n"
	      "\t\tif test -z \"$cmd\"\n"
	      "\t\t\tset cmd $w\n"
	      "\t\t\tset spec (__bv_spec $cmd)\n"
	      "\t\t\tif test (count $spec) -lt 4\n"
	      "\t\t\t\tset spec ' ' '' none go\n"
	      "\t\t\tend\n"
	      "\t\telse if test -n \"$spec[2]\" -a -z \"$sub\"\n"
	      "\t\t\tset sub $w\n"
	      "\t\t\tset spec[3] (__bv_spec \"$cmd $sub\")\n"
	      "\t\telse\n"
	      "\t\t\tset nops (math $nops + 1)\n"
	      "\t\tend\n"
	      "\tend\n"
	      "\tif test -z \"$cmd\"\n"
	      "\t\techo command\n"
	      "\telse if test $spec[4] = stop -a $nops -gt 0\n"
	      "\t\techo tool\n"
	      "\telse if test -n \"$spec[2]\" -a -z \"$sub\"\n"
	      "\t\techo sub\n"
	      "\telse if test $spec[3] = runnable -a $nops -gt 0\n"
	      "\t\techo none\n"
	      "\telse\n"
	      "\t\techo $spec[3]\n"
	      "\tend\n"
	      "\techo $cmd; echo $sub; echo $nops; echo $dir\n"
	      "end\n\n"
	      "# __bv_at STATE [CMD]: whether the cursor is there (and in CMD)\n"
	      "function __bv_at\n"
	      "\tset -l s (__bv_state)\n"
	      "\ttest \"$s[1]\" = $argv[1]; or return 1\n"
	      "\ttest (count $argv) -lt 2; or test \"$s[2]\" = $argv[2]\n"
	      "end\n\n"
	      "function __bv_in\n"
	      "\tset -l s (__bv_state)\n"
	      "\ttest \"$s[1]\" != tool -a \"$s[2]\" = $argv[1]\n"
	      "end\n\n"
	      "function __bv_list\n"
	      "\tset -l s (__bv_state)\n"
	      "\tset -l bv (commandline -opc)[1]\n"
	      "\tif test -n \"$s[5]\"\n"
	      "\t\t$bv -C $s[5] completions --list $argv[1] 2>/dev/null\n"
	      "\telse\n"
	      "\t\t$bv completions --list $argv[1] 2>/dev/null\n"
	      "\tend\n"
	      "end\n\n"
	      "complete -c bv -f\n",
	      out);
	for (size_t i = 0; bv_cli_commands[i]; i++) {
		fprintf(out, "complete -c bv -n '__bv_at command' -a %s -d ",
			bv_cli_commands[i]->name);
		put_fish_sq(out, bv_cli_commands[i]->summary);
		fputs("\n", out);
	}
	{
		struct fish_ctx f = {out, "__bv_at command"};
		each_option(NULL, put_fish_option, &f);
	}
	for (size_t i = 0; bv_cli_commands[i]; i++) {
		const struct bv_cli_command *c = bv_cli_commands[i];
		char cond[64];
		struct fish_ctx f = {out, cond};
		snprintf(cond, sizeof(cond), "__bv_in %s", c->name);
		each_option(c, put_fish_option, &f);
		for (size_t k = 0; c->subcommands && c->subcommands[k].name; k++)
			fprintf(out, "complete -c bv -n '__bv_at sub %s' -a %s\n", c->name,
				c->subcommands[k].name);
	}
	fputs("complete -c bv -n '__bv_at tools' -a '(__bv_list tools)'\n"
	      "complete -c bv -n '__bv_at runnable' -a '(__bv_list runnable)'\n"
	      "complete -c bv -n '__bv_at datasets' -a '(__bv_list datasets)'\n"
	      "complete -c bv -n '__bv_at files' -F\n"
	      "complete -c bv -n '__bv_at tool' -F\n",
	      out);
	for (size_t i = 0; bv_cli_commands[i]; i++)
		fprintf(out, "complete -c bv -n '__bv_at commands' -a %s\n",
			bv_cli_commands[i]->name);
}

static int run_completions(int argc, char **argv)
{
	int first = 0;
	int status;
	const char *shell;

	/* The hidden helper the scripts call; not in the option table, so not in --help. */
	if (argc == 3 && !strcmp(argv[1], "--list"))
		return list_words(argv[2]);
	status = bv_cli_begin(&bv_cmd_completions, argc, argv, 1, 1, &first);
	if (status >= 0)
		return status;
	shell = argv[first];
	if (!strcmp(shell, "bash"))
		put_bash(stdout);
	else if (!strcmp(shell, "zsh"))
		put_zsh(stdout);
	else if (!strcmp(shell, "fish"))
		put_fish(stdout);
	else {
		bv_cli_error("unknown shell '%s'; expected bash, zsh or fish", shell);
		return BV_EXIT_USAGE;
	}
	return BV_EXIT_OK;
}

static const struct bv_cli_option completions_options[] = {
	{NULL, 0, BV_OPT_FLAG, NULL, NULL, NULL},
};

static const struct bv_cli_subcommand completions_shells[] = {
	{"bash", BV_OPERANDS_NONE},
	{"zsh", BV_OPERANDS_NONE},
	{"fish", BV_OPERANDS_NONE},
	{NULL, BV_OPERANDS_NONE},
};

const struct bv_cli_command bv_cmd_completions = {
	.name = "completions",
	.usage = "bash|zsh|fish",
	.summary = "print a shell completion script",
	.description = "Prints the completion script for bash, zsh or fish, generated from bv's "
		       "command table.\n"
		       "Tool ids, binaries and dataset ids are completed from the project's "
		       "bv.lock and the\n"
		       "registry's copy in the cache, without using the network.  "
		       "'make install' installs the\n"
		       "scripts; to load one by hand: source <(bv completions bash).",
	.options = completions_options,
	.run = run_completions,
	.subcommands = completions_shells,
};
