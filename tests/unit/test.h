/*
 * test.h - what every cmocka unit test includes.
 *
 * cmocka.h needs <setjmp.h>, <stdarg.h>, <stddef.h> and <stdint.h> before it, in an order
 * clang-format would otherwise re-sort.  Helpers:
 *   assert_ok(expr, err)      expr must return >= 0; otherwise prints the bv_error and fails
 *   test_mkdtemp("tag")       a new private directory under $TMPDIR or /tmp (free() it,
 *                             remove it with bv_rm_rf())
 */
#ifndef BV_TEST_H
#define BV_TEST_H

#include <bv/error.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include "util/xalloc.h"

#define assert_ok(expr, errp)                                        \
	do {                                                         \
		if ((expr) < 0) {                                    \
			char *msg_ = bv_error_format(*(errp));       \
			print_error("%s failed: %s\n", #expr, msg_); \
			free(msg_);                                  \
			fail();                                      \
		}                                                    \
	} while (0)

/* Entries of `dir` other than "." and ".."; fails the test when it cannot be read. */
static inline size_t test_count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;
	assert_non_null(d);
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static inline char *test_mkdtemp(const char *tag)
{
	const char *base = getenv("TMPDIR");
	char *dir = bv_xasprintf("%s/bv-test-%s-XXXXXX", base && *base ? base : "/tmp", tag);
	if (!mkdtemp(dir)) {
		free(dir);
		return NULL;
	}
	return dir;
}

#endif
