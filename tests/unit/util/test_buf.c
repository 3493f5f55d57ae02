#include <bv/error.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/xalloc.h"

static void test_buf__add_and_printf_growth(void **state)
{
	struct bv_buf b = BV_BUF_INIT;
	char want[1001];
	(void)state;
	assert_string_equal(b.buf, "");
	bv_buf_puts(&b, "name");
	bv_buf_putc(&b, '=');
	bv_buf_add(&b, "3\0x", 3); /* embedded NUL; len is authoritative */
	assert_int_equal(b.len, 8);
	assert_memory_equal(b.buf, "name=3\0x", 9);
	bv_buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_string_equal(b.buf, "");

	/* Well past the 64 bytes printf reserves first. */
	memset(want, 'x', 1000);
	want[1000] = '\0';
	bv_buf_printf(&b, "%s|%d", want, 42);
	assert_int_equal(b.len, 1003);
	assert_memory_equal(b.buf, want, 1000);
	assert_string_equal(b.buf + 1000, "|42");
	assert_true(b.alloc > b.len);
	bv_buf_release(&b);
}

static void test_buf__detach(void **state)
{
	struct bv_buf b = BV_BUF_INIT;
	size_t len = 99;
	char *s;
	(void)state;
	s = bv_buf_detach(&b, &len); /* even an empty buffer gives an owned string */
	assert_string_equal(s, "");
	assert_int_equal(len, 0);
	free(s);
	bv_buf_puts(&b, "abc");
	s = bv_buf_detach(&b, &len);
	assert_string_equal(s, "abc");
	assert_int_equal(len, 3);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.alloc, 0);
	assert_string_equal(b.buf, "");
	free(s);
}

static void test_buf__read_fd_limit(void **state)
{
	struct bv_buf b = BV_BUF_INIT;
	struct bv_error *err = NULL;
	char data[5000];
	int fds[2];
	(void)state;
	memset(data, 'a', sizeof(data));
	bv_buf_puts(&b, "prefix");

	assert_int_equal(pipe(fds), 0);
	assert_int_equal(write(fds[1], data, sizeof(data)), sizeof(data));
	close(fds[1]);
	assert_int_equal(bv_buf_read_fd(&b, fds[0], 4999, &err), BV_ERR);
	close(fds[0]);
	assert_int_equal(bv_error_errno(err), EFBIG);
	assert_string_equal(b.buf, "prefix");
	assert_int_equal(b.len, 6);
	bv_error_free(err);

	assert_int_equal(pipe(fds), 0);
	assert_int_equal(write(fds[1], data, sizeof(data)), sizeof(data));
	close(fds[1]);
	assert_int_equal(bv_buf_read_fd(&b, fds[0], 5000, NULL), 0);
	close(fds[0]);
	assert_int_equal(b.len, 5006);
	assert_int_equal(b.buf[5006], '\0');
	bv_buf_release(&b);
}

static void test_buf__read_file(void **state)
{
	struct bv_buf b = BV_BUF_INIT;
	struct bv_error *err = NULL;
	char *msg;
	(void)state;
	assert_int_equal(bv_buf_read_file(&b, "/nonexistent-bv/file", 100, &err), BV_ENOTFOUND);
	assert_int_equal(bv_error_errno(err), ENOENT);
	msg = bv_error_format(err);
	assert_string_equal(msg,
			    "could not open '/nonexistent-bv/file': No such file or directory");
	free(msg);
	bv_error_free(err);
	assert_int_equal(b.len, 0);

	assert_int_equal(bv_buf_read_file(&b, "/proc/self/stat", 1 << 20, NULL), 0);
	assert_true(b.len > 0);
	assert_int_equal(strlen(b.buf), b.len);
	bv_buf_release(&b);
}

static void expect_printable(const char *in, bool keep_newlines, const char *want)
{
	struct bv_buf b = BV_BUF_INIT;
	bool escaped = bv_buf_add_printable(&b, in, keep_newlines);
	assert_string_equal(b.buf, want);
	assert_int_equal(escaped, strcmp(in, want) != 0);
	assert_int_equal(bv_text_is_printable(in, keep_newlines), !escaped);
	bv_buf_release(&b);
}

static void test_buf__printable(void **state)
{
	(void)state;
	expect_printable("plain text, tab\there", false, "plain text, tab\there");
	expect_printable("\033[31mred\033[0m", false, "\\x1b[31mred\\x1b[0m");
	expect_printable("a\rb\x07"
			 "c\x7f",
			 false, "a\\x0db\\x07c\\x7f");
	expect_printable("two\nlines", false, "two\\x0alines");
	expect_printable("two\nlines", true, "two\nlines");
	/* valid UTF-8 stays; C1 controls (U+009B is CSI) and broken sequences do not */
	expect_printable("caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\xa7\xac", false,
			 "caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\xa7\xac");
	expect_printable("\xc2\x9b"
			 "31m",
			 false, "\\xc2\\x9b31m");
	expect_printable("bad \xff \xc3 \xc0\xaf \xed\xa0\x80", false,
			 "bad \\xff \\xc3 \\xc0\\xaf \\xed\\xa0\\x80");
	expect_printable("", false, "");
}

/* bv_xasprintf() formats short results on the stack first: every length around that
 * buffer's size (256) comes out whole, as does a long one formatted again on the heap. */
static void test_buf__xasprintf_lengths(void **state)
{
	static const size_t lengths[] = {0, 1, 200, 254, 255, 256, 257, 300, 5000};
	(void)state;
	for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
		size_t n = lengths[i];
		char *want = bv_xmalloc(n + 1);
		char *got;
		for (size_t k = 0; k < n; k++)
			want[k] = (char)('a' + k % 26);
		want[n] = '\0';
		got = bv_xasprintf("%s", want);
		assert_string_equal(got, want);
		free(got);
		/* the length of the whole comes from the arguments, not only the format */
		got = bv_xasprintf("%.*s|%d", (int)(n ? n - 1 : 0), want, 7);
		assert_int_equal(strlen(got), (n ? n - 1 : 0) + 2);
		assert_int_equal(got[strlen(got) - 1], '7');
		free(got);
		free(want);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf__add_and_printf_growth),
		cmocka_unit_test(test_buf__detach),
		cmocka_unit_test(test_buf__read_fd_limit),
		cmocka_unit_test(test_buf__read_file),
		cmocka_unit_test(test_buf__printable),
		cmocka_unit_test(test_buf__xasprintf_lengths),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
