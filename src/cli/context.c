/*
 * Loading what commands share: project, lock, registry index, type vocabulary.
 */
#include <bv/error.h>
#include <bv/index.h>
#include <bv/lockfile.h>
#include <bv/lockops.h>
#include <bv/paths.h>
#include <bv/project.h>
#include <bv/types.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/strv.h"
#include "util/xalloc.h"

#include "util/banned.h"

void bv_cli_ctx_release(struct bv_cli_ctx *ctx)
{
	bv_project_free(ctx->project);
	bv_lockfile_free(ctx->lock);
	free(ctx->lock_path);
	bv_index_free(ctx->index);
	bv_types_free(ctx->types);
	bv_project_unlock(ctx->project_lock);
	memset(ctx, 0, sizeof(*ctx));
}

int bv_cli_ctx_load_index(struct bv_cli_ctx *ctx, const char *registry_flag, bool offline)
{
	struct bv_error *err = NULL;
	const char *from_toml = ctx->project ? ctx->project->registry_url : NULL;
	const char *url = bv_registry_url_choose(registry_flag, from_toml);
	const char *warning;
	if (bv_index_open(&ctx->index, url, offline ? BV_INDEX_OFFLINE : BV_INDEX_REFRESH_STALE,
			  &err) < 0)
		return bv_cli_report(err);
	warning = bv_index_warning(ctx->index);
	if (warning)
		bv_cli_warning("%s", warning);
	return 0;
}

int bv_cli_ctx_load_types(struct bv_cli_ctx *ctx)
{
	struct bv_error *err = NULL;
	if (bv_types_load_default(&ctx->types, &err) < 0)
		return bv_cli_report(err);
	return 0;
}

static void say_waiting(const char *lock_path, void *payload)
{
	(void)lock_path;
	(void)payload;
	bv_cli_status("Waiting for another bv process on this project\n");
}

/* The project part of the context as a lock transaction (borrowed, not to be released). */
static struct bv_lockops_txn txn_of(const struct bv_cli_ctx *ctx)
{
	return (struct bv_lockops_txn){.project_lock = ctx->project_lock,
				       .project = ctx->project,
				       .lock = ctx->lock,
				       .lock_path = ctx->lock_path};
}

static int load(struct bv_cli_ctx *ctx, unsigned what, const char *registry_flag, const char *start)
{
	struct bv_error *err = NULL;
	struct bv_project_lock_options o = {.on_wait = say_waiting};
	struct bv_lockops_txn txn;
	char *root = NULL;
	int r;

	memset(ctx, 0, sizeof(*ctx));
	r = bv_project_find(&root, start, &err);
	if (r == BV_ENOTFOUND && (what & BV_CTX_NO_PROJECT)) {
		bv_error_free(err);
		goto shared;
	}
	if (r < 0)
		return bv_cli_report(err);
	/* with BV_CTX_WRITE the project lock is taken before bv.toml is read */
	r = bv_lockops_open(&txn, root, what & BV_CTX_WRITE, &o, &err);
	free(root);
	if (r < 0)
		return bv_cli_report(err);
	ctx->project_lock = TAKE_PTR(txn.project_lock);
	ctx->project = TAKE_PTR(txn.project);
	ctx->lock = TAKE_PTR(txn.lock);
	ctx->lock_path = TAKE_PTR(txn.lock_path);
	bv_strv_foreach (w, &ctx->project->warnings)
		bv_cli_warning("%s", *w);
	/*
	 * [runtime] image_mode and local_dir reach the library (and the bv processes this one
	 * starts) as the variables, which a job script's own settings override.
	 */
	if (ctx->project->image_mode)
		setenv("BV_IMAGE_MODE", ctx->project->image_mode, 0);
	if (ctx->project->local_dir)
		setenv("BV_LOCAL_DIR", ctx->project->local_dir, 0);
	if (!ctx->lock && (what & BV_CTX_LOCK)) {
		bv_cli_error("no bv.lock in '%s'", ctx->project->root);
		bv_cli_hint("run 'bv lock' or 'bv add <tool>' first");
		return BV_EXIT_FAILURE;
	}
shared:
	if (what & (BV_CTX_INDEX | BV_CTX_INDEX_OFFLINE)) {
		r = bv_cli_ctx_load_index(ctx, registry_flag, !(what & BV_CTX_INDEX));
		if (r)
			return r;
	}
	if (what & BV_CTX_TYPES)
		return bv_cli_ctx_load_types(ctx);
	return 0;
}

int bv_cli_ctx_take_lock(struct bv_cli_ctx *ctx)
{
	struct bv_project_lock_options o = {.on_wait = say_waiting};
	struct bv_error *err = NULL;
	struct bv_lockops_txn txn = txn_of(ctx);
	int r = bv_lockops_txn_lock(&txn, &o, &err);
	/* the transaction only borrowed the context's fields: take back what it replaced */
	ctx->project_lock = txn.project_lock;
	ctx->lock = txn.lock;
	return r < 0 ? bv_cli_report(err) : 0;
}

