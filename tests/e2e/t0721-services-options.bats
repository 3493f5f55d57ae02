#!/usr/bin/env bats
# [[services]] options with docker compose's meaning, against the private dockerd of
# tests/fixtures/dockerd.sh: build_args and target, working_dir and user, named and anonymous
# volumes ([volumes], bv down --volumes), BuildKit (buildkit = true, DOCKER_BUILDKIT=1) and
# its fallback on Podman's service, unknown keys refused, host paths outside the project, and
# .dockerignore read as the docker CLI reads it.  The engine's view is read with curl.

load lib/common

api() {
	curl -sf --unix-socket "$SOCK" "http://localhost/v1.41$1"
}

inspect() {
	api "/containers/$1/json" | jq -r "$2"
}

# status PATH: the HTTP status of GET PATH
status() {
	curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" "http://localhost/v1.41$1"
}

setup_file() {
	fixture_engine_up
	export BASE="$ADDR/biocontainers/samtools:1.16.1--debian"
	export SLEEP='["/bin/busybox", "sh", "-c", "trap \"exit 0\" TERM; /bin/busybox sleep 3600 & wait"]'
	export NAME="opt-$$-$RANDOM"
	export PROJ="$BATS_FILE_TMPDIR/proj"
	cp -r "$BV_SOURCE_DIR/tests/e2e/fixtures/services-options" "$PROJ"
	sed -e "s|@BASE@|$BASE|g" "$PROJ/opts/Dockerfile.in" >"$PROJ/opts/Dockerfile"
	# SLEEP as a sed replacement: its '\' and '&' escaped
	local sleep_sed=${SLEEP//\\/\\\\}
	sleep_sed=${sleep_sed//&/\\&}
	sed -e "s|@NAME@|$NAME|g" -e "s|@SLEEP@|$sleep_sed|g" "$PROJ/bv.toml.in" >"$PROJ/bv.toml"
	rm "$PROJ/bv.toml.in" "$PROJ/opts/Dockerfile.in"
}

teardown_file() {
	local p pod_sock
	if [[ -s $BATS_FILE_TMPDIR/podman-started ]]; then
		pod_sock=$(<"$BATS_FILE_TMPDIR/podman-started")
		if [[ -f $BATS_FILE_TMPDIR/pod/bv.toml ]]; then
			(cd "$BATS_FILE_TMPDIR/pod" && DOCKER_HOST="unix://$pod_sock" "$BV" down) \
				>/dev/null 2>&1 || true
		fi
		"$BV_SOURCE_DIR/tests/fixtures/podman-service.sh" stop >/dev/null || true
	fi
	if [[ -n ${SOCK:-} ]]; then
		for p in "$BATS_FILE_TMPDIR"/*/bv.toml; do
			if [[ -f $p && $p != */pod/bv.toml ]]; then
				(cd "${p%/bv.toml}" && "$BV" down --volumes) >/dev/null 2>&1 || true
			fi
		done
		curl -s --unix-socket "$SOCK" -X DELETE -o /dev/null \
			"http://localhost/v1.41/containers/bv-ditable-docker?force=1" || true
		"$BV_SOURCE_DIR/tests/fixtures/dockerd.sh" stop >/dev/null || true
	fi
	fixture_images_down
}

setup() {
	common_setup
	cd "$PROJ" || return 1
}

@test "target and build_args reach the build; working_dir, user and volumes the container" {
	run bv up
	assert_success
	assert_line "opts: building bv-$NAME-opts:latest"
	assert_line "created volume bv-${NAME}_data"
	assert_line "opts: running"
	# the image: the "base" stage only, built with the build argument
	img=$(inspect "bv-$NAME-opts" .Image)
	[[ $(api "/images/$img/json" | jq -r .Config.Labels.stage) == base ]]
	[[ $(api "/images/$img/json" | jq -r '.Config.Env | index("SEEN_GREETING=from-build-args") != null') == true ]]
	# the container
	[[ $(inspect "bv-$NAME-opts" .Config.WorkingDir) == /srv/work ]]
	[[ $(inspect "bv-$NAME-opts" .Config.User) == 1000:1000 ]]
	mounts=$(inspect "bv-$NAME-opts" .Mounts)
	[[ $(jq -r '.[] | select(.Destination == "/data") | "\(.Type) \(.Name) \(.RW)"' <<<"$mounts") == "volume bv-${NAME}_data true" ]]
	[[ $(jq -r '.[] | select(.Destination == "/data-ro") | "\(.Type) \(.Name) \(.RW)"' <<<"$mounts") == "volume bv-${NAME}_data false" ]]
	[[ $(jq -r '.[] | select(.Destination == "/anon") | .Type' <<<"$mounts") == volume ]]
	[[ $(jq -r '.[] | select(.Destination == "/shared") | "\(.Type) \(.Source) \(.RW)"' <<<"$mounts") == "bind $PROJ/shared false" ]]
	# the named volume is the project's
	vol=$(api "/volumes/bv-${NAME}_data")
	[[ $(jq -r '.Labels["bv.project"]' <<<"$vol") == "$PROJ" ]]
	[[ $(jq -r '.Labels["bv.volume"]' <<<"$vol") == data ]]
}

