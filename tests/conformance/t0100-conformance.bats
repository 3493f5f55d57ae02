#!/usr/bin/env bats
# Differential conformance: every image of the corpus (build-corpus.sh, CASES.md), made by
# tools other than bv, must unpack and run on bv's native backend as it does on Docker:
#   tree vs docker export   bv's root file system against `docker export` of a created
#                           container of the same digest (treecmp.py, rules D*, B1, R1, R2)
#   tree vs umoci           the same against `umoci unpack --rootless` (rules U*)
#   runs                    `bv run sh -c PROBE` against `docker run IMAGE sh -c PROBE`
#                           (runcmp.py, rules E*, I*, W1, P1, M1)
# Images docker 20.10 cannot pull (zstd with a plain-tar frame, old GNU sparse) are checked
# against umoci and the rules only, and the docker test asserts that docker refuses them.
# Needs root (dockerd).  Daemons started here are stopped by PID in teardown_file.

load ../e2e/lib/common
load lib

setup_file() {
	conf_setup_file
}

teardown_file() {
	conf_teardown_file
}

setup() {
	common_setup
	[[ -n ${ADDR:-} && -n ${DOCKER_HOST:-} ]] || fail "setup_file did not start the fixtures"
}

@test "the corpus has at least 25 images, each with its three tests here and a line in CASES.md" {
	n=$(wc -l <"$CONF_LIST")
	[ "$n" -ge 25 ]
	while IFS=$'\t' read -r name _; do
		for t in "conf_tree_docker $name;" "conf_tree_umoci $name;" "conf_runs $name;"; do
			grep -qF "$t" "$BATS_TEST_FILENAME" || fail "no test '$t' in $BATS_TEST_FILENAME"
		done
		grep -q "^| $name |" "$CONF_DIR/CASES.md" || fail "$name is not in CASES.md"
	done <"$CONF_LIST"
}

@test "the rules are checked: treecmp and runcmp report differences" {
	mkdir -p a/x b/x
	echo 1 >a/x/f
	echo 2 >b/x/f
	run python3 "$CONF_DIR/treecmp.py" a b
	assert_failure 1
	assert_line --partial "/x/f: sha256:"
	chmod 0644 b/x/f && echo 1 >b/x/f && chmod 0444 a/x/f && chmod 0555 a/x
	run python3 "$CONF_DIR/treecmp.py" --readonly-a a b
	assert_success
	chmod 0644 a/x/f
	chmod 0755 a/x
	run python3 "$CONF_DIR/treecmp.py" --readonly-a a b
	assert_failure 1
	assert_line --partial "is writable (rule R2)"
	printf '{"config":{"Env":["PATH=/bin"]}}' >cfg.json
	printf '== env\nHOME=/root\nPATH=/bin\n== id\nuid=0(root) gid=0(root)\n== pwd\n/\n== end\n' >d.out
	printf '== env\nHOME=/root\nPATH=/bin\n== id\nuid=0(root) gid=0(root)\n== pwd\n/\n== end\n' >b.out
	run python3 "$CONF_DIR/runcmp.py" cfg.json d.out 0 b.out 0
	assert_failure 1
	assert_line --partial "E1: bv HOME='/root', expected '/tmp'"
	assert_line --partial "W1: bv pwd"
}

@test "under a terminal, bv run opens /dev/tty (d-chown)" { conf_tty d-chown; }
@test "under a terminal, bv run opens /dev/tty (t-symchain: scratch image without /dev)" { conf_tty t-symchain; }

@test "d-multistage: tree vs docker export" { conf_tree_docker d-multistage; }
@test "d-multistage: tree vs umoci --rootless" { conf_tree_umoci d-multistage; }
@test "d-multistage: runs: bv run vs docker run" { conf_runs d-multistage; }

@test "d-chown: tree vs docker export" { conf_tree_docker d-chown; }
@test "d-chown: tree vs umoci --rootless" { conf_tree_umoci d-chown; }
@test "d-chown: runs: bv run vs docker run" { conf_runs d-chown; }

