#include <stdbool.h>
#include <string.h>

#include "lib/oci/signature-internal.h"
#include "test.h"
#include "util/cleanup.h"
#include "util/digest.h"

/* Key pairs made for these tests only (openssl ecparam/genpkey); they sign nothing else. */
static const char k1_priv[] = "-----BEGIN PRIVATE KEY-----\n"
			      "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgN1QiHXnm7fSimnx4\n"
			      "bESMM/CgiYkqyxmv3pv7IEi5ibKhRANCAAS9RYF6Rmd+5l0/YugBEBwqnnE78gBM\n"
			      "mvosVXxPuYJt83aeh4gU9gJrBSwM5j6X9oA8la+JAqCaGOhAisn5ehRT\n"
			      "-----END PRIVATE KEY-----\n";
static const char k1_pub[] = "-----BEGIN PUBLIC KEY-----\n"
			     "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEvUWBekZnfuZdP2LoARAcKp5xO/IA\n"
			     "TJr6LFV8T7mCbfN2noeIFPYCawUsDOY+l/aAPJWviQKgmhjoQIrJ+XoUUw==\n"
			     "-----END PUBLIC KEY-----\n";
static const char k2_priv[] = "-----BEGIN EC PRIVATE KEY-----\n"
			      "MHcCAQEEICLIyYJVtpBFRfZMpkxNKfG2X5mRgB7LUZQk3R4rF3YMoAoGCCqGSM49\n"
			      "AwEHoUQDQgAEF92bTs/cM4FwQfLfhHwNOfFDVIvKivLglUJ+wv0glnrmZoDtwviB\n"
			      "vMRxtI9MszksRTMIvgokNC6RpHlBovmO4w==\n"
			      "-----END EC PRIVATE KEY-----\n";
static const char k2_pub[] = "-----BEGIN PUBLIC KEY-----\n"
			     "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEF92bTs/cM4FwQfLfhHwNOfFDVIvK\n"
			     "ivLglUJ+wv0glnrmZoDtwviBvMRxtI9MszksRTMIvgokNC6RpHlBovmO4w==\n"
			     "-----END PUBLIC KEY-----\n";
static const char ed25519_pub[] = "-----BEGIN PUBLIC KEY-----\n"
				  "MCowBQYDK2VwAyEAbL2zgLHZtpLOmdmUI61mVSag6WXTTQZ/KtafSTN9iF8=\n"
				  "-----END PUBLIC KEY-----\n";
static const char p384_pub[] = "-----BEGIN PUBLIC KEY-----\n"
			       "MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEysnPENU2lmP8BA+0o//vmByEO8UHfiM5\n"
			       "WoMVkFH9E+JUodNI3n+YRHdM7Sq8ktHY4CZaITcpVfw7e7Qkc0TYsAn91RdpS45J\n"
			       "kO+bP+vp/22mU5XGJyQs0b3SjwdZAUP6\n"
			       "-----END PUBLIC KEY-----\n";

#define DIGEST_A  \
	"sha256:" \
	"e24ce2145784185b8bdac98de7835b529df95df9897d83e77d05991063ee8c3d"
#define DIGEST_B  \
	"sha256:" \
	"14e0286828e175b21005cb8f44954dc705d51a7739fdd390591a188fb5a94345"

/* The message of `err` contains `want`; frees the error. */
static void expect_message(struct bv_error *err, const char *want)
{
	char *msg = bv_error_format(err);
	if (!strstr(msg, want))
		fail_msg("'%s' does not say '%s'", msg, want);
	free(msg);
	bv_error_free(err);
}

