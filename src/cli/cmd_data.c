/*
 * bv data fetch|list|verify|rm: reference data in the cache (bv/data.h).
 */
#include <bv/data.h>
#include <bv/error.h>
#include <bv/lockfile.h>
#include <bv/manifest.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/strv.h"
#include "util/xalloc.h"

#include "util/banned.h"

static const char *arg_registry;
static bool arg_yes;
static bool arg_json;
static bool arg_local;
static unsigned arg_jobs;
static const char *arg_filter;
static const char *arg_tolerance;

struct progress_state {
	bool tty;
	double last_line;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A bar redrawn on a terminal; a line every 5 s (and one at the end) otherwise. */
static void on_progress(const struct bv_data_progress *p, void *payload)
{
	struct progress_state *st = payload;
	char done[32], total[32], rate[32];
	double t = now_s();
	bv_cli_format_size(done, sizeof(done), (int64_t)p->bytes_done);
	bv_cli_format_size(total, sizeof(total), (int64_t)p->bytes_total);
	bv_cli_format_size(rate, sizeof(rate), (int64_t)p->rate);
	if (st->tty) {
		bv_cli_status("\r\033[K%s %s  %s / %s  %s/s%s", bv_cli_text(p->id),
			      bv_cli_text(p->version), done, p->bytes_total ? total : "?", rate,
			      p->finished ? "\n" : "");
		return;
	}
	if (!p->finished && t - st->last_line < 5.0)
		return;
	st->last_line = t;
	bv_cli_status("%s %s %s / %s (%s/s)%s\n", p->finished ? "Downloaded" : "Downloading",
		      bv_cli_text(p->id), done, p->bytes_total ? total : "?", rate,
		      p->finished ? "" : "...");
}

static void on_wait(const char *id, const char *version, void *payload)
{
	(void)payload;
	bv_cli_status("Waiting for another bv process fetching %s %s\n", bv_cli_text(id),
		      bv_cli_text(version));
}

static int load_mirrors(struct bv_data_mirrors **m)
{
	struct bv_error *err = NULL;
	if (bv_data_mirrors_load(m, &err) < 0)
		return bv_cli_report(err);
	return 0;
}

int bv_cli_data_fetch(struct bv_dataset **sets, size_t n, unsigned jobs, bool yes)
{
	struct bv_data_mirrors *mirrors = NULL;
	struct progress_state ps = {.tty = isatty(STDERR_FILENO) == 1, .last_line = now_s()};
	struct bv_data_options o = {
		.jobs = jobs, .progress = on_progress, .on_wait = on_wait, .payload = &ps};
	struct bv_error *err = NULL;
	enum bv_data_outcome *out = NULL;
	int64_t bytes = 0;
	size_t missing = 0;
	char human[32];
	int r;

	for (size_t i = 0; i < n; i++) {
		struct bv_data_entry e;
		if (bv_data_lookup(&e, NULL, sets[i]->id, sets[i]->version, &err) == 0) {
			bv_data_entry_release(&e);
			continue;
		}
		bv_error_free(err);
		err = NULL;
		missing++;
		if (sets[i]->size_bytes > 0)
			bytes += sets[i]->size_bytes;
	}
	if (missing && !yes) {
		_cleanup_free_ char *q = NULL;
		bv_cli_format_size(human, sizeof(human), bytes);
		if (isatty(STDIN_FILENO) != 1) {
			bv_cli_error(
				"refusing to download %s of reference data without confirmation",
				human);
			bv_cli_hint("pass --yes to download without asking");
			return BV_EXIT_FAILURE;
		}
		q = bv_xasprintf("Download %s for %zu dataset%s?", human, missing,
				 missing == 1 ? "" : "s");
		if (!bv_cli_confirm(q)) {
			bv_cli_status("Nothing downloaded\n");
			return BV_EXIT_FAILURE;
		}
	}
	r = load_mirrors(&mirrors);
	if (r)
		return r;
	o.mirrors = mirrors;
	out = bv_xcalloc(n ? n : 1, sizeof(*out));
	if (bv_data_fetch(out, (const struct bv_dataset *const *)sets, n, &o, &err) < 0) {
		free(out);
		bv_data_mirrors_free(mirrors);
		return bv_cli_report(err);
	}
	for (size_t i = 0; i < n; i++) {
		struct bv_data_entry e;
		if (bv_data_lookup(&e, NULL, sets[i]->id, sets[i]->version, &err) < 0) {
			bv_error_free(err);
			err = NULL;
			continue;
		}
		bv_cli_format_size(human, sizeof(human), e.size);
		if (out[i] == BV_DATA_CACHED)
			bv_cli_status("%s %s is already in the cache\n", bv_cli_text(e.id),
				      bv_cli_text(e.version));
		else
			bv_cli_status("Fetched %s %s (%s, %zu file%s)\n", bv_cli_text(e.id),
				      bv_cli_text(e.version), human, e.n_files,
				      e.n_files == 1 ? "" : "s");
		bv_data_entry_release(&e);
	}
	free(out);
	bv_data_mirrors_free(mirrors);
	return BV_EXIT_OK;
}

static int data_fetch(struct bv_cli_ctx *ctx, char **specs, int n)
{
	struct bv_dataset **sets = bv_xcalloc((size_t)n, sizeof(*sets));
	struct bv_error *err = NULL;
	int r = 0, i;

	for (i = 0; i < n; i++)
		if (bv_data_resolve(&sets[i], ctx->index, specs[i], &err) < 0) {
			r = bv_cli_report(err);
			break;
		}
	if (!r)
		r = bv_cli_data_fetch(sets, (size_t)n, arg_jobs, arg_yes);
	for (int k = 0; k < n; k++)
		bv_dataset_free(sets[k]);
	free(sets);
	return r;
}

/* "tool, tool" of the project's lock whose pins name `id` at `version`, or NULL. */
static char *users_of(const struct bv_lockfile *lock, const char *id, const char *version)
{
	struct bv_strv users = BV_STRV_INIT;
	char *joined = NULL;
	for (size_t i = 0; lock && i < lock->n_tools; i++)
		for (size_t k = 0; k < lock->tools[i].n_pins; k++)
			if (!strcmp(lock->tools[i].pins[k].id, id) &&
			    !strcmp(lock->tools[i].pins[k].version, version) &&
			    !bv_strv_contains(&users, lock->tools[i].tool_id))
				bv_strv_push(&users, lock->tools[i].tool_id);
	if (users.n) {
		struct bv_buf b = BV_BUF_INIT;
		for (size_t i = 0; i < users.n; i++) {
			if (i)
				bv_buf_puts(&b, ", ");
			bv_buf_puts(&b, users.v[i]);
		}
		joined = bv_buf_detach(&b, NULL);
	}
	bv_strv_clear(&users);
	return joined;
}

static int data_list(const struct bv_lockfile *lock)
{
	struct bv_data_entry *e = NULL;
	struct bv_error *err = NULL;
	size_t n = 0;
	json_t *arr = arg_json ? json_array() : NULL;
	if (bv_data_list(&e, &n, NULL, &err) < 0) {
		json_decref(arr);
		return bv_cli_report(err);
	}
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *users = users_of(lock, e[i].id, e[i].version);
		char human[32];
		if (arr) {
			json_t *tools = json_array();
			for (size_t t = 0; lock && t < lock->n_tools; t++)
				for (size_t k = 0; k < lock->tools[t].n_pins; k++)
					if (!strcmp(lock->tools[t].pins[k].id, e[i].id) &&
					    !strcmp(lock->tools[t].pins[k].version, e[i].version))
						json_array_append_new(
							tools, json_string(lock->tools[t].tool_id));
			json_array_append_new(
				arr,
				json_pack("{s:s,s:s,s:I,s:I,s:s,s:b,s:s,s:s,s:o}", "id", e[i].id,
					  "version", e[i].version, "size", (json_int_t)e[i].size,
					  "files", (json_int_t)e[i].n_files, "sha256", e[i].sha256,
					  "verified", e[i].verified, "fetched_at", e[i].fetched_at,
					  "path", e[i].path, "used_by", tools));
			continue;
		}
		bv_cli_format_size(human, sizeof(human), e[i].size);
		printf("%-24s %-12s %10s  %-10s %s\n", bv_cli_text(e[i].id),
		       bv_cli_text(e[i].version), human, e[i].verified ? "verified" : "unverified",
		       users ? bv_cli_text(users) : "-");
	}
	if (arr)
		bv_cli_print_json(arr);
	else if (!n)
		bv_cli_status("No datasets in the cache\n");
	bv_data_entries_free(e, n);
	return BV_EXIT_OK;
}

