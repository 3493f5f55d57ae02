#!/usr/bin/env bats
# bv publish: a small C tool with a Makefile (Dockerfile.bv, built FROM a compiler image
# made here) and a directory with its own Dockerfile are built on a private dockerd
# (tests/fixtures/dockerd.sh), pushed to the loopback registry (tests/fixtures/registry.sh),
# committed on a branch of a registry checkout whose origin is a bare repository, and then
# added and run from a clone of that branch.  One build goes through buildah with no engine.
# Every refusal leaves the checkout as it was: same branch, same HEAD, clean, no new branch.
#
# The compiler image: Debian's tcc (downloaded once with apt-get download into the fixture
# cache) with make and the libc headers of this machine, on the fixture registry's Debian
# base.  Nothing here needs the network beyond that one download.

load lib/common

setup_file() {
	command -v docker >/dev/null || skip "the docker client is not installed"
	fixture_engine_up
	export BASE="$ADDR/biocontainers/samtools:1.16.1--debian"
	export CC_IMAGE="$ADDR/bv-test/publish-cc:1"
	local cache="${BV_FIXTURE_CACHE:-$BV_FIXTURE_DIR/cache}/publish" root
	mkdir -p "$cache"
	if ! ls "$cache"/tcc_*.deb >/dev/null 2>&1; then
		(cd "$cache" && apt-get download tcc >/dev/null 2>&1) || true
	fi
	export CC_SKIP=
	if ! ls "$cache"/tcc_*.deb >/dev/null 2>&1; then
		CC_SKIP="tcc could not be downloaded (apt-get download tcc) for the compiler image"
		return
	fi
	# the compiler image: tcc as cc, make, the C library's headers and start files
	root="$BATS_FILE_TMPDIR/cc/root"
	mkdir -p "$root/usr/bin"
	dpkg-deb -x "$cache"/tcc_*.deb "$root"
	rm -rf "$root/usr/share" "$root/usr/bin/i386-tcc"
	ln -s tcc "$root/usr/bin/cc"
	cp /usr/bin/make "$root/usr/bin/"
	# files only (one tar, not a process per file), no docs, no static libraries but the
	# one libc.so's linker script names
	dpkg -L libc6-dev linux-libc-dev | while read -r f; do
		[[ -f $f && $f != /usr/share/* && $f != *.a || $f == */libc_nonshared.a ]] &&
			printf '%s\n' "${f#/}"
	done | tar -C / --no-recursion -cf - -T - | tar -C "$root" -xf -
	printf 'FROM %s\nCOPY root/ /\n' "$BASE" >"$BATS_FILE_TMPDIR/cc/Dockerfile"
	docker build -q -t "$CC_IMAGE" "$BATS_FILE_TMPDIR/cc" >/dev/null
	docker push -q "$CC_IMAGE" >/dev/null
}

teardown_file() {
	if [[ -n ${SOCK:-} ]]; then
		"$BV_SOURCE_DIR/tests/fixtures/dockerd.sh" stop >/dev/null || true
	fi
	"$BV_SOURCE_DIR/tests/fixtures/registry.sh" stop --auth basic >/dev/null 2>&1 || true
	fixture_images_down
}

setup() {
	common_setup
	export BV_CACHE_DIR="$BATS_TEST_TMPDIR/cache"
	export DOCKER_CONFIG="$BATS_TEST_TMPDIR/docker"
	mkdir -p "$DOCKER_CONFIG"
	# a per-test image repository, so tests never see each other's tags
	export REPO="$ADDR/t$BATS_SUITE_TEST_NUMBER-$$/tool"
	new_registry
}

