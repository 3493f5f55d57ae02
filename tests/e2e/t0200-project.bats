#!/usr/bin/env bats
# The project model and the commands that read it: init, list, show, info, search, why,
# export, remove and lock --check, with their error paths.

load lib/common
load lib/project

setup() {
	common_setup
	use_sample_registry
}

@test "init creates bv.toml named after the directory and refuses to overwrite it" {
	mkdir -p "$BATS_TEST_TMPDIR/myproj" && cd "$BATS_TEST_TMPDIR/myproj"
	run bv init
	assert_success
	run cat bv.toml
	assert_line 'name = "myproj"'
	echo "# mine" >>bv.toml
	before=$(cat bv.toml)
	run bv init other
	assert_failure 1
	assert_output --partial "error: '$BATS_TEST_TMPDIR/myproj/bv.toml' already exists"
	assert_equal "$(cat bv.toml)" "$before"
}

@test "init takes a name and a registry, and the result loads" {
	cd "$BATS_TEST_TMPDIR"
	run bv init --registry "$REGISTRY" demo
	assert_success
	run bv list
	assert_failure 1
	assert_line --index 0 "error: no bv.lock in '$BATS_TEST_TMPDIR'"
	run bv init 'bad"name'
	assert_failure 2
}

@test "commands find the project from a subdirectory" {
	make_locked_project
	mkdir -p "$PROJECT/a/b/c" && cd "$PROJECT/a/b/c"
	run bv list
	assert_success
	assert_line --regexp '^bwa +0\.7\.18 +- +b2fb1a972c5d '
	assert_line --regexp '^samtools +1\.21\.0 +- +dfe7e8f31d68 '
}

@test "outside a project: one error line and exit 1" {
	mkdir -p "$BATS_TEST_TMPDIR/empty" && cd "$BATS_TEST_TMPDIR/empty"
	run bv list
	assert_failure 1
	assert_output --partial "error: not in a bv project"
}

@test "a malformed bv.toml names file:line:column and writes nothing" {
	make_locked_project
	cd "$PROJECT"
	printf '[project]\nname = "x"\n[[tools]]\nid = 5\n' >bv.toml
	lock_before=$(cat bv.lock)
	run bv list
	assert_failure 1
	assert_output "error: $PROJECT/bv.toml:4:6: 'id' in [[tools]] must be a string, not an integer"
	run bv remove samtools
	assert_failure 1
	assert_equal "$(cat bv.lock)" "$lock_before"
	printf '[project]\nname = "x"\nname = "y"\n' >bv.toml
	run bv list
	assert_failure 1
	assert_output "error: $PROJECT/bv.toml:3:1: duplicate key 'name'"
}

@test "an unknown key in bv.toml is a warning with file:line, not an error" {
	make_locked_project
	cd "$PROJECT"
	printf '\n[runtime]\nbackend = "auto"\ncolour = "blue"\n' >>bv.toml
	run --separate-stderr bv list
	assert_success
	assert_equal "${stderr_lines[0]}" "warning: $PROJECT/bv.toml:15: unknown key 'colour' in [runtime] (ignored)"
}

@test "a malformed bv.lock is refused with its position" {
	make_locked_project
	cd "$PROJECT"
	sed -i 's/^version = 1$/version = 2/' bv.lock
	run bv list
	assert_failure 1
	assert_output --partial "bv.lock:1:"
	assert_output --partial "upgrade bv"
}

