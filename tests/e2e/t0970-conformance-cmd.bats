#!/usr/bin/env bats
# bv conformance: the fixture registry's tools resolved, pulled by digest from the loopback
# registry and probed with the native runner, plus a second registry of manifests made from
# samtools's to fail, skip and pin probes on purpose.  One cache for the file, so each image
# is pulled once.

load lib/common

setup_file() {
	fixture_images_up
	EXTRA="$BATS_FILE_TMPDIR/extra"
	export EXTRA
	mkdir -p "$EXTRA/tools"
	cp "$BV_SOURCE_DIR/tests/fixtures/bv-registry/types.toml" "$EXTRA/"
	python3 - "$BV_SOURCE_DIR/tests/fixtures/bv-registry/tools/samtools/1.16.1.toml" "$EXTRA" <<'EOF'
import os, sys
base = open(sys.argv[1]).read()
def tool(name, text):
    os.makedirs(f"{sys.argv[2]}/tools/{name}")
    open(f"{sys.argv[2]}/tools/{name}/1.16.1.toml", "w").write(text.replace('id = "samtools"', f'id = "{name}"', 1))
tool("ghost", base.replace('exposed = ["samtools"]', 'exposed = ["samtools", "bwa-mem2"]'))
tool("mute", base.replace('command = "samtools"', 'command = "false"').replace('exposed = ["samtools"]', 'exposed = ["false"]'))
tool("pinned", base + '\n[tool.smoke]\nprobes = { samtools = "version" }\n')
tool("oldie", base.replace('tier = "core"', 'tier = "core"\ndeprecated = true'))
tool("gpu", base.replace('disk_gb = 1.0', 'disk_gb = 1.0\n\n[tool.hardware.gpu]\nrequired = true'))
tool("refdata", base + '\n[tool.reference_data.genome]\nid = "hg38"\nversion = "1"\nrequired = true\n')
EOF
}

teardown_file() {
	if [ -e "$BATS_FILE_TMPDIR/dockerd-started" ]; then
		"$BV_SOURCE_DIR/tests/fixtures/dockerd.sh" stop >/dev/null 2>&1 || true
	fi
	fixture_images_down
}

setup() {
	common_setup
	export BV_CACHE_DIR="$BATS_FILE_TMPDIR/cache"
	export BV_MIRRORS="quay.io=$ADDR"
	export BV_REGISTRY="$BATS_TEST_TMPDIR/bv-registry"
	cp -r "$BV_SOURCE_DIR/tests/fixtures/bv-registry" "$BV_REGISTRY"
	cd "$BATS_TEST_TMPDIR" || return 1
}

