#include <bv/error.h>
#include <bv/lockfile.h>
#include <bv/project.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cli.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/xalloc.h"

#include "util/banned.h"

static const char *arg_format;
static const char *arg_output;

/*
 * Whether `s` may be a plain YAML scalar and still read back as this string: a letter or '_'
 * first, then only characters a conda match spec uses, and no word that YAML 1.1 reads as a
 * boolean or null.  Everything else is double-quoted.
 */
static bool yaml_plain(const char *s)
{
	static const char *const words[] = {"y",     "n",  "yes", "no",  "true",
					    "false", "on", "off", "null"};
	if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || strchr("._-+=:/*<>!,@", *p)))
			return false;
	if (s[strlen(s) - 1] == ':')
		return false;
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (!strcasecmp(s, words[i]))
			return false;
	return true;
}

/*
 * Appends `s` as a YAML scalar that reads back as exactly `s`: plain when that is safe,
 * otherwise double-quoted with '"', '\\' and the characters YAML cannot print escaped (a
 * byte that is not UTF-8 becomes \xNN, the code point of that value).  Nothing in a name can end
 * the scalar, start a comment or add a key.
 */
static void put_yaml(struct bv_buf *out, const char *s)
{
	if (yaml_plain(s)) {
		bv_buf_puts(out, s);
		return;
	}
	bv_buf_putc(out, '"');
	for (const char *p = s; *p;) {
		unsigned cp;
		size_t n = bv_utf8_decode(p, &cp);
		if (!n) {
			bv_buf_printf(out, "\\x%02x", (unsigned char)*p);
			n = 1;
		} else if (cp == '"' || cp == '\\') {
			bv_buf_printf(out, "\\%c", (char)cp);
		} else if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) {
			bv_buf_printf(out, "\\x%02x", cp);
		} else if (cp == 0xfffe || cp == 0xffff) {
			bv_buf_printf(out, "\\u%04x", cp);
		} else {
			bv_buf_add(out, p, n);
		}
		p += n;
	}
	bv_buf_putc(out, '"');
}

/*
 * "quay.io/biocontainers/<name>:<version>[--<build>]" names a bioconda package; other
 * references have no conda equivalent unless the lock pins the layers' conda packages.
 */
static bool biocontainer_package(const char *ref, struct bv_buf *out)
{
	static const char prefix[] = "quay.io/biocontainers/";
	const char *name = ref + sizeof(prefix) - 1, *colon, *dashes;
	if (strncmp(ref, prefix, sizeof(prefix) - 1))
		return false;
	colon = strchr(name, ':');
	if (!colon || colon == name)
		return false;
	/* the build hash is optional: "samtools:1.21" is bioconda's samtools 1.21 too */
	dashes = strstr(colon, "--");
	if (!dashes)
		dashes = colon + strlen(colon);
	if (dashes == colon + 1)
		return false;
	_cleanup_free_ char *spec = bv_xasprintf("bioconda::%.*s=%.*s", (int)(colon - name), name,
						 (int)(dashes - colon - 1), colon + 1);
	bv_buf_puts(out, "  - ");
	put_yaml(out, spec);
	bv_buf_putc(out, '\n');
	return true;
}

static int run_export(int argc, char **argv)
{
	struct bv_cli_ctx ctx;
	struct bv_buf yaml = BV_BUF_INIT, skipped = BV_BUF_INIT;
	struct bv_error *err = NULL;
	int first = 0;
	int r;
	int status = bv_cli_begin(&bv_cmd_export, argc, argv, 0, 0, &first);
	if (status >= 0)
		return status;
	if (arg_format && strcmp(arg_format, "conda")) {
		bv_cli_error("unsupported export format '%s'; the only format is 'conda'",
			     arg_format);
		return BV_EXIT_USAGE;
	}
	r = bv_cli_ctx_load(&ctx, BV_CTX_LOCK, NULL);
	if (r)
		goto out;
	bv_buf_puts(&yaml, "# conda environment exported by bv from bv.lock\nname: ");
	put_yaml(&yaml, bv_project_display_name(ctx.project));
	bv_buf_putc(&yaml, '\n');
	bv_buf_puts(&yaml, "channels:\n  - conda-forge\n  - bioconda\ndependencies:\n");
	for (size_t i = 0; i < ctx.lock->n_tools; i++) {
		const struct bv_lock_tool *t = &ctx.lock->tools[i];
		size_t pinned = 0;
		for (size_t j = 0; j < t->n_layers; j++) {
			const struct bv_lock_conda *c = t->layers[j].conda;
			if (!c)
				continue;
			_cleanup_free_ char *spec = bv_xasprintf("%s=%s%s%s", c->name, c->version,
								 c->build && c->build[0] ? "=" : "",
								 c->build ? c->build : "");
			bv_buf_puts(&yaml, "  - ");
			put_yaml(&yaml, spec);
			bv_buf_putc(&yaml, '\n');
			pinned++;
		}
		if (!pinned && !biocontainer_package(t->image_reference, &yaml))
			/* a comment ends at a newline, so none may get into one */
			bv_buf_printf(&skipped, "#   %s %s (%s)\n", bv_cli_text(t->tool_id),
				      bv_cli_text(t->version), bv_cli_text(t->image_reference));
	}
	if (skipped.len) {
		bv_buf_puts(&yaml, "# not exported, no conda package is known for:\n");
		bv_buf_add(&yaml, skipped.buf, skipped.len);
	}
	if (arg_output && strcmp(arg_output, "-")) {
		if (bv_write_file_atomic(arg_output, yaml.buf, yaml.len, 0644, &err) < 0) {
			r = bv_cli_report(err);
			goto out;
		}
		bv_cli_status("Wrote '%s'\n", bv_cli_text(arg_output));
	} else {
		fwrite(yaml.buf, 1, yaml.len, stdout);
	}
out:
	bv_buf_release(&yaml);
	bv_buf_release(&skipped);
	bv_cli_ctx_release(&ctx);
	return r;
}

static const struct bv_cli_option export_options[] = {
	{"format", 'f', BV_OPT_STRING, &arg_format, "FORMAT",
	 "output format (only 'conda', the default)"},
	{"output", 'o', BV_OPT_STRING, &arg_output, "FILE", "write to FILE instead of stdout"},
	{NULL, 0, BV_OPT_FLAG, NULL, NULL, NULL},
};

const struct bv_cli_command bv_cmd_export = {
	.name = "export",
	.usage = "[--format conda] [-o <FILE>]",
	.summary = "export the locked tools as a conda environment",
	.description =
		"Writes a conda environment file for the locked tools: bioconda packages for\nbiocontainers images and the pinned conda packages of factored images.",
	.options = export_options,
	.run = run_export,
};