static int verify_local(void)
{
	struct bv_data_entry *e = NULL;
	struct bv_error *err = NULL;
	size_t n = 0, bad = 0;
	if (bv_data_list(&e, &n, NULL, &err) < 0)
		return bv_cli_report(err);
	for (size_t i = 0; i < n; i++) {
		char *problem = NULL;
		int r;
		if (arg_filter && !strstr(e[i].id, arg_filter))
			continue;
		r = bv_data_verify_local(&problem, NULL, e[i].id, e[i].version, &err);
		if (r < 0) {
			_cleanup_free_ char *msg = bv_error_format(err);
			bv_error_free(err);
			err = NULL;
			printf("FAIL      %s %s: %s\n", bv_cli_text(e[i].id),
			       bv_cli_text(e[i].version), bv_cli_text(msg));
			bad++;
		} else if (r == 0) {
			printf("DAMAGED   %s %s: %s\n", bv_cli_text(e[i].id),
			       bv_cli_text(e[i].version), bv_cli_text(problem));
			bad++;
		} else {
			printf("OK        %s %s\n", bv_cli_text(e[i].id),
			       bv_cli_text(e[i].version));
		}
		free(problem);
	}
	bv_data_entries_free(e, n);
	if (bad) {
		bv_cli_error("%zu dataset%s in the cache %s damaged", bad, bad == 1 ? "" : "s",
			     bad == 1 ? "is" : "are");
		bv_cli_hint("run 'bv data rm <id>@<version>' and fetch it again");
		return BV_EXIT_FAILURE;
	}
	return BV_EXIT_OK;
}

