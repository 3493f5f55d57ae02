/*
 * arena.h - region allocator for parse trees that are freed all at once.
 *
 * Calling sequence:
 *   struct bv_arena a = BV_ARENA_INIT;
 *   char *s = bv_arena_strndup(&a, src, n);
 *   struct node *n = bv_arena_alloc(&a, sizeof(*n));     zeroed, aligned for any type
 *   ...
 *   bv_arena_release(&a);                                 frees every allocation
 *
 * Ownership: the arena owns every block it hands out; nothing is freed individually.
 * bv_arena_grow() keeps the block an array moved out of for the next array that needs that
 * many bytes, so a pointer into an array is invalid once the array has grown.
 *
 * Errors: none; out-of-memory aborts.
 */
#ifndef BV_UTIL_ARENA_H
#define BV_UTIL_ARENA_H

#include <stddef.h>

struct bv_arena_chunk;
struct bv_arena_spare;

struct bv_arena {
	struct bv_arena_chunk *head;
	char *next;                   /* first free byte of head */
	char *end;                    /* one past the last byte of head */
	struct bv_arena_spare *spare; /* blocks arrays outgrew (arena.c) */
};

#define BV_ARENA_INIT                  \
	{                              \
		NULL, NULL, NULL, NULL \
	}

/* Returns `size` zeroed bytes aligned to max_align_t. */
__attribute__((malloc, returns_nonnull)) void *bv_arena_alloc(struct bv_arena *a, size_t size);

/* Copies `n` bytes of `s` and appends a NUL. */
__attribute__((returns_nonnull)) char *bv_arena_strndup(struct bv_arena *a, const char *s,
							size_t n);

/*
 * Grows the array `*items` (of `*alloc` elements of `size` bytes, `n` used) to hold `need`
 * elements, copying the used part into a new block.
 */
void bv_arena_grow(struct bv_arena *a, void **items, size_t *alloc, size_t n, size_t need,
		   size_t size);

void bv_arena_release(struct bv_arena *a);

#endif
