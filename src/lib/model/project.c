/*
 * bv.toml: reading it into struct bv_project, and editing its text.
 */
#include <bv/error.h>
#include <bv/lockfile.h>
#include <bv/project.h>
#include <bv/version.h>
#include <stdlib.h>
#include <string.h>

#include "lib/model/paths-internal.h"
#include "lib/model/schema.h"
#include "lib/model/validate.h"
#include "lib/model/version-internal.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/parse.h"
#include "util/xalloc.h"

#include "util/banned.h"

#define PROJECT_FILE     "bv.toml"
#define PROJECT_MAX_SIZE (4u << 20)

static const char *const backends[] = {"auto",      "native",      "docker",
				       "apptainer", "singularity", NULL};

void bv_project_free(struct bv_project *p)
{
	if (!p)
		return;
	free(p->path);
	free(p->root);
	free(p->text);
	free(p->tools);
	free(p->overrides);
	free(p->caches);
	free(p->data);
	bv_strv_clear(&p->warnings);
	bv_toml_doc_free(p->doc);
	free(p);
}

static int read_project_table(struct bv_schema *s, struct bv_project *p,
			      const struct bv_schema_table *root)
{
	static const char *const known[] = {"name", "description", NULL};
	struct bv_schema_table t;
	if (bv_schema_table(s, root, "project", true, &t) < 0 ||
	    bv_schema_string(s, &t, "name", true, &p->name) < 0 ||
	    bv_schema_string(s, &t, "description", false, &p->description) < 0)
		return BV_EINVALID;
	if (!p->name[0])
		return bv_schema_fail(s, bv_schema_find(&t, "name")->value.pos,
				      "'name' in [project] must not be empty");
	return bv_schema_check_keys(s, &t, known);
}

static int read_registry_and_runtime(struct bv_schema *s, struct bv_project *p,
				     const struct bv_schema_table *root)
{
	static const char *const registry_keys[] = {"url", "require_signed", NULL};
	static const char *const runtime_keys[] = {"backend", "image_mode", "local_dir", NULL};
	struct bv_schema_table t;
	int r = bv_schema_table(s, root, "registry", false, &t);
	if (r < 0)
		return r;
	/* url stays required: upstream bv reads [registry] as a table with a url */
	if (r > 0 && (bv_schema_string(s, &t, "url", true, &p->registry_url) < 0 ||
		      bv_schema_bool(s, &t, "require_signed", false, &p->require_signed) < 0 ||
		      bv_schema_check_keys(s, &t, registry_keys) < 0))
		return BV_EINVALID;
	r = bv_schema_table(s, root, "runtime", false, &t);
	if (r < 0)
		return r;
	if (r > 0) {
		bool known = false;
		if (bv_schema_string(s, &t, "backend", false, &p->runtime_backend) < 0 ||
		    bv_schema_string(s, &t, "image_mode", false, &p->image_mode) < 0 ||
		    bv_schema_string(s, &t, "local_dir", false, &p->local_dir) < 0 ||
		    bv_schema_check_keys(s, &t, runtime_keys) < 0)
			return BV_EINVALID;
		if (p->image_mode && bv_image_mode_parse(p->image_mode) < 0)
			return bv_schema_fail(
				s, bv_schema_find(&t, "image_mode")->value.pos,
				"unknown image_mode '%s' in [runtime]; expected tree, local_dir or squashfs",
				p->image_mode);
		if (p->local_dir && p->local_dir[0] != '/')
			return bv_schema_fail(s, bv_schema_find(&t, "local_dir")->value.pos,
					      "local_dir in [runtime] must be an absolute path");
		if (!p->runtime_backend)
			return 0;
		for (const char *const *b = backends; *b; b++)
			known = known || !strcmp(*b, p->runtime_backend);
		if (!known)
			return bv_schema_fail(
				s, bv_schema_find(&t, "backend")->value.pos,
				"unknown backend '%s' in [runtime]; expected auto, native, docker, apptainer or singularity",
				p->runtime_backend);
	}
	return 0;
}