static void size_text(char *out, size_t len, int64_t v)
{
	if (v < 0)
		(void)snprintf(out, len, "?");
	else
		(void)snprintf(out, len, "%lld", (long long)v);
}

static int verify_remote(struct bv_cli_ctx *ctx, double tolerance)
{
	struct bv_error *err = NULL;
	struct bv_data_mirrors *mirrors = NULL;
	struct bv_data_options o = {.jobs = arg_jobs};
	struct bv_dataset **sets = NULL;
	struct bv_data_check *checks = NULL;
	char **ids = NULL;
	size_t n_ids = 0, n = 0, fails = 0;
	int r;

	if (bv_data_registry_ids(&ids, &n_ids, ctx->index, &err) < 0)
		return bv_cli_report(err);
	r = load_mirrors(&mirrors);
	if (r) {
		bv_strv_free(ids);
		return r;
	}
	o.mirrors = mirrors;
	sets = bv_xcalloc(n_ids ? n_ids : 1, sizeof(*sets));
	for (size_t i = 0; i < n_ids; i++) {
		if (arg_filter && !strstr(ids[i], arg_filter))
			continue;
		if (bv_data_resolve(&sets[n], ctx->index, ids[i], &err) < 0) {
			_cleanup_free_ char *msg = bv_error_format(err);
			bv_error_free(err);
			err = NULL;
			printf("FAIL      %-24s %s\n", bv_cli_text(ids[i]), bv_cli_text(msg));
			fails++;
			continue;
		}
		n++;
	}
	if (bv_data_check_remote(&checks, (const struct bv_dataset *const *)sets, n, tolerance, &o,
				 &err) < 0) {
		r = bv_cli_report(err);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		static const char *const names[] = {"PASS", "MISMATCH", "FAIL"};
		char declared[32], actual[32];
		size_text(declared, sizeof(declared), checks[i].declared);
		size_text(actual, sizeof(actual), checks[i].actual);
		printf("%-9s %-24s %-12s declared %s, actual %s%s%s\n", names[checks[i].status],
		       bv_cli_text(sets[i]->id), bv_cli_text(sets[i]->version), declared, actual,
		       checks[i].detail ? ": " : "",
		       checks[i].detail ? bv_cli_text(checks[i].detail) : "");
		if (checks[i].status == BV_DATA_FAIL)
			fails++;
	}
	if (!n && !fails)
		bv_cli_status("No datasets to check\n");
	r = fails ? BV_EXIT_FAILURE : BV_EXIT_OK;
	if (fails)
		bv_cli_error("%zu dataset%s could not be reached", fails, fails == 1 ? "" : "s");
out:
	bv_data_checks_free(checks, n);
	for (size_t i = 0; i < n; i++)
		bv_dataset_free(sets[i]);
	free(sets);
	bv_strv_free(ids);
	bv_data_mirrors_free(mirrors);
	return r;
}