@test "buildkit = true builds through BuildKit: its history, its target, its arguments" {
	img=$(inspect "bv-$NAME-bk" .Image)
	# BuildKit marks every step it made; the classic builder leaves the comment empty
	[[ $(api "/images/$img/history" | jq -r '[.[] | select(.Comment == "buildkit.dockerfile.v0")] | length') -gt 0 ]]
	[[ $(api "/images/$img/json" | jq -r .Config.Labels.stage) == final ]]
	[[ $(api "/images/$img/json" | jq -r '.Config.Env | index("SEEN_GREETING=via-buildkit") != null') == true ]]
	[[ $(api "/images/$img/json" | jq -r '.Config.Labels["bv.built-as"]') == bk ]]
	# its steps come through as progress, and up with -v shows them
	run bv up -v bk
	assert_success
	assert_line "bk: building bv-$NAME-bk:latest with BuildKit"
	assert_line --regexp '^bk \| \[base [0-9]/[0-9]\] COPY hello.txt /hello.txt'
	# DOCKER_BUILDKIT=1 does the same for a service that does not ask for it
	DOCKER_BUILDKIT=1 run bv up opts
	assert_success
	assert_line "opts: building bv-$NAME-opts:latest with BuildKit"
	img=$(inspect "bv-$NAME-opts" .Image)
	[[ $(api "/images/$img/history" | jq -r '[.[] | select(.Comment == "buildkit.dockerfile.v0")] | length') -gt 0 ]]
	[[ $(api "/images/$img/json" | jq -r .Config.Labels.stage) == base ]]
}

@test "a BuildKit build that fails says why" {
	local p="$BATS_FILE_TMPDIR/bkfail"
	mkdir -p "$p/ctx"
	printf 'FROM scratch\nCOPY nope /x\n' >"$p/ctx/Dockerfile"
	cat >"$p/bv.toml" <<-EOF
		[project]
		name = "$NAME-bkfail"
		[[services]]
		name = "broken"
		build = "ctx"
		buildkit = true
	EOF
	cd "$p"
	run bv up
	assert_failure
	assert_output --partial "could not build service 'broken': "
	assert_output --partial '"/nope" not found'
}

@test "named volumes outlive down and are reused; down --volumes removes them" {
	mp=$(api "/volumes/bv-${NAME}_data" | jq -r .Mountpoint)
	echo kept >"$mp/marker"
	anon=$(inspect "bv-$NAME-opts" '.Mounts[] | select(.Destination == "/anon") | .Name')
	run bv down
	assert_success
	# the anonymous volume went with its container, the named one stayed
	[[ $(status "/volumes/$anon") == 404 ]]
	[[ $(status "/volumes/bv-${NAME}_data") == 200 ]]
	run bv up opts
	assert_success
	refute_line --partial "created volume"
	[[ $(cat "$(api "/volumes/bv-${NAME}_data" | jq -r .Mountpoint)/marker") == kept ]]
	# a recreated container gets a new anonymous volume
	anon1=$(inspect "bv-$NAME-opts" '.Mounts[] | select(.Destination == "/anon") | .Name')
	[[ $anon1 != "$anon" ]]
	sed -i 's|^user = "1000:1000"|user = "1000"|' bv.toml
	run bv up opts
	assert_success
	assert_line "opts: recreating (its definition changed)"
	[[ $(inspect "bv-$NAME-opts" .Config.User) == 1000 ]]
	anon2=$(inspect "bv-$NAME-opts" '.Mounts[] | select(.Destination == "/anon") | .Name')
	[[ $anon2 != "$anon1" && $(status "/volumes/$anon1") == 404 ]]
	run bv down --volumes
	assert_success
	assert_line "removed volume bv-${NAME}_data"
	[[ $(status "/volumes/bv-${NAME}_data") == 404 ]]
	[[ $(status "/volumes/$anon2") == 404 ]]
}