static int compare_tool_ids(const void *a, const void *b)
{
	const struct bv_project_tool *x = *(const struct bv_project_tool *const *)a;
	const struct bv_project_tool *y = *(const struct bv_project_tool *const *)b;
	int c = strcmp(x->id, y->id);
	return c ? c : (x->pos.line > y->pos.line) - (x->pos.line < y->pos.line);
}

/* Sorting, not comparing every pair: a project may declare thousands of tools. */
static int check_duplicate_tools(struct bv_schema *s, const struct bv_project *p)
{
	const struct bv_project_tool **sorted = bv_xcalloc(p->n_tools + 1, sizeof(*sorted));
	const struct bv_project_tool *dup = NULL, *first = NULL;
	int r = 0;
	for (size_t i = 0; i < p->n_tools; i++)
		sorted[i] = &p->tools[i];
	/* bv.toml's tools are often in order already: one pass tells, cheaper than a sort */
	for (size_t i = 1; i < p->n_tools; i++) {
		if (compare_tool_ids(&sorted[i - 1], &sorted[i]) >= 0) {
			qsort(sorted, p->n_tools, sizeof(*sorted), compare_tool_ids);
			break;
		}
	}
	/* Of all repeated declarations, report the one that comes first in the file. */
	for (size_t i = 1; i < p->n_tools; i++) {
		if (strcmp(sorted[i - 1]->id, sorted[i]->id) ||
		    (dup && sorted[i]->pos.line >= dup->pos.line))
			continue;
		dup = sorted[i];
		first = sorted[i - 1];
	}
	if (dup)
		r = bv_schema_fail(s, dup->pos, "tool '%s' is declared twice (first on line %u)",
				   dup->id, first->pos.line);
	free(sorted);
	return r;
}

static int read_tools(struct bv_schema *s, struct bv_project *p, const struct bv_schema_table *root)
{
	static const char *const known[] = {"id", "version", NULL};
	const struct bv_toml_array *a = NULL;
	int r = bv_schema_array(s, root, "tools", false, &a, NULL);
	if (r <= 0)
		return r;
	/* the requirement last found valid: most tools of a project repeat one (or none), and a
	 * parse allocates, so the same text is not parsed again for every tool */
	const char *valid_req = NULL;
	p->tools = bv_xcalloc(a->n + 1, sizeof(*p->tools));
	for (size_t i = 0; i < a->n; i++) {
		struct bv_project_tool *tool = &p->tools[i];
		struct bv_schema_table t;
		const struct bv_toml_kv *kv;
		struct bv_error *spec_err = NULL;
		if (bv_schema_table_at(s, a, i, "[[tools]]", &t) < 0 ||
		    bv_schema_string(s, &t, "id", true, &tool->id) < 0 ||
		    bv_schema_string(s, &t, "version", false, &tool->version) < 0 ||
		    bv_schema_check_keys(s, &t, known) < 0)
			return BV_EINVALID;
		tool->pos = t.pos;
		if (!tool->version)
			tool->version = "";
		kv = bv_schema_find(&t, "id");
		/* what bv_tool_spec_parse() accepts as an id alone ('@' is no id character),
		 * without its two copies */
		if (!bv_tool_id_valid(tool->id))
			return bv_schema_fail(s, kv->value.pos, "invalid tool id '%s'", tool->id);
		if (bv_schema_check_name(s, kv->value.pos, "tool id", "[[tools]]", tool->id) < 0)
			return BV_EINVALID;
		if (tool->version[0] && !(valid_req && !strcmp(valid_req, tool->version))) {
			struct bv_version_req *vr = NULL;
			if (bv_version_req_parse(&vr, tool->version, &spec_err) < 0) {
				_cleanup_free_ char *msg = bv_error_format(spec_err);
				bv_error_free(spec_err);
				return bv_schema_fail(s, bv_schema_find(&t, "version")->value.pos,
						      "%s", msg);
			}
			bv_version_req_free(vr);
			valid_req = tool->version;
		}
		p->n_tools++;
	}
	return check_duplicate_tools(s, p);
}