int bv_cli_commit(const struct bv_cli_ctx *ctx, const struct bv_lockops_result *res)
{
	struct bv_error *err = NULL;
	struct bv_lockops_txn txn = txn_of(ctx);
	if (bv_lockops_commit(&txn, res, &err) < 0)
		return bv_cli_report(err);
	return 0;
}

int bv_cli_ctx_load(struct bv_cli_ctx *ctx, unsigned what, const char *registry_flag)
{
	return load(ctx, what, registry_flag, NULL);
}

int bv_cli_ctx_load_from(struct bv_cli_ctx *ctx, unsigned what, const char *start_dir)
{
	return load(ctx, what, NULL, start_dir);
}

int bv_cli_print_json(json_t *j)
{
	/* one string and one fwrite: json_dumpf() writes token by token through stdio, which
	 * was a sixth of `bv list --json` on a 1000-tool project */
	char *text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	size_t len = text ? strlen(text) : 0;
	int r = text && fwrite(text, 1, len, stdout) == len ? 0 : -1;
	free(text);
	json_decref(j);
	if (r < 0 || fputc('\n', stdout) == EOF) {
		bv_cli_error("could not write to standard output");
		return BV_EXIT_FAILURE;
	}
	return 0;
}

void bv_cli_json_array_begin(struct bv_cli_json_array *a)
{
	*a = (struct bv_cli_json_array){.out = BV_BUF_INIT};
}

/* What is gathered goes out in pieces of this size, as stdio's own buffer would. */
#define JSON_ARRAY_FLUSH 65536

static void json_array_flush(struct bv_cli_json_array *a)
{
	if (!a->failed && a->out.len && fwrite(a->out.buf, 1, a->out.len, stdout) != a->out.len)
		a->failed = true;
	bv_buf_reset(&a->out);
}

/*
 * The element's own indented text with two more spaces after each newline is exactly what
 * json_dumps() of the whole array prints for it: a newline inside a JSON value is always
 * escaped, so every raw one is the indentation's.
 */
void bv_cli_json_array_add(struct bv_cli_json_array *a, json_t *element)
{
	const size_t flags = JSON_INDENT(2) | JSON_PRESERVE_ORDER;
	size_t len = a->failed ? 0 : json_dumpb(element, a->text, a->cap, flags);
	const char *p, *end, *nl;
	if (len > a->cap) { /* too long for the buffer: grow it and dump again */
		free(a->text);
		a->cap = len > 4096 ? len : 4096;
		a->text = bv_xmalloc(a->cap);
		len = json_dumpb(element, a->text, a->cap, flags);
	}
	json_decref(element);
	if (!len || len > a->cap) {
		a->failed = true;
		return;
	}
	bv_buf_puts(&a->out, a->any ? ",\n  " : "[\n  ");
	a->any = true;
	for (p = a->text, end = a->text + len; p < end; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl) {
			bv_buf_add(&a->out, p, (size_t)(end - p));
			break;
		}
		bv_buf_add(&a->out, p, (size_t)(nl - p));
		bv_buf_puts(&a->out, "\n  ");
	}
	if (a->out.len >= JSON_ARRAY_FLUSH)
		json_array_flush(a);
}

/*
 * The members' text: an element is an object at depth 1 of the array, so with JSON_INDENT(2)
 * jansson puts each member on a new line 4 spaces in ("{\n    \"k\": v,\n    ...\n  }"),
 * "{}" when there is none, and a value's own newlines (only an array's or object's: one inside
 * a string is escaped) 4 spaces further in than at depth 0.
 */
#define MEMBER_INDENT "\n    "

void bv_cli_json_array_object_begin(struct bv_cli_json_array *a)
{
	bv_buf_puts(&a->out, a->any ? ",\n  {" : "[\n  {");
	a->any = true;
	a->members = false;
}

/*
 * The length of `text` when every JSON encoder, jansson included, prints it unchanged between
 * quotes: printable ASCII without '"' or '\\' (nothing to escape; '/' is escaped only on
 * request, and DEL and anything beyond ASCII go to jansson), else 0.  Digests, ids, versions
 * and image references are such text; the others take jansson's path.
 */
static size_t plain_text(const char *text)
{
	const unsigned char *t = (const unsigned char *)text;
	for (; *t; t++)
		if (*t < 0x20 || *t >= 0x7f || *t == '"' || *t == '\\')
			return 0;
	return (size_t)(t - (const unsigned char *)text);
}