# new_registry: REG, a checkout of the fixture registry on branch main whose origin is the
# bare repository REMOTE.
new_registry() {
	export REMOTE="$BATS_TEST_TMPDIR/remote.git" REG="$BATS_TEST_TMPDIR/reg"
	git init -q --bare -b main "$REMOTE"
	mkdir "$REG"
	cp -r "$BV_SOURCE_DIR/tests/fixtures/bv-registry/." "$REG/"
	git -C "$REG" init -q -b main
	git -C "$REG" add -A
	git -C "$REG" -c user.name=t -c user.email=t@example.org commit -qm init
	git -C "$REG" remote add origin "$REMOTE"
	git -C "$REG" push -q origin main
}

# state: what must not change when publish refuses.
state() {
	git -C "$REG" rev-parse --abbrev-ref HEAD
	git -C "$REG" rev-parse HEAD
	git -C "$REG" status --porcelain --untracked-files=all
	git -C "$REG" for-each-ref --format='%(refname)'
	git -C "$REMOTE" for-each-ref --format='%(refname)'
}

# hello_source DIR: the C tool, with its Makefile and bv-publish.toml.
hello_source() {
	mkdir -p "$1"
	cat >"$1/hello.c" <<-'EOF'
		#include <stdio.h>
		#include <string.h>

		int main(int argc, char **argv)
		{
			if (argc > 1 && !strcmp(argv[1], "--version")) {
				puts("hello 1.0.0");
				return 0;
			}
			printf("hello from C, %s\n", argc > 1 ? argv[1] : "nobody");
			return 0;
		}
	EOF
	printf 'PREFIX ?= /usr/local\n\nhello: hello.c\n\t$(CC) -o $@ hello.c\n\n' >"$1/Makefile"
	printf 'install: hello\n\tmkdir -p $(DESTDIR)$(PREFIX)/bin\n' >>"$1/Makefile"
	printf '\tcp hello $(DESTDIR)$(PREFIX)/bin/hello\n' >>"$1/Makefile"
	cat >"$1/bv-publish.toml" <<-EOF
		name = "hello"
		version = "1.0.0"
		description = "Says hello"
		license = "MIT"
		push_to = "$REPO"
		base_image = "$BASE"
		build_image = "$CC_IMAGE"
		build_packages = []
	EOF
}

# use_branch BRANCH: a project in $PWD/proj whose registry is a clone of BRANCH of REMOTE.
use_branch() {
	git clone -q -b "$1" "$REMOTE" "$BATS_TEST_TMPDIR/published"
	export BV_REGISTRY="$BATS_TEST_TMPDIR/published"
	mkdir proj
	cd proj
	bv init -q >/dev/null
}