static int read_overrides(struct bv_schema *s, struct bv_project *p,
			  const struct bv_schema_table *root)
{
	struct bv_schema_table t;
	int r = bv_schema_table(s, root, "binary_overrides", false, &t);
	if (r <= 0)
		return r;
	p->overrides = bv_xcalloc(t.t->n + 1, sizeof(*p->overrides));
	for (size_t i = 0; i < t.t->n; i++) {
		const struct bv_toml_kv *kv = &t.t->items[i];
		if (bv_schema_check_name(s, kv->pos, "binary name", t.name, kv->key) < 0 ||
		    bv_schema_name(s, &t, kv->key, true, &p->overrides[i].tool) < 0)
			return BV_EINVALID;
		p->overrides[i].binary = kv->key;
		p->n_overrides++;
	}
	return 0;
}

/* The host side of a [[cache]] rule, with '~' and "{tool}" expanded (validate.h). */
static int check_host_path(struct bv_schema *s, struct bv_toml_pos pos,
			   const struct bv_cache_rule *c)
{
	_cleanup_free_ char *expanded = bv_cache_rule_host_path(c, "tool");
	_cleanup_free_ char *home = bv_expand_home("~"), *shown = NULL;
	const char *why = NULL;
	if (bv_valid_host_mount(expanded, home[0] == '/' ? home : NULL, &why))
		return 0;
	shown = bv_str_shown(c->host_path, strlen(c->host_path), 200);
	return bv_schema_fail(s, pos, "invalid host_path '%s' in [[cache]]: %s", shown, why);
}

static int read_caches(struct bv_schema *s, struct bv_project *p,
		       const struct bv_schema_table *root)
{
	static const char *const known[] = {"match", "container_path", "host_path", NULL};
	const struct bv_toml_array *a = NULL;
	int r = bv_schema_array(s, root, "cache", false, &a, NULL);
	if (r <= 0)
		return r;
	p->caches = bv_xcalloc(a->n + 1, sizeof(*p->caches));
	for (size_t i = 0; i < a->n; i++) {
		struct bv_cache_rule *c = &p->caches[i];
		struct bv_schema_table t;
		if (bv_schema_table_at(s, a, i, "[[cache]]", &t) < 0 ||
		    bv_schema_string(s, &t, "match", false, &c->match) < 0 ||
		    bv_schema_container_path(s, &t, "container_path", true, &c->container_path) <
			    0 ||
		    bv_schema_string(s, &t, "host_path", true, &c->host_path) < 0 ||
		    bv_schema_check_keys(s, &t, known) < 0)
			return BV_EINVALID;
		if (!c->match)
			c->match = "*";
		else if (strcmp(c->match, "*") &&
			 bv_schema_check_name(s, bv_schema_find(&t, "match")->value.pos, "match",
					      "[[cache]]", c->match) < 0)
			return BV_EINVALID;
		if (!c->host_path[0])
			return bv_schema_fail(s, bv_schema_find(&t, "host_path")->value.pos,
					      "'host_path' in [[cache]] must not be empty");
		if (check_host_path(s, bv_schema_find(&t, "host_path")->value.pos, c) < 0)
			return BV_EINVALID;
		p->n_caches++;
	}
	return 0;
}

