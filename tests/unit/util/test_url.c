#include "test.h"
#include "util/buf.h"
#include "util/url.h"

#include "util/banned.h"

static void test_url__unreserved_stay(void **state)
{
	char *s = bv_url_escape("AZaz09-._~", NULL);
	(void)state;
	assert_string_equal(s, "AZaz09-._~");
	free(s);
	s = bv_url_escape("", NULL);
	assert_string_equal(s, "");
	free(s);
}

static void test_url__separators_and_bytes_are_encoded(void **state)
{
	char *s = bv_url_escape("a b&c=d?e#f/g:h@i+j%k\n\xff", NULL);
	(void)state;
	assert_string_equal(s, "a%20b%26c%3Dd%3Fe%23f%2Fg%3Ah%40i%2Bj%25k%0A%FF");
	free(s);
	s = bv_url_escape("{\"label\":[\"bv.project=/p\"]}", NULL);
	assert_string_equal(s, "%7B%22label%22%3A%5B%22bv.project%3D%2Fp%22%5D%7D");
	free(s);
}

static void test_url__keep_for_image_references(void **state)
{
	char *s = bv_url_escape("quay.io/x/y@sha256:00+1 ?", BV_URL_KEEP_REF);
	(void)state;
	assert_string_equal(s, "quay.io/x/y@sha256:00+1%20%3F");
	free(s);
}

static void test_url__encode_appends(void **state)
{
	struct bv_buf b = BV_BUF_INIT;
	(void)state;
	bv_buf_puts(&b, "scope=");
	bv_url_encode(&b, "repository:x:pull", NULL);
	assert_string_equal(b.buf, "scope=repository%3Ax%3Apull");
	bv_buf_release(&b);
}

static bool loopback(const char *host)
{
	return bv_url_host_is_loopback(host, strlen(host));
}

static void test_url__loopback_hosts(void **state)
{
	(void)state;
	assert_true(loopback("localhost"));
	assert_true(loopback("LocalHost"));
	assert_true(loopback("127.0.0.1"));
	assert_true(loopback("127.255.3.4"));
	assert_true(loopback("::1"));
	assert_true(loopback("0:0:0:0:0:0:0:1"));
	assert_false(loopback("128.0.0.1"));
	assert_false(loopback("127.0.0.1.example.com"));
	assert_false(loopback("localhost.example.com"));
	assert_false(loopback("127.1")); /* not dotted-quad: inet_aton's shorthand is refused */
	assert_false(loopback("::2"));
	assert_false(loopback(""));
	/* only the first len bytes count */
	assert_true(bv_url_host_is_loopback("127.0.0.1:5000", 9));
	assert_false(bv_url_host_is_loopback("localhost", 5));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url__unreserved_stay),
		cmocka_unit_test(test_url__separators_and_bytes_are_encoded),
		cmocka_unit_test(test_url__keep_for_image_references),
		cmocka_unit_test(test_url__encode_appends),
		cmocka_unit_test(test_url__loopback_hosts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