static int data_rm(char **specs, int n)
{
	for (int i = 0; i < n; i++) {
		struct bv_error *err = NULL;
		_cleanup_free_ char *id = NULL, *version = NULL;
		size_t removed = 0;
		if (bv_data_spec_parse(&id, &version, specs[i], &err) < 0 ||
		    bv_data_remove(&removed, NULL, id, version, &err) < 0)
			return bv_cli_report(err);
		bv_cli_status("Removed %zu version%s of %s\n", removed, removed == 1 ? "" : "s",
			      bv_cli_text(id));
	}
	return BV_EXIT_OK;
}

static int run_data(int argc, char **argv)
{
	struct bv_cli_ctx ctx = {0};
	const char *what;
	double tolerance = 0.20;
	int first = 0, r, n;
	int status = bv_cli_begin(&bv_cmd_data, argc, argv, 1, -1, &first);
	if (status >= 0)
		return status;
	what = argv[first];
	n = argc - first - 1;
	if (strcmp(what, "fetch") && strcmp(what, "list") && strcmp(what, "verify") &&
	    strcmp(what, "rm")) {
		bv_cli_error("unknown data command '%s'; expected fetch, list, verify or rm", what);
		return BV_EXIT_USAGE;
	}
	if ((!strcmp(what, "fetch") || !strcmp(what, "rm")) && n < 1) {
		bv_cli_error("'bv data %s' needs at least one dataset (id or id@version)", what);
		return BV_EXIT_USAGE;
	}
	if ((!strcmp(what, "list") || !strcmp(what, "verify")) && n > 0) {
		bv_cli_error("'bv data %s' takes no operands", what);
		return BV_EXIT_USAGE;
	}
	if (arg_json && strcmp(what, "list")) {
		bv_cli_error("--json only applies to 'bv data list'");
		return BV_EXIT_USAGE;
	}
	if ((arg_local || arg_filter || arg_tolerance) && strcmp(what, "verify")) {
		bv_cli_error(
			"--local, --filter and --size-tolerance only apply to 'bv data verify'");
		return BV_EXIT_USAGE;
	}
	if (arg_yes && strcmp(what, "fetch")) {
		bv_cli_error("--yes only applies to 'bv data fetch'");
		return BV_EXIT_USAGE;
	}
	if (arg_tolerance) {
		char *end = NULL;
		tolerance = strtod(arg_tolerance, &end);
		if (!end || *end || end == arg_tolerance || !(tolerance >= 0 && tolerance <= 100)) {
			bv_cli_error(
				"invalid --size-tolerance '%s': expected a fraction such as 0.2",
				arg_tolerance);
			return BV_EXIT_USAGE;
		}
	}
	if (!strcmp(what, "rm"))
		return data_rm(argv + first + 1, n);
	if (!strcmp(what, "list")) {
		r = bv_cli_ctx_load(&ctx, BV_CTX_NO_PROJECT, NULL);
		if (!r)
			r = data_list(ctx.lock);
		bv_cli_ctx_release(&ctx);
		return r;
	}
	if (!strcmp(what, "verify") && arg_local)
		return verify_local();
	r = bv_cli_ctx_load(&ctx, BV_CTX_NO_PROJECT | BV_CTX_INDEX, arg_registry);
	if (!r)
		r = !strcmp(what, "fetch") ? data_fetch(&ctx, argv + first + 1, n)
					   : verify_remote(&ctx, tolerance);
	bv_cli_ctx_release(&ctx);
	return r;
}