static void test_signature__base64_strict(void **state)
{
	static const char *const bad[] = {
		"",         "Zm9",    "Zm9v YmFy", "Zm9vYmF=y", "Zm==Zm9v", "Zm9=",
		"Zm9vY===", "Zg==\n", "Z!9v",      "=m9v",      "Zh==",
	};
	unsigned char *out = NULL;
	size_t len = 0;
	char *again;
	(void)state;

	assert_int_equal(bv_signature_base64_decode(&out, &len, "Zm9vYmFy", 64), 0);
	assert_int_equal(len, 6);
	assert_memory_equal(out, "foobar", 6);
	free(out);
	assert_int_equal(bv_signature_base64_decode(&out, &len, "Zm8=", 64), 0);
	assert_int_equal(len, 2);
	assert_memory_equal(out, "fo", 2);
	free(out);
	assert_int_equal(bv_signature_base64_decode(&out, &len, "Zg==", 64), 0);
	assert_int_equal(len, 1);
	free(out);
	for (size_t i = 0; i < BV_ARRAY_SIZE(bad); i++)
		if (bv_signature_base64_decode(&out, &len, bad[i], 64) != BV_EINVALID)
			fail_msg("'%s' decoded", bad[i]);
	/* the size cap: 6 bytes are too many for 5 */
	assert_int_equal(bv_signature_base64_decode(&out, &len, "Zm9vYmFy", 5), BV_EINVALID);
	again = bv_signature_base64_encode("foobar", 6);
	assert_string_equal(again, "Zm9vYmFy");
	free(again);
}

static void test_signature__payload(void **state)
{
	static const struct {
		const char *json, *why;
	} bad[] = {
		{"[]", "not an object"},
		{"{\"critical\":{\"identity\":{\"docker-reference\":\"r\"},\"image\":{\"docker-"
		 "manifest-digest\":\"" DIGEST_A "\"},\"type\":\"other\"}}",
		 "'critical.type'"},
		{"{\"critical\":{\"identity\":{\"docker-reference\":\"r\"},\"image\":{\"docker-"
		 "manifest-digest\":\"sha256:abc\"},\"type\":\"cosign container image "
		 "signature\"}}",
		 "docker-manifest-digest"},
		{"{\"critical\":{\"identity\":{},\"image\":{\"docker-manifest-digest\":\"" DIGEST_A
		 "\"},\"type\":\"cosign container image signature\"}}",
		 "docker-reference"},
		{"{\"critical\":{\"identity\":{\"docker-reference\":\"r\"},\"image\":{\"docker-"
		 "manifest-digest\":\"" DIGEST_A "\"},\"type\":\"cosign container image "
		 "signature\",\"extra\":1}}",
		 "'critical' is not"},
		{"{\"critical\":{\"identity\":{\"docker-reference\":\"r\"},\"image\":{\"docker-"
		 "manifest-digest\":\"" DIGEST_A "\"},\"type\":\"cosign container image "
		 "signature\"},\"optional\":\"x\"}",
		 "'optional'"},
		/* the same key twice: which one would a signer have meant? */
		{"{\"critical\":{\"identity\":{\"docker-reference\":\"r\"},\"image\":{\"docker-"
		 "manifest-digest\":\"" DIGEST_A "\",\"docker-manifest-digest\":\"" DIGEST_B
		 "\"},\"type\":\"cosign container image signature\"}}",
		 "not an object"},
		{"{\"critical\":", "not an object"},
	};
	struct bv_error *err = NULL;
	char *digest = NULL, *payload;
	(void)state;

	payload = bv_signature_payload_new("127.0.0.1:5000/tools/x", DIGEST_A);
	assert_ok(bv_signature_parse_payload(&digest, payload, strlen(payload), &err), &err);
	assert_string_equal(digest, DIGEST_A);
	free(digest);
	assert_non_null(strstr(payload, "\"docker-reference\":\"127.0.0.1:5000/tools/x\""));
	free(payload);
	for (size_t i = 0; i < BV_ARRAY_SIZE(bad); i++) {
		digest = NULL;
		assert_int_equal(
			bv_signature_parse_payload(&digest, bad[i].json, strlen(bad[i].json), &err),
			BV_EINVALID);
		assert_null(digest);
		expect_message(err, bad[i].why);
		err = NULL;
	}
	{
		size_t big = BV_SIGNATURE_PAYLOAD_MAX + 1;
		char *huge = bv_xmalloc(big);
		memset(huge, ' ', big);
		assert_int_equal(bv_signature_parse_payload(&digest, huge, big, &err), BV_EINVALID);
		expect_message(err, "larger than 64 KiB");
		err = NULL;
		free(huge);
	}
}

