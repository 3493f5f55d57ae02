/*
 * bv conformance [tool...]: the registry's smoke test (bv/conformance.h).
 */
#include <bv/conformance.h>
#include <bv/error.h>
#include <bv/index.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/strv.h"

#include "util/banned.h"

static const char *arg_registry;
static const char *arg_backend;
static const char *arg_filter;
static const char *arg_format;
static unsigned arg_jobs;
static unsigned arg_timeout;
static bool arg_skip_gpu;
static bool arg_skip_reference_data;
static bool arg_skip_deprecated;

struct counts {
	size_t pass, fail, skip;
	bool text;
};

static const char *str(const json_t *res, const char *key)
{
	return json_string_value(json_object_get(res, key));
}

/* "PASS samtools 1.16.1 (2 binaries)", "FAIL bwa 0.7.17: ...", "SKIP x: needs a GPU" */
static void on_result(const json_t *res, void *payload)
{
	struct counts *c = payload;
	const char *status = str(res, "status"), *version = str(res, "version");
	const char *message = str(res, "message");
	size_t n = json_array_size(json_object_get(res, "binaries"));
	if (!strcmp(status, "pass"))
		c->pass++;
	else if (!strcmp(status, "skip"))
		c->skip++;
	else
		c->fail++;
	if (!c->text)
		return;
	printf("%s %s%s%s",
	       !strcmp(status, "pass")   ? "PASS"
	       : !strcmp(status, "skip") ? "SKIP"
					 : "FAIL",
	       bv_cli_text(str(res, "id")), version ? " " : "",
	       version ? bv_cli_text(version) : "");
	if (!strcmp(status, "pass"))
		printf(" (%zu binar%s)\n", n, n == 1 ? "y" : "ies");
	else
		printf(": %s\n", message ? bv_cli_text(message) : "failed");
	fflush(stdout);
}

/* XML 1.0 text and attribute values: the five entities, and no control characters, which
 * XML 1.0 cannot carry at all. */
static void xml_escape(struct bv_buf *b, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '&':
			bv_buf_puts(b, "&amp;");
			break;
		case '<':
			bv_buf_puts(b, "&lt;");
			break;
		case '>':
			bv_buf_puts(b, "&gt;");
			break;
		case '"':
			bv_buf_puts(b, "&quot;");
			break;
		case '\'':
			bv_buf_puts(b, "&apos;");
			break;
		case '\n':
		case '\t':
			bv_buf_putc(b, *s);
			break;
		default:
			bv_buf_putc(b, (unsigned char)*s < 0x20 ? '?' : *s);
		}
	}
}

/* JUnit XML as Jenkins and GitLab read it: one testsuite, one testcase per tool. */
static void print_junit(const json_t *results, const struct counts *c)
{
	_cleanup_buf_ struct bv_buf b = BV_BUF_INIT;
	double total = 0;
	size_t i;
	json_t *res;
	json_array_foreach(results, i, res) total +=
		json_real_value(json_object_get(res, "seconds"));
	bv_buf_printf(&b,
		      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		      "<testsuites>\n"
		      "<testsuite name=\"bv conformance\" tests=\"%zu\" failures=\"%zu\" "
		      "errors=\"0\" skipped=\"%zu\" time=\"%.3f\">\n",
		      json_array_size(results), c->fail, c->skip, total);
	json_array_foreach(results, i, res)
	{
		const char *status = str(res, "status"), *version = str(res, "version");
		bv_buf_puts(&b, "  <testcase classname=\"bv.conformance\" name=\"");
		xml_escape(&b, str(res, "id"));
		if (version) {
			bv_buf_putc(&b, ' ');
			xml_escape(&b, version);
		}
		bv_buf_printf(&b, "\" time=\"%.3f\"",
			      json_real_value(json_object_get(res, "seconds")));
		if (!strcmp(status, "pass")) {
			bv_buf_puts(&b, "/>\n");
			continue;
		}
		bv_buf_puts(&b, !strcmp(status, "skip") ? ">\n    <skipped message=\""
							: ">\n    <failure message=\"");
		xml_escape(&b, str(res, "message"));
		if (!strcmp(status, "skip")) {
			bv_buf_puts(&b, "\"/>\n");
		} else {
			bv_buf_puts(&b, "\">");
			xml_escape(&b, str(res, "message"));
			bv_buf_puts(&b, "</failure>\n");
		}
		bv_buf_puts(&b, "  </testcase>\n");
	}
	bv_buf_puts(&b, "</testsuite>\n</testsuites>\n");
	fwrite(b.buf, 1, b.len, stdout);
}

/* The tools to check: the operands, or the registry's tools whose id contains --filter. */
static int pick_tools(struct bv_strv *ids, const struct bv_index *idx, char **operands, size_t n)
{
	_cleanup_strv_ struct bv_strv all = BV_STRV_INIT;
	struct bv_error *err = NULL;
	if (n) {
		for (size_t i = 0; i < n; i++)
			if (!arg_filter || strstr(operands[i], arg_filter))
				bv_strv_push(ids, operands[i]);
		return 0;
	}
	if (bv_index_list_tools(&all, idx, &err) < 0)
		return bv_cli_report(err);
	for (size_t i = 0; i < all.n; i++)
		if (!arg_filter || strstr(all.v[i], arg_filter))
			bv_strv_push(ids, all.v[i]);
	return 0;
}

