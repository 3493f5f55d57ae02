/*
 * libFuzzer target for the project model readers: registry tool and dataset manifests,
 * bv.lock and bv.toml, each fed the same TOML text.
 *
 * A rejection must be BV_EINVALID with a "file:line:column: " message.  What a reader accepts
 * must satisfy the validation layer (src/lib/model/validate.h): every tool and dataset id, version,
 * binary, subcommand and reference-data name is a bv_valid_name(), every container path a
 * bv_valid_container_path(), every environment variable name [A-Za-z_][A-Za-z0-9_]*, so nothing
 * that passes a reader can hold "..", '/', ',', ':' or control characters where bv builds paths,
 * mounts and commands from it.  A lock that parses must write out as a lock that parses
 * back, is equivalent and writes the same bytes, and so must its clone; its binary index,
 * rebuilt, is refused with a message or made of valid names.  A violation aborts, which
 * libFuzzer reports as a finding.
 */
#include <bv/error.h>
#include <bv/lockfile.h>
#include <bv/manifest.h>
#include <bv/project.h>
#include <bv/types.h>
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/model/validate.h"
#include "util/buf.h"

#include "util/banned.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct bv_types *types;

static void die(const char *what, const char *value)
{
	fprintf(stderr, "fuzz_model: %s: '%s'\n", what, value ? value : "(null)");
	abort();
}

/* BV_EINVALID with "<file>:<line>:<column>: <something>". */
static void expect_invalid(int r, struct bv_error *err, const char *file)
{
	const char *p;
	size_t n = strlen(file);
	if (r != BV_EINVALID || !err || err->code != BV_EINVALID)
		die("a rejection that is not BV_EINVALID", err ? err->message : NULL);
	p = err->message;
	if (strncmp(p, file, n) || p[n] != ':')
		die("a rejection without the file name", err->message);
	p += n + 1;
	for (int field = 0; field < 2; field++) {
		if (!isdigit((unsigned char)*p))
			die("a rejection without line and column", err->message);
		while (isdigit((unsigned char)*p))
			p++;
		if (*p++ != ':')
			die("a rejection without line and column", err->message);
	}
	if (*p != ' ' || !p[1])
		die("a rejection without a message", err->message);
	bv_error_free(err);
}

static void name(const char *what, const char *s)
{
	if (!s || !bv_valid_name(s))
		die(what, s);
}

static void container_path(const char *what, const char *s)
{
	const char *why = NULL;
	if (!s || !bv_valid_container_path(s, &why))
		die(what, s);
}