static int read_data_and_hardware(struct bv_schema *s, struct bv_project *p,
				  const struct bv_schema_table *root)
{
	static const char *const data_keys[] = {"id", "version", NULL};
	static const char *const hardware_keys[] = {"gpu", "cpu_cores", "ram_gb", NULL};
	struct bv_schema_table t;
	bool gpu;
	int r = bv_schema_table(s, root, "data", false, &t);
	if (r < 0)
		return r;
	if (r > 0) {
		p->data = bv_xcalloc(t.t->n + 1, sizeof(*p->data));
		for (size_t i = 0; i < t.t->n; i++) {
			struct bv_project_data *d = &p->data[i];
			struct bv_schema_table entry;
			d->key = t.t->items[i].key;
			if (bv_schema_check_name(s, t.t->items[i].pos, "name", t.name, d->key) <
				    0 ||
			    bv_schema_table(s, &t, d->key, true, &entry) < 0 ||
			    bv_schema_name(s, &entry, "id", true, &d->id) < 0 ||
			    bv_schema_name(s, &entry, "version", false, &d->version) < 0 ||
			    bv_schema_check_keys(s, &entry, data_keys) < 0)
				return BV_EINVALID;
			p->n_data++;
		}
	}
	p->gpu = -1;
	p->cpu_cores = -1;
	p->ram_gb = -1;
	r = bv_schema_table(s, root, "hardware", false, &t);
	if (r <= 0)
		return r;
	r = bv_schema_bool(s, &t, "gpu", false, &gpu);
	if (r < 0 || bv_schema_integer(s, &t, "cpu_cores", false, &p->cpu_cores) < 0 ||
	    bv_schema_number(s, &t, "ram_gb", false, &p->ram_gb) < 0 ||
	    bv_schema_check_keys(s, &t, hardware_keys) < 0)
		return BV_EINVALID;
	if (r > 0)
		p->gpu = gpu;
	return 0;
}

static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		return bv_xstrdup(".");
	if (slash == path)
		return bv_xstrdup("/");
	return bv_xstrndup(path, (size_t)(slash - path));
}

/* bv_project_parse() of `text`, a heap string of `len` bytes that the project takes over. */
static int parse_taking(struct bv_project **out, char *text, size_t len, const char *path,
			struct bv_error **err)
{
	static const char *const known[] = {"project",          "registry", "runtime", "tools",
					    "binary_overrides", "cache",    "data",    "hardware",
					    "services",         "session",  "volumes", NULL};
	struct bv_project *p = bv_xcalloc(1, sizeof(*p));
	struct bv_schema s = {.file = path, .err = err};
	struct bv_schema_table root;
	int r;

	bv_strv_init(&p->warnings);
	bv_strv_init(&s.names);
	s.warnings = &p->warnings;
	p->path = bv_xstrdup(path);
	p->root = dir_of(path);
	p->text = text;
	p->text_len = len;
	r = bv_toml_parse(&p->doc, text, len, path, err);
	if (r < 0)
		goto fail;
	root = bv_schema_root(&s, bv_toml_doc_root(p->doc));
	r = read_project_table(&s, p, &root);
	if (r >= 0)
		r = read_registry_and_runtime(&s, p, &root);
	if (r >= 0)
		r = read_tools(&s, p, &root);
	if (r >= 0)
		r = read_overrides(&s, p, &root);
	if (r >= 0)
		r = read_caches(&s, p, &root);
	if (r >= 0)
		r = read_data_and_hardware(&s, p, &root);
	if (r >= 0)
		r = bv_schema_check_keys(&s, &root, known);
	bv_schema_release(&s);
	if (r < 0)
		goto fail;
	*out = p;
	return 0;
fail:
	bv_project_free(p);
	return r;
}

int bv_project_parse(struct bv_project **out, const char *text, size_t len, const char *path,
		     struct bv_error **err)
{
	/* a copy of all `len` bytes: a NUL inside is the parser's to refuse, not strndup's to cut
	 */
	char *copy = bv_xmalloc(len + 1);
	memcpy(copy, text, len);
	copy[len] = '\0';
	return parse_taking(out, copy, len, path, err);
}

static void put_string(struct bv_buf *b, const char *s);

/*
 * A directory holding only a bv.lock (shipped with a paper, say) is a project whose bv.toml
 * would declare exactly the locked tools: sync and run work from the lock, and the first
 * command that writes bv.toml writes this text.
 */