/* Appends "text" as it is (plain_text() said it may be). */
static void put_quoted(struct bv_cli_json_array *a, const char *text, size_t n)
{
	char *p;
	bv_buf_grow(&a->out, n + 2);
	p = a->out.buf + a->out.len;
	p[0] = '"';
	memcpy(p + 1, text, n);
	p[n + 1] = '"';
	bv_buf_setlen(&a->out, a->out.len + n + 2);
}

/* Appends jansson's text of `value` (any JSON value) at the end of a->out, as it is. */
static void dump_value(struct bv_cli_json_array *a, const json_t *value)
{
	const size_t flags = JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY;
	size_t room = a->out.alloc > a->out.len ? a->out.alloc - a->out.len - 1 : 0;
	size_t len = json_dumpb(value, a->out.buf + a->out.len, room, flags);
	if (len > room) { /* did not fit: make room and dump again */
		bv_buf_grow(&a->out, len);
		len = json_dumpb(value, a->out.buf + a->out.len, len, flags);
	}
	if (!len) {
		a->failed = true;
		return;
	}
	bv_buf_setlen(&a->out, a->out.len + len);
}

/* A string value, through the one scratch string (no new value per string). */
static void dump_str(struct bv_cli_json_array *a, const char *value)
{
	size_t n = plain_text(value);
	if (n || !*value) {
		put_quoted(a, value, n);
		return;
	}
	if (!a->scratch)
		a->scratch = json_string_nocheck("");
	if (!a->scratch || json_string_setn_nocheck(a->scratch, value, strlen(value)) < 0) {
		a->failed = true;
		return;
	}
	dump_value(a, a->scratch);
}

/* The separator, the indentation and `"key": ` before a member's value (a key is a string). */
static void member_key(struct bv_cli_json_array *a, const char *key)
{
	bv_buf_puts(&a->out, a->members ? "," MEMBER_INDENT : MEMBER_INDENT);
	a->members = true;
	dump_str(a, key);
	bv_buf_puts(&a->out, ": ");
}

void bv_cli_json_array_member(struct bv_cli_json_array *a, const char *key, json_t *value)
{
	size_t from;
	if (!value)
		return;
	member_key(a, key);
	from = a->out.len;
	dump_value(a, value);
	json_decref(value);
	/* an array's or object's newlines, 4 spaces further in */
	if (memchr(a->out.buf + from, '\n', a->out.len - from)) {
		_cleanup_free_ char *text = bv_xstrndup(a->out.buf + from, a->out.len - from);
		bv_buf_setlen(&a->out, from);
		for (const char *p = text, *nl; *p; p = nl + 1) {
			nl = strchr(p, '\n');
			if (!nl) {
				bv_buf_puts(&a->out, p);
				break;
			}
			bv_buf_add(&a->out, p, (size_t)(nl - p));
			bv_buf_puts(&a->out, MEMBER_INDENT);
		}
	}
}

void bv_cli_json_array_member_string(struct bv_cli_json_array *a, const char *key,
				     const char *value)
{
	if (!value)
		return;
	member_key(a, key);
	dump_str(a, value);
}

/* An array of strings at depth 2: "[\n      \"a\",\n      \"b\"\n    ]", or "[]". */
void bv_cli_json_array_member_strings(struct bv_cli_json_array *a, const char *key,
				      const struct bv_strv *values)
{
	member_key(a, key);
	if (!values->n) {
		bv_buf_puts(&a->out, "[]");
		return;
	}
	for (size_t i = 0; i < values->n; i++) {
		bv_buf_puts(&a->out, i ? "," MEMBER_INDENT "  " : "[" MEMBER_INDENT "  ");
		dump_str(a, values->v[i]);
	}
	bv_buf_puts(&a->out, MEMBER_INDENT "]");
}

void bv_cli_json_array_object_end(struct bv_cli_json_array *a)
{
	bv_buf_puts(&a->out, a->members ? "\n  }" : "}");
	if (a->out.len >= JSON_ARRAY_FLUSH)
		json_array_flush(a);
}

int bv_cli_json_array_end(struct bv_cli_json_array *a)
{
	bv_buf_puts(&a->out, a->any ? "\n]\n" : "[]\n");
	json_array_flush(a);
	bv_buf_release(&a->out);
	free(a->text);
	a->text = NULL;
	json_decref(a->scratch);
	a->scratch = NULL;
	if (a->failed) {
		bv_cli_error("could not write to standard output");
		return BV_EXIT_FAILURE;
	}
	return 0;
}

void bv_cli_format_size(char *out, size_t len, int64_t bytes)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)bytes;
	size_t u = 0;
	if (bytes < 0) {
		(void)snprintf(out, len, "-");
		return;
	}
	while (v >= 1024 && u + 1 < BV_ARRAY_SIZE(units)) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		(void)snprintf(out, len, "%lld B", (long long)bytes);
	else
		(void)snprintf(out, len, "%.1f %s", v, units[u]);
}