@test "unknown keys in [[services]] and its tables are refused with file and line" {
	local p="$BATS_FILE_TMPDIR/typo"
	mkdir -p "$p"
	cat >"$p/bv.toml" <<-EOF
		[project]
		name = "$NAME-typo"

		[[services]]
		name = "web"
		image = "$BASE"
		buld = "web"
	EOF
	cd "$p"
	run bv up
	assert_failure
	assert_output "error: $p/bv.toml:7: unknown key 'buld' in [[services]] 'web'"
	run bv ps
	assert_failure
	sed -i 's/^buld = "web"$/healthcheck = { test = ["NONE"], intervl = "1s" }/' bv.toml
	run bv up
	assert_failure
	assert_output "error: $p/bv.toml:7: unknown key 'intervl' in [services.healthcheck] of service 'web'"
	[[ $(status "/networks/bv-$NAME-typo-net") == 404 ]]
}

@test "host paths outside the project need allow_outside; missing ones are never created" {
	local p="$BATS_FILE_TMPDIR/paths/proj" out="$BATS_FILE_TMPDIR/paths/outside"
	mkdir -p "$p/ctx" "$out"
	echo out >"$out/file"
	printf 'FROM %s\n' "$BASE" >"$p/ctx/Dockerfile"
	ln -s "$out" "$p/sneaky"
	write() { # write VOLUME [EXTRA-LINE]
		cat >"$p/bv.toml" <<-EOF
			[project]
			name = "$NAME-paths"
			[[services]]
			name = "s"
			image = "$BASE"
			command = $SLEEP
			volumes = ["$1"]
			$2
		EOF
	}
	cd "$p"
	write "../outside:/x"
	run bv up
	assert_failure
	assert_output "error: $p/bv.toml:7: volume '$out:/x' of service 's' is outside the project (it is '$out'); set allow_outside = true on the service to allow it"
	[[ $(status "/networks/bv-$NAME-paths-net") == 404 ]]
	# a symlink in the project that leads out of it is outside too
	write "./sneaky:/x"
	run bv up
	assert_failure
	assert_output --partial "volume '$p/sneaky:/x' of service 's' is outside the project (it is '$out')"
	write "/etc/hostname:/x:ro"
	run bv up
	assert_failure
	assert_output --partial "is outside the project (it is '/etc/hostname')"
	# missing: refused before anything exists, with allow_outside or without
	write "./missing/dir:/x" "allow_outside = true"
	run bv up
	assert_failure
	assert_output "error: $p/bv.toml:7: volume '$p/missing/dir:/x' of service 's' does not exist ('$p/missing/dir'); bv does not create host paths: create it first"
	[[ ! -e $p/missing ]]
	[[ $(status "/networks/bv-$NAME-paths-net") == 404 ]]
	[[ $(status "/containers/bv-$NAME-paths-s/json") == 404 ]]
	# allowed
	write "../outside:/x:ro" "allow_outside = true"
	run bv up
	assert_success
	[[ $(inspect "bv-$NAME-paths-s" '.Mounts[0] | "\(.Source) \(.RW)"') == "$out false" ]]
	run bv down
	assert_success
	# a build context outside
	cat >"$p/bv.toml" <<-EOF
		[project]
		name = "$NAME-paths"
		[[services]]
		name = "b"
		build = "../outside"
	EOF
	run bv up
	assert_failure
	assert_output --partial "build context '$out' of service 'b' is outside the project"
}