@test "list --binaries and --json" {
	make_locked_project
	cd "$PROJECT"
	run bv list --binaries
	assert_success
	assert_line --index 0 --regexp '^BINARY +TOOL$'
	assert_line --regexp '^samtools +samtools$'
	run bv list --binaries --json
	assert_success
	run python3 -c 'import json,sys; d=json.load(sys.stdin); print(sorted(d.items()))' <<<"$output"
	assert_output "[('bwa', 'bwa'), ('samtools', 'samtools')]"
	run bv list --json
	assert_success
	# printed one tool at a time, the text is still that of the whole array indented by two
	python3 -c 'import json,sys; t = sys.stdin.read(); sys.exit(json.dumps(json.loads(t), indent=2, ensure_ascii=False) + "\n" != t)' <<<"$output"
	run python3 -c 'import json,sys; print([t["id"] + "@" + t["version"] for t in json.load(sys.stdin)])' <<<"$output"
	assert_output "['bwa@0.7.18', 'samtools@1.21.0']"
	# text that needs escaping (quote, backslash, control characters) goes through jansson,
	# plain text is quoted as it is: both read back exactly, in the text Python makes of them
	sed -i '0,/^image_reference = .*/s//image_reference = "a\\"b\\\\c\\u0001\\t\\u007f\/\\u00e9 end"/' bv.lock
	run bv list --json
	assert_success
	python3 -c 'import json,sys; t = sys.stdin.read(); sys.exit(json.dumps(json.loads(t), indent=2, ensure_ascii=False) + "\n" != t)' <<<"$output"
	run python3 -c 'import json,sys; print(repr([t["image_reference"] for t in json.load(sys.stdin)][0]))' <<<"$output"
	assert_output "'a\"b\\\\c\\x01\\t\\x7f/é end'"
	# no tools: an empty array
	printf 'version = 1\n' >bv.lock
	run bv list --json
	assert_success
	assert_output "[]"
}

@test "list: the tier from the kept manifest copy, --layers with shared and unique bytes" {
	make_locked_project
	cd "$PROJECT"
	# a kept copy of samtools' manifest (as add and sync leave it) gives the tier; bwa has none
	manifest="$REGISTRY/tools/samtools/1.21.0.toml"
	hex=$(sha256sum "$manifest" | cut -d' ' -f1)
	mkdir -p "$XDG_CACHE_HOME/bv/manifests"
	sed 's/^tier = .*/tier = "community"/' "$manifest" >"$XDG_CACHE_HOME/bv/manifests/$hex.toml"
	hex=$(sha256sum "$XDG_CACHE_HOME/bv/manifests/$hex.toml" | cut -d' ' -f1)
	mv "$XDG_CACHE_HOME"/bv/manifests/*.toml "$XDG_CACHE_HOME/bv/manifests/$hex.toml"
	python3 - "$hex" <<'PY'
import re, sys
text = open("bv.lock").read()
text = text.replace('manifest_sha256 = ""\nimage_size_bytes = 61234567', f'manifest_sha256 = "sha256:{sys.argv[1]}"\nimage_size_bytes = 61234567')
open("bv.lock", "w").write(text)
PY
	run bv list
	assert_success
	assert_line --index 0 --regexp '^TOOL +VERSION +TIER +DIGEST +SIZE +RESOLVED$'
	assert_line --regexp '^samtools +1\.21\.0 +community +dfe7e8f31d68 '
	assert_line --regexp '^bwa +0\.7\.18 +- +b2fb1a972c5d '
	run bv list --json
	run python3 -c 'import json,sys; print({t["id"]: t["tier"] for t in json.load(sys.stdin)})' <<<"$output"
	assert_output "{'bwa': None, 'samtools': 'community'}"
	# without the copy the tier is unknown; list never reads the registry
	rm "$XDG_CACHE_HOME/bv/manifests/$hex.toml"
	run bv list
	assert_line --regexp '^samtools +1\.21\.0 +- +dfe7e8f31d68 '

	# --layers: bwa has no layers, so its image size is unique
	run bv list --layers
	assert_success
	assert_line --index 0 --regexp '^TOOL +LAYERS +SHARED +UNIQUE$'
	assert_line --regexp '^bwa +- +0 B +19\.5 MiB$'
	assert_line --regexp '^samtools +1 +0 B +1\.0 MiB$'
	assert_line "1 layers (1 distinct), 1.0 MiB in layers, 1.0 MiB on disk: dedup 0%"
	# give bwa samtools' layer and one of its own: 1 MiB shared by both, 3 MiB only bwa's
	python3 - <<'PY'
text = open("bv.lock").read()
layer = """[[tools.bwa.layers]]
digest = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
size = 1048576
media_type = "application/vnd.oci.image.layer.v1.tar+zstd"

[[tools.bwa.layers]]
digest = "sha256:3333333333333333333333333333333333333333333333333333333333333333"
size = 3145728
media_type = "application/vnd.oci.image.layer.v1.tar+zstd"

"""
text = text.replace('layers = []\n', '').replace('[tools.samtools]\n', layer + '[tools.samtools]\n')
open("bv.lock", "w").write(text)
PY
	run bv list --layers
	assert_success
	assert_line --regexp '^bwa +2 +1\.0 MiB +3\.0 MiB$'
	assert_line --regexp '^samtools +1 +1\.0 MiB +0 B$'
	assert_line "3 layers (2 distinct), 5.0 MiB in layers, 4.0 MiB on disk: dedup 20%"
	run bv list --layers --json
	assert_success
	run python3 -c 'import json,sys; d=json.load(sys.stdin); print(round(d["dedup_ratio"], 6), d["distinct_layers"], [(t["id"], t["shared_bytes"], t["unique_bytes"], [l["shared"] for l in t["layers"]]) for t in d["tools"]])' <<<"$output"
	assert_output "0.2 2 [('bwa', 1048576, 3145728, [True, False]), ('samtools', 1048576, 0, [True])]"
}

@test "show --format json reproduces every sample manifest's fields" {
	count=0
	for manifest in "$REGISTRY"/tools/*/*.toml; do
		id=$(basename "$(dirname "$manifest")")
		version=$(basename "$manifest" .toml)
		latest=$(ls "$REGISTRY/tools/$id" | sort -V | tail -n 1)
		[ "$version.toml" = "$latest" ] || continue
		run bv show --format json "$id"
		assert_success
		got=$(python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin), sort_keys=True))' <<<"$output")
		want=$(python3 "$BV_SOURCE_DIR/tests/e2e/fixtures/show_json_expected.py" "$manifest")
		assert_equal "$got" "$want"
		count=$((count + 1))
	done
	[ "$count" -ge 18 ]
	# upstream's documented v1.0 shape: the tool inside a "tool" wrapper, nothing else on top
	run bv show --format json samtools
	run python3 -c 'import json,sys; d=json.load(sys.stdin); print(sorted(d), d["tool"]["id"])' <<<"$output"
	assert_output "['schema_version', 'tool'] samtools"
}

