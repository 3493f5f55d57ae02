/*
 * toml_json.h - TOML documents as toml-test's tagged JSON.
 *
 * toml-test (https://github.com/toml-lang/toml-test) checks a decoder by comparing its output
 * with expected JSON in which every scalar is {"type": "...", "value": "..."}.  The decoder
 * program and the conformance test both use this conversion.
 *
 * Ownership: bv_toml_to_tagged_json() returns a new reference; json_decref() it.
 * Errors: none; out-of-memory aborts.
 */
#ifndef BV_TOML_JSON_H
#define BV_TOML_JSON_H

#include <bv/toml.h>
#include <jansson.h>

json_t *bv_toml_to_tagged_json(const struct bv_toml_table *root);

/*
 * Compares two tagged JSON documents the way toml-test does: integers and floats by value
 * (NaN equals NaN), datetimes by their fields, everything else exactly.
 */
bool bv_toml_tagged_json_equal(const json_t *a, const json_t *b);

#endif
