/*
 * seal.h - tree seals: a listing of every entry of an unpacked tree (layer tree or root
 * filesystem) with its type, mode, size and content digest or link target, written next to
 * the tree as "<tree>.seal" when it is built.  A tree is trusted only while its seal exists
 * and matches: `bv cache verify` compares them, removes the seal of a damaged tree, and the
 * next `bv sync` unpacks it again.  Hard links spread an edit from a root filesystem to the
 * layer tree that shares the inode, so both are found damaged.
 *
 * Calling sequence (unpack.c):
 *   struct bv_seal_map *known = bv_seal_map_new();            path -> digest, may stay empty
 *   bv_seal_map_load(known, "<store>/layers/<digest>", err);   reuse a layer's digests
 *   bv_seal_write(tmp_root_fd, "<dest>", known, err);          before the tree is renamed
 *   bv_seal_check(&problem, "<dest>", fast, err);              1 sealed and intact, 0 not
 *   bv_seal_map_free(known);
 *
 * Format: "bv-seal 1\n", then one line per entry sorted by path, fields separated by tabs:
 * path, type (d, f, l), mode in octal, size, and for files "sha256:<hex>", for symlinks the
 * target; '%', tab, newline and other control bytes in paths and targets are written as
 * "%XX".  The last line is "end sha256:<hex>" over everything before it, so a cut or edited
 * seal is not a seal.  The root directory itself is listed as ".".
 *
 * Ownership: the map owns its copies; `problem` receives a new string the caller frees.
 *
 * Errors: 0 or a negative code with a message; a damaged tree is not an error of
 * bv_seal_check(), which returns 0 and describes the first difference in *problem.
 */
#ifndef BV_LIB_SEAL_H
#define BV_LIB_SEAL_H

#include <stdbool.h>

struct bv_error;
struct bv_seal_map;

struct bv_seal_map *bv_seal_map_new(void);
void bv_seal_map_free(struct bv_seal_map *m);
void bv_seal_map_put(struct bv_seal_map *m, const char *path, const char *digest);
const char *bv_seal_map_get(const struct bv_seal_map *m, const char *path);

/* Adds the file digests of the seal of `tree`; a missing or invalid seal adds nothing. */
void bv_seal_map_load(struct bv_seal_map *m, const char *tree);

/*
 * Lists the tree open at `root_fd` and writes "<final_tree>.seal" by a rename but without
 * fsync: the caller syncs the file system (syncfs) before it publishes the tree.  Regular files
 * whose path is in `known` take that digest instead of being read (a root filesystem's files
 * are hard links into layer trees that were just sealed).  Every directory, the top one
 * included, is made read-only as it is listed (its write bits go, its owner keeps r-x), and
 * the seal records that mode: one walk makes the tree read-only and lists it.
 */
int bv_seal_write(int root_fd, const char *final_tree, const struct bv_seal_map *known,
		  struct bv_error **err);

/* The path of the seal of `tree` (new string): the tree's, trailing slashes dropped, + this. */
#define BV_SEAL_SUFFIX ".seal"
char *bv_seal_path(const char *tree);

/*
 * Compares `tree` with its seal: 1 when they match, 0 when the seal is missing or differs
 * (*problem says where), < 0 on a failure to read.  `fast` compares names, types, modes,
 * sizes and link targets but not contents.
 */
int bv_seal_check(char **problem, const char *tree, bool fast, struct bv_error **err);

#endif