static const struct bv_cli_option data_options[] = {
	{"registry", 0, BV_OPT_STRING, &arg_registry, "R", "registry (path or git URL)"},
	{"yes", 'y', BV_OPT_FLAG, &arg_yes, NULL, "with fetch: download without asking"},
	{"jobs", 'j', BV_OPT_UINT, &arg_jobs, "N",
	 "downloads (fetch, default 4) or requests (verify, default 8) at once"},
	{"json", 0, BV_OPT_FLAG, &arg_json, NULL, "with list: print JSON"},
	{"filter", 0, BV_OPT_STRING, &arg_filter, "S",
	 "with verify: only dataset ids containing S"},
	{"size-tolerance", 0, BV_OPT_STRING, &arg_tolerance, "F",
	 "with verify: relative size difference still counted as PASS (default 0.20)"},
	{"local", 0, BV_OPT_FLAG, &arg_local, NULL,
	 "with verify: re-hash the cached datasets against their records instead"},
	{NULL, 0, BV_OPT_FLAG, NULL, NULL, NULL},
};

static const struct bv_cli_subcommand data_subcommands[] = {
	{"fetch", BV_OPERANDS_DATASETS}, {"list", BV_OPERANDS_NONE}, {"verify", BV_OPERANDS_NONE},
	{"rm", BV_OPERANDS_DATASETS},    {NULL, BV_OPERANDS_NONE},
};

const struct bv_cli_command bv_cmd_data = {
	.name = "data",
	.usage = "fetch <id[@version]>... [-y] [--jobs N] | list [--json] | verify [--filter S] "
		 "[--size-tolerance F] [--local] | rm <id[@version]>...",
	.summary = "fetch, list, verify and remove reference data",
	.description =
		"fetch: downloads datasets of the registry (the newest version without @version)\ninto the cache, checked against their sha256 and size, after asking (--yes skips the\nquestion; without a terminal it is required).  list: the cached datasets, their size,\nwhether their digest was verified, and which tools of this project's bv.lock pin them.\nverify: asks each dataset's server for its size (PASS, MISMATCH, FAIL; exit 1 on FAIL);\nwith --local re-hashes the cached files against their records.  rm: removes a dataset\n(every version without @version).  Mirrors: BV_DATA_MIRRORS=prefix=replacement,... or a\n[data] table in ~/.config/bv/mirrors.toml.",
	.options = data_options,
	.run = run_data,
	.subcommands = data_subcommands,
};

/* ------------------------------------------------------------------------------------------ */
/* The other commands' side of reference data: bv add, bv sync */

static bool cached(const char *id, const char *version)
{
	struct bv_data_entry e;
	struct bv_error *err = NULL;
	if (bv_data_lookup(&e, NULL, id, version, &err) < 0) {
		bv_error_free(err);
		return false;
	}
	bv_data_entry_release(&e);
	return true;
}

/* Fetches the datasets "id@version" of `specs` (new strings, distinct); an exit status. */
static int fetch_specs(const struct bv_strv *specs, const struct bv_index *idx, unsigned jobs)
{
	struct bv_dataset **sets = bv_xcalloc(specs->n + 1, sizeof(*sets));
	struct bv_error *err = NULL;
	int r = 0;
	for (size_t i = 0; i < specs->n; i++)
		if (bv_data_resolve(&sets[i], idx, specs->v[i], &err) < 0) {
			r = bv_cli_report(err);
			break;
		}
	if (!r)
		r = bv_cli_data_fetch(sets, specs->n, jobs, true);
	for (size_t i = 0; i < specs->n; i++)
		bv_dataset_free(sets[i]);
	free(sets);
	return r;
}

