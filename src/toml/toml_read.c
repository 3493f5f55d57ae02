/*
 * The strict TOML 1.0 reader.
 *
 * One pass over the bytes, no separate lexer: TOML's grammar is context dependent (a '1979'
 * may start a key, an integer or a date), so each production looks at the bytes it needs.
 * The input is checked for well-formed UTF-8 up front; after that, only strings and comments
 * may contain non-ASCII bytes, and each checks its own control-character rules.
 *
 * Redefinition rules.  TOML forbids reopening tables in ways that are easy to get subtly
 * wrong, so every table carries flags saying how it came to exist:
 *   - a [header] DEFINES its table; a second [header] for it is an error, but a table that was
 *     only IMPLICIT (a parent of an earlier header, [a] after [a.b]) may still be defined once;
 *   - dotted keys (a.b = 1) create DOTTED tables that the same section may keep extending;
 *     when the next header starts they become DEFINED, so neither a header nor a later
 *     section's dotted keys can reopen them ("pending" below);
 *   - dotted keys may not extend a table that a header defined;
 *   - inline tables and [ ... ] arrays are FROZEN once closed: nothing is ever added to them;
 *   - [[header]] appends a fresh table to an array of tables, and headers below it
 *     ([a.b] after [[a]]) refer to the array's last element.
 *
 * Errors carry "file:line:column" of the offending character; columns count characters.
 * Recursion is bounded (MAX_DEPTH) so hostile input cannot exhaust the stack.
 */
#include <bv/error.h>
#include <bv/toml.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "toml_internal.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/xalloc.h"

#include "util/banned.h"

#define MAX_DEPTH     128
#define MAX_FILE_SIZE (16u * 1024u * 1024u)

struct key_part {
	const char *key; /* arena-owned, NUL-terminated */
	size_t len;
	const char *at; /* where it was written */
};

#define RECENT_STRINGS    16
#define RECENT_STRING_MAX 48
_Static_assert(RECENT_STRINGS == 16, "keep_string() picks a slot from 4 bits of a hash");

struct parser {
	struct bv_toml_doc *doc;
	const char *src;
	const char *p;
	const char *end;
	const char *line_start;
	uint32_t line;
	const char *filename;
	struct bv_error **err;

	struct bv_toml_table *current; /* table that key/value pairs go into */

	/* Tables touched by dotted keys in this section; closed when the next header starts. */
	struct bv_toml_table **pending;
	size_t n_pending, alloc_pending;

	struct key_part *parts;
	size_t n_parts, alloc_parts;

	struct bv_buf scratch; /* string being unescaped */

	/* The last position computed on the current line, to count columns from. */
	const char *col_at;
	uint32_t col;
	bool ascii; /* no byte >= 0x80: a column is a byte offset */

	/* Short strings copied lately (keys, and values such as a version requirement): a
	 * document repeats the same few, and a copy is shared rather than made for each, since
	 * the tree's strings are never changed or freed one by one. */
	struct {
		const char *s;
		size_t len;
	} recent[RECENT_STRINGS];
};

static int parse_value(struct parser *p, struct bv_toml_value *out, int depth);

/*
 * A copy of `len` bytes of `s` in the document's arena, shared with an equal recent one.  The
 * slot is picked by length and end bytes, so a lookup is one comparison.
 */
static const char *keep_string(struct parser *p, const char *s, size_t len)
{
	uint32_t h, slot;
	char *copy;
	if (!len || len > RECENT_STRING_MAX)
		return bv_arena_strndup(&p->doc->arena, s, len);
	/* Knuth's multiplicative hash of the length and end bytes: its top 4 bits */
	h = (uint32_t)len ^ ((uint32_t)(unsigned char)s[0] << 8) ^
	    ((uint32_t)(unsigned char)s[len - 1] << 16);
	slot = (h * 2654435761u) >> 28;
	if (p->recent[slot].len == len && !memcmp(p->recent[slot].s, s, len))
		return p->recent[slot].s;
	copy = bv_arena_strndup(&p->doc->arena, s, len);
	p->recent[slot].s = copy;
	p->recent[slot].len = len;
	return copy;
}

/* Errors and positions. */

static struct bv_toml_pos position_of(struct parser *p, const char *at)
{
	struct bv_toml_pos pos = {1, 1};
	const char *line_start = p->src;
	const char *q;
	if (p->ascii && at >= p->line_start) {
		pos.line = p->line;
		pos.column = (uint32_t)(at - p->line_start) + 1;
		return pos;
	}
	if (at >= p->line_start && p->col_at >= p->line_start && at >= p->col_at) {
		/* Positions are asked for left to right: count on from the last one. */
		pos.line = p->line;
		pos.column = p->col;
		for (q = p->col_at; q < at && q < p->end; q++)
			if (((unsigned char)*q & 0xC0) != 0x80)
				pos.column++;
		p->col_at = at;
		p->col = pos.column;
		return pos;
	}
	if (at >= p->line_start) {
		pos.line = p->line;
		line_start = p->line_start;
	} else {
		for (q = p->src; q < at; q++)
			if (*q == '\n') {
				pos.line++;
				line_start = q + 1;
			}
	}
	for (q = line_start; q < at && q < p->end; q++)
		if (((unsigned char)*q & 0xC0) != 0x80)
			pos.column++;
	if (at >= p->line_start) {
		p->col_at = at;
		p->col = pos.column;
	}
	return pos;
}