@test "show: the locked version inside a project, mcp and json-schema shapes, errors" {
	make_locked_project
	cd "$PROJECT"
	run bv show --format mcp colabfold
	assert_success
	run python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["name"], d["inputSchema"]["required"], d["inputSchema"]["properties"]["fasta"]["type"])' <<<"$output"
	assert_output "colabfold ['fasta'] string"
	run bv show --format json-schema colabfold
	assert_success
	assert_output --partial '"x-bv-type": "fasta[protein]"'
	run bv show nosuchtool
	assert_failure 1
	assert_output --partial "nosuchtool"
	run bv show --format yaml samtools
	assert_failure 2
	run bv show samtools
	assert_success
	assert_line --index 0 "samtools 1.21.0"
}

@test "show fails clearly on a manifest with an unknown type, suggesting the nearest" {
	sed -i 's/^type = "fastq"$/type = "fastqq"/' "$REGISTRY"/tools/fastp/*.toml
	run bv show fastp
	assert_failure 1
	assert_output --regexp "error: .*/tools/fastp/0\.23\.4\.toml:[0-9]+:8: unknown type 'fastqq' in \[\[tool\.inputs\]\]; did you mean 'fastq'\?"
}

@test "info shows the lock entry with the manifest's entrypoint" {
	make_locked_project
	cd "$PROJECT"
	run bv info samtools
	assert_success
	assert_line "samtools 1.21.0"
	assert_line "digest:      sha256:dfe7e8f31d6814b4f76e21af0bc5be7b0c6bcaa774694b188a76c01fb86fa24d"
	assert_line --partial "entrypoint:  samtools"
	run bv info seqtk
	assert_failure 1
	assert_line --index 0 "error: tool 'seqtk' is not in bv.lock"
}