@test ".dockerignore: bv sends what the docker CLI sends, for every row of the table" {
	local p="$BATS_FILE_TMPDIR/ditable" docker=${BV_DOCKER_CLI:-/usr/bin/docker}
	[[ -x $docker ]] || skip "the docker CLI ($docker) is not installed"
	mkdir -p "$p/ctx"
	python3 "$BV_SOURCE_DIR/tests/e2e/fixtures/dockerignore/table.py" "$p/ctx"
	printf 'FROM %s\nCOPY . /ctx/\n' "$BASE" >"$p/ctx/Dockerfile"
	cat >"$p/bv.toml" <<-EOF
		[project]
		name = "$NAME-di"
		[[services]]
		name = "ctx"
		build = "ctx"
		command = $SLEEP
	EOF
	cd "$p"
	run bv up
	assert_success
	# Docker's own reading: the legacy builder, whose context the CLI makes
	DOCKER_BUILDKIT=0 "$docker" build -q -t "bv-ditable-docker:latest" ctx >/dev/null
	curl -sf --unix-socket "$SOCK" -H 'Content-Type: application/json' \
		-d '{"Image": "bv-ditable-docker:latest", "Cmd": ["/x"]}' \
		"http://localhost/v1.41/containers/create?name=bv-ditable-docker" >/dev/null
	api "/containers/bv-ditable-docker/export" | tar -t | grep '^ctx/r..' | grep -v '/$' | sort >docker.txt
	api "/containers/bv-$NAME-di-ctx/export" | tar -t | grep '^ctx/r..' | grep -v '/$' | sort >bv.txt
	# the table is a real test: every row but 16 excludes something, and not everything
	(($(wc -l <docker.txt) > 100 && $(wc -l <docker.txt) < 22 * 20))
	for r in $(seq -w 1 22); do
		[[ $r == 16 || $(grep -c "^ctx/r$r/" docker.txt) -lt 20 ]] || {
			echo "row $r excludes nothing"
			false
		}
	done
	# the rows where bv once differed: lib/x is skipped whole; "**." is not "*."
	grep -q '^ctx/r07/lib/a.so$' docker.txt
	! grep -q '^ctx/r07/lib/x/b.so$' docker.txt
	grep -q '^ctx/r16/lib/x/c.txt$' docker.txt
	run diff docker.txt bv.txt
	assert_success
}

# Podman's service has no BuildKit: bv says so once per up and builds with the classic API.
@test "podman: buildkit = true falls back to the classic builder with one message" {
	local podman=${BV_PODMAN:-$(command -v podman || echo /usr/bin/podman)}
	[[ -x $podman ]] || skip "podman is not installed"
	"$BV_SOURCE_DIR/tests/fixtures/podman-service.sh" start >"$BATS_FILE_TMPDIR/podman-started"
	PSOCK=$(<"$BATS_FILE_TMPDIR/podman-started")
	local p="$BATS_FILE_TMPDIR/pod"
	mkdir -p "$p/ctx"
	printf 'FROM %s AS base\nARG V=none\nENV SEEN=$V\nFROM base AS other\nENV OTHER=1\n' \
		"$BASE" >"$p/ctx/Dockerfile"
	cat >"$p/bv.toml" <<-EOF
		[project]
		name = "$NAME-pod"
		[volumes]
		pdata = {}
		[[services]]
		name = "pb"
		build = "ctx"
		buildkit = true
		target = "base"
		build_args = { V = "podman-arg" }
		working_dir = "/srv"
		volumes = ["pdata:/pdata:ro", "/panon"]
		command = $SLEEP
		[[services]]
		name = "pb2"
		build = "ctx"
		command = $SLEEP
	EOF
	cd "$p"
	# two builds that want BuildKit (one through DOCKER_BUILDKIT): one message
	DOCKER_BUILDKIT=1 DOCKER_HOST="unix://$PSOCK" run bv up
	assert_success
	assert_line "pb: BuildKit is not available on this engine (Podman's service); building with the classic builder"
	assert_line "pb: building bv-$NAME-pod-pb:latest"
	assert_line "pb2: building bv-$NAME-pod-pb2:latest"
	[[ $(grep -c BuildKit <<<"$output") == 1 ]]
	info=$(curl -sf --unix-socket "$PSOCK" "http://localhost/v1.41/containers/bv-$NAME-pod-pb/json")
	[[ $(jq -r '.Config.Env | index("SEEN=podman-arg") != null' <<<"$info") == true ]]
	[[ $(jq -r '.Config.Env | index("OTHER=1") == null' <<<"$info") == true ]]
	# the other options on Podman too
	[[ $(jq -r .Config.WorkingDir <<<"$info") == /srv ]]
	[[ $(jq -r '.Mounts[] | select(.Destination == "/pdata") | "\(.Type) \(.Name) \(.RW)"' <<<"$info") == "volume bv-$NAME-pod_pdata false" ]]
	[[ $(jq -r '.Mounts[] | select(.Destination == "/panon") | .Type' <<<"$info") == volume ]]
	DOCKER_HOST="unix://$PSOCK" run bv down --volumes
	assert_success
	assert_line "removed volume bv-$NAME-pod_pdata"
	run curl -s -o /dev/null -w '%{http_code}' --unix-socket "$PSOCK" \
		"http://localhost/v1.41/volumes/bv-$NAME-pod_pdata"
	assert_output 404
}