@test "d-whiteout: tree vs docker export" { conf_tree_docker d-whiteout; }
@test "d-whiteout: tree vs umoci --rootless" { conf_tree_umoci d-whiteout; }
@test "d-whiteout: runs: bv run vs docker run" { conf_runs d-whiteout; }

@test "d-opaque: tree vs docker export" { conf_tree_docker d-opaque; }
@test "d-opaque: tree vs umoci --rootless" { conf_tree_umoci d-opaque; }
@test "d-opaque: runs: bv run vs docker run" { conf_runs d-opaque; }

@test "d-usrmerge: tree vs docker export" { conf_tree_docker d-usrmerge; }
@test "d-usrmerge: tree vs umoci --rootless" { conf_tree_umoci d-usrmerge; }
@test "d-usrmerge: runs: bv run vs docker run" { conf_runs d-usrmerge; }

@test "d-user-name: tree vs docker export" { conf_tree_docker d-user-name; }
@test "d-user-name: tree vs umoci --rootless" { conf_tree_umoci d-user-name; }
@test "d-user-name: runs: bv run vs docker run" { conf_runs d-user-name; }

@test "d-user-uid: tree vs docker export" { conf_tree_docker d-user-uid; }
@test "d-user-uid: tree vs umoci --rootless" { conf_tree_umoci d-user-uid; }
@test "d-user-uid: runs: bv run vs docker run" { conf_runs d-user-uid; }

@test "d-user-uidgid: tree vs docker export" { conf_tree_docker d-user-uidgid; }
@test "d-user-uidgid: tree vs umoci --rootless" { conf_tree_umoci d-user-uidgid; }
@test "d-user-uidgid: runs: bv run vs docker run" { conf_runs d-user-uidgid; }

@test "d-workdir: tree vs docker export" { conf_tree_docker d-workdir; }
@test "d-workdir: tree vs umoci --rootless" { conf_tree_umoci d-workdir; }
@test "d-workdir: runs: bv run vs docker run" { conf_runs d-workdir; }

@test "d-envpath: tree vs docker export" { conf_tree_docker d-envpath; }
@test "d-envpath: tree vs umoci --rootless" { conf_tree_umoci d-envpath; }
@test "d-envpath: runs: bv run vs docker run" { conf_runs d-envpath; }

@test "d-entrypoint: tree vs docker export" { conf_tree_docker d-entrypoint; }
@test "d-entrypoint: tree vs umoci --rootless" { conf_tree_umoci d-entrypoint; }
@test "d-entrypoint: runs: bv run vs docker run" { conf_runs d-entrypoint; }
@test "d-entrypoint: Entrypoint/Cmd resolution (rule C1)" { conf_cmd d-entrypoint; }

@test "d-cmd: tree vs docker export" { conf_tree_docker d-cmd; }
@test "d-cmd: tree vs umoci --rootless" { conf_tree_umoci d-cmd; }
@test "d-cmd: runs: bv run vs docker run" { conf_runs d-cmd; }
@test "d-cmd: Entrypoint/Cmd resolution (rule C1)" { conf_cmd d-cmd; }

@test "d-both: tree vs docker export" { conf_tree_docker d-both; }
@test "d-both: tree vs umoci --rootless" { conf_tree_umoci d-both; }
@test "d-both: runs: bv run vs docker run" { conf_runs d-both; }
@test "d-both: Entrypoint/Cmd resolution (rule C1)" { conf_cmd d-both; }

@test "d-shell: tree vs docker export" { conf_tree_docker d-shell; }
@test "d-shell: tree vs umoci --rootless" { conf_tree_umoci d-shell; }
@test "d-shell: runs: bv run vs docker run" { conf_runs d-shell; }
@test "d-shell: Entrypoint/Cmd resolution (rule C1)" { conf_cmd d-shell; }