@test "search ranks exact ids first, filters tiers, limits, and reads bv.toml's registry" {
	run bv search bam
	assert_success
	run --separate-stderr bv search samtools
	assert_success
	assert_line --index 1 --regexp '^samtools '
	run bv search --tier core --json fastq
	assert_success
	run python3 -c 'import json,sys; print(all(e["tier"] == "core" for e in json.load(sys.stdin)))' <<<"$output"
	assert_output "True"
	run --separate-stderr bv search --limit 1 a
	assert_success
	assert_equal "${#lines[@]}" 2
	assert_line --index 0 --regexp '^TOOL +VERSION +TIER +DESCRIPTION$'
	[[ $stderr == *"1 tool shown (more with --limit)"* ]]
	run bv search --tier bogus x
	assert_failure 2
	# nothing found is not a failure, as upstream
	run bv search zzzzzz
	assert_success
	assert_output "No tools found matching 'zzzzzz'"
	# deprecated tools show only with --tier all, marked
	python3 - "$BV_REGISTRY/index.json" <<'PY'
import json, sys
p = sys.argv[1]
d = json.load(open(p))
for t in d["tools"]:
    if t["id"] == "samtools":
        t["deprecated"] = True
json.dump(d, open(p, "w"))
PY
	run bv search samtools
	refute_line --regexp '^samtools '
	run bv search --tier all samtools
	assert_line --regexp '^samtools +[^ ]+ +[a-z]+ +\[deprecated\] '
	cp "$SHARED_DIR/bv-registry-sample/index.json" "$BV_REGISTRY/index.json"
	# the registry named in bv.toml is used when no flag or BV_REGISTRY says otherwise
	make_locked_project
	cd "$PROJECT"
	unset BV_REGISTRY
	printf '\n[registry]\nurl = "%s"\n' "$REGISTRY" >>bv.toml
	run --separate-stderr bv search samtools
	assert_success
	assert_line --index 1 --regexp '^samtools '
}

@test "why finds pinned conda packages and fails when none match" {
	make_locked_project
	cd "$PROJECT"
	run --separate-stderr bv why HTSLIB
	assert_success
	assert_output "samtools 1.21.0: htslib 1.21 h566b1c6_0 (layer sha256:111111111111)"
	assert_equal "$stderr" "note: 1 locked tool has no per-package layers, so it was not searched"
	run bv why zlib
	assert_success
	assert_output --partial "No locked tool contains a package matching 'zlib'"
}

@test "export --format conda maps pinned packages and names what it skips" {
	make_locked_project
	cd "$PROJECT"
	run bv export --format conda
	assert_success
	assert_line "name: align"
	assert_line "  - htslib=1.21=h566b1c6_0"
	assert_line "#   bwa 0.7.18 (ghcr.io/tejasprabhune/bv-pkg/bwa:0.7.18)"
	run bv export --format conda -o env.yml
	assert_success
	assert [ -f env.yml ]
	run bv export --format pixi
	assert_failure 2
	assert_output --partial "unsupported export format 'pixi'"
	# conda is the default format; biocontainers refs with or without a build hash map
	sed -i 's|image_reference = "ghcr.io/tejasprabhune/bv-pkg/bwa:0.7.18"|image_reference = "quay.io/biocontainers/bwa:0.7.18"|' bv.lock
	run bv export
	assert_success
	assert_line "  - bioconda::bwa=0.7.18"
	refute_output --partial "#   bwa 0.7.18"
}

@test "remove edits bv.toml in place, keeps comments, and updates bv.lock" {
	make_locked_project
	cd "$PROJECT"
	run bv remove bwa
	assert_success
	run cat bv.toml
	assert_line "# alignment project"
	refute_line 'id = "bwa"'
	assert_line 'id = "samtools"'
	run bv list --binaries
	refute_line --regexp '^bwa '
	run bv remove bwa
	assert_failure 1
	assert_output --partial "tool 'bwa' is not declared"
	run bv remove
	assert_failure 2
}

@test "lock --check passes on a matching lock and prints a diff when bv.toml moves" {
	make_locked_project
	cd "$PROJECT"
	run bv lock --check
	assert_success
	assert_output --partial "bv.lock is up to date"
	cat >>bv.toml <<'TOML'

[[tools]]
id = "blast"
version = "=2.14.0"
TOML
	sed -i 's/^version = "\^0.7"$/version = ">=0.8"/' bv.toml
	run bv lock --check
	assert_failure 1
	assert_output --partial "no version of 'bwa' matches '>=0.8'"
	sed -i 's/^version = ">=0.8"$/version = "^0.7"/' bv.toml
	run bv lock --check
	assert_failure 1
	assert_line --partial "+ blast 2.14.0"
}

@test "lock --check reports a binary collision with the fix" {
	make_locked_project
	cd "$PROJECT"
	sed -i 's/^exposed = \[ "bwa",\]$/exposed = [ "bwa", "samtools",]/' "$REGISTRY/tools/bwa/0.7.18.toml"
	run bv lock --check
	assert_failure 1
	assert_output --partial "binary 'samtools' is provided by both"
	assert_output --partial "[binary_overrides]"
}