static int project_from_lock(struct bv_project **out, const char *root, const char *path,
			     struct bv_error **err)
{
	_cleanup_free_ char *lock_path = bv_path_join(root, "bv.lock");
	_cleanup_free_ char *text = NULL;
	const char *slash = strrchr(root, '/');
	struct bv_lockfile *lock = NULL;
	struct bv_buf b = BV_BUF_INIT;
	int r = bv_lockfile_load(&lock, lock_path, err);
	if (r < 0)
		return r;
	text = bv_project_template(slash && slash[1] ? slash + 1 : "project");
	bv_buf_puts(&b, text);
	for (size_t i = 0; i < lock->n_tools; i++) {
		bv_buf_puts(&b, "\n[[tools]]\nid = ");
		put_string(&b, lock->tools[i].tool_id);
		bv_buf_putc(&b, '\n');
	}
	bv_lockfile_free(lock);
	r = bv_project_parse(out, b.buf, b.len, path, err);
	bv_buf_release(&b);
	return r;
}

int bv_project_load(struct bv_project **out, const char *root, struct bv_error **err)
{
	_cleanup_free_ char *path = bv_path_join(root, PROJECT_FILE);
	_cleanup_free_ char *lock_path = NULL;
	_cleanup_buf_ struct bv_buf text = BV_BUF_INIT;
	struct bv_error *read_err = NULL;
	size_t len;
	int r = bv_buf_read_file(&text, path, PROJECT_MAX_SIZE, &read_err);
	if (r == BV_ENOTFOUND) {
		lock_path = bv_path_join(root, "bv.lock");
		if (bv_path_exists(lock_path)) {
			bv_error_free(read_err);
			return project_from_lock(out, root, path, err);
		}
	}
	if (r < 0) {
		if (err)
			*err = read_err;
		else
			bv_error_free(read_err);
		return r;
	}
	/* the text read is the project's own: bv.toml is not copied again */
	len = text.len;
	return parse_taking(out, bv_buf_detach(&text, NULL), len, path, err);
}

const struct bv_project_tool *bv_project_find_tool(const struct bv_project *p, const char *id)
{
	for (size_t i = 0; i < p->n_tools; i++)
		if (!strcmp(p->tools[i].id, id))
			return &p->tools[i];
	return NULL;
}

const char *bv_project_display_name(const struct bv_project *p)
{
	const char *slash = strrchr(p->root, '/');
	if (p->name && p->name[0])
		return p->name;
	return slash && slash[1] ? slash + 1 : p->root;
}

/* A TOML basic string for `s`, escaped as bv_toml_write() escapes its strings. */
static void put_string(struct bv_buf *b, const char *s)
{
	bv_toml_write_string(b, s, strlen(s));
}

char *bv_project_template(const char *name)
{
	struct bv_buf b = BV_BUF_INIT;
	bv_buf_puts(&b, "[project]\nname = ");
	put_string(&b, name);
	bv_buf_puts(&b, "\n\n# Tools are added with 'bv add <tool>', for example:\n"
			"# [[tools]]\n# id = \"samtools\"\n# version = \"^1.21\"\n");
	return bv_buf_detach(&b, NULL);
}

/* Offsets of the first byte of each line; lines[n] is the end of the text. */
static size_t *line_starts(const char *text, size_t len, size_t *n_out)
{
	size_t n = 1, alloc = 0;
	size_t *starts = NULL;
	BV_GROW(starts, alloc, 2);
	starts[0] = 0;
	for (size_t i = 0; i < len; i++) {
		if (text[i] == '\n') {
			BV_GROW(starts, alloc, n + 2);
			starts[n++] = i + 1;
		}
	}
	if (starts[n - 1] != len || n == 1) {
		BV_GROW(starts, alloc, n + 2);
		starts[n] = len;
	} else {
		n--; /* the text ends with a newline: no empty last line */
		starts[n] = len;
	}
	*n_out = n;
	return starts;
}

/* Whether 1-based `line` holds nothing but a comment. */
static bool is_comment_line(const char *text, const size_t *starts, uint32_t line)
{
	const char *s = text + starts[line - 1], *end = text + starts[line];
	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	return s < end && *s == '#';
}