static void test_signature__keys_and_der(void **state)
{
	unsigned char *sig = NULL;
	size_t len = 0;
	unsigned char longer[BV_ECDSA_SIG_MAX + 2];
	(void)state;

	assert_true(bv_ecdsa_p256_key_valid(k1_pub, strlen(k1_pub), false));
	assert_true(bv_ecdsa_p256_key_valid(k1_priv, strlen(k1_priv), true));
	assert_true(bv_ecdsa_p256_key_valid(k2_priv, strlen(k2_priv), true));
	assert_false(bv_ecdsa_p256_key_valid(k1_priv, strlen(k1_priv), false));
	assert_false(bv_ecdsa_p256_key_valid(ed25519_pub, strlen(ed25519_pub), false));
	assert_false(bv_ecdsa_p256_key_valid(p384_pub, strlen(p384_pub), false));
	assert_false(bv_ecdsa_p256_key_valid("nonsense", 8, false));

	/* a SEC1 "EC PRIVATE KEY" signs as well as PKCS#8 */
	assert_int_equal(bv_ecdsa_p256_sign(&sig, &len, k2_priv, strlen(k2_priv), "data", 4), 0);
	assert_int_equal(bv_ecdsa_p256_verify(k2_pub, strlen(k2_pub), "data", 4, sig, len), 1);
	assert_int_equal(bv_ecdsa_p256_verify(k1_pub, strlen(k1_pub), "data", 4, sig, len), 0);
	assert_int_equal(bv_ecdsa_p256_verify(k2_pub, strlen(k2_pub), "datA", 4, sig, len), 0);
	assert_int_equal(bv_ecdsa_p256_verify(p384_pub, strlen(p384_pub), "data", 4, sig, len), -1);
	/* trailing bytes after the DER sequence, or a truncated one: not a signature */
	memcpy(longer, sig, len);
	longer[len] = 0;
	assert_int_equal(bv_ecdsa_p256_verify(k2_pub, strlen(k2_pub), "data", 4, longer, len + 1),
			 -2);
	assert_int_equal(bv_ecdsa_p256_verify(k2_pub, strlen(k2_pub), "data", 4, sig, len - 1), -2);
	free(sig);
	assert_int_equal(bv_ecdsa_p256_sign(&sig, &len, k1_pub, strlen(k1_pub), "data", 4), -1);
}

/* A simple-signing layer over `payload` signed by `priv`. */
static void make_layer(struct bv_signature_layer *l, const char *payload, const char *priv)
{
	unsigned char *sig = NULL;
	size_t len = 0;
	memset(l, 0, sizeof(*l));
	assert_int_equal(
		bv_ecdsa_p256_sign(&sig, &len, priv, strlen(priv), payload, strlen(payload)), 0);
	l->signature = bv_signature_base64_encode(sig, len);
	l->payload = payload;
	l->payload_len = strlen(payload);
	free(sig);
}

static void check_fails(const struct bv_signature_layer *layers, size_t n, const char *key,
			const char *want)
{
	struct bv_error *err = NULL;
	const char *keys[] = {key};
	assert_int_equal(bv_signature_check(layers, n, DIGEST_A, keys, 1, "img@" DIGEST_A, &err),
			 BV_EINVALID);
	expect_message(err, want);
}

