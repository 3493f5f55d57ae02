#!/usr/bin/env bats
# Concurrent `bv up`, duplicate networks, and state changed behind bv's back, against the
# private dockerd of t0720 (tests/fixtures/dockerd.sh).  One project of three services from
# an image of the fixture registry (pulled once in setup_file, so no round builds or pulls):
# db, api (depends on db) and worker (depends on api), each with a 100 ms healthcheck.
# Everything is checked through the Engine API with curl, never through bv.

load lib/common

api() {
	curl -sf --unix-socket "$SOCK" "http://localhost/v1.41$1"
}

# post PATH JSON-BODY
post() {
	curl -sf --unix-socket "$SOCK" -H 'Content-Type: application/json' -d "$2" \
		"http://localhost/v1.41$1"
}

inspect() {
	api "/containers/$1/json" | jq -r "$2"
}

# The ids of the networks labelled with the project, one a line.
project_networks() {
	api "/networks?filters=$(jq -rn --arg p "bv.project=$PROJ" '{label: [$p]} | tojson | @uri')" |
		jq -r '.[].Id'
}

# Checks the invariant every `bv up` must leave: exactly one network with the project's
# label, and each service running in exactly one container, attached to that network by id
# under its service name.
assert_converged() {
	local nets net svc filter
	nets=$(project_networks)
	[[ $(wc -l <<<"$nets") -eq 1 && -n $nets ]] || {
		echo "networks of the project: ${nets:-none}"
		return 1
	}
	net=$nets
	[[ $(api "/networks/$net" | jq -r .Name) == "bv-$NAME-net" ]]
	for svc in db api worker; do
		filter=$(jq -rn --arg p "bv.project=$PROJ" --arg s "bv.service=$svc" \
			'{label: [$p, $s]} | tojson | @uri')
		[[ $(api "/containers/json?all=1&filters=$filter" | jq length) -eq 1 ]] || {
			echo "$svc: not exactly one container"
			return 1
		}
		[[ $(inspect "bv-$NAME-$svc" .State.Status) == running ]]
		[[ $(inspect "bv-$NAME-$svc" \
			"[.NetworkSettings.Networks[] | select(.NetworkID == \"$net\" and
			 (.Aliases | index(\"$svc\") != null))] | length") -eq 1 ]] || {
			echo "$svc: not attached to $net as $svc"
			return 1
		}
	done
}

setup_file() {
	fixture_engine_up
	export IMAGE="$ADDR/biocontainers/bwa:0.7.17--debian"
	export NAME="conc-$$-$RANDOM"
	export PROJ="$BATS_FILE_TMPDIR/proj"
	mkdir -p "$PROJ"
	# a long-running command that stops at once on TERM (as PID 1 it has to trap it)
	local sleep='["/bin/busybox", "sh", "-c", "trap \"exit 0\" TERM; /bin/busybox sleep 3600 & wait"]'
	local health='{ test = ["CMD", "/bin/busybox", "true"], interval = "100ms", retries = 50 }'
	cat >"$PROJ/bv.toml" <<-EOF
		[project]
		name = "$NAME"
		[[services]]
		name = "db"
		image = "$IMAGE"
		command = $sleep
		env = { ROLE = "db" }
		healthcheck = $health
		[[services]]
		name = "api"
		image = "$IMAGE"
		command = $sleep
		env = { GREETING = "hello" }
		healthcheck = $health
		depends_on = ["db"]
		[[services]]
		name = "worker"
		image = "$IMAGE"
		command = $sleep
		healthcheck = $health
		depends_on = ["api"]
	EOF
	curl -sf --unix-socket "$SOCK" -X POST -o /dev/null \
		"http://localhost/v1.41/images/create?fromImage=$ADDR/biocontainers/bwa&tag=0.7.17--debian"
}

teardown_file() {
	if [[ -n ${SOCK:-} ]]; then
		curl -s --unix-socket "$SOCK" -X DELETE -o /dev/null \
			"http://localhost/v1.41/containers/scratch-$NAME?force=1" || true
		(cd "$PROJ" && "$BV" down) >/dev/null 2>&1 || true
		"$BV_SOURCE_DIR/tests/fixtures/dockerd.sh" stop >/dev/null || true
	fi
	fixture_images_down
}

setup() {
	common_setup
	cd "$PROJ" || return 1
}

@test "six concurrent bv up, ten rounds: one network, every service once, attached to it" {
	local round i failed waited=0
	for round in $(seq 10); do
		# every round starts from nothing: the race is over who creates the network
		bv down >/dev/null 2>&1
		[[ -z $(project_networks) ]]
		for i in $(seq 6); do
			"$BV" up >"$BATS_TEST_TMPDIR/up.$i" 2>&1 &
			echo $! >"$BATS_TEST_TMPDIR/pid.$i"
		done
		failed=0
		for i in $(seq 6); do
			wait "$(<"$BATS_TEST_TMPDIR/pid.$i")" || {
				failed=1
				echo "round $round, bv up $i failed:"
				cat "$BATS_TEST_TMPDIR/up.$i"
			}
		done
		((failed == 0))
		assert_converged || {
			echo "round $round"
			cat "$BATS_TEST_TMPDIR"/up.*
			return 1
		}
		# one created the containers, the others found them up to date
		[[ $(cat "$BATS_TEST_TMPDIR"/up.* | grep -c '^db: started$') -eq 1 ]]
		[[ $(cat "$BATS_TEST_TMPDIR"/up.* | grep -c '^db: up to date$') -eq 5 ]]
		if grep -qx 'Waiting for another bv up, down or restart of this project' \
			"$BATS_TEST_TMPDIR"/up.*; then
			waited=1
		fi
	done
	# the lock made some of them wait, and they said so
	((waited == 1))
}

@test "duplicate networks are repaired: the one with most containers is kept, a foreign one is not touched" {
	local n1 n2 n3 foreign label
	bv down
	label="{\"bv.project\": \"$PROJ\"}"
	# what an older bv left after a race: three networks of the name, all labelled
	n1=$(post /networks/create "{\"Name\": \"bv-$NAME-net\", \"Labels\": $label}" | jq -r .Id)
	n2=$(post /networks/create "{\"Name\": \"bv-$NAME-net\", \"Labels\": $label}" | jq -r .Id)
	n3=$(post /networks/create "{\"Name\": \"bv-$NAME-net\", \"Labels\": $label}" | jq -r .Id)
	# and one of the same name that is not bv's
	foreign=$(post /networks/create "{\"Name\": \"bv-$NAME-net\"}" | jq -r .Id)
	# n2 has a container attached, so it is the one to keep although n1 is older
	post "/containers/create?name=scratch-$NAME" \
		"{\"Image\": \"$IMAGE\", \"Cmd\": [\"/bin/busybox\", \"sleep\", \"600\"],
		  \"HostConfig\": {\"NetworkMode\": \"$n2\"},
		  \"NetworkingConfig\": {\"EndpointsConfig\": {\"$n2\": {\"NetworkID\": \"$n2\"}}}}" \
		>/dev/null
	post "/containers/scratch-$NAME/start" '{}' >/dev/null
	run bv up
	assert_success
	assert_line "repaired network bv-$NAME-net: removed a duplicate (${n1:0:12}, 0 containers disconnected), kept ${n2:0:12}"
	assert_line "repaired network bv-$NAME-net: removed a duplicate (${n3:0:12}, 0 containers disconnected), kept ${n2:0:12}"
	assert_converged
	[[ $(project_networks) == "$n2" ]]
	# the foreign one is still there; down leaves it too
	[[ $(api "/networks/$foreign" | jq -r .Id) == "$foreign" ]]
	curl -sf --unix-socket "$SOCK" -X DELETE "http://localhost/v1.41/containers/scratch-$NAME?force=1"
	run bv down
	assert_success
	assert_line "network 'bv-$NAME-net' does not belong to this project; left alone"
	[[ -z $(project_networks) ]]
	[[ $(api "/networks/$foreign" | jq -r .Id) == "$foreign" ]]
	curl -sf --unix-socket "$SOCK" -X DELETE "http://localhost/v1.41/networks/$foreign"

	# with no container on any of them, the oldest is kept
	n1=$(post /networks/create "{\"Name\": \"bv-$NAME-net\", \"Labels\": $label}" | jq -r .Id)
	n2=$(post /networks/create "{\"Name\": \"bv-$NAME-net\", \"Labels\": $label}" | jq -r .Id)
	run bv up
	assert_success
	assert_line "repaired network bv-$NAME-net: removed a duplicate (${n2:0:12}, 0 containers disconnected), kept ${n1:0:12}"
	assert_converged
	[[ $(project_networks) == "$n1" ]]
}

@test "a network deleted behind bv's back is made again and the containers are attached to it" {
	local old svc
	run bv up
	assert_success
	old=$(project_networks)
	# a running container keeps a network alive: disconnect them all, then delete it
	for svc in db api worker; do
		post "/networks/$old/disconnect" "{\"Container\": \"bv-$NAME-$svc\", \"Force\": true}"
	done
	curl -sf --unix-socket "$SOCK" -X DELETE "http://localhost/v1.41/networks/$old"
	[[ $(inspect "bv-$NAME-db" '.NetworkSettings.Networks | length') -eq 0 ]]
	run bv up
	assert_success
	assert_line "db: recreating (it is not attached to network bv-$NAME-net)"
	assert_line "api: recreating (it is not attached to network bv-$NAME-net)"
	refute_line --partial "up to date"
	assert_converged
	[[ $(project_networks) != "$old" ]]
	# one container disconnected by hand, the others left alone
	post "/networks/$(project_networks)/disconnect" "{\"Container\": \"bv-$NAME-worker\"}"
	api_id=$(inspect "bv-$NAME-api" .Id)
	run bv up
	assert_success
	assert_line "worker: recreating (it is not attached to network bv-$NAME-net)"
	assert_line "api: up to date"
	[[ $(inspect "bv-$NAME-api" .Id) == "$api_id" ]]
	assert_converged
}

@test "a container recreated by hand with another environment is recreated; its dependent restarts" {
	local c net body db_started worker_started
	run bv up
	assert_success
	assert_converged
	net=$(project_networks)
	c=$(api "/containers/bv-$NAME-api/json")
	db_started=$(inspect "bv-$NAME-db" .State.StartedAt)
	worker_started=$(inspect "bv-$NAME-worker" .State.StartedAt)
	# the same name, labels (the config digest too), image, command and network, but
	# GREETING changed: only the engine's view tells
	body=$(jq --arg net "$net" '{Image: .Config.Image, Cmd: .Config.Cmd,
		Env: (.Config.Env | map(if . == "GREETING=hello" then "GREETING=changed" else . end)),
		Labels: .Config.Labels, Healthcheck: .Config.Healthcheck,
		HostConfig: {NetworkMode: $net},
		NetworkingConfig: {EndpointsConfig: {($net): {NetworkID: $net, Aliases: ["api"]}}}}' <<<"$c")
	curl -sf --unix-socket "$SOCK" -X DELETE "http://localhost/v1.41/containers/bv-$NAME-api?force=1"
	post "/containers/create?name=bv-$NAME-api" "$body" >/dev/null
	post "/containers/bv-$NAME-api/start" '{}' >/dev/null
	[[ $(inspect "bv-$NAME-api" '.Config.Env | index("GREETING=changed") != null') == true ]]
	run bv up
	assert_success
	assert_line "db: up to date"
	assert_line "worker: stopping (it depends on 'api', which is recreated)"
	assert_line "api: recreating (its environment changed)"
	assert_line "worker: restarted (after 'api' was recreated)"
	assert_converged
	[[ $(inspect "bv-$NAME-api" '.Config.Env | index("GREETING=hello") != null') == true ]]
	[[ $(inspect "bv-$NAME-db" .State.StartedAt) == "$db_started" ]]
	[[ $(inspect "bv-$NAME-worker" .State.StartedAt) != "$worker_started" ]]
	run bv up
	assert_success
	assert_line "api: up to date"
	assert_line "worker: up to date"
}

@test "a dependency recreated for a new definition restarts its direct dependents only" {
	local api_started worker_started worker_id
	run bv up
	assert_success
	api_started=$(inspect "bv-$NAME-api" .State.StartedAt)
	worker_started=$(inspect "bv-$NAME-worker" .State.StartedAt)
	worker_id=$(inspect "bv-$NAME-worker" .Id)
	sed -i 's/ROLE = "db"/ROLE = "primary"/' bv.toml
	run bv up
	assert_success
	assert_line "db: recreating (its definition changed)"
	assert_line "api: restarted (after 'db' was recreated)"
	# as compose does: the dependents of db, not theirs
	assert_line "worker: up to date"
	assert_converged
	[[ $(inspect "bv-$NAME-db" '.Config.Env | index("ROLE=primary") != null') == true ]]
	[[ $(inspect "bv-$NAME-api" .State.StartedAt) != "$api_started" ]]
	[[ $(inspect "bv-$NAME-worker" .State.StartedAt) == "$worker_started" ]]
	[[ $(inspect "bv-$NAME-worker" .Id) == "$worker_id" ]]
}

@test "a container recreated by hand from another image is recreated" {
	local c net body img
	run bv up
	assert_success
	net=$(project_networks)
	c=$(api "/containers/bv-$NAME-worker/json")
	# another image id with the same config: a commit of the container itself
	img=$(post "/commit?container=bv-$NAME-worker&repo=bv-test-$NAME&tag=other" '{}' | jq -r .Id)
	body=$(jq --arg net "$net" --arg img "$img" '{Image: $img, Cmd: .Config.Cmd,
		Env: .Config.Env, Labels: .Config.Labels, Healthcheck: .Config.Healthcheck,
		HostConfig: {NetworkMode: $net},
		NetworkingConfig: {EndpointsConfig: {($net): {NetworkID: $net, Aliases: ["worker"]}}}}' <<<"$c")
	curl -sf --unix-socket "$SOCK" -X DELETE "http://localhost/v1.41/containers/bv-$NAME-worker?force=1"
	post "/containers/create?name=bv-$NAME-worker" "$body" >/dev/null
	post "/containers/bv-$NAME-worker/start" '{}' >/dev/null
	[[ $(inspect "bv-$NAME-worker" .Image) == "$img" ]]
	run bv up
	assert_success
	assert_line "worker: recreating (it runs another image)"
	assert_line "api: up to date"
	assert_converged
	[[ $(inspect "bv-$NAME-worker" .Image) == "$(inspect "bv-$NAME-api" .Image)" ]]
	curl -sf --unix-socket "$SOCK" -X DELETE -o /dev/null \
		"http://localhost/v1.41/images/bv-test-$NAME:other?force=1"
}