@test "d-empty: tree vs docker export" { conf_tree_docker d-empty; }
@test "d-empty: tree vs umoci --rootless" { conf_tree_umoci d-empty; }
@test "d-empty: runs: bv run vs docker run" { conf_runs d-empty; }
@test "d-empty: Entrypoint/Cmd resolution (rule C1)" { conf_cmd d-empty; }

@test "b-commit: tree vs docker export" { conf_tree_docker b-commit; }
@test "b-commit: tree vs umoci --rootless" { conf_tree_umoci b-commit; }
@test "b-commit: runs: bv run vs docker run" { conf_runs b-commit; }
@test "b-commit: Entrypoint/Cmd resolution (rule C1)" { conf_cmd b-commit; }

@test "b-add: tree vs docker export" { conf_tree_docker b-add; }
@test "b-add: tree vs umoci --rootless" { conf_tree_umoci b-add; }
@test "b-add: runs: bv run vs docker run" { conf_runs b-add; }

@test "p-build: tree vs docker export" { conf_tree_docker p-build; }
@test "p-build: tree vs umoci --rootless" { conf_tree_umoci p-build; }
@test "p-build: runs: bv run vs docker run" { conf_runs p-build; }

@test "u-insert: tree vs docker export" { conf_tree_docker u-insert; }
@test "u-insert: tree vs umoci --rootless" { conf_tree_umoci u-insert; }
@test "u-insert: runs: bv run vs docker run" { conf_runs u-insert; }

@test "u-repack: tree vs docker export" { conf_tree_docker u-repack; }
@test "u-repack: tree vs umoci --rootless" { conf_tree_umoci u-repack; }
@test "u-repack: runs: bv run vs docker run" { conf_runs u-repack; }

@test "s-v2s2-to-oci: tree vs docker export" { conf_tree_docker s-v2s2-to-oci; }
@test "s-v2s2-to-oci: tree vs umoci --rootless" { conf_tree_umoci s-v2s2-to-oci; }
@test "s-v2s2-to-oci: runs: bv run vs docker run" { conf_runs s-v2s2-to-oci; }

@test "s-oci-to-v2s2: tree vs docker export" { conf_tree_docker s-oci-to-v2s2; }
@test "s-oci-to-v2s2: tree vs umoci --rootless" { conf_tree_umoci s-oci-to-v2s2; }
@test "s-oci-to-v2s2: runs: bv run vs docker run" { conf_runs s-oci-to-v2s2; }

@test "s-zstd: tree vs docker export" { conf_tree_docker s-zstd; }
@test "s-zstd: tree vs umoci --rootless" { conf_tree_umoci s-zstd; }
@test "s-zstd: runs: bv run vs docker run" { conf_runs s-zstd; }

@test "s-plain: tree vs docker export" { conf_tree_docker s-plain; }
@test "s-plain: tree vs umoci --rootless" { conf_tree_umoci s-plain; }
@test "s-plain: runs: bv run vs docker run" { conf_runs s-plain; }

@test "s-zstd-opaque: tree vs docker export" { conf_tree_docker s-zstd-opaque; }
@test "s-zstd-opaque: tree vs umoci --rootless" { conf_tree_umoci s-zstd-opaque; }
@test "s-zstd-opaque: runs: bv run vs docker run" { conf_runs s-zstd-opaque; }

@test "t-absolute: tree vs docker export" { conf_tree_docker t-absolute; }
@test "t-absolute: tree vs umoci --rootless" { conf_tree_umoci t-absolute; }
@test "t-absolute: runs: bv run vs docker run" { conf_runs t-absolute; }

@test "t-dotslash: tree vs docker export" { conf_tree_docker t-dotslash; }
@test "t-dotslash: tree vs umoci --rootless" { conf_tree_umoci t-dotslash; }
@test "t-dotslash: runs: bv run vs docker run" { conf_runs t-dotslash; }

@test "t-dotdot: tree vs docker export" { conf_tree_docker t-dotdot; }
@test "t-dotdot: tree vs umoci --rootless" { conf_tree_umoci t-dotdot; }
@test "t-dotdot: runs: bv run vs docker run" { conf_runs t-dotdot; }