static int run_conformance(int argc, char **argv)
{
	struct bv_cli_ctx ctx;
	struct counts c = {0};
	struct bv_conformance_options o = {.backend = NULL, .on_result = on_result, .payload = &c};
	_cleanup_strv_ struct bv_strv ids = BV_STRV_INIT;
	struct bv_error *err = NULL;
	json_t *results = NULL;
	int first = 0, r;
	int status = bv_cli_begin(&bv_cmd_conformance, argc, argv, 0, -1, &first);
	if (status >= 0)
		return status;
	if (arg_format && strcmp(arg_format, "text") && strcmp(arg_format, "json") &&
	    strcmp(arg_format, "junit")) {
		bv_cli_error("unknown format '%s' (known: text, json, junit)",
			     bv_cli_text(arg_format));
		return BV_EXIT_USAGE;
	}
	c.text = !arg_format || !strcmp(arg_format, "text");
	o.backend = arg_backend;
	o.skip_gpu = arg_skip_gpu;
	o.skip_reference_data = arg_skip_reference_data;
	o.skip_deprecated = arg_skip_deprecated;
	o.jobs = arg_jobs ? arg_jobs : 4;
	o.probe_timeout_s = arg_timeout;
	o.host_env = (const char *const *)environ;
	r = bv_cli_ctx_load(&ctx, BV_CTX_NO_PROJECT | BV_CTX_INDEX | BV_CTX_TYPES, arg_registry);
	if (!r)
		r = pick_tools(&ids, ctx.index, argv + first, (size_t)(argc - first));
	if (!r && !ids.n) {
		bv_cli_error("no tool to check%s", arg_filter ? " matches the filter" : "");
		r = BV_EXIT_FAILURE;
	}
	if (!r && bv_conformance_run(&results, ctx.index, ctx.types, (const char *const *)ids.v,
				     ids.n, &o, &err) < 0)
		r = bv_cli_report(err);
	if (!r) {
		if (c.text)
			printf("%zu passed, %zu failed, %zu skipped\n", c.pass, c.fail, c.skip);
		else if (!strcmp(arg_format, "json"))
			bv_cli_print_json(
				json_pack("{s:o, s:{s:I, s:I, s:I}}", "tools", json_incref(results),
					  "summary", "passed", (json_int_t)c.pass, "failed",
					  (json_int_t)c.fail, "skipped", (json_int_t)c.skip));
		else
			print_junit(results, &c);
		r = c.fail ? BV_EXIT_FAILURE : BV_EXIT_OK;
	}
	json_decref(results);
	bv_cli_ctx_release(&ctx);
	return r;
}

static const struct bv_cli_option conformance_options[] = {
	{"registry", 0, BV_OPT_STRING, &arg_registry, "URL",
	 "registry to check (default: BV_REGISTRY, bv.toml, the public registry)"},
	{"backend", 0, BV_OPT_STRING, &arg_backend, "NAME",
	 "native, docker or apptainer (default: BV_BACKEND, then auto)"},
	{"filter", 0, BV_OPT_STRING, &arg_filter, "TEXT", "only tools whose id contains TEXT"},
	{"skip-gpu", 0, BV_OPT_FLAG, &arg_skip_gpu, NULL, "skip tools that need a GPU"},
	{"skip-reference-data", 0, BV_OPT_FLAG, &arg_skip_reference_data, NULL,
	 "skip tools that need reference data"},
	{"skip-deprecated", 0, BV_OPT_FLAG, &arg_skip_deprecated, NULL,
	 "skip tools whose newest version is deprecated"},
	{"jobs", 'j', BV_OPT_UINT, &arg_jobs, "N", "tools checked at once (default: 4)"},
	{"timeout", 0, BV_OPT_UINT, &arg_timeout, "SECONDS",
	 "kill a probe after this long (default: 30)"},
	{"format", 0, BV_OPT_STRING, &arg_format, "FORMAT", "text, json or junit (default: text)"},
	{NULL, 0, BV_OPT_FLAG, NULL, NULL, NULL},
};

const struct bv_cli_command bv_cmd_conformance = {
	.name = "conformance",
	.usage = "[--registry <URL>] [--backend <NAME>] [--filter <TEXT>] [--skip-gpu]\n"
		 "       [--skip-reference-data] [--skip-deprecated] [--jobs <N>]\n"
		 "       [--format text|json|junit] [<tool>...]",
	.summary = "smoke-test the tools of a registry",
	.description =
		"Resolves the newest version of each <tool> (default: every tool of the\n"
		"registry), pulls its image by digest and runs each exposed binary with its\n"
		"[tool.smoke] probe, or else with --version, -version, --help, -h, -v, version and\n"
		"no argument in turn until one is alive: it exits 0 or writes at least 30 bytes.\n"
		"Each probe runs as 'bv run' would, with a temporary /workspace, no stdin and a\n"
		"timeout.  On the native backend every declared binary must also be in the image.\n"
		"Prints one line per tool as it finishes and a summary; exits 1 when a tool fails.",
	.options = conformance_options,
	.run = run_conformance,
	.operands = BV_OPERANDS_NONE,
};