__attribute__((format(printf, 3, 4))) static int fail(struct parser *p, const char *at,
						      const char *fmt, ...)
{
	struct bv_toml_pos pos = position_of(p, at);
	_cleanup_free_ char *msg = NULL;
	va_list ap;
	va_start(ap, fmt);
	msg = bv_xvasprintf(fmt, ap);
	va_end(ap);
	return bv_error_setc(p->err, BV_EINVALID, 0, "%s:%u:%u: %s", p->filename, pos.line,
			     pos.column, msg);
}

/* Quotes a key for messages, shortening long or unprintable ones. */
static const char *show_key(struct parser *p, const char *key, size_t len)
{
	struct bv_buf *b = &p->scratch;
	bv_buf_reset(b);
	for (size_t i = 0; i < len && i < 64; i++) {
		unsigned char c = (unsigned char)key[i];
		if (c < 0x20 || c == 0x7f)
			bv_buf_printf(b, "\\x%02x", c);
		else
			bv_buf_putc(b, (char)c);
	}
	if (len > 64)
		bv_buf_puts(b, "...");
	return b->buf;
}

/* UTF-8. */

/* Length of the well-formed UTF-8 sequence at s (RFC 3629), or 0. */
static size_t utf8_len(const unsigned char *s, const unsigned char *end)
{
	unsigned char c = s[0];
	size_t n;
	uint32_t cp;
	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		n = 2, cp = c & 0x1F;
	else if (c >= 0xE0 && c <= 0xEF)
		n = 3, cp = c & 0x0F;
	else if (c >= 0xF0 && c <= 0xF4)
		n = 4, cp = c & 0x07;
	else
		return 0;
	if ((size_t)(end - s) < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
	    (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return n;
}

static int check_utf8(struct parser *p)
{
	const unsigned char *s = (const unsigned char *)p->p;
	const unsigned char *end = (const unsigned char *)p->end;
	p->ascii = true;
	while (s < end) {
		size_t n;
		uint64_t word;
		/* Eight ASCII bytes at a time: bv's files are almost all ASCII. */
		if (end - s >= 8) {
			memcpy(&word, s, sizeof(word));
			if (!(word & 0x8080808080808080ull)) {
				s += 8;
				continue;
			}
		}
		if (*s < 0x80) {
			s++;
			continue;
		}
		n = utf8_len(s, end);
		if (!n) {
			/* Positions are counted from the start: nothing is parsed yet. */
			p->line_start = p->end;
			return fail(p, (const char *)s, "invalid UTF-8 byte 0x%02x", *s);
		}
		s += n;
		p->ascii = false;
	}
	return 0;
}

static void put_utf8(struct bv_buf *b, uint32_t cp)
{
	char out[4];
	size_t n;
	if (cp < 0x80) {
		out[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		out[0] = (char)(0xC0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3F));
		n = 2;
	} else if (cp < 0x10000) {
		out[0] = (char)(0xE0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		out[2] = (char)(0x80 | (cp & 0x3F));
		n = 3;
	} else {
		out[0] = (char)(0xF0 | (cp >> 18));
		out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
		out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
		out[3] = (char)(0x80 | (cp & 0x3F));
		n = 4;
	}
	bv_buf_add(b, out, n);
}

/* Whitespace, newlines and comments. */

static bool at_end(const struct parser *p)
{
	return p->p >= p->end;
}

static int peek(const struct parser *p, size_t ahead)
{
	return (size_t)(p->end - p->p) > ahead ? (unsigned char)p->p[ahead] : -1;
}

static void skip_ws(struct parser *p)
{
	while (p->p < p->end && (*p->p == ' ' || *p->p == '\t'))
		p->p++;
}

static void newline_seen(struct parser *p, const char *after)
{
	p->line++;
	p->line_start = after;
}

/* Consumes LF or CRLF; returns false (consuming nothing) otherwise. */
static bool eat_newline(struct parser *p)
{
	if (peek(p, 0) == '\n') {
		p->p++;
	} else if (peek(p, 0) == '\r' && peek(p, 1) == '\n') {
		p->p += 2;
	} else {
		return false;
	}
	newline_seen(p, p->p);
	return true;
}

static bool is_control(unsigned char c)
{
	return (c < 0x20 && c != '\t') || c == 0x7F;
}

static int bad_char(struct parser *p, const char *at, const char *where)
{
	unsigned char c = (unsigned char)*at;
	if (c == '\r')
		return fail(p, at, "carriage return not followed by a line feed %s", where);
	return fail(p, at, "control character U+%04X %s", c, where);
}

static int skip_comment(struct parser *p)
{
	p->p++; /* '#' */
	while (p->p < p->end && *p->p != '\n') {
		unsigned char c = (unsigned char)*p->p;
		if (c == '\r' && peek(p, 1) == '\n')
			break;
		if (is_control(c))
			return bad_char(p, p->p, "in comment");
		p->p++;
	}
	return 0;
}

/* Skips whitespace, comments and newlines (inside arrays). */
static int skip_ws_nl(struct parser *p)
{
	for (;;) {
		skip_ws(p);
		if (at_end(p))
			return 0;
		if (*p->p == '#') {
			if (skip_comment(p) < 0)
				return BV_EINVALID;
		} else if (!eat_newline(p)) {
			return 0;
		}
	}
}

/* Strings. */

static int hex_value(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* p->p is at the backslash; appends the unescaped character. */
static int parse_escape(struct parser *p, struct bv_buf *b)
{
	const char *at = p->p;
	int c = peek(p, 1);
	size_t n = 0;
	uint32_t cp = 0;
	switch (c) {
	case 'b':
		bv_buf_putc(b, '\b');
		break;
	case 't':
		bv_buf_putc(b, '\t');
		break;
	case 'n':
		bv_buf_putc(b, '\n');
		break;
	case 'f':
		bv_buf_putc(b, '\f');
		break;
	case 'r':
		bv_buf_putc(b, '\r');
		break;
	case '"':
		bv_buf_putc(b, '"');
		break;
	case '\\':
		bv_buf_putc(b, '\\');
		break;
	case 'u':
		n = 4;
		break;
	case 'U':
		n = 8;
		break;
	default:
		if (c < 0x20 || c >= 0x7f)
			return fail(p, at, "invalid escape sequence in string");
		return fail(p, at, "invalid escape sequence '\\%c' in string", c);
	}
	p->p += 2;
	if (!n)
		return 0;
	for (size_t i = 0; i < n; i++) {
		int h = hex_value(peek(p, i));
		if (h < 0)
			return fail(p, at, "escape '\\%c' needs %zu hexadecimal digits", c, n);
		cp = (cp << 4) | (uint32_t)h;
	}
	if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return fail(p, at, "escape '\\%c%.*s' is not a Unicode scalar value", c, (int)n,
			    p->p);
	p->p += n;
	put_utf8(b, cp);
	return 0;
}

static void finish_string(struct parser *p, const char **ptr, size_t *len)
{
	*ptr = bv_arena_strndup(&p->doc->arena, p->scratch.buf, p->scratch.len);
	*len = p->scratch.len;
}

/* Single-line basic string; p->p is at the opening quote. */
static int parse_basic(struct parser *p, const char **ptr, size_t *len)
{
	const char *start = p->p;
	struct bv_buf *b = &p->scratch;
	const char *q = p->p + 1;
	/* Most strings have no escapes: copy them straight from the input. */
	while (q < p->end && *q != '"' && *q != '\\' && !is_control((unsigned char)*q))
		q++;
	if (q < p->end && *q == '"') {
		*len = (size_t)(q - p->p - 1);
		*ptr = keep_string(p, p->p + 1, *len);
		p->p = q + 1;
		return 0;
	}
	bv_buf_reset(b);
	p->p++;
	for (;;) {
		const char *run = p->p;
		unsigned char c;
		while (p->p < p->end) {
			c = (unsigned char)*p->p;
			if (c == '"' || c == '\\' || is_control(c))
				break;
			p->p++;
		}
		bv_buf_add(b, run, (size_t)(p->p - run));
		if (at_end(p))
			return fail(p, start, "unterminated string");
		c = (unsigned char)*p->p;
		if (c == '"') {
			p->p++;
			break;
		}
		if (c == '\\') {
			if (parse_escape(p, b) < 0)
				return BV_EINVALID;
			continue;
		}
		if (c == '\n' || c == '\r')
			return fail(p, start, "unterminated string");
		return bad_char(p, p->p, "in string");
	}
	finish_string(p, ptr, len);
	return 0;
}

/* Single-line literal string; p->p is at the opening quote. */
static int parse_literal(struct parser *p, const char **ptr, size_t *len)
{
	const char *start = p->p++;
	const char *run = p->p;
	while (p->p < p->end && *p->p != '\'') {
		unsigned char c = (unsigned char)*p->p;
		if (c == '\n' || c == '\r')
			return fail(p, start, "unterminated string");
		if (is_control(c))
			return bad_char(p, p->p, "in string");
		p->p++;
	}
	if (at_end(p))
		return fail(p, start, "unterminated string");
	*ptr = bv_arena_strndup(&p->doc->arena, run, (size_t)(p->p - run));
	*len = (size_t)(p->p - run);
	p->p++;
	return 0;
}

/*
 * Multi-line strings; p->p is at the first of three quotes.  A run of quotes of length 3 to 5
 * closes the string, the first 0 to 2 of them belonging to the content.
 */
static int parse_multiline(struct parser *p, char quote, const char **ptr, size_t *len)
{
	const char *start = p->p;
	struct bv_buf *b = &p->scratch;
	bv_buf_reset(b);
	p->p += 3;
	eat_newline(p); /* a newline right after the opening delimiter is trimmed */
	for (;;) {
		const char *run = p->p;
		unsigned char c = 0;
		while (p->p < p->end) {
			c = (unsigned char)*p->p;
			if (c == (unsigned char)quote || (quote == '"' && c == '\\') ||
			    is_control(c))
				break;
			p->p++;
		}
		bv_buf_add(b, run, (size_t)(p->p - run));
		if (at_end(p))
			return fail(p, start, "unterminated multi-line string");
		if (c == (unsigned char)quote) {
			size_t q = 0;
			while (peek(p, q) == quote)
				q++;
			if (q >= 3) {
				if (q > 5)
					return fail(
						p, p->p + 5,
						"too many quotes at the end of a multi-line string");
				bv_buf_add(b, p->p, q - 3);
				p->p += q;
				break;
			}
			bv_buf_add(b, p->p, q);
			p->p += q;
			continue;
		}
		if (c == '\\') {
			/* A backslash at the end of a line swallows all whitespace that follows. */
			const char *q = p->p + 1;
			while (q < p->end && (*q == ' ' || *q == '\t'))
				q++;
			if (q < p->end &&
			    (*q == '\n' || (*q == '\r' && q + 1 < p->end && q[1] == '\n'))) {
				p->p = q;
				while (!at_end(p)) {
					if (*p->p == ' ' || *p->p == '\t')
						p->p++;
					else if (!eat_newline(p))
						break;
				}
				continue;
			}
			if (parse_escape(p, b) < 0)
				return BV_EINVALID;
			continue;
		}
		if (c == '\n' || c == '\r') {
			if (!eat_newline(p))
				return bad_char(p, p->p, "in string");
			bv_buf_putc(b, '\n');
			continue;
		}
		return bad_char(p, p->p, "in string");
	}
	finish_string(p, ptr, len);
	return 0;
}

/* Keys. */

static bool is_bare(int c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-';
}

/* Parses a dotted key into p->parts. */
static int parse_key(struct parser *p)
{
	p->n_parts = 0;
	for (;;) {
		struct key_part part = {NULL, 0, NULL};
		int c;
		skip_ws(p);
		part.at = p->p;
		c = peek(p, 0);
		if (c == '"') {
			if (peek(p, 1) == '"' && peek(p, 2) == '"')
				return fail(p, p->p, "multi-line strings cannot be keys");
			if (parse_basic(p, &part.key, &part.len) < 0)
				return BV_EINVALID;
		} else if (c == '\'') {
			if (peek(p, 1) == '\'' && peek(p, 2) == '\'')
				return fail(p, p->p, "multi-line strings cannot be keys");
			if (parse_literal(p, &part.key, &part.len) < 0)
				return BV_EINVALID;
		} else if (is_bare(c)) {
			const char *s = p->p;
			while (p->p < p->end && is_bare((unsigned char)*p->p))
				p->p++;
			part.len = (size_t)(p->p - s);
			part.key = keep_string(p, s, part.len);
		} else if (c < 0) {
			return fail(p, p->p, "expected a key, found the end of the file");
		} else if (c == '\n' || c == '\r') {
			return fail(p, p->p, "expected a key, found the end of the line");
		} else {
			return fail(p, p->p, "invalid character in key");
		}
		BV_GROW(p->parts, p->alloc_parts, p->n_parts + 1);
		p->parts[p->n_parts++] = part;
		skip_ws(p);
		if (peek(p, 0) != '.')
			return 0;
		p->p++;
	}
}

/* Tables. */

static struct bv_toml_pos pos_here(struct parser *p, const char *at)
{
	return position_of(p, at);
}

static struct bv_toml_table *add_table(struct parser *p, struct bv_toml_table *parent,
				       const struct key_part *part, unsigned flags)
{
	struct bv_toml_kv *kv = toml_table_append(&p->doc->arena, parent, part->key, part->len);
	kv->pos = pos_here(p, part->at);
	kv->value.type = BV_TOML_TABLE;
	kv->value.pos = kv->pos;
	kv->value.u.table = toml_table_new(&p->doc->arena);
	kv->value.u.table->flags = flags;
	return kv->value.u.table;
}

static void add_pending(struct parser *p, struct bv_toml_table *t)
{
	BV_GROW(p->pending, p->alloc_pending, p->n_pending + 1);
	p->pending[p->n_pending++] = t;
}

static void close_pending(struct parser *p)
{
	for (size_t i = 0; i < p->n_pending; i++)
		p->pending[i]->flags |= TABLE_DEFINED;
	p->n_pending = 0;
}

/* Marks a closed inline table or array, and everything inside it, as frozen. */
static void freeze(struct bv_toml_value *v)
{
	if (v->type == BV_TOML_TABLE) {
		v->u.table->flags |= TABLE_FROZEN;
		for (size_t i = 0; i < v->u.table->n; i++)
			freeze(&v->u.table->items[i].value);
	} else if (v->type == BV_TOML_ARRAY) {
		v->u.array->flags |= ARRAY_FROZEN;
		for (size_t i = 0; i < v->u.array->n; i++)
			freeze(&v->u.array->items[i]);
	}
}

/*
 * Walks the dotted key in p->parts below `t`, creating tables, and returns the entry for the
 * last part, which must not exist yet (NULL after an error).  `inline_table` is set inside { ... },
 * where there are no sections and therefore nothing pending.
 */
static struct bv_toml_kv *insert_dotted(struct parser *p, struct bv_toml_table *t,
					bool inline_table)
{
	const struct key_part *last = &p->parts[p->n_parts - 1];
	struct bv_toml_kv *kv;
	for (size_t i = 0; i + 1 < p->n_parts; i++) {
		const struct key_part *part = &p->parts[i];
		kv = toml_table_lookup(t, part->key, part->len);
		if (!kv) {
			t = add_table(p, t, part, TABLE_DOTTED);
		} else if (kv->value.type != BV_TOML_TABLE) {
			fail(p, part->at, "cannot add keys to '%s': it is %s %s",
			     show_key(p, part->key, part->len),
			     kv->value.type == BV_TOML_INTEGER ? "an" : "a",
			     bv_toml_type_name(kv->value.type));
			return NULL;
		} else if (kv->value.u.table->flags & TABLE_FROZEN) {
			fail(p, part->at, "cannot add keys to inline table '%s'",
			     show_key(p, part->key, part->len));
			return NULL;
		} else if (!inline_table && (kv->value.u.table->flags & TABLE_DEFINED)) {
			fail(p, part->at, "cannot add dotted keys to table '%s' defined elsewhere",
			     show_key(p, part->key, part->len));
			return NULL;
		} else {
			t = kv->value.u.table;
		}
		if (!inline_table)
			add_pending(p, t);
	}
	if (toml_table_lookup(t, last->key, last->len)) {
		fail(p, last->at, "duplicate key '%s'", show_key(p, last->key, last->len));
		return NULL;
	}
	kv = toml_table_append(&p->doc->arena, t, last->key, last->len);
	kv->pos = pos_here(p, last->at);
	return kv;
}

/* key = value, into table `t`; p->p is at the key. */
static int parse_keyval(struct parser *p, struct bv_toml_table *t, bool inline_table, int depth)
{
	struct bv_toml_value value;
	struct bv_toml_kv *kv;
	struct key_part *parts;
	size_t n_parts;
	if (parse_key(p) < 0)
		return BV_EINVALID;
	if (peek(p, 0) != '=')
		return fail(
			p, p->p, "expected '=' after key '%s'",
			show_key(p, p->parts[p->n_parts - 1].key, p->parts[p->n_parts - 1].len));
	p->p++;
	skip_ws(p);
	/* The value may be an inline table with keys of its own: keep ours aside. */
	parts = TAKE_PTR(p->parts);
	n_parts = p->n_parts;
	p->n_parts = p->alloc_parts = 0;
	memset(&value, 0, sizeof(value));
	if (parse_value(p, &value, depth) < 0) {
		free(parts);
		return BV_EINVALID;
	}
	free(p->parts);
	p->parts = parts;
	p->n_parts = p->alloc_parts = n_parts;
	kv = insert_dotted(p, t, inline_table);
	if (!kv)
		return BV_EINVALID;
	kv->value = value;
	return 0;
}

/* [header] or [[header]]; p->p is at the first '['. */
static int parse_header(struct parser *p)
{
	const char *start = p->p;
	bool array = peek(p, 1) == '[';
	struct bv_toml_table *t = p->doc->root;
	const struct key_part *last;
	struct bv_toml_kv *kv;

	p->p += array ? 2 : 1;
	if (parse_key(p) < 0)
		return BV_EINVALID;
	if (peek(p, 0) != ']' || (array && peek(p, 1) != ']'))
		return fail(p, p->p,
			    array ? "expected ']]' to end the array table header"
				  : "expected ']' to end the table header");
	p->p += array ? 2 : 1;
	close_pending(p);

	for (size_t i = 0; i + 1 < p->n_parts; i++) {
		const struct key_part *part = &p->parts[i];
		kv = toml_table_lookup(t, part->key, part->len);
		if (!kv) {
			t = add_table(p, t, part, TABLE_IMPLICIT);
		} else if (kv->value.type == BV_TOML_TABLE) {
			if (kv->value.u.table->flags & TABLE_FROZEN)
				return fail(p, part->at, "cannot add keys to inline table '%s'",
					    show_key(p, part->key, part->len));
			t = kv->value.u.table;
		} else if (kv->value.type == BV_TOML_ARRAY &&
			   (kv->value.u.array->flags & ARRAY_OF_TABLES)) {
			struct bv_toml_array *a = kv->value.u.array;
			t = a->items[a->n - 1].u.table;
		} else {
			return fail(p, part->at, "key '%s' is already defined as %s",
				    show_key(p, part->key, part->len),
				    bv_toml_type_name(kv->value.type));
		}
	}

	last = &p->parts[p->n_parts - 1];
	kv = toml_table_lookup(t, last->key, last->len);
	if (!array) {
		if (!kv) {
			p->current = add_table(p, t, last, TABLE_DEFINED);
			kv = toml_table_lookup(t, last->key, last->len);
			/* A table defined by a header is where its '[' is, as for [[arrays]]. */
			kv->value.pos = pos_here(p, start);
			return 0;
		}
		if (kv->value.type != BV_TOML_TABLE)
			return fail(p, start, "key '%s' is already defined as %s",
				    show_key(p, last->key, last->len),
				    bv_toml_type_name(kv->value.type));
		if (kv->value.u.table->flags & (TABLE_DEFINED | TABLE_FROZEN))
			return fail(p, start, "table '%s' is defined more than once",
				    show_key(p, last->key, last->len));
		kv->value.u.table->flags |= TABLE_DEFINED;
		kv->value.pos = pos_here(p, start);
		p->current = kv->value.u.table;
		return 0;
	}

	if (!kv) {
		kv = toml_table_append(&p->doc->arena, t, last->key, last->len);
		kv->pos = pos_here(p, last->at);
		kv->value.type = BV_TOML_ARRAY;
		kv->value.pos = kv->pos;
		kv->value.u.array = toml_array_new(&p->doc->arena);
		kv->value.u.array->flags = ARRAY_OF_TABLES;
	} else if (kv->value.type != BV_TOML_ARRAY ||
		   !(kv->value.u.array->flags & ARRAY_OF_TABLES)) {
		return fail(p, start, "cannot define array of tables '%s': it is already %s %s",
			    show_key(p, last->key, last->len),
			    kv->value.type == BV_TOML_ARRAY ? "a static" : "a",
			    bv_toml_type_name(kv->value.type));
	}
	{
		struct bv_toml_value *v = toml_array_append(&p->doc->arena, kv->value.u.array);
		v->type = BV_TOML_TABLE;
		v->pos = pos_here(p, start);
		v->u.table = toml_table_new(&p->doc->arena);
		v->u.table->flags = TABLE_DEFINED;
		p->current = v->u.table;
	}
	return 0;
}

/* Numbers and datetimes. */

static bool is_digit(int c)
{
	return c >= '0' && c <= '9';
}

/*
 * Checks that `s` is digits of base `base` with single underscores only between digits, and
 * returns its value; false on bad syntax or int64 overflow (negative allows one more).
 */
static bool scan_digits(const char *s, size_t len, int base, bool negative, uint64_t *out,
			const char **bad)
{
	uint64_t v = 0, limit = negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	bool prev_digit = false;
	if (!len) {
		*bad = s;
		return false;
	}
	for (size_t i = 0; i < len; i++) {
		int d = hex_value((unsigned char)s[i]);
		if (s[i] == '_') {
			if (!prev_digit || i + 1 == len) {
				*bad = s + i;
				return false;
			}
			prev_digit = false;
			continue;
		}
		if (d < 0 || d >= base) {
			*bad = s + i;
			return false;
		}
		prev_digit = true;
		if (v > (limit - (uint64_t)d) / (uint64_t)base) {
			*bad = NULL; /* overflow */
			return false;
		}
		v = v * (uint64_t)base + (uint64_t)d;
	}
	*out = v;
	return true;
}

/* Decimal digit groups of a float: digits with single underscores between them. */
static bool float_digits(const char *s, size_t len)
{
	if (!len || !is_digit((unsigned char)s[0]) || !is_digit((unsigned char)s[len - 1]))
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '_') {
			if (!is_digit((unsigned char)s[i + 1]))
				return false;
		} else if (!is_digit((unsigned char)s[i])) {
			return false;
		}
	}
	return true;
}

static int parse_float(struct parser *p, const char *s, size_t len, struct bv_toml_value *out)
{
	const char *q = s, *end = s + len, *int_end, *frac = NULL, *frac_end = NULL, *exp = NULL;
	char buf[512];
	size_t n = 0;
	double d;
	char *stop;
	if (*q == '+' || *q == '-')
		q++;
	int_end = q;
	while (int_end < end && (is_digit((unsigned char)*int_end) || *int_end == '_'))
		int_end++;
	if (!float_digits(q, (size_t)(int_end - q)))
		return fail(p, s, "invalid float");
	if (int_end - q > 1 && q[0] == '0')
		return fail(p, s, "leading zeros are not allowed in a float");
	if (int_end < end && *int_end == '.') {
		frac = int_end + 1;
		frac_end = frac;
		while (frac_end < end && (is_digit((unsigned char)*frac_end) || *frac_end == '_'))
			frac_end++;
		if (!float_digits(frac, (size_t)(frac_end - frac)))
			return fail(p, s, "a float needs digits after the decimal point");
	} else {
		frac_end = int_end;
	}
	if (frac_end < end) {
		const char *e = frac_end + 1;
		if (*frac_end != 'e' && *frac_end != 'E')
			return fail(p, s, "invalid float");
		exp = e;
		if (e < end && (*e == '+' || *e == '-'))
			e++;
		if (!float_digits(e, (size_t)(end - e)))
			return fail(p, s, "invalid float exponent");
	}
	if (!frac && !exp)
		return fail(p, s, "invalid number");
	if (len >= sizeof(buf))
		return fail(p, s, "float is too long");
	for (size_t i = 0; i < len; i++)
		if (s[i] != '_')
			buf[n++] = s[i];
	buf[n] = '\0';
	errno = 0;
	d = strtod(buf, &stop);
	if (*stop)
		return fail(p, s, "invalid float");
	if (errno == ERANGE && isinf(d))
		return fail(p, s, "float is out of range");
	out->type = BV_TOML_FLOAT;
	out->u.floating = d;
	return 0;
}

static int parse_number(struct parser *p, const char *s, size_t len, struct bv_toml_value *out)
{
	const char *q = s, *bad = NULL;
	bool negative = false, sign = false;
	uint64_t v;
	int base = 10;

	if (*q == '+' || *q == '-') {
		negative = *q == '-';
		sign = true;
		q++;
	}
	if ((size_t)(q - s) + 3 <= len && q[0] == 'i' && q[1] == 'n' && q[2] == 'f' &&
	    (size_t)(q - s) + 3 == len) {
		out->type = BV_TOML_FLOAT;
		out->u.floating = negative ? -INFINITY : INFINITY;
		return 0;
	}
	if ((size_t)(q - s) + 3 == len && q[0] == 'n' && q[1] == 'a' && q[2] == 'n') {
		out->type = BV_TOML_FLOAT;
		out->u.floating = negative ? -NAN : NAN;
		return 0;
	}
	if (len - (size_t)(q - s) >= 2 && q[0] == '0' &&
	    (q[1] == 'x' || q[1] == 'o' || q[1] == 'b')) {
		base = q[1] == 'x' ? 16 : q[1] == 'o' ? 8 : 2;
		if (sign)
			return fail(p, s, "a sign is not allowed on a %s integer",
				    base == 16  ? "hexadecimal"
				    : base == 8 ? "octal"
						: "binary");
		q += 2;
	} else {
		for (const char *c = q; c < s + len; c++)
			if (*c == '.' || *c == 'e' || *c == 'E')
				return parse_float(p, s, len, out);
	}
	if (!scan_digits(q, len - (size_t)(q - s), base, negative, &v, &bad)) {
		if (!bad)
			return fail(p, s, "integer is out of range (64-bit signed)");
		return fail(p, s, "invalid integer");
	}
	if (base == 10 && len - (size_t)(q - s) > 1 && q[0] == '0')
		return fail(p, s, "leading zeros are not allowed in an integer");
	out->type = BV_TOML_INTEGER;
	if (negative)
		out->u.integer = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
	else
		out->u.integer = (int64_t)v;
	return 0;
}

static bool is_token_char(int c)
{
	return is_bare(c) || c == '+' || c == '.' || c == ':';
}

static bool digits_run(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!is_digit((unsigned char)s[i]))
			return false;
	return true;
}

/* A number, a special float or a datetime: all made of "token" characters. */
static int parse_scalar(struct parser *p, struct bv_toml_value *out)
{
	const char *s = p->p;
	size_t len;
	while (p->p < p->end && is_token_char((unsigned char)*p->p))
		p->p++;
	len = (size_t)(p->p - s);
	/* A date may be followed by a space and a time: "1979-05-27 07:32:00". */
	if (len == 10 && s[4] == '-' && s[7] == '-' && peek(p, 0) == ' ' && is_digit(peek(p, 1)) &&
	    is_digit(peek(p, 2)) && peek(p, 3) == ':') {
		p->p++;
		while (p->p < p->end && is_token_char((unsigned char)*p->p))
			p->p++;
		len = (size_t)(p->p - s);
	}
	if (!len)
		return fail(p, s, "invalid value");
	/* Only four digits and '-' start a date, two digits and ':' a time: a float such as
	 * 2.6e-33 also has '-' at [4]. */
	if ((len >= 5 && digits_run(s, 4) && s[4] == '-') ||
	    (len >= 3 && digits_run(s, 2) && s[2] == ':')) {
		if (bv_toml_parse_datetime(&out->u.datetime, &out->type, s, len) < 0)
			return fail(p, s, "invalid datetime '%.*s'", (int)(len > 40 ? 40 : len), s);
		return 0;
	}
	return parse_number(p, s, len, out);
}

/* Arrays and inline tables. */

static int parse_array(struct parser *p, struct bv_toml_value *out, int depth)
{
	const char *start = p->p;
	struct bv_toml_array *a = toml_array_new(&p->doc->arena);
	out->type = BV_TOML_ARRAY;
	out->u.array = a;
	p->p++;
	for (;;) {
		if (skip_ws_nl(p) < 0)
			return BV_EINVALID;
		if (peek(p, 0) == ']')
			break;
		if (at_end(p))
			return fail(p, start, "unterminated array");
		{
			struct bv_toml_value item;
			memset(&item, 0, sizeof(item));
			if (parse_value(p, &item, depth + 1) < 0)
				return BV_EINVALID;
			*toml_array_append(&p->doc->arena, a) = item;
		}
		if (skip_ws_nl(p) < 0)
			return BV_EINVALID;
		if (peek(p, 0) == ',') {
			p->p++;
			continue;
		}
		if (peek(p, 0) == ']')
			break;
		if (at_end(p))
			return fail(p, start, "unterminated array");
		return fail(p, p->p, "expected ',' or ']' in array");
	}
	p->p++;
	freeze(out);
	return 0;
}

static int parse_inline_table(struct parser *p, struct bv_toml_value *out, int depth)
{
	struct bv_toml_table *t = toml_table_new(&p->doc->arena);
	out->type = BV_TOML_TABLE;
	out->u.table = t;
	p->p++;
	skip_ws(p);
	if (peek(p, 0) == '}') {
		p->p++;
		freeze(out);
		return 0;
	}
	for (;;) {
		int c;
		if (parse_keyval(p, t, true, depth + 1) < 0)
			return BV_EINVALID;
		skip_ws(p);
		c = peek(p, 0);
		if (c == ',') {
			p->p++;
			skip_ws(p);
			if (peek(p, 0) == '}')
				return fail(p, p->p, "trailing comma in inline table");
			continue;
		}
		if (c == '}')
			break;
		if (c == '\n' || c == '\r')
			return fail(p, p->p, "newline in inline table");
		if (c < 0)
			return fail(p, p->p, "unterminated inline table");
		return fail(p, p->p, "expected ',' or '}' in inline table");
	}
	p->p++;
	freeze(out);
	return 0;
}

static bool match_word(const struct parser *p, const char *word, size_t len)
{
	return (size_t)(p->end - p->p) >= len && !memcmp(p->p, word, len) &&
	       ((size_t)(p->end - p->p) == len || !is_token_char((unsigned char)p->p[len]));
}

static int parse_value(struct parser *p, struct bv_toml_value *out, int depth)
{
	int c = peek(p, 0);
	out->pos = pos_here(p, p->p);
	if (depth > MAX_DEPTH)
		return fail(p, p->p, "arrays and inline tables are nested too deeply (limit %d)",
			    MAX_DEPTH);
	switch (c) {
	case '"':
		out->type = BV_TOML_STRING;
		if (peek(p, 1) == '"' && peek(p, 2) == '"')
			return parse_multiline(p, '"', &out->u.string.ptr, &out->u.string.len);
		return parse_basic(p, &out->u.string.ptr, &out->u.string.len);
	case '\'':
		out->type = BV_TOML_STRING;
		if (peek(p, 1) == '\'' && peek(p, 2) == '\'')
			return parse_multiline(p, '\'', &out->u.string.ptr, &out->u.string.len);
		return parse_literal(p, &out->u.string.ptr, &out->u.string.len);
	case '[':
		return parse_array(p, out, depth);
	case '{':
		return parse_inline_table(p, out, depth);
	case 't':
		if (match_word(p, "true", 4)) {
			p->p += 4;
			out->type = BV_TOML_BOOL;
			out->u.boolean = true;
			return 0;
		}
		break;
	case 'f':
		if (match_word(p, "false", 5)) {
			p->p += 5;
			out->type = BV_TOML_BOOL;
			out->u.boolean = false;
			return 0;
		}
		break;
	case -1:
		return fail(p, p->p, "expected a value, found the end of the file");
	case '\n':
	case '\r':
		return fail(p, p->p, "expected a value, found the end of the line");
	default:
		if (is_digit(c) || c == '+' || c == '-' || c == 'i' || c == 'n')
			return parse_scalar(p, out);
		break;
	}
	return fail(p, p->p, "invalid value");
}

/* The document. */

static int parse_document(struct parser *p)
{
	p->current = p->doc->root;
	while (!at_end(p)) {
		int c;
		skip_ws(p);
		c = peek(p, 0);
		if (c == '[') {
			if (parse_header(p) < 0)
				return BV_EINVALID;
		} else if (c != '#' && c != '\n' && c != '\r' && c != -1) {
			if (parse_keyval(p, p->current, false, 0) < 0)
				return BV_EINVALID;
		}
		skip_ws(p);
		if (peek(p, 0) == '#' && skip_comment(p) < 0)
			return BV_EINVALID;
		if (at_end(p))
			break;
		if (!eat_newline(p)) {
			if (*p->p == '\r')
				return bad_char(p, p->p, "in document");
			return fail(p, p->p, "expected the end of the line");
		}
	}
	return 0;
}

int bv_toml_parse(struct bv_toml_doc **out, const char *text, size_t len, const char *filename,
		  struct bv_error **err)
{
	struct parser p = {
		.src = text,
		.p = text,
		.end = text + len,
		.line_start = text,
		.line = 1,
		.filename = filename ? filename : "<input>",
		.err = err,
		.scratch = BV_BUF_INIT,
	};
	int r;
	/* A byte order mark is allowed at the very start (toml-test valid/utf8-bom-*). */
	if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) {
		p.p += 3;
		p.line_start += 3;
	}
	p.doc = bv_toml_doc_new();
	r = check_utf8(&p);
	if (r == 0)
		r = parse_document(&p);
	free(p.pending);
	free(p.parts);
	bv_buf_release(&p.scratch);
	if (r < 0) {
		bv_toml_doc_free(p.doc);
		return BV_EINVALID;
	}
	*out = p.doc;
	return 0;
}

int bv_toml_parse_file(struct bv_toml_doc **out, const char *path, struct bv_error **err)
{
	_cleanup_buf_ struct bv_buf text = BV_BUF_INIT;
	int r = bv_buf_read_file(&text, path, MAX_FILE_SIZE, err);
	if (r < 0)
		return r;
	return bv_toml_parse(out, text.buf, text.len, path, err);
}
