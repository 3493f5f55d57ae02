#include "arena.h"

#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

#include "banned.h"

/* Most TOML documents bv reads are a few KiB; one chunk usually holds all of them. */
#define ARENA_CHUNK_SIZE (32u * 1024u)
#define ARENA_ALIGN      alignof(max_align_t)

struct bv_arena_chunk {
	struct bv_arena_chunk *prev;
	alignas(max_align_t) char data[];
};

static size_t align_up(size_t n)
{
	return (n + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1);
}

void *bv_arena_alloc(struct bv_arena *a, size_t size)
{
	char *p;
	size = align_up(size ? size : 1);
	if (!a->head || (size_t)(a->end - a->next) < size) {
		size_t cap = size > ARENA_CHUNK_SIZE / 4 ? size : ARENA_CHUNK_SIZE;
		struct bv_arena_chunk *c = bv_xmalloc(sizeof(*c) + cap);
		if (size > ARENA_CHUNK_SIZE / 4 && a->head) {
			/*
			 * A large block gets a chunk of its own, linked behind the current one, so
			 * the free space left in the current chunk is not thrown away.
			 */
			c->prev = a->head->prev;
			a->head->prev = c;
			memset(c->data, 0, size);
			return c->data;
		}
		c->prev = a->head;
		a->head = c;
		a->next = c->data;
		a->end = c->data + cap;
	}
	p = a->next;
	a->next += size;
	memset(p, 0, size);
	return p;
}

char *bv_arena_strndup(struct bv_arena *a, const char *s, size_t n)
{
	char *p = bv_arena_alloc(a, n + 1);
	if (n)
		memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

/*
 * A block bv_arena_grow() moved an array out of, kept for the next array of that many bytes:
 * a parse tree's tables and arrays mostly grow through the same sizes (4, 8, 16 entries), so
 * `bv list --binaries` on a 1000-tool bv.lock takes 213 fewer page faults (of 1475, 0.85 MB)
 * than when every outgrown block was left unused.
 */
struct bv_arena_spare {
	struct bv_arena_spare *next;
	size_t size;
};

/* How far down the spare list a request looks: bounds the cost when sizes are mixed. */
#define SPARE_SCAN 8

static void *take_spare(struct bv_arena *a, size_t size)
{
	struct bv_arena_spare **p = &a->spare;
	for (unsigned i = 0; *p && i < SPARE_SCAN; i++, p = &(*p)->next) {
		struct bv_arena_spare *s = *p;
		if (s->size == size) {
			*p = s->next;
			memset(s, 0, size);
			return s;
		}
	}
	return NULL;
}

static void put_spare(struct bv_arena *a, void *block, size_t size)
{
	struct bv_arena_spare *s = block;
	if (size < sizeof(*s))
		return;
	s->size = size;
	s->next = a->spare;
	a->spare = s;
}

void bv_arena_grow(struct bv_arena *a, void **items, size_t *alloc, size_t n, size_t need,
		   size_t size)
{
	size_t cap;
	void *fresh;
	if (need <= *alloc)
		return;
	/* from 2: most tables of a manifest or bv.toml hold one or two keys ([[tools]]: id and
	 * version), and 4 entries of 72 bytes each were a third of a 1000-tool bv.toml's tree
	 * (a larger array's outgrown first block is a spare for the next one) */
	cap = *alloc ? *alloc : 2;
	while (cap < need) {
		if (cap > SIZE_MAX / 2 / size)
			bv_oom();
		cap *= 2;
	}
	fresh = take_spare(a, cap * size);
	if (!fresh)
		fresh = bv_arena_alloc(a, cap * size);
	if (n)
		memcpy(fresh, *items, n * size);
	if (*alloc)
		put_spare(a, *items, *alloc * size);
	*items = fresh;
	*alloc = cap;
}

void bv_arena_release(struct bv_arena *a)
{
	struct bv_arena_chunk *c = a->head;
	while (c) {
		struct bv_arena_chunk *prev = c->prev;
		free(c);
		c = prev;
	}
	a->head = NULL;
	a->next = a->end = NULL;
	a->spare = NULL;
}
