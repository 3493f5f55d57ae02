# Temporary registries for end-to-end tests.  Load after lib/common:
#
#   load lib/common
#   load lib/registry
#
#   reg=$(registry_copy)               # $BATS_TEST_TMPDIR/registry, a writable sample copy
#   registry_git_init "$reg"           # now a git repository with one commit
#   bv --registry "file://$reg" ...    # cloned into the test's cache, like a remote
#   bv --registry "$reg" ...           # a plain path: used in place, never cloned
#   registry_add_version "$reg" tools/blast 2.15.0 2.16.0
#   registry_git_commit "$reg" "blast 2.16.0"
#
# The sample registry is read-only; copies are made writable so tests can add versions.
# git runs without the system configuration and with a fixed identity, so commits work in
# the isolated HOME that common_setup makes.

: "${SHARED_DIR:=${BV_SOURCE_DIR:-$(cd "$BATS_TEST_DIRNAME/../.." && pwd)}/../shared}"
REGISTRY_SAMPLE=${REGISTRY_SAMPLE:-$SHARED_DIR/bv-registry-sample}

# registry_copy [NAME]: copies the sample registry to $BATS_TEST_TMPDIR/NAME (default
# "registry") and prints the path.  Fails if that directory exists already.
registry_copy() {
	local dir="$BATS_TEST_TMPDIR/${1:-registry}"
	if [[ -e $dir ]]; then
		echo "registry_copy: '$dir' exists already" >&2
		return 1
	fi
	cp -R "$REGISTRY_SAMPLE" "$dir" && chmod -R u+w "$dir" && printf '%s\n' "$dir"
}

# registry_git DIR ARGS...: git in DIR, isolated from the system configuration.
registry_git() {
	local dir=$1
	shift
	GIT_CONFIG_NOSYSTEM=1 git -C "$dir" -c user.name=t -c user.email=t@t \
		-c init.defaultBranch=main "$@"
}

# registry_git_init DIR: turns DIR into a git repository with one commit of everything in it.
registry_git_init() {
	local dir=$1
	registry_git "$dir" init -q &&
		registry_git "$dir" add -A &&
		registry_git "$dir" commit -qm init
}

# registry_git_commit DIR [MESSAGE]: commits every change in DIR.
registry_git_commit() {
	local dir=$1
	registry_git "$dir" add -A && registry_git "$dir" commit -qm "${2:-update}"
}

# registry_add_version DIR KIND/ID FROM TO: adds KIND/ID/TO.toml as a copy of FROM.toml with
# the version field rewritten (KIND is tools or data).
registry_add_version() {
	local dir=$1 path=$2 from=$3 to=$4
	sed "s/^version = \"$from\"/version = \"$to\"/" "$dir/$path/$from.toml" \
		>"$dir/$path/$to.toml"
}