int bv_cli_data_notice(const struct bv_manifest *const *ms, size_t n, const struct bv_index *idx,
		       bool fetch, unsigned jobs)
{
	struct bv_strv missing = BV_STRV_INIT;
	int r = BV_EXIT_OK;
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < ms[i]->n_reference_data; k++) {
			const struct bv_manifest_reference *ref = &ms[i]->reference_data[k];
			_cleanup_free_ char *spec = bv_xasprintf("%s@%s", ref->id, ref->version);
			char human[32] = "";
			if (cached(ref->id, ref->version))
				continue;
			if (ref->size_bytes > 0)
				bv_cli_format_size(human, sizeof(human), ref->size_bytes);
			bv_cli_status("%s %s reference data %s %s%s%s%s\n", bv_cli_text(ms[i]->id),
				      ref->required ? "needs" : "can use", bv_cli_text(ref->id),
				      bv_cli_text(ref->version), human[0] ? " (" : "", human,
				      human[0] ? ")" : "");
			if (!bv_strv_contains(&missing, spec))
				bv_strv_push(&missing, spec);
		}
	if (missing.n && fetch) {
		r = fetch_specs(&missing, idx, jobs);
	} else if (missing.n) {
		struct bv_buf line = BV_BUF_INIT;
		bv_buf_puts(&line, "bv data fetch");
		bv_strv_foreach (s, &missing) {
			bv_buf_putc(&line, ' ');
			bv_buf_puts(&line, *s);
		}
		bv_cli_hint("fetch it with: %s", line.buf);
		bv_buf_release(&line);
	}
	bv_strv_clear(&missing);
	return r;
}

int bv_cli_sync_data(const struct bv_lockfile *lock, const struct bv_index *idx, unsigned jobs)
{
	struct bv_strv specs = BV_STRV_INIT;
	int r = BV_EXIT_OK;
	for (size_t i = 0; i < lock->n_tools; i++)
		for (size_t k = 0; k < lock->tools[i].n_pins; k++) {
			const struct bv_lock_data_pin *p = &lock->tools[i].pins[k];
			_cleanup_free_ char *spec = bv_xasprintf("%s@%s", p->id, p->version);
			if (!bv_strv_contains(&specs, spec))
				bv_strv_push(&specs, spec);
		}
	if (specs.n)
		r = fetch_specs(&specs, idx, jobs);
	if (!r)
		r = bv_cli_check_data_pins(lock);
	bv_strv_clear(&specs);
	return r;
}

int bv_cli_check_data_pins(const struct bv_lockfile *lock)
{
	size_t bad = 0;
	for (size_t i = 0; i < lock->n_tools; i++)
		for (size_t k = 0; k < lock->tools[i].n_pins; k++) {
			const struct bv_lock_data_pin *p = &lock->tools[i].pins[k];
			struct bv_data_entry e;
			struct bv_error *err = NULL;
			if (!p->sha256[0])
				continue;
			if (bv_data_lookup(&e, NULL, p->id, p->version, &err) < 0) {
				bv_error_free(err);
				continue;
			}
			if (strcmp(e.sha256, p->sha256) != 0) {
				bv_cli_error(
					"bv.lock pins %s %s for %s at %s, but the cache holds %s",
					p->id, p->version, lock->tools[i].tool_id, p->sha256,
					e.sha256);
				bad++;
			}
			bv_data_entry_release(&e);
		}
	if (bad) {
		bv_cli_hint("'bv data rm <id>@<version>' and 'bv sync --data' fetch it again");
		return BV_EXIT_FAILURE;
	}
	return BV_EXIT_OK;
}
