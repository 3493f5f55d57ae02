/* Shared by the TOML unit tests: parse a string or fail the test with the error text. */
#ifndef BV_TEST_TOML_HELPERS_H
#define BV_TEST_TOML_HELPERS_H

#include <bv/error.h>
#include <bv/toml.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"

static inline struct bv_toml_doc *parse_ok(const char *text)
{
	struct bv_toml_doc *doc = NULL;
	struct bv_error *err = NULL;
	if (bv_toml_parse(&doc, text, strlen(text), "t.toml", &err) < 0) {
		char *msg = bv_error_format(err);
		print_error("unexpected parse error: %s\n", msg);
		free(msg);
		bv_error_free(err);
		fail();
	}
	return doc;
}

/* Parses `text`, expects failure, and returns the formatted message (caller frees). */
static inline char *parse_fail(const char *text, size_t len)
{
	struct bv_toml_doc *doc = NULL;
	struct bv_error *err = NULL;
	char *msg;
	int r = bv_toml_parse(&doc, text, len, "t.toml", &err);
	assert_int_equal(r, BV_EINVALID);
	assert_null(doc);
	assert_non_null(err);
	assert_int_equal(err->code, BV_EINVALID);
	msg = bv_error_format(err);
	bv_error_free(err);
	return msg;
}

#define assert_parse_error(text, expected)                                      \
	do {                                                                    \
		char *msg_ = parse_fail((text), strlen(text));                  \
		if (!strstr(msg_, (expected))) {                                \
			print_error("got '%s', want '%s'\n", msg_, (expected)); \
			free(msg_);                                             \
			fail();                                                 \
		}                                                               \
		free(msg_);                                                     \
	} while (0)

#endif