@test "t-slash-notrailer: tree vs docker export" { conf_tree_docker t-slash-notrailer; }
@test "t-slash-notrailer: tree vs umoci --rootless" { conf_tree_umoci t-slash-notrailer; }
@test "t-slash-notrailer: runs: bv run vs docker run" { conf_runs t-slash-notrailer; }

@test "t-hardlinks: tree vs docker export" { conf_tree_docker t-hardlinks; }
@test "t-hardlinks: tree vs umoci --rootless" { conf_tree_umoci t-hardlinks; }
@test "t-hardlinks: runs: bv run vs docker run" { conf_runs t-hardlinks; }

@test "t-hardlink-mode: tree vs docker export" { conf_tree_docker t-hardlink-mode; }
@test "t-hardlink-mode: tree vs umoci --rootless" { conf_tree_umoci t-hardlink-mode; }
@test "t-hardlink-mode: runs: bv run vs docker run" { conf_runs t-hardlink-mode; }

@test "t-hardsym: tree vs docker export" { conf_tree_docker t-hardsym; }
@test "t-hardsym: tree vs umoci --rootless" { conf_tree_umoci t-hardsym; }
@test "t-hardsym: runs: bv run vs docker run" { conf_runs t-hardsym; }

@test "t-longnames: tree vs docker export" { conf_tree_docker t-longnames; }
@test "t-longnames: tree vs umoci --rootless" { conf_tree_umoci t-longnames; }
@test "t-longnames: runs: bv run vs docker run" { conf_runs t-longnames; }

@test "t-symchain: tree vs docker export" { conf_tree_docker t-symchain; }
@test "t-symchain: tree vs umoci --rootless" { conf_tree_umoci t-symchain; }
@test "t-symchain: runs: bv run vs docker run" { conf_runs t-symchain; }

@test "t-symparent: tree vs docker export" { conf_tree_docker t-symparent; }
@test "t-symparent: tree vs umoci --rootless" { conf_tree_umoci t-symparent; }
@test "t-symparent: runs: bv run vs docker run" { conf_runs t-symparent; }

@test "t-shadow: tree vs docker export" { conf_tree_docker t-shadow; }
@test "t-shadow: tree vs umoci --rootless" { conf_tree_umoci t-shadow; }
@test "t-shadow: runs: bv run vs docker run" { conf_runs t-shadow; }

@test "t-opaque-symlink: tree vs docker export" { conf_tree_docker t-opaque-symlink; }
@test "t-opaque-symlink: tree vs umoci --rootless" { conf_tree_umoci t-opaque-symlink; }
@test "t-opaque-symlink: runs: bv run vs docker run" { conf_runs t-opaque-symlink; }

@test "t-replace: tree vs docker export" { conf_tree_docker t-replace; }
@test "t-replace: tree vs umoci --rootless" { conf_tree_umoci t-replace; }
@test "t-replace: runs: bv run vs docker run" { conf_runs t-replace; }

@test "t-sparse-gnu: tree vs docker export" { conf_tree_docker t-sparse-gnu; }
@test "t-sparse-gnu: tree vs umoci --rootless" { conf_tree_umoci t-sparse-gnu; }
@test "t-sparse-gnu: runs: bv run vs docker run" { conf_runs t-sparse-gnu; }

@test "t-sparse-pax: tree vs docker export" { conf_tree_docker t-sparse-pax; }
@test "t-sparse-pax: tree vs umoci --rootless" { conf_tree_umoci t-sparse-pax; }
@test "t-sparse-pax: runs: bv run vs docker run" { conf_runs t-sparse-pax; }

@test "t-xattr: tree vs docker export" { conf_tree_docker t-xattr; }
@test "t-xattr: tree vs umoci --rootless" { conf_tree_umoci t-xattr; }
@test "t-xattr: runs: bv run vs docker run" { conf_runs t-xattr; }
