#!/usr/bin/env bats
# Project services (bv up, ps, logs, restart, down) against a private dockerd
# (tests/fixtures/dockerd.sh).  The project (tests/e2e/fixtures/services) has a `web` service
# built from a context whose Dockerfile starts FROM the fixture registry's Debian image and
# serves files with busybox httpd, behind a healthcheck, and an `api` service pulled from
# the registry that depends on it and reaches it by its service name.  Everything is checked
# through the Engine API with curl, never through bv.

load lib/common

api() {
	curl -sf --unix-socket "$SOCK" "http://localhost/v1.41$1"
}

# inspect CONTAINER JQ-FILTER
inspect() {
	api "/containers/$1/json" | jq -r "$2"
}

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Nanoseconds since the epoch of an RFC 3339 time from the engine.
ns() {
	python3 -c 'import sys, re, calendar, time
t = sys.argv[1]
m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z$", t)
secs = calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S"))
print(secs * 10**9 + int((m.group(2) or "0").ljust(9, "0")[:9]))' "$1"
}

setup_file() {
	fixture_engine_up
	export BASE="$ADDR/biocontainers/samtools:1.16.1--debian"
	# another Debian image, which nothing but api uses, removed so that up has to pull it
	export API_IMAGE="$ADDR/biocontainers/bwa:0.7.17--debian"
	# a long-running command that stops at once on TERM (as PID 1 it has to trap it)
	export SLEEP='["/bin/busybox", "sh", "-c", "trap \"exit 0\" TERM; /bin/busybox sleep 3600 & wait"]'
	# a name no other run shares, so leftovers of an earlier run cannot interfere
	export NAME="svc-$$-$RANDOM"
	export PORT
	PORT=$(free_port)
	export PROJ="$BATS_FILE_TMPDIR/proj"
	cp -r "$BV_SOURCE_DIR/tests/e2e/fixtures/services" "$PROJ"
	sed -e "s|@BASE@|$BASE|g" "$PROJ/web/Dockerfile.in" >"$PROJ/web/Dockerfile"
	sed -e "s|@BASE@|$BASE|g" -e "s|@API_IMAGE@|$API_IMAGE|g" -e "s|@NAME@|$NAME|g" \
		-e "s|@PORT@|$PORT|g" \
		"$PROJ/bv.toml.in" >"$PROJ/bv.toml"
	rm "$PROJ/bv.toml.in"
	cp /bin/busybox "$PROJ/web/busybox"
	curl -s --unix-socket "$SOCK" -X DELETE -o /dev/null \
		"http://localhost/v1.41/images/$API_IMAGE?force=1"
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
				(cd "${p%/bv.toml}" && "$BV" down) >/dev/null 2>&1 || true
			fi
		done
		"$BV_SOURCE_DIR/tests/fixtures/dockerd.sh" stop >/dev/null || true
	fi
	fixture_images_down
}

setup() {
	common_setup
	cd "$PROJ" || return 1
}