/* The first line after `after` on which a [header] or [[header]] starts, or 0. */
static uint32_t next_header_line(const struct bv_toml_table *t, uint32_t after, uint32_t best)
{
	for (size_t i = 0; i < t->n; i++) {
		const struct bv_toml_value *v = &t->items[i].value;
		if (v->type == BV_TOML_TABLE) {
			if (bv_toml_table_is_section(v->u.table) && v->pos.line > after &&
			    (!best || v->pos.line < best))
				best = v->pos.line;
			best = next_header_line(v->u.table, after, best);
		} else if (v->type == BV_TOML_ARRAY) {
			for (size_t j = 0; j < v->u.array->n; j++) {
				const struct bv_toml_value *e = &v->u.array->items[j];
				if (e->type != BV_TOML_TABLE)
					continue;
				if (bv_toml_table_is_section(e->u.table) && e->pos.line > after &&
				    (!best || e->pos.line < best))
					best = e->pos.line;
				best = next_header_line(e->u.table, after, best);
			}
		}
	}
	return best;
}

/* Whether bv.toml writes `tools = [...]` inline, where no [[tools]] section can be added. */
static bool tools_written_inline(const struct bv_project *p)
{
	const struct bv_toml_value *tools = bv_toml_table_get(bv_toml_doc_root(p->doc), "tools");
	if (!tools || tools->type != BV_TOML_ARRAY)
		return false;
	for (size_t i = 0; i < tools->u.array->n; i++)
		if (tools->u.array->items[i].type != BV_TOML_TABLE ||
		    !bv_toml_table_is_section(tools->u.array->items[i].u.table))
			return true;
	return tools->u.array->n == 0; /* "tools = []" */
}

/* The [[tools]] element declaring `id`, which must have been written as a section. */
static int find_tool_section(const struct bv_project *p, const char *id,
			     const struct bv_toml_value **out, struct bv_error **err)
{
	const struct bv_toml_value *tools = bv_toml_table_get(bv_toml_doc_root(p->doc), "tools");
	for (size_t i = 0; tools && i < tools->u.array->n; i++) {
		const struct bv_toml_value *e = &tools->u.array->items[i];
		const struct bv_toml_value *tid = bv_toml_table_get(e->u.table, "id");
		if (!tid || strcmp(tid->u.string.ptr, id))
			continue;
		if (!bv_toml_table_is_section(e->u.table))
			return bv_error_setc(
				err, BV_EINVALID, 0,
				"%s:%u:%u: cannot edit tool '%s': declare tools as [[tools]] tables, not inline",
				p->path, e->pos.line, e->pos.column, id);
		*out = e;
		return 0;
	}
	return bv_error_setc(err, BV_ENOTFOUND, 0, "tool '%s' is not declared in '%s'", id,
			     p->path);
}

int bv_project_text_without_tool(char **out, const struct bv_project *p, const char *id,
				 struct bv_error **err)
{
	const struct bv_toml_value *entry = NULL;
	size_t n_lines;
	_cleanup_free_ size_t *starts = NULL;
	struct bv_buf b = BV_BUF_INIT;
	uint32_t first, next;
	int r = find_tool_section(p, id, &entry, err);
	if (r < 0)
		return r;
	starts = line_starts(p->text, p->text_len, &n_lines);
	first = entry->pos.line;
	next = next_header_line(bv_toml_doc_root(p->doc), first, 0);
	if (!next || next > n_lines) {
		next = (uint32_t)n_lines + 1;
	} else {
		/* Comments right above the next header belong to it... */
		while (next - 1 > first && is_comment_line(p->text, starts, next - 1))
			next--;
	}
	/* ...and comments right above this entry's header belong to this entry. */
	while (first > 1 && is_comment_line(p->text, starts, first - 1))
		first--;
	bv_buf_add(&b, p->text, starts[first - 1]);
	{
		const char *rest = p->text + starts[next - 1];
		size_t rest_len = p->text_len - starts[next - 1];
		/* the blank line that add put above the entry goes with it, so that add and
		 * remove cycles do not pile up blank lines at the end or between entries */
		while (b.len >= 2 && b.buf[b.len - 1] == '\n' && b.buf[b.len - 2] == '\n' &&
		       (!rest_len || rest[0] == '\n'))
			b.buf[--b.len] = '\0';
		bv_buf_add(&b, rest, rest_len);
	}
	*out = bv_buf_detach(&b, NULL);
	return 0;
}

