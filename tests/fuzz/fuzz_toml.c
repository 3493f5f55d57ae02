/*
 * libFuzzer target for the TOML reader and writer.
 *
 * Any input must either be rejected with an error or parse; a document that parses must
 * write out as TOML that parses back to an equal document and rewrites to the same bytes.
 * A violation aborts, which libFuzzer reports as a finding.
 */
#include <bv/error.h>
#include <bv/toml.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"

#include "util/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bv_toml_doc *doc = NULL, *back = NULL;
	struct bv_error *err = NULL;
	struct bv_buf first = BV_BUF_INIT, second = BV_BUF_INIT;

	if (bv_toml_parse(&doc, (const char *)data, size, "fuzz", &err) < 0) {
		if (!err || err->code != BV_EINVALID || strncmp(err->message, "fuzz:", 5))
			abort(); /* every rejection must carry a positioned message */
		bv_error_free(err);
		return 0;
	}
	bv_toml_write(&first, bv_toml_doc_root(doc));
	if (bv_toml_parse(&back, first.buf, first.len, "written", &err) < 0)
		abort();
	if (!bv_toml_table_equal(bv_toml_doc_root(doc), bv_toml_doc_root(back)))
		abort();
	bv_toml_write(&second, bv_toml_doc_root(back));
	if (first.len != second.len || memcmp(first.buf, second.buf, first.len))
		abort();
	bv_buf_release(&first);
	bv_buf_release(&second);
	bv_toml_doc_free(doc);
	bv_toml_doc_free(back);
	return 0;
}