@test "up builds web, pulls api and starts api only once web is healthy" {
	run bv up
	assert_success
	assert_line "web: building bv-$NAME-web:latest"
	assert_line "api: pulling $API_IMAGE"
	assert_line "web: healthy"
	assert_line "api: running"
	[[ $(inspect "bv-$NAME-web" .State.Health.Status) == healthy ]]
	[[ $(inspect "bv-$NAME-api" .State.Status) == running ]]
	# api started after web turned healthy, in the engine's own event order (the health log
	# keeps only the last five checks, so it cannot tell when web first passed)
	events=$(curl -s --unix-socket "$SOCK" -G "http://localhost/v1.41/events" \
		--data-urlencode since=0 --data-urlencode "until=$(($(date +%s) + 1))" \
		--data-urlencode 'filters={"type":["container"]}')
	healthy_ns=$(jq -s --arg n "bv-$NAME-web" '[.[] | select(.Actor.Attributes.name == $n
		and (.status // .Action) == "health_status: healthy")][0].timeNano' <<<"$events")
	start_ns=$(jq -s --arg n "bv-$NAME-api" '[.[] | select(.Actor.Attributes.name == $n
		and (.status // .Action) == "start")] | last | .timeNano' <<<"$events")
	[[ $healthy_ns != null && $start_ns != null ]]
	((start_ns >= healthy_ns))
	# labels, names, the network and the DNS alias
	[[ $(inspect "bv-$NAME-web" '.Config.Labels["bv.project"]') == "$PROJ" ]]
	[[ $(inspect "bv-$NAME-api" '.Config.Labels["bv.service"]') == api ]]
	[[ $(api "/networks/bv-$NAME-net" | jq -r '.Labels["bv.project"]') == "$PROJ" ]]
	[[ $(inspect "bv-$NAME-web" ".NetworkSettings.Networks[\"bv-$NAME-net\"].Aliases | index(\"web\") != null") == true ]]
	[[ $(inspect "bv-$NAME-web" '.Config.Env | index("GREETING=hello") != null') == true ]]
}

@test "the image holds what .dockerignore lets through, and nothing else" {
	run curl -sf "http://127.0.0.1:$PORT/"
	assert_success
	assert_output "<p>hello from web</p>"
	run curl -sf "http://127.0.0.1:$PORT/keep.tmp"
	assert_success
	assert_output "kept"
	run curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/secret.txt"
	assert_output 404
	run curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/scratch.tmp"
	assert_output 404
}

@test "the port is published on 127.0.0.1 only" {
	[[ $(inspect "bv-$NAME-web" '.HostConfig.PortBindings["8080/tcp"][0].HostIp') == 127.0.0.1 ]]
	[[ $(inspect "bv-$NAME-web" '.NetworkSettings.Ports["8080/tcp"] | map(.HostIp) | unique | join(",")') == 127.0.0.1 ]]
	[[ $(inspect "bv-$NAME-web" '.NetworkSettings.Ports["8080/tcp"][0].HostPort') == "$PORT" ]]
	run curl -sf "http://127.0.0.1:$PORT/"
	assert_success
}

@test "api reached web by its service name" {
	run bv logs api
	assert_success
	assert_line "api-started"
	assert_line "<p>hello from web</p>"
	assert_line "reached-web"
}

@test "logs --timestamps puts the engine's time in a column; stderr stays on stderr" {
	run --separate-stderr bv logs --timestamps api
	assert_success
	assert_line --regexp '^20[0-9][0-9]-[01][0-9]-[0-3][0-9]T[0-9:]{8}(\.[0-9]+)?Z +api-started$'
	assert_line --regexp 'Z +reached-web$'
	refute_line --partial to-stderr
	[[ $stderr =~ Z\ +to-stderr ]]
	run --separate-stderr bv logs api
	assert_line api-started
	refute_line --regexp '^20[0-9][0-9]-'
	[[ $stderr == to-stderr ]]
	# web's httpd logs requests on stderr
	run --separate-stderr bv logs web
	assert_success
	[[ -n $stderr ]]
}

@test "ps lists the services sorted by name with state, health and ports" {
	run bv ps
	assert_success
	assert_line --index 0 --regexp '^SERVICE +STATUS +HEALTH +PORTS$'
	assert_line --index 1 --regexp '^api +running +- *$'
	assert_line --index 2 --regexp "^web +running +healthy +127\\.0\\.0\\.1:$PORT->8080/tcp\$"
	[[ ${#lines[@]} -eq 3 ]]
}

@test "up again keeps containers whose definition did not change" {
	before=$(inspect "bv-$NAME-web" .Id)
	run bv up
	assert_success
	assert_line "web: up to date"
	assert_line "api: up to date"
	[[ $(inspect "bv-$NAME-web" .Id) == "$before" ]]
	# naming a service brings what it depends on along
	run bv up api
	assert_success
	assert_line "web: up to date"
	run bv up nope
	assert_failure
	assert_output --partial "no service 'nope' in '$PROJ/bv.toml'"
}

@test "restart restarts one service and waits until it is healthy again" {
	before=$(inspect "bv-$NAME-web" .State.StartedAt)
	api_before=$(inspect "bv-$NAME-api" .State.StartedAt)
	run bv restart web
	assert_success
	assert_line "web: restarted"
	after=$(inspect "bv-$NAME-web" .State.StartedAt)
	[[ $after != "$before" ]]
	[[ $(inspect "bv-$NAME-web" .State.Health.Status) == healthy ]]
	[[ $(inspect "bv-$NAME-api" .State.StartedAt) == "$api_before" ]]
	run curl -sf "http://127.0.0.1:$PORT/"
	assert_success
	run bv restart nope
	assert_failure
	assert_output --partial "service 'nope' has no container"
}

@test "a service that exits before it is ready fails up with its exit code and log" {
	local p="$BATS_FILE_TMPDIR/crash"
	mkdir -p "$p"
	cat >"$p/bv.toml" <<-EOF
		[project]
		name = "$NAME-crash"
		[[services]]
		name = "boom"
		image = "$BASE"
		command = ["/bin/busybox", "sh", "-c", "echo about to fail; echo on stderr >&2; exit 3"]
		[[services]]
		name = "after"
		image = "$BASE"
		depends_on = ["boom"]
	EOF
	cd "$p"
	run bv up
	assert_failure
	assert_output --partial "service 'boom' exited with code 3 before it was ready"
	assert_output --partial "  about to fail"
	assert_output --partial "  on stderr"
	# nothing that depends on it was started
	run curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" \
		"http://localhost/v1.41/containers/bv-$NAME-crash-after/json"
	assert_output 404
	run bv ps
	assert_line --regexp '^boom +exited \(3\) +- *$'
	run bv down
	assert_success
}

@test "a healthcheck that never passes is an error, not a hang" {
	local p="$BATS_FILE_TMPDIR/sick"
	mkdir -p "$p"
	cat >"$p/bv.toml" <<-EOF
		[project]
		name = "$NAME-sick"
		[[services]]
		name = "sick"
		image = "$BASE"
		command = $SLEEP
		healthcheck = { test = ["CMD-SHELL", "exit 1"], interval = "100ms", retries = 2 }
	EOF
	cd "$p"
	run bv up --timeout 30
	assert_failure
	assert_output --partial "service 'sick' is unhealthy: its healthcheck failed"
	run bv down
	assert_success
}

@test "a same-named network of someone else is refused, never reused" {
	local p="$BATS_FILE_TMPDIR/foreign"
	mkdir -p "$p"
	cat >"$p/bv.toml" <<-EOF
		[project]
		name = "$NAME-foreign"
		[[services]]
		name = "x"
		image = "$BASE"
		command = $SLEEP
	EOF
	curl -sf --unix-socket "$SOCK" -H 'Content-Type: application/json' \
		-d "{\"Name\": \"bv-$NAME-foreign-net\"}" http://localhost/v1.41/networks/create
	cd "$p"
	run bv up
	assert_failure
	assert_output --partial "network 'bv-$NAME-foreign-net' exists but does not belong to this project"
	# down leaves it alone
	run bv down
	assert_success
	api "/networks/bv-$NAME-foreign-net" >/dev/null
	curl -sf --unix-socket "$SOCK" -X DELETE "http://localhost/v1.41/networks/bv-$NAME-foreign-net"
}

@test "down removes containers and network; twice is fine" {
	run bv down
	assert_success
	assert_line "web: removed"
	assert_line "api: removed"
	filter=$(jq -rn --arg p "bv.project=$PROJ" '{label: [$p]} | tojson | @uri')
	[[ $(api "/containers/json?all=1&filters=$filter" | jq length) == 0 ]]
	run curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" \
		"http://localhost/v1.41/networks/bv-$NAME-net"
	assert_output 404
	run bv down
	assert_success
	run bv ps
	assert_success
	assert_output --regexp '^SERVICE +STATUS +HEALTH +PORTS$'
}

# Podman's service never runs healthchecks by itself (no systemd): bv triggers them.
podman_project() {
	local podman=${BV_PODMAN:-$(command -v podman || echo /usr/bin/podman)}
	[[ -x $podman ]] || skip "podman is not installed"
	if [[ ! -f $BATS_FILE_TMPDIR/podman-started ]]; then
		"$BV_SOURCE_DIR/tests/fixtures/podman-service.sh" start >"$BATS_FILE_TMPDIR/podman-started"
	fi
	PSOCK=$(<"$BATS_FILE_TMPDIR/podman-started")
	export DOCKER_HOST="unix://$PSOCK"
	PPROJ="$BATS_FILE_TMPDIR/pod"
	if [[ ! -d $PPROJ ]]; then
		PPORT=$(free_port)
		cp -r "$BV_SOURCE_DIR/tests/e2e/fixtures/services" "$PPROJ"
		sed -e "s|@BASE@|$BASE|g" "$PPROJ/web/Dockerfile.in" >"$PPROJ/web/Dockerfile"
		sed -e "s|@BASE@|$BASE|g" -e "s|@API_IMAGE@|$API_IMAGE|g" -e "s|@NAME@|$NAME-pod|g" \
			-e "s|@PORT@|$PPORT|g" \
			"$PPROJ/bv.toml.in" >"$PPROJ/bv.toml"
		rm "$PPROJ/bv.toml.in"
		cp /bin/busybox "$PPROJ/web/busybox"
		echo "$PPORT" >"$PPROJ/.port"
	fi
	PPORT=$(<"$PPROJ/.port")
	cd "$PPROJ" || return 1
}

papi() {
	curl -sf --unix-socket "$PSOCK" "http://localhost/v1.41$1"
}

@test "podman: up runs the healthcheck itself and gates api on it" {
	podman_project
	run bv up
	assert_success
	assert_line "web: healthy"
	assert_line "api: running"
	[[ $(papi "/containers/bv-$NAME-pod-web/json" | jq -r .State.Health.Status) == healthy ]]
	web_ok=$(papi "/containers/bv-$NAME-pod-web/json" |
		jq -r '[.State.Health.Log[] | select(.ExitCode == 0)][0].End')
	api_started=$(papi "/containers/bv-$NAME-pod-api/json" | jq -r .State.StartedAt)
	(($(ns "$api_started") >= $(ns "$web_ok")))
	run curl -sf "http://127.0.0.1:$PPORT/keep.tmp"
	assert_output kept
	run curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PPORT/secret.txt"
	assert_output 404
}

@test "podman: ps, logs --timestamps, restart and down" {
	podman_project
	run bv ps
	assert_success
	assert_line --index 1 --regexp '^api +running +- *$'
	assert_line --index 2 --regexp "^web +running +healthy +127\\.0\\.0\\.1:$PPORT->8080/tcp\$"
	run --separate-stderr bv logs --timestamps api
	assert_success
	assert_line --regexp '^20[0-9][0-9]-[01][0-9]-[0-3][0-9]T[0-9:]{8}(\.[0-9]+)?Z +api-started$'
	[[ $stderr =~ Z\ +to-stderr ]]
	run bv restart web
	assert_success
	assert_line "web: restarted"
	run bv down
	assert_success
	assert_line "web: removed"
	run bv down
	assert_success
	run curl -s -o /dev/null -w '%{http_code}' --unix-socket "$PSOCK" \
		"http://localhost/v1.41/networks/bv-$NAME-pod-net"
	assert_output 404
}
