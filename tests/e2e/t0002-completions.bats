#!/usr/bin/env bats
# Shell completions (bv completions bash|zsh|fish), the man pages and make install: all
# generated from the command table, driven here through the real shells and groff.

load lib/common
load lib/project

setup_file() {
	# The scripts call `bv` by the name typed, so the build's bv goes first on PATH.
	export BIN_DIR="$BATS_FILE_TMPDIR/bin"
	mkdir -p "$BIN_DIR"
	ln -sf "$BV" "$BIN_DIR/bv"
	for shell in bash zsh fish; do
		"$BV" completions $shell >"$BATS_FILE_TMPDIR/bv.$shell"
	done
	# every command `bv --help` lists
	"$BV" --help | sed -n '/^Commands:/,/^$/{/^  /s/^  \([a-z-]*\) .*/\1/p}' \
		>"$BATS_FILE_TMPDIR/commands"
}

setup() {
	common_setup
	export PATH="$BIN_DIR:$PATH"
	COMMANDS=$(cat "$BATS_FILE_TMPDIR/commands")
}

# A locked project with tools bwa and samtools, samtools also providing bgzip.
locked_project_with_bgzip() {
	make_locked_project
	sed -i -e 's/^binaries = \["samtools"\]/binaries = ["bgzip", "samtools"]/' \
		-e 's/^\[binary_index\]$/[binary_index]\nbgzip = "samtools"/' "$PROJECT/bv.lock"
	touch "$PROJECT/reads.fq"
	cd "$PROJECT"
}