static void fuzz_manifest(const char *text, size_t len)
{
	struct bv_manifest *m = NULL;
	struct bv_error *err = NULL;
	int r = bv_manifest_parse(&m, text, len, "tools/x/1.toml", types, &err);
	if (r < 0) {
		expect_invalid(r, err, "tools/x/1.toml");
		if (m)
			die("a rejected manifest was returned", NULL);
		return;
	}
	name("manifest id", m->id);
	name("manifest version", m->version);
	for (size_t i = 0; i < m->binaries.n; i++)
		name("manifest binary", m->binaries.v[i]);
	for (size_t i = 0; i < m->n_subcommands; i++)
		name("manifest subcommand", m->subcommands[i].name);
	for (size_t i = 0; i < m->n_reference_data; i++) {
		const struct bv_manifest_reference *ref = &m->reference_data[i];
		name("reference data name", ref->key);
		name("reference data id", ref->id);
		name("reference data version", ref->version);
		if (ref->mount_path)
			container_path("reference data mount_path", ref->mount_path);
	}
	for (size_t i = 0; i < m->n_env; i++) {
		const char *e = m->env[i].name;
		if (!e || !*e || isdigit((unsigned char)*e) ||
		    e[strspn(e, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")])
			die("manifest environment variable name", e);
	}
	for (size_t i = 0; i < m->cache_paths.n; i++)
		container_path("manifest cache path", m->cache_paths.v[i]);
	json_decref(bv_manifest_to_json(m));
	json_decref(bv_manifest_to_mcp(m));
	json_decref(bv_manifest_to_json_schema(m));
	bv_manifest_free(m);
}

static void fuzz_dataset(const char *text, size_t len)
{
	struct bv_dataset *d = NULL;
	struct bv_error *err = NULL;
	int r = bv_dataset_parse(&d, text, len, "data/x/1.toml", &err);
	if (r < 0) {
		expect_invalid(r, err, "data/x/1.toml");
		if (d)
			die("a rejected dataset was returned", NULL);
		return;
	}
	name("dataset id", d->id);
	name("dataset version", d->version);
	bv_dataset_free(d);
}

static void check_lock(const struct bv_lockfile *lock)
{
	for (size_t i = 0; i < lock->n_tools; i++) {
		const struct bv_lock_tool *t = &lock->tools[i];
		name("locked tool id", t->tool_id);
		name("locked version", t->version);
		for (size_t j = 0; j < t->binaries.n; j++)
			name("locked binary", t->binaries.v[j]);
		for (size_t j = 0; j < t->n_pins; j++) {
			name("pin name", t->pins[j].key);
			name("pin id", t->pins[j].id);
			name("pin version", t->pins[j].version);
		}
	}
	for (size_t i = 0; i < lock->n_binary_index; i++) {
		name("binary index name", lock->binary_index[i].binary);
		name("binary index tool", lock->binary_index[i].tool);
	}
}

static void fuzz_lockfile(const char *text, size_t len)
{
	struct bv_lockfile *lock = NULL, *back = NULL, *clone;
	struct bv_error *err = NULL;
	struct bv_buf first = BV_BUF_INIT, second = BV_BUF_INIT;
	int r = bv_lockfile_parse(&lock, text, len, "bv.lock", &err);
	if (r < 0) {
		expect_invalid(r, err, "bv.lock");
		if (lock)
			die("a rejected lock was returned", NULL);
		return;
	}
	check_lock(lock);
	bv_lockfile_write(&first, lock);
	if (bv_lockfile_parse(&back, first.buf, first.len, "written.lock", &err) < 0) {
		fprintf(stderr, "fuzz_model: written lock:\n%s\n", first.buf);
		die("a written lock does not parse", err ? err->message : NULL);
	}
	check_lock(back);
	bv_lockfile_write(&second, back);
	if (first.len != second.len || memcmp(first.buf, second.buf, first.len)) {
		fprintf(stderr, "fuzz_model: first:\n%s\nsecond:\n%s\n", first.buf, second.buf);
		die("a lock does not write the same twice", NULL);
	}
	if (!bv_lockfile_equivalent(lock, back))
		die("a lock differs from itself written and read back", NULL);
	clone = bv_lockfile_clone(lock);
	bv_buf_reset(&second);
	bv_lockfile_write(&second, clone);
	if (first.len != second.len || memcmp(first.buf, second.buf, first.len))
		die("a lock's clone writes differently", NULL);
	/* the index as bv lock would rebuild it: refused, or made of locked names */
	if (bv_lockfile_rebuild_binary_index(clone, NULL, NULL, 0, &err) < 0) {
		if (!err || err->code != BV_EINVALID || !*err->message)
			die("a refused binary index without a message", NULL);
		bv_error_free(err);
	} else {
		check_lock(clone);
	}
	bv_lockfile_free(clone);
	bv_buf_release(&first);
	bv_buf_release(&second);
	bv_lockfile_free(lock);
	bv_lockfile_free(back);
}

static void fuzz_project(const char *text, size_t len)
{
	struct bv_project *p = NULL;
	struct bv_error *err = NULL;
	int r = bv_project_parse(&p, text, len, "/fuzz/bv.toml", &err);
	if (r < 0) {
		expect_invalid(r, err, "/fuzz/bv.toml");
		if (p)
			die("a rejected project was returned", NULL);
		return;
	}
	for (size_t i = 0; i < p->n_tools; i++)
		name("project tool id", p->tools[i].id);
	for (size_t i = 0; i < p->n_overrides; i++) {
		name("override binary", p->overrides[i].binary);
		name("override tool", p->overrides[i].tool);
	}
	for (size_t i = 0; i < p->n_caches; i++) {
		container_path("cache container_path", p->caches[i].container_path);
		if (strcmp(p->caches[i].match, "*"))
			name("cache match", p->caches[i].match);
	}
	for (size_t i = 0; i < p->n_data; i++) {
		name("data name", p->data[i].key);
		name("data id", p->data[i].id);
		if (p->data[i].version)
			name("data version", p->data[i].version);
	}
	bv_project_free(p);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct bv_error *err = NULL;
	(void)argc;
	(void)argv;
	if (bv_types_load_default(&types, &err) < 0)
		die("cannot load the type vocabulary", err ? err->message : NULL);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	fuzz_manifest(text, size);
	fuzz_dataset(text, size);
	fuzz_lockfile(text, size);
	fuzz_project(text, size);
	return 0;
}