static void test_signature__verdict(void **state)
{
	_cleanup_free_ char *good = bv_signature_payload_new("r/x", DIGEST_A);
	_cleanup_free_ char *other = bv_signature_payload_new("r/x", DIGEST_B);
	struct bv_signature_layer l[3];
	struct bv_error *err = NULL;
	const char *keys[] = {k2_pub, k1_pub};
	char *tampered;
	(void)state;

	make_layer(&l[0], good, k1_priv);
	assert_ok(bv_signature_check(l, 1, DIGEST_A, keys, 2, "img", &err), &err);
	/* another key */
	check_fails(l, 1, k2_pub, "no signature of img@" DIGEST_A " verifies with a trusted key");
	/* the payload changed after signing */
	tampered = bv_xstrdup(good);
	tampered[strlen(tampered) - 2] = 'x';
	l[0].payload = tampered;
	check_fails(l, 1, k1_pub, "verifies with a trusted key");
	l[0].payload = good;
	free(tampered);
	free(l[0].signature);

	/* a trusted signature over another image says so, even beside an untrusted one */
	make_layer(&l[0], good, k2_priv);
	make_layer(&l[1], other, k1_priv);
	check_fails(l, 2, k1_pub, "by a trusted key is for " DIGEST_B ", another image");
	/* any good layer is enough */
	make_layer(&l[2], good, k1_priv);
	assert_ok(bv_signature_check(l, 3, DIGEST_A, keys + 1, 1, "img", &err), &err);

	/* malformed annotations */
	free(l[2].signature);
	l[2].signature = bv_xstrdup("not base64!");
	check_fails(l + 2, 1, k1_pub, "malformed signature of img@" DIGEST_A);
	free(l[2].signature);
	l[2].signature = bv_xstrdup("Zm9vYmFy"); /* base64, but not DER */
	check_fails(l + 2, 1, k1_pub, "not a DER-encoded ECDSA signature");
	free(l[2].signature);
	l[2].signature = NULL;
	check_fails(l + 2, 1, k1_pub, "no " BV_SIGNATURE_ANNOTATION " annotation");
	check_fails(l, 0, k1_pub, "no simple-signing layer");
	for (size_t i = 0; i < 2; i++)
		free(l[i].signature);
}

static void test_signature__manifest(void **state)
{
	static const char doc[] =
		"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
		"\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"size\":2,"
		"\"digest\":\"" DIGEST_B "\"},\"layers\":["
		"{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"size\":1,\"digest\":\"" DIGEST_B
		"\"},"
		"{\"mediaType\":\"" BV_SIGNATURE_MEDIA_TYPE "\",\"size\":5,\"digest\":\"" DIGEST_A
		"\",\"annotations\":{\"" BV_SIGNATURE_ANNOTATION "\":\"Zm9v\"}}]}";
	static const char bad_annotation[] =
		"{\"layers\":[{\"mediaType\":\"" BV_SIGNATURE_MEDIA_TYPE "\",\"size\":5,\"digest\":"
		"\"" DIGEST_A "\",\"annotations\":{\"" BV_SIGNATURE_ANNOTATION "\":7}}]}";
	struct bv_signature_layer *layers = NULL;
	struct bv_error *err = NULL;
	size_t n = 0;
	char *tag;
	(void)state;

	assert_ok(bv_signature_parse_manifest(&layers, &n, doc, strlen(doc), &err), &err);
	assert_int_equal(n, 1); /* the plain layer is skipped */
	assert_string_equal(layers[0].desc.digest, DIGEST_A);
	assert_int_equal(layers[0].desc.size, 5);
	assert_string_equal(layers[0].signature, "Zm9v");
	bv_signature_layers_free(layers, n);

	assert_int_equal(bv_signature_parse_manifest(&layers, &n, bad_annotation,
						     strlen(bad_annotation), &err),
			 BV_EINVALID);
	expect_message(err, "not a string");
	err = NULL;
	assert_int_equal(bv_signature_parse_manifest(&layers, &n, "{}", 2, &err), BV_EINVALID);
	expect_message(err, "not an image manifest");
	err = NULL;
	{
		/* more layers than any signature needs */
		char *many = bv_xstrdup("{\"layers\":[");
		for (int i = 0; i <= BV_SIGNATURE_LAYERS_MAX; i++) {
			char *next = bv_xasprintf("%s%s{}", many, i ? "," : "");
			free(many);
			many = next;
		}
		{
			char *closed = bv_xasprintf("%s]}", many);
			free(many);
			many = closed;
		}
		assert_int_equal(bv_signature_parse_manifest(&layers, &n, many, strlen(many), &err),
				 BV_EINVALID);
		expect_message(err, "more than 64");
		free(many);
	}
	tag = bv_signature_tag(DIGEST_A);
	assert_string_equal(
		tag, "sha256-e24ce2145784185b8bdac98de7835b529df95df9897d83e77d05991063ee8c3d.sig");
	free(tag);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_signature__base64_strict),
		cmocka_unit_test(test_signature__payload),
		cmocka_unit_test(test_signature__keys_and_der),
		cmocka_unit_test(test_signature__verdict),
		cmocka_unit_test(test_signature__manifest),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