@test "conformance: every tool of the fixture registry passes" {
	run bv conformance --jobs 2
	assert_success
	assert_line 'PASS samtools 1.16.1 (1 binary)'
	assert_line 'PASS bwa 0.7.17 (1 binary)'
	assert_line 'PASS minimap2 2.24.0 (1 binary)'
	assert_line 'PASS bcftools 1.16.0 (1 binary)'
	assert_line '4 passed, 0 failed, 0 skipped'
	# pulled by digest into bv's own store: the rootfs of the registry's digest exists
	want=$(skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://$ADDR/biocontainers/samtools:1.16.1--debian")
	ls -d "$BV_CACHE_DIR"/rootfs/"${want#sha256:}"-*/ >/dev/null
}

@test "conformance: a declared binary missing from the image fails the tool" {
	run bv conformance --registry "$EXTRA" ghost
	assert_failure 1
	assert_line "FAIL ghost 1.16.1: binary 'bwa-mem2' not in the image"
	assert_line '0 passed, 1 failed, 0 skipped'
}

@test "conformance: a binary whose every probe is silent and non-zero fails" {
	run bv conformance --registry "$EXTRA" --format json mute
	assert_failure 1
	echo "$output" | python3 -c '
import json, sys
d = json.load(sys.stdin)
(t,) = d["tools"]
assert t["status"] == "fail", t
assert t["message"] == "binary '"'"'false'"'"' is not alive: no probe exited 0 or wrote 30 bytes", t
(b,) = t["binaries"]
assert [p["probe"] for p in b["probes"]] == ["--version", "-version", "--help", "-h", "-v", "version", ""], b
assert all(p["exit"] == 1 and p["output_bytes"] == 0 for p in b["probes"]), b
assert d["summary"] == {"passed": 0, "failed": 1, "skipped": 0}, d
'
}

@test "conformance: [tool.smoke] probes pins the one probe a binary gets" {
	run bv conformance --registry "$EXTRA" --format json pinned
	assert_success
	echo "$output" >pinned.json
	run bv conformance --format json samtools
	assert_success
	echo "$output" | python3 -c '
import json, sys
(pinned,) = json.load(open("pinned.json"))["tools"]
(plain,) = json.load(sys.stdin)["tools"]
(b,) = pinned["binaries"]
assert [p["probe"] for p in b["probes"]] == ["version"] and b["alive"], b
(b,) = plain["binaries"]
assert [p["probe"] for p in b["probes"]] == ["--version"] and b["alive"], b
assert pinned["image_digest"] == plain["image_digest"], (pinned, plain)
'
}

@test "conformance: --skip-gpu, --skip-reference-data and --skip-deprecated" {
	run bv conformance --registry "$EXTRA" gpu refdata oldie
	assert_failure 1
	assert_line 'PASS gpu 1.16.1 (1 binary)'
	assert_line 'PASS oldie 1.16.1 (1 binary)'
	assert_line --regexp "^FAIL refdata 1\.16\.1: .*needs reference data 'hg38' 1"
	run bv conformance --registry "$EXTRA" --skip-gpu --skip-reference-data --skip-deprecated gpu refdata oldie pinned
	assert_success
	assert_line 'SKIP gpu 1.16.1: needs a GPU'
	assert_line 'SKIP refdata 1.16.1: needs reference data'
	assert_line 'SKIP oldie 1.16.1: deprecated'
	assert_line 'PASS pinned 1.16.1 (1 binary)'
	assert_line '1 passed, 0 failed, 3 skipped'
}

@test "conformance: --filter and an explicit tool list choose the tools" {
	run bv conformance --filter am
	assert_success
	assert_line 'PASS samtools 1.16.1 (1 binary)'
	assert_line '1 passed, 0 failed, 0 skipped'
	[ "${#lines[@]}" -eq 2 ]
	run bv conformance bwa bcftools
	assert_success
	assert_line 'PASS bwa 0.7.17 (1 binary)'
	assert_line 'PASS bcftools 1.16.0 (1 binary)'
	[ "${#lines[@]}" -eq 3 ]
	run bv conformance --filter nothing-matches
	assert_failure 1
	assert_output --partial 'no tool to check matches the filter'
	run bv conformance no-such-tool
	assert_failure 1
	assert_line --regexp '^FAIL no-such-tool'
}

@test "conformance: --jobs 2 gives the results of --jobs 1" {
	bv conformance --registry "$EXTRA" --jobs 1 --format json >one.json && exit 1
	bv conformance --registry "$EXTRA" --jobs 2 --format json >two.json && exit 1
	python3 - one.json two.json <<'EOF'
import json, sys
def load(p):
    d = json.load(open(p))
    for t in d["tools"]:
        del t["seconds"]
    return d
one, two = load(sys.argv[1]), load(sys.argv[2])
assert one == two, (one, two)
assert [t["id"] for t in one["tools"]] == ["ghost", "gpu", "mute", "oldie", "pinned", "refdata"], one
assert [t["status"] for t in one["tools"]] == ["fail", "pass", "fail", "pass", "pass", "fail"], one
EOF
}

@test "conformance: --format junit is JUnit XML whose counts match" {
	run bv conformance --registry "$EXTRA" --skip-deprecated --format junit
	assert_failure 1
	echo "$output" | python3 -c '
import sys, xml.etree.ElementTree as ET
root = ET.fromstring(sys.stdin.read())
(s,) = root.findall("testsuite")
cases = s.findall("testcase")
assert (s.get("tests"), s.get("failures"), s.get("skipped")) == ("6", "3", "1"), s.attrib
assert len(cases) == 6
fails = {c.get("name"): c.find("failure").get("message") for c in cases if c.find("failure") is not None}
assert fails["ghost 1.16.1"] == "binary '"'"'bwa-mem2'"'"' not in the image", fails
assert sorted(fails) == ["ghost 1.16.1", "mute 1.16.1", "refdata 1.16.1"], fails
assert [c.get("name") for c in cases if c.find("skipped") is not None] == ["oldie 1.16.1"]
'
}

# sleepy_registry DIR: a registry of one tool whose only probe, `sleep 600`, hangs.
sleepy_registry() {
	local reg=$1
	mkdir -p "$reg/tools/sleepy"
	cp "$BV_REGISTRY/types.toml" "$reg/"
	sed -e 's/^id = "samtools"/id = "sleepy"/' -e 's/^command = "samtools"/command = "sleep"/' \
		-e 's/^exposed = \["samtools"\]/exposed = ["sleep"]/' \
		"$BV_REGISTRY/tools/samtools/1.16.1.toml" >"$reg/tools/sleepy/1.16.1.toml"
	printf '\n[tool.smoke]\nprobes = { sleep = "600" }\n' >>"$reg/tools/sleepy/1.16.1.toml"
}

@test "conformance: a probe that hangs is killed after --timeout" {
	reg="$BATS_TEST_TMPDIR/sleepy"
	sleepy_registry "$reg"
	SECONDS=0
	run bv conformance --registry "$reg" --timeout 1 --format json
	assert_failure 1
	[ "$SECONDS" -lt 30 ]
	echo "$output" | python3 -c '
import json, sys
(t,) = json.load(sys.stdin)["tools"]
(p,) = t["binaries"][0]["probes"]
assert t["status"] == "fail" and p["timed_out"] and p["exit"] in (137, 143), t
'
	# the killed group took the tool with it
	run pgrep -f 'sleep 600'
	assert_failure
}

@test "conformance: --backend docker pulls into the engine and probes there" {
	[ -x "${BV_DOCKERD:-/usr/sbin/dockerd}" ] || skip "dockerd not installed"
	fix="$BV_SOURCE_DIR/tests/fixtures"
	"$fix/dockerd.sh" status >/dev/null 2>&1 || touch "$BATS_FILE_TMPDIR/dockerd-started"
	sock=$("$fix/dockerd.sh" start)
	export DOCKER_HOST="unix://$sock"
	run bv conformance --backend docker --registry "$EXTRA" ghost mute pinned
	assert_failure 1
	# the engine reports a missing command as status 127: no rootfs to look into here
	assert_line "FAIL ghost 1.16.1: binary 'bwa-mem2' not in the image (exit status 127)"
	assert_line "FAIL mute 1.16.1: binary 'false' is not alive: no probe exited 0 or wrote 30 bytes"
	assert_line 'PASS pinned 1.16.1 (1 binary)'
	want=$(skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://$ADDR/biocontainers/samtools:1.16.1--debian")
	curl -sf --unix-socket "$sock" http://localhost/v1.41/images/json |
		python3 -c 'import json, sys; assert any(sys.argv[1] in " ".join(i.get("RepoDigests") or []) for i in json.load(sys.stdin))' "$want"
	[ "$(curl -sf --unix-socket "$sock" 'http://localhost/v1.41/containers/json?all=1')" = "[]" ]
	# a probe that hangs in the engine: its container is stopped and removed, not left running
	sleepy_registry "$BATS_TEST_TMPDIR/sleepy"
	run bv conformance --backend docker --registry "$BATS_TEST_TMPDIR/sleepy" --timeout 1
	assert_failure 1
	assert_line --partial "FAIL sleepy 1.16.1"
	for _ in $(seq 50); do
		[ "$(curl -sf --unix-socket "$sock" 'http://localhost/v1.41/containers/json?all=1')" = "[]" ] && break
		sleep 0.2
	done
	[ "$(curl -sf --unix-socket "$sock" 'http://localhost/v1.41/containers/json?all=1')" = "[]" ]
}
