#include "strv.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

#include "banned.h"

char *bv_strv_empty[1] = {NULL};

void bv_strv_init(struct bv_strv *v)
{
	v->v = bv_strv_empty;
	v->n = 0;
	v->alloc = 0;
}

void bv_strv_clear(struct bv_strv *v)
{
	if (v->alloc) {
		for (size_t i = 0; i < v->n; i++)
			free(v->v[i]);
		free(v->v);
	}
	bv_strv_init(v);
}

const char *bv_strv_push_take(struct bv_strv *v, char *s)
{
	if (!v->alloc)
		v->v = NULL;
	BV_GROW(v->v, v->alloc, v->n + 2);
	v->v[v->n++] = s;
	v->v[v->n] = NULL;
	return s;
}

const char *bv_strv_push(struct bv_strv *v, const char *s)
{
	return bv_strv_push_take(v, bv_xstrdup(s));
}

const char *bv_strv_pushf(struct bv_strv *v, const char *fmt, ...)
{
	va_list ap;
	char *s;
	va_start(ap, fmt);
	s = bv_xvasprintf(fmt, ap);
	va_end(ap);
	return bv_strv_push_take(v, s);
}

void bv_strv_pushv(struct bv_strv *v, const char *const *items)
{
	for (; *items; items++)
		bv_strv_push(v, *items);
}

void bv_strv_pop(struct bv_strv *v)
{
	if (!v->n)
		return;
	free(v->v[--v->n]);
	v->v[v->n] = NULL;
}

bool bv_strv_contains(const struct bv_strv *v, const char *s)
{
	for (size_t i = 0; i < v->n; i++)
		if (!strcmp(v->v[i], s))
			return true;
	return false;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void bv_strv_sort(struct bv_strv *v)
{
	if (v->n > 1)
		qsort(v->v, v->n, sizeof(*v->v), cmp_str);
}

char **bv_strv_detach(struct bv_strv *v)
{
	char **array = v->v;
	if (!v->alloc)
		array = bv_xcalloc(1, sizeof(*array));
	bv_strv_init(v);
	return array;
}

void bv_strv_free(char **array)
{
	if (!array)
		return;
	for (char **s = array; *s; s++)
		free(*s);
	free(array);
}

ssize_t bv_strv_env_find(const struct bv_strv *env, const char *key, size_t len)
{
	for (size_t i = 0; i < env->n; i++)
		if (strncmp(env->v[i], key, len) == 0 && env->v[i][len] == '=')
			return (ssize_t)i;
	return -1;
}

void bv_strv_env_set(struct bv_strv *env, const char *entry)
{
	ssize_t i = bv_strv_env_find(env, entry, strcspn(entry, "="));
	if (i < 0) {
		bv_strv_push(env, entry);
		return;
	}
	free(env->v[i]);
	env->v[i] = bv_xstrdup(entry);
}
