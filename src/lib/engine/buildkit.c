/*
 * buildkit.c - BuildKit's progress messages as text (see buildkit.h).
 *
 * The message is moby.buildkit.v1.StatusResponse (github.com/moby/buildkit, api/services/
 * control/control.proto): vertexes = 1 (Vertex: name = 3, cached = 4, completed = 6,
 * error = 7), logs = 3 (VertexLog: msg = 4).  Only those fields are read; every length is
 * checked against what is left, so a damaged message ends the walk rather than a read past
 * its end.
 */
#include "lib/engine/buildkit.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/cleanup.h"
#include "util/xalloc.h"

#include "util/banned.h"

#define TRACE_MAX (4u << 20) /* one aux message; dockerd sends a few kB */

uint8_t *bv_buildkit_base64(const char *text, size_t *len_out)
{
	size_t n = strlen(text), o = 0;
	uint32_t acc = 0;
	int bits = 0;
	uint8_t *out;
	if (n > TRACE_MAX)
		return NULL;
	out = bv_xmalloc(n / 4 * 3 + 4);
	for (size_t i = 0; i < n; i++) {
		char c = text[i];
		int v;
		if (c >= 'A' && c <= 'Z')
			v = c - 'A';
		else if (c >= 'a' && c <= 'z')
			v = c - 'a' + 26;
		else if (c >= '0' && c <= '9')
			v = c - '0' + 52;
		else if (c == '+')
			v = 62;
		else if (c == '/')
			v = 63;
		else if (c == '=')
			break;
		else {
			free(out);
			return NULL;
		}
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (uint8_t)(acc >> bits);
		}
	}
	*len_out = o;
	return out;
}

struct pb {
	const uint8_t *p, *end;
};

static int varint(struct pb *b, uint64_t *out)
{
	uint64_t v = 0;
	for (int shift = 0; shift < 64; shift += 7) {
		if (b->p >= b->end)
			return -EINVAL;
		v |= (uint64_t)(*b->p & 0x7f) << shift;
		if (!(*b->p++ & 0x80)) {
			*out = v;
			return 0;
		}
	}
	return -EINVAL;
}

/* The next field: its number and wire type; for wire type 2 its bytes in *sub. */
static int field(struct pb *b, uint32_t *num, struct pb *sub, uint64_t *value)
{
	uint64_t key, len;
	if (varint(b, &key) < 0)
		return -EINVAL;
	*num = (uint32_t)(key >> 3);
	switch (key & 7) {
	case 0:
		return varint(b, value);
	case 1:
	case 5: {
		size_t n = (key & 7) == 1 ? 8 : 4;
		if ((size_t)(b->end - b->p) < n)
			return -EINVAL;
		b->p += n;
		*value = 0;
		return 0;
	}
	case 2:
		if (varint(b, &len) < 0 || len > (uint64_t)(b->end - b->p))
			return -EINVAL;
		sub->p = b->p;
		sub->end = b->p + len;
		b->p += len;
		return 0;
	default:
		return -EINVAL; /* groups are not used by this message */
	}
}

/* Text from the message, with control characters other than tab shown as '?'. */
static char *text_of(const struct pb *s)
{
	char *t = bv_xstrndup((const char *)s->p, (size_t)(s->end - s->p));
	for (char *c = t; *c; c++)
		if ((unsigned char)*c < 0x20 && *c != '\t')
			*c = '?';
	return t;
}

static int vertex(struct bv_strv *out, struct pb b)
{
	_cleanup_free_ char *name = NULL, *error = NULL;
	bool cached = false, completed = false;
	while (b.p < b.end) {
		struct pb sub = {0};
		uint64_t v = 0;
		uint32_t num;
		if (field(&b, &num, &sub, &v) < 0)
			return -EINVAL;
		if (num == 3 && sub.p) {
			free(name);
			name = text_of(&sub);
		} else if (num == 4) {
			cached = v != 0;
		} else if (num == 6) {
			completed = true;
		} else if (num == 7 && sub.p && sub.end > sub.p) {
			free(error);
			error = text_of(&sub);
		}
	}
	if (!name)
		return 0;
	if (error)
		bv_strv_pushf(out, "%s ERROR: %s", name, error);
	else if (cached)
		bv_strv_pushf(out, "%s CACHED", name);
	else if (completed)
		bv_strv_push(out, name);
	return 0;
}

static int vertex_log(struct bv_strv *out, struct pb b)
{
	while (b.p < b.end) {
		struct pb sub = {0};
		uint64_t v = 0;
		uint32_t num;
		if (field(&b, &num, &sub, &v) < 0)
			return -EINVAL;
		if (num == 4 && sub.p) {
			/* a chunk of the step's output: one line per line */
			const uint8_t *s = sub.p;
			while (s < sub.end) {
				const uint8_t *nl = memchr(s, '\n', (size_t)(sub.end - s));
				struct pb one = {s, nl ? nl : sub.end};
				_cleanup_free_ char *line = text_of(&one);
				if (*line)
					bv_strv_push(out, line);
				s = nl ? nl + 1 : sub.end;
			}
		}
	}
	return 0;
}

int bv_buildkit_trace_lines(struct bv_strv *out, const char *b64)
{
	size_t len = 0;
	_cleanup_free_ uint8_t *raw = b64 ? bv_buildkit_base64(b64, &len) : NULL;
	struct pb b;
	if (!raw)
		return -EINVAL;
	b.p = raw;
	b.end = raw + len;
	while (b.p < b.end) {
		struct pb sub = {0};
		uint64_t v = 0;
		uint32_t num;
		int r = field(&b, &num, &sub, &v);
		if (r < 0)
			return r;
		if (num == 1 && sub.p)
			r = vertex(out, sub);
		else if (num == 3 && sub.p)
			r = vertex_log(out, sub);
		if (r < 0)
			return r;
	}
	return 0;
}