# bash_complete LINE: the candidates bash's completion offers at the end of LINE, sorted.
bash_complete() {
	bash -c '
		source "$1"
		read -ra COMP_WORDS <<<"$2"
		[[ $2 == *" " ]] && COMP_WORDS+=("")
		COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
		COMP_LINE=$2 COMP_POINT=${#2}
		_bv
		printf "%s\n" "${COMPREPLY[@]}"
	' _ "$BATS_FILE_TMPDIR/bv.bash" "$1" | sort
}

# zsh_complete LINE: the same through the zsh script, with compadd, _describe, _files and
# _directories replaced by functions that print what they were given that matches the word
# under the cursor, as the real ones do.
zsh_complete() {
	zsh -fc '
		compdef() { :; }
		source "$1"
		offer() { local w; for w; do [[ $w == ${words[CURRENT]}* ]] && print -- $w; done; }
		compadd() { [[ $1 == -- ]] && shift; offer "$@"; }
		_describe() { offer "${(@)${(@P)4}%%:*}"; }
		_files() { print -- "<files>"; }
		_directories() { print -- "<directories>"; }
		words=(${(z)2})
		[[ $2 == *" " ]] && words+=("")
		CURRENT=${#words}
		_bv
	' _ "$BATS_FILE_TMPDIR/bv.zsh" "$1" | sort
}

# fish_complete LINE: fish's own completion of LINE (first column), sorted.
fish_complete() {
	fish --no-config -c 'source $argv[1]; complete -C $argv[2]' \
		"$BATS_FILE_TMPDIR/bv.fish" "$1" | cut -f1 | sort
}

@test "completions: an unknown shell is one usage error" {
	run bv completions tcsh
	assert_failure 2
	assert_output "error: unknown shell 'tcsh'; expected bash, zsh or fish"
	run bv completions
	assert_failure 2
	run bv completions --list nothing
	assert_failure 2
	assert_output "error: unknown list 'nothing'; expected tools, binaries, runnable or datasets"
}

@test "completions: every command of the table, in every shell" {
	[ "$(echo "$COMMANDS" | wc -l)" -gt 20 ]
	echo "$COMMANDS" | grep -qx completions
	run bash_complete "bv "
	assert_success
	assert_output "$(echo "$COMMANDS" | sort)"
	run zsh_complete "bv "
	assert_output "$(echo "$COMMANDS" | sort)"
	run fish_complete "bv "
	assert_output "$(echo "$COMMANDS" | sort)"
}

@test "completions: the scripts parse, and their generator is the binary's" {
	run bash -n "$BATS_FILE_TMPDIR/bv.bash"
	assert_success
	run zsh -n "$BATS_FILE_TMPDIR/bv.zsh"
	assert_success
	run fish -n "$BATS_FILE_TMPDIR/bv.fish"
	assert_success
	run bash -c 'source "$1"; complete -p bv' _ "$BATS_FILE_TMPDIR/bv.bash"
	assert_output "complete -o filenames -F _bv bv"
	head -1 "$BATS_FILE_TMPDIR/bv.zsh" | grep -qx '#compdef bv'
}

@test "completions: commands, options and subcommands" {
	for sh in bash zsh fish; do
		run ${sh}_complete "bv ad"
		assert_output add
		run ${sh}_complete "bv sync --froz"
		assert_output --regexp '^--frozen$'
		run ${sh}_complete "bv cache "
		assert_output "$(printf '%s\n' clean list prune size verify)"
		run ${sh}_complete "bv session s"
		assert_output "$(printf '%s\n' snapshot snapshot-rm snapshots start)"
		run ${sh}_complete "bv data "
		assert_output "$(printf '%s\n' fetch list rm verify)"
		run ${sh}_complete "bv help ver"
		assert_output version
		run ${sh}_complete "bv --vers"
		assert_output -- --version
		# the value of an option is not a subcommand: --name takes one
		run ${sh}_complete "bv session --name x st"
		assert_output start
		# options of one command are not offered for another
		run ${sh}_complete "bv list --fr"
		assert_output ""
	done
	run bash_complete "bv -"
	for o in -C --directory -q --quiet -v --verbose --offline --version -V --help -h; do
		assert_line -- "$o"
	done
	run bash_complete "bv --vers"
	assert_output --version
	run bash_complete "bv data fetch -"
	assert_line -- --yes
	assert_line -- -y
	assert_line -- --jobs
	refute_line -- --frozen
}

@test "completions: the subcommands are the ones the commands accept" {
	for c in session cache data; do
		run bv $c nosuch
		assert_failure 2
		want=$(echo "$output" | sed -n 's/.*expected //p' | sed 's/,* or /\n/; s/, /\n/g' | sort)
		[ "$(echo "$want" | wc -l)" -ge 4 ]
		run bash_complete "bv $c "
		assert_output "$want"
	done
	run bash_complete "bv completions "
	assert_output "$(printf '%s\n' bash fish zsh)"
}

@test "completions: tools and binaries from bv.lock, files after the tool" {
	locked_project_with_bgzip
	for sh in bash zsh fish; do
		run ${sh}_complete "bv run "
		assert_output "$(printf '%s\n' bgzip bwa samtools)"
		run ${sh}_complete "bv remove "
		assert_output "$(printf '%s\n' bwa samtools)"
		run ${sh}_complete "bv info --json s"
		assert_output samtools
		run ${sh}_complete "bv show b"
		assert_output bwa
	done
	run bash_complete "bv run samtools "
	assert_output "$(printf '%s\n' bv.lock bv.toml reads.fq)"
	run bash_complete "bv run samtools -o r"
	assert_output reads.fq
	run bash_complete "bv run samtools --fr"
	assert_output ""
	run zsh_complete "bv run samtools "
	assert_output "<files>"
	run fish_complete "bv run samtools "
	assert_line reads.fq
	refute_line bwa
	# -C names the project from elsewhere
	cd "$BATS_TEST_TMPDIR"
	for sh in bash zsh fish; do
		run ${sh}_complete "bv -C $PROJECT run bw"
		assert_output bwa
		run ${sh}_complete "bv run "
		assert_output ""
	done
	run bash_complete "bv -C "
	assert_output "$(printf "%s\n" home proj)"
	run bash_complete "bv export -o proj/re"
	assert_output proj/reads.fq
}

@test "completions: --list prints nothing outside a project and never uses the network" {
	run bv completions --list tools
	assert_success
	assert_output ""
	run bv completions --list runnable
	assert_success
	assert_output ""
	# the default registry is a git URL never cloned here: nothing, and no clone started
	run bv completions --list datasets
	assert_success
	assert_output ""
	[ ! -e "$XDG_CACHE_HOME/bv/index" ]
}

@test "completions: dataset ids from the registry for data fetch and data rm" {
	mkdir -p "$BATS_TEST_TMPDIR/reg/tools" "$BATS_TEST_TMPDIR/reg/data/grch38" \
		"$BATS_TEST_TMPDIR/reg/data/hg19" "$BATS_TEST_TMPDIR/reg/data/.hidden"
	export BV_REGISTRY="$BATS_TEST_TMPDIR/reg"
	run bv completions --list datasets
	assert_success
	assert_output "$(printf '%s\n' grch38 hg19)"
	for sh in bash zsh fish; do
		run ${sh}_complete "bv data fetch "
		assert_output "$(printf '%s\n' grch38 hg19)"
		run ${sh}_complete "bv data rm g"
		assert_output grch38
		run ${sh}_complete "bv data list "
		assert_output ""
	done
}

@test "man pages: bv(1) and one per command, valid roff" {
	for page in "" $COMMANDS; do
		bv help --man $page >"$BATS_TEST_TMPDIR/page.1"
		run groff -man -Tutf8 -ww -z "$BATS_TEST_TMPDIR/page.1"
		assert_success
		assert_output ""
	done
	run bv help --man nosuch
	assert_failure 2
	bv help --man sync >"$BATS_TEST_TMPDIR/bv-sync.1"
	run env MANWIDTH=100 man -l "$BATS_TEST_TMPDIR/bv-sync.1"
	assert_line --regexp '^ +bv-sync - '
	assert_line --regexp '^ +--frozen$'
	bv help --man >"$BATS_TEST_TMPDIR/bv.1"
	run env MANWIDTH=100 man -l "$BATS_TEST_TMPDIR/bv.1"
	assert_line --regexp '^ +bv-completions\(1\)$'
	assert_line --regexp '^ +125 +bv run, bv exec'
	# every variable README documents is in ENVIRONMENT
	for var in $(grep -o 'BV_[A-Z_]*' "$BV_SOURCE_DIR/README.md" | sort -u); do
		assert_line --regexp "^ +$var$"
	done
	# the help is not a man page: the hidden options stay hidden
	run bv help help
	refute_output --partial -- --man
	run bv completions --help
	refute_output --partial -- --list
}

@test "make install puts every file under DESTDIR/PREFIX; make uninstall removes them" {
	local d="$BATS_TEST_TMPDIR/dest"
	run make -s -C "$BV_SOURCE_DIR" install BUILD="$BV_BUILD_DIR" PREFIX=/usr DESTDIR="$d"
	assert_success
	{
		echo usr/bin/bv
		echo usr/share/bash-completion/completions/bv
		echo usr/share/bv/types.toml
		echo usr/share/fish/vendor_completions.d/bv.fish
		echo usr/share/man/man1/bv.1
		for c in $COMMANDS; do echo "usr/share/man/man1/bv-$c.1"; done
		echo usr/share/zsh/site-functions/_bv
	} | sort >"$BATS_TEST_TMPDIR/want"
	(cd "$d" && find . -type f -printf '%P\n' | sort) >"$BATS_TEST_TMPDIR/got"
	run diff "$BATS_TEST_TMPDIR/want" "$BATS_TEST_TMPDIR/got"
	assert_success
	[ -x "$d/usr/bin/bv" ]
	cmp "$d/usr/share/bash-completion/completions/bv" "$BATS_FILE_TMPDIR/bv.bash"
	cmp "$d/usr/share/zsh/site-functions/_bv" "$BATS_FILE_TMPDIR/bv.zsh"
	cmp "$d/usr/share/fish/vendor_completions.d/bv.fish" "$BATS_FILE_TMPDIR/bv.fish"
	# the pages are the ones the test above checks page by page
	for page in "" $COMMANDS; do
		bv help --man $page | cmp - "$d/usr/share/man/man1/bv${page:+-$page}.1"
	done
	run groff -man -Tutf8 -ww -z "$d/usr/share/man/man1/bv.1" "$d/usr/share/man/man1/bv-run.1"
	assert_success
	assert_output ""
	run "$d/usr/bin/bv" --version
	assert_success
	run make -s -C "$BV_SOURCE_DIR" uninstall BUILD="$BV_BUILD_DIR" PREFIX=/usr DESTDIR="$d"
	assert_success
	run find "$d" -type f
	assert_output ""
	[ ! -e "$d/usr/share/bv" ]
}