int bv_project_text_with_tool(char **out, const struct bv_project *p, const char *id,
			      const char *version, struct bv_error **err)
{
	const struct bv_toml_value *entry = NULL;
	const struct bv_toml_kv *kv;
	size_t n_lines;
	_cleanup_free_ size_t *starts = NULL;
	struct bv_buf b = BV_BUF_INIT;
	struct bv_error *find_err = NULL;
	int r = find_tool_section(p, id, &entry, &find_err);
	if (r < 0 && r != BV_ENOTFOUND) {
		if (err) {
			bv_error_free(*err);
			*err = find_err;
		} else {
			bv_error_free(find_err);
		}
		return r;
	}
	bv_error_free(find_err);
	if (r == BV_ENOTFOUND && tools_written_inline(p))
		return bv_error_setc(
			err, BV_EINVALID, 0,
			"cannot add '%s' to '%s': declare tools as [[tools]] tables, not inline",
			id, p->path);
	if (r == BV_ENOTFOUND) {
		bv_buf_add(&b, p->text, p->text_len);
		if (b.len && b.buf[b.len - 1] != '\n')
			bv_buf_putc(&b, '\n');
		bv_buf_puts(&b, "\n[[tools]]\nid = ");
		put_string(&b, id);
		bv_buf_putc(&b, '\n');
		if (version[0]) {
			bv_buf_puts(&b, "version = ");
			put_string(&b, version);
			bv_buf_putc(&b, '\n');
		}
		*out = bv_buf_detach(&b, NULL);
		return 0;
	}
	starts = line_starts(p->text, p->text_len, &n_lines);
	kv = bv_toml_table_find(entry->u.table, "version", 7);
	if (!kv)
		kv = bv_toml_table_find(entry->u.table, "id", 2);
	/* Replace the version line, or add one after the id line; every other line stays. */
	bv_buf_add(&b, p->text, starts[kv->pos.line - 1]);
	if (kv->key_len == 2)
		bv_buf_add(&b, p->text + starts[kv->pos.line - 1],
			   starts[kv->pos.line] - starts[kv->pos.line - 1]);
	if (b.len && b.buf[b.len - 1] != '\n')
		bv_buf_putc(&b, '\n');
	if (version[0]) {
		bv_buf_puts(&b, "version = ");
		put_string(&b, version);
		bv_buf_putc(&b, '\n');
	}
	bv_buf_add(&b, p->text + starts[kv->pos.line], p->text_len - starts[kv->pos.line]);
	*out = bv_buf_detach(&b, NULL);
	return 0;
}

int bv_project_save_text(const struct bv_project *p, const char *text, struct bv_error **err)
{
	struct bv_project *check = NULL;
	int r = bv_project_parse(&check, text, strlen(text), p->path, err);
	if (r < 0)
		return bv_error_wrap(err, r, "refusing to write '%s'", p->path);
	bv_project_free(check);
	return bv_write_file_atomic(p->path, text, strlen(text), 0644, err);
}

char *bv_cache_rule_host_path(const struct bv_cache_rule *rule, const char *tool)
{
	_cleanup_free_ char *home = bv_expand_home(rule->host_path);
	struct bv_buf b = BV_BUF_INIT;
	for (const char *s = home; *s; s++) {
		if (!strncmp(s, "{tool}", 6)) {
			bv_buf_puts(&b, tool);
			s += 5;
		} else {
			bv_buf_putc(&b, *s);
		}
	}
	return bv_buf_detach(&b, NULL);
}