@test "a C tool with a Makefile is built, pushed, committed on a branch, then added and run" {
	[[ -z $CC_SKIP ]] || skip "$CC_SKIP"
	hello_source src
	run --separate-stderr bv publish --non-interactive --registry-repo "$REG" src
	assert_success
	[[ $stderr == *"Build system: Makefile (Dockerfile.bv, written)"* ]]
	[[ $stderr == *"No pull request opened"* ]]
	assert_line --index 0 --regexp "^Pushed $REPO:1\.0\.0@sha256:[0-9a-f]{64}$"
	assert_line --index 1 "Committed tools/hello/1.0.0.toml on branch bv-publish/hello-1.0.0 of $REG"
	assert_line --index 2 "Pushed branch bv-publish/hello-1.0.0 to origin"
	digest=${lines[0]##*@}
	# the generated Dockerfile.bv is marked, two-stage, FROM the configured images
	run head -1 src/Dockerfile.bv
	assert_output --partial "# Generated by bv publish"
	grep -qx "FROM $CC_IMAGE AS build" src/Dockerfile.bv
	grep -qx "FROM $BASE" src/Dockerfile.bv
	# the checkout is back on main, clean; the branch holds one commit with the manifest
	assert_equal "$(git -C "$REG" rev-parse --abbrev-ref HEAD)" main
	assert_equal "$(git -C "$REG" status --porcelain)" ""
	assert_equal "$(git -C "$REG" rev-list --count main..bv-publish/hello-1.0.0)" 1
	run git -C "$REMOTE" show bv-publish/hello-1.0.0:tools/hello/1.0.0.toml
	assert_output --partial "reference = \"$REPO:1.0.0\""
	assert_output --partial "digest = \"$digest\""
	run git -C "$REMOTE" show bv-publish/hello-1.0.0:index.json
	[[ $(jq -r '.tools[] | select(.id == "hello") | .versions[0]' <<<"$output") == 1.0.0 ]]
	# the registry serves what the manifest pins
	run skopeo inspect --raw --tls-verify=false "docker://$REPO:1.0.0"
	assert_success
	assert_equal "sha256:$(printf '%s' "$output" | sha256sum | cut -d' ' -f1)" "$digest"
	use_branch bv-publish/hello-1.0.0
	run bv add hello
	assert_success
	run bv run hello world
	assert_success
	assert_output "hello from C, world"
}

@test "a directory with a Dockerfile is published as it is, and runs" {
	mkdir src
	printf '#!/bin/sh\necho "greetings, ${1:-nobody}"\n' >src/greet
	chmod +x src/greet
	printf 'FROM %s\nCOPY greet /usr/local/bin/greet\n' "$BASE" >src/Dockerfile
	cp src/Dockerfile dockerfile.before
	run --separate-stderr bv publish --non-interactive --tool-name greet --tool-version 2.1 \
		--push-to "$REPO" --registry-repo "file://$REMOTE" --no-pr src
	assert_success
	[[ $stderr == *"Build system: Dockerfile (Dockerfile)"* ]]
	[[ $stderr == *"No pull request opened (--no-pr)"* ]]
	assert_line --index 1 "Committed tools/greet/2.1.toml on branch bv-publish/greet-2.1 of file://$REMOTE"
	[[ ! -e src/Dockerfile.bv ]]
	cmp src/Dockerfile dockerfile.before
	use_branch bv-publish/greet-2.1
	run bv add greet
	assert_success
	run bv run greet you
	assert_success
	assert_output "greetings, you"
}

@test "with --sign-key the image is signed and the manifest trusts the key: add --require-signed runs it" {
	python3 "$BV_SOURCE_DIR/tests/fixtures/cosign_sign.py" keygen "$BATS_TEST_TMPDIR"
	mkdir src
	printf '#!/bin/sh\necho "signed, ${1:-nobody}"\n' >src/greet
	chmod +x src/greet
	printf 'FROM %s\nCOPY greet /usr/local/bin/greet\n' "$BASE" >src/Dockerfile
	# a key that cannot sign is refused before anything is built
	echo "not a key" >bad.key
	before=$(state)
	run bv publish --non-interactive --tool-name greet --tool-version 3.0 --push-to "$REPO" \
		--registry-repo "$REG" --no-pr --sign-key bad.key src
	assert_failure
	assert_output --partial "not an unencrypted PEM ECDSA P-256 private key"
	[ "$(state)" = "$before" ]
	run bv publish --non-interactive --tool-name greet --tool-version 3.0 --push-to "$REPO" \
		--registry-repo "$REG" --no-pr --sign-key "$BATS_TEST_TMPDIR/cosign.key" src
	assert_success
	assert_line --regexp "^Signed .*:sha256-[0-9a-f]{64}\.sig$"
	digest=$(sed -n 's/^Pushed .*@\(sha256:[0-9a-f]*\)$/\1/p' <<<"$output")
	# an independent check of the signature bv pushed
	python3 "$BV_SOURCE_DIR/tests/fixtures/cosign_sign.py" verify --pub "$BATS_TEST_TMPDIR/cosign.pub" \
		"$REPO@$digest"
	git -C "$REG" show bv-publish/greet-3.0:tools/greet/3.0.toml >published.toml
	grep -qx 'image = "sigstore"' published.toml
	use_branch bv-publish/greet-3.0
	run bv add --require-signed greet
	assert_success
	run bv run greet you
	assert_success
	assert_output "signed, you"
}

# fake_forge: a loopback stand-in for GitHub's REST API that records one request in
# $BATS_TEST_TMPDIR/forge.req (method and path, the Authorization header, the body) and
# answers 201 with a pull request's html_url; FORGE_PID and BV_GITHUB_API are set.
fake_forge() {
	python3 - "$BATS_TEST_TMPDIR" <<-'EOF' &
		import http.server, json, sys
		d = sys.argv[1]
		class H(http.server.BaseHTTPRequestHandler):
		    def do_POST(self):
		        body = self.rfile.read(int(self.headers["Content-Length"]))
		        with open(d + "/forge.req", "w") as f:
		            f.write("%s %s\n%s\n%s\n" % (self.command, self.path,
		                    self.headers["Authorization"], body.decode()))
		        out = json.dumps({"html_url": "https://github.com/bv-test/registry/pull/7"})
		        self.send_response(201)
		        self.send_header("Content-Type", "application/json")
		        self.send_header("Content-Length", str(len(out)))
		        self.end_headers()
		        self.wfile.write(out.encode())
		    def log_message(self, *a):
		        pass
		s = http.server.HTTPServer(("127.0.0.1", 0), H)
		open(d + "/forge.port.tmp", "w").write(str(s.server_address[1]))
		__import__("os").rename(d + "/forge.port.tmp", d + "/forge.port")
		s.handle_request()
	EOF
	FORGE_PID=$!
	for _ in $(seq 100); do
		[[ -s $BATS_TEST_TMPDIR/forge.port ]] && break
		sleep 0.1
	done
	export BV_GITHUB_API="http://127.0.0.1:$(<"$BATS_TEST_TMPDIR/forge.port")"
}

@test "with a token, the pull request is opened through the forge's API" {
	mkdir src
	printf '#!/bin/sh\necho pr\n' >src/prtool
	chmod +x src/prtool
	printf 'FROM %s\nCOPY prtool /usr/local/bin/prtool\n' "$BASE" >src/Dockerfile
	# origin names a GitHub repository; pushes go to the bare repository
	git -C "$REG" remote set-url origin https://github.com/bv-test/registry.git
	git -C "$REG" remote set-url --push origin "$REMOTE"
	fake_forge
	run --separate-stderr env GITHUB_TOKEN=ghp_secret123 "$BV" publish --non-interactive \
		--tool-name prtool --tool-version 3 --push-to "$REPO" --registry-repo "$REG" src
	kill "$FORGE_PID" 2>/dev/null || true
	[[ $status -eq 0 ]] || echo "$stderr" | tail -5 >&3
	assert_success
	assert_line --index 2 "Pushed branch bv-publish/prtool-3 to origin"
	assert_line --index 3 "Opened pull request https://github.com/bv-test/registry/pull/7"
	[[ $output != *ghp_secret123* && $stderr != *ghp_secret123* ]]
	run cat "$BATS_TEST_TMPDIR/forge.req"
	assert_line --index 0 "POST /repos/bv-test/registry/pulls"
	assert_line --index 1 "Bearer ghp_secret123"
	[[ $(jq -r '.head + " " + .base' <<<"${lines[2]}") == "bv-publish/prtool-3 main" ]]
	git -C "$REMOTE" rev-parse --verify -q refs/heads/bv-publish/prtool-3
}

@test "with no engine, buildah builds the tool" {
	command -v buildah >/dev/null || skip "buildah is not installed"
	# a private image store, so the images buildah pulls do not pile up in the system's
	cat >storage.conf <<-EOF
		[storage]
		driver = "vfs"
		graphroot = "$BATS_TEST_TMPDIR/buildah/root"
		runroot = "$BATS_TEST_TMPDIR/buildah/run"
	EOF
	export CONTAINERS_STORAGE_CONF="$PWD/storage.conf"
	# one stage with a RUN step, so buildah's chroot isolation runs something
	mkdir src
	printf '#!/bin/sh\necho "built by buildah, $1"\n' >src/bud
	printf 'FROM %s\nCOPY bud /usr/local/bin/bud\nRUN chmod 755 /usr/local/bin/bud\n' \
		"$BASE" >src/Dockerfile
	run --separate-stderr env DOCKER_HOST="unix://$BATS_TEST_TMPDIR/nothing.sock" \
		"$BV" publish --non-interactive --tool-name bud --tool-version 1.0.2 \
		--push-to "$REPO" --registry-repo "$REG" src
	if [[ $status -ne 0 && $stderr == *"buildah"*"permission"* ]]; then
		skip "buildah cannot build here: ${stderr##*$'\n'}"
	fi
	[[ $status -eq 0 ]] || echo "$stderr" | tail -20 >&3
	assert_success
	[[ $stderr == *"Building bud 1.0.2 with buildah"* ]]
	assert_line --index 1 "Committed tools/bud/1.0.2.toml on branch bv-publish/bud-1.0.2 of $REG"
	use_branch bv-publish/bud-1.0.2
	run bv add bud
	assert_success
	run bv run bud here
	assert_success
	assert_output "built by buildah, here"
}

@test "a source without a build system is refused, the checkout untouched" {
	mkdir src
	echo notes >src/README
	before=$(state)
	run --separate-stderr bv publish --non-interactive --tool-name x --tool-version 1 \
		--push-to "$REPO" --registry-repo "$REG" src
	assert_failure
	assert_equal "$stderr" "error: no build system found in '$PWD/src' (looked for Dockerfile, environment.yml, pyproject.toml with [build-system], requirements.txt, Cargo.toml and Makefile)"
	assert_equal "$(state)" "$before"
}

@test "a failing Dockerfile build shows the build's last lines, the checkout untouched" {
	mkdir src
	printf 'FROM %s\nRUN echo compiling the thing && echo the-last-words >&2 && exit 3\n' \
		"$BASE" >src/Dockerfile
	before=$(state)
	run --separate-stderr bv publish --non-interactive --tool-name broken --tool-version 1 \
		--push-to "$REPO" --registry-repo "$REG" src
	assert_failure
	error=$(grep -A100 '^error:' <<<"$stderr")
	[[ $error == "error: could not build tool 'broken': "*"returned a non-zero code: 3; the build's last lines:"* ]]
	[[ $error == *"    the-last-words"* ]]
	assert_equal "$(state)" "$before"
}

@test "a push the registry refuses (wrong credentials) fails once, the checkout untouched" {
	"$BV_SOURCE_DIR/tests/fixtures/registry.sh" start --auth basic >/dev/null
	basic=$("$BV_SOURCE_DIR/tests/fixtures/registry.sh" addr --auth basic)
	printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$basic" \
		"$(printf testuser:wrongsecret | base64)" >"$DOCKER_CONFIG/config.json"
	mkdir src
	printf 'FROM %s\n' "$BASE" >src/Dockerfile
	before=$(state)
	run --separate-stderr bv publish --non-interactive --tool-name locked --tool-version 1 \
		--push-to "$basic/locked/tool" --registry-repo "$REG" src
	assert_failure
	[[ $(grep -c '^error:' <<<"$stderr") == 1 ]]
	[[ $stderr == *"error: "*"$basic"* ]]
	[[ $stderr != *wrongsecret* ]]
	assert_equal "$(state)" "$before"
}

@test "a dirty checkout or an existing branch is refused before anything is built" {
	mkdir src
	printf 'FROM %s\n' "$BASE" >src/Dockerfile
	echo scratch >"$REG/notes.txt"
	before=$(state)
	run --separate-stderr bv publish --non-interactive --tool-name t --tool-version 1 \
		--push-to "$REPO" --registry-repo "$REG" src
	assert_failure
	assert_equal "$stderr" "$(printf 'Build system: Dockerfile (Dockerfile)\nerror: registry checkout '\''%s'\'' has uncommitted changes; commit or stash them first' "$REG")"
	assert_equal "$(state)" "$before"
	rm "$REG/notes.txt"
	git -C "$REG" branch bv-publish/t-1
	before=$(state)
	run --separate-stderr bv publish --non-interactive --tool-name t --tool-version 1 \
		--push-to "$REPO" --registry-repo "$REG" src
	assert_failure
	[[ $stderr == *"error: branch 'bv-publish/t-1' exists already in registry checkout '$REG'; delete it or publish another version" ]]
	[[ $stderr != *Building* ]]
	assert_equal "$(state)" "$before"
}

@test "an image without the tool's binary fails the conformance probe, nothing committed" {
	mkdir src
	printf 'FROM %s\n' "$BASE" >src/Dockerfile
	before=$(state)
	run --separate-stderr bv publish --non-interactive --tool-name absent --tool-version 1 \
		--push-to "$REPO" --registry-repo "$REG" src
	assert_failure
	[[ $stderr == *"error: the conformance probe of 'absent' 1 failed: binary 'absent' not in the image" ]]
	assert_equal "$(state)" "$before"
}

@test "a branch origin refuses is deleted again, the checkout untouched" {
	mkdir src
	printf '#!/bin/sh\necho ok\n' >src/refused
	chmod +x src/refused
	printf 'FROM %s\nCOPY refused /usr/local/bin/refused\n' "$BASE" >src/Dockerfile
	git -C "$REG" remote set-url origin "$BATS_TEST_TMPDIR/no-such-remote.git"
	before=$(state)
	run --separate-stderr bv publish --non-interactive --tool-name refused --tool-version 1 \
		--push-to "$REPO" --registry-repo "$REG" src
	assert_failure
	[[ $stderr == *"error: could not push branch 'bv-publish/refused-1' to origin: "* ]]
	assert_equal "$(state)" "$before"
}

@test "on a terminal a missing value is asked for; --no-push builds only" {
	command -v script >/dev/null || skip "script (util-linux) is not installed"
	mkdir src
	printf 'FROM %s\n' "$BASE" >src/Dockerfile
	printf 'name = "asked"\n' >src/bv-publish.toml
	before=$(state)
	# script gives bv a terminal; the answer comes through it
	run bash -c 'printf "4.5\n" | script -qec "$1" /dev/null' _ \
		"'$BV' publish --no-push --registry-repo '$REG' src"
	assert_success
	assert_output --partial "Tool version: "
	assert_output --partial "Built asked 4.5 (--no-push: nothing pushed or committed)"
	assert_equal "$(state)" "$before"
}

@test "a missing version without a terminal is one clear error" {
	mkdir src
	printf 'FROM %s\n' "$BASE" >src/Dockerfile
	printf 'name = "noversion"\npush_to = "%s"\n' "$REPO" >src/bv-publish.toml
	before=$(state)
	# stdin is not a terminal: no prompt even without --non-interactive
	run --separate-stderr bv publish --registry-repo "$REG" src </dev/null
	assert_failure
	assert_equal "$stderr" "error: missing tool version: give --tool-version or 'version' in bv-publish.toml"
	assert_equal "$(state)" "$before"
	run --separate-stderr bv publish --non-interactive --tool-version 1 src
	assert_failure
	assert_equal "$stderr" "error: missing registry repository: give --registry-repo or 'registry_repo' in bv-publish.toml"
	# an unknown key in bv-publish.toml is an error, not silently dropped
	printf 'verison = "1"\n' >>src/bv-publish.toml
	run --separate-stderr bv publish --non-interactive --tool-version 1 src
	assert_failure
	[[ $stderr == "error: "*"bv-publish.toml:3"*"verison"* ]]
}
