#!/usr/bin/env bats
# The toml-test decoder interface at build/toml-test-decoder.

load lib/common

setup() {
	common_setup
	DECODER="$BV_BUILD_DIR/toml-test-decoder"
}

@test "valid TOML becomes tagged JSON on stdout" {
	run "$DECODER" <<<$'a = 1\n[t]\nd = 1979-05-27T07:32:00Z\ns = "x"'
	assert_success
	run jq -c . <<<"$output" 2>/dev/null || run python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin),sort_keys=True,separators=(",",":")))' <<<"$output"
	assert_output '{"a":{"type":"integer","value":"1"},"t":{"d":{"type":"datetime","value":"1979-05-27T07:32:00Z"},"s":{"type":"string","value":"x"}}}'
}

@test "invalid TOML exits 1 with line and column on stderr" {
	run --separate-stderr "$DECODER" <<<$'a = 1\na = 2'
	assert_failure 1
	assert_equal "$output" ""
	assert_equal "$stderr" "error: <stdin>:2:1: duplicate key 'a'"
}

@test "every toml-test 1.0.0 case through the decoder binary" {
	list="$SHARED_DIR/toml-test/files-toml-1.0.0"
	[ -f "$list" ] || skip "toml-test not found at $SHARED_DIR/toml-test"
	failures=0
	while read -r f; do
		case $f in
		valid/*.toml)
			"$DECODER" <"$SHARED_DIR/toml-test/$f" >/dev/null || { echo "rejected $f"; failures=$((failures + 1)); } ;;
		invalid/*.toml)
			if "$DECODER" <"$SHARED_DIR/toml-test/$f" >/dev/null 2>&1; then echo "accepted $f"; failures=$((failures + 1)); fi ;;
		esac
	done <"$list"
	assert_equal "$failures" 0
}
