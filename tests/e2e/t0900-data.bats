#!/usr/bin/env bats
# Reference data: bv data fetch/list/verify/rm against real servers on loopback (a Range-capable
# HTTP server of the tests' own, tests/e2e/fixtures/data_server.py, and Debian's vsftpd),
# datasets built here (a bgzipped VCF with its .tbi, a tar.gz database, a zstd file), and the
# wiring into bv add, bv run, bv sync and bv cache prune with the fixture images.

load lib/common

# start_http NAME [server options...]: a data server on $SRV, its port in $<NAME>_PORT
start_http() {
	local name=$1
	shift
	rm -f "$BATS_FILE_TMPDIR/$name.port"
	python3 "$BV_SOURCE_DIR/tests/e2e/fixtures/data_server.py" --root "$SRV" \
		--port-file "$BATS_FILE_TMPDIR/$name.port" --log "$BATS_FILE_TMPDIR/$name.log" "$@" \
		>/dev/null 2>&1 &
	echo $! >"$BATS_FILE_TMPDIR/$name.pid"
	for _ in $(seq 100); do [ -s "$BATS_FILE_TMPDIR/$name.port" ] && break; sleep 0.05; done
	[ -s "$BATS_FILE_TMPDIR/$name.port" ] || return 1
	cat "$BATS_FILE_TMPDIR/$name.port"
}

stop_pidfile() {
	local f=$1
	[ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null
	rm -f "$f"
	return 0
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_ftp() {
	local d=$BATS_FILE_TMPDIR/ftp
	mkdir -p "$d/empty"
	chmod 755 "$d/empty"
	FTP_PORT=$(free_port)
	cat >"$d/vsftpd.conf" <<EOF
listen=YES
listen_ipv6=NO
listen_address=127.0.0.1
listen_port=$FTP_PORT
background=NO
anonymous_enable=YES
no_anon_password=YES
anon_root=$SRV
local_enable=NO
write_enable=NO
seccomp_sandbox=NO
secure_chroot_dir=$d/empty
pasv_enable=YES
pasv_address=127.0.0.1
pasv_min_port=$((FTP_PORT + 1))
pasv_max_port=$((FTP_PORT + 20))
xferlog_enable=NO
EOF
	/usr/sbin/vsftpd "$d/vsftpd.conf" >"$d/log" 2>&1 &
	echo $! >"$BATS_FILE_TMPDIR/ftp.pid"
	# up to 30 s: a loaded CI machine can be slow to start it
	for _ in $(seq 600); do
		curl -s "ftp://127.0.0.1:$FTP_PORT/" >/dev/null 2>&1 && return 0
		kill -0 "$(<"$BATS_FILE_TMPDIR/ftp.pid")" 2>/dev/null || break
		sleep 0.05
	done
	echo "vsftpd did not answer on 127.0.0.1:$FTP_PORT:" >&2
	cat "$d/log" >&2
	return 1
}

# manifest ID VERSION ACTION SIZE SHA URL...: writes data/ID/VERSION.toml of $DATA_REG
manifest() {
	local id=$1 version=$2 action=$3 size=$4 sha=$5 urls="" u
	shift 5
	for u in "$@"; do urls="$urls\"$u\", "; done
	mkdir -p "$DATA_REG/data/$id"
	{
		printf '[data]\nid = "%s"\nversion = "%s"\n' "$id" "$version"
		printf 'source_urls = [%s]\n' "$urls"
		[ "$size" = - ] || printf 'size_bytes = %s\n' "$size"
		[ "$sha" = - ] || printf 'sha256 = "sha256:%s"\n' "$sha"
		printf 'format = "x"\npost_download_action = "%s"\n' "$action"
	} >"$DATA_REG/data/$id/$version.toml"
}

sha() { sha256sum "$1" | cut -d' ' -f1; }
size() { stat -c %s "$1"; }

setup_file() {
	SRV="$BATS_FILE_TMPDIR/srv"
	DATA_REG="$BATS_FILE_TMPDIR/bv-registry"
	export SRV DATA_REG
	mkdir -p "$SRV/db" "$DATA_REG"
	cp -r "$BV_SOURCE_DIR/tests/fixtures/bv-registry/." "$DATA_REG/"
	# samtools needs the VCF (and exposes the image's sh); bwa can use the k-mer database
	sed -i 's/^exposed = \["samtools"\]$/exposed = ["samtools", "sh"]/' \
		"$DATA_REG"/tools/samtools/*.toml
	printf '\n[tool.reference_data.vcf]\nid = "vcf"\nversion = "2024_01"\nrequired = true\n' \
		>>"$DATA_REG/tools/samtools/1.16.1.toml"
	for f in "$DATA_REG"/tools/bwa/*.toml; do
		printf '\n[tool.reference_data.db]\nid = "kdb"\nversion = "1.0"\nrequired = false\nmount_path = "/ref/kdb"\n' >>"$f"
	done
	fixture_images_up
	# a bgzip-style VCF (two gzip members) and its index
	printf '##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\n' | gzip -c >"$SRV/small.vcf.gz"
	printf '1\t100\trs1\tA\tG\n' | gzip -c >>"$SRV/small.vcf.gz"
	head -c 512 /dev/urandom >"$SRV/small.vcf.gz.tbi"
	# a database directory as tar.gz
	mkdir -p "$BATS_FILE_TMPDIR/dbsrc/kdb/taxo"
	echo "k-mers" >"$BATS_FILE_TMPDIR/dbsrc/kdb/hash.k2d"
	echo "names" >"$BATS_FILE_TMPDIR/dbsrc/kdb/taxo/names.dmp"
	ln -s hash.k2d "$BATS_FILE_TMPDIR/dbsrc/kdb/link.k2d"
	tar -C "$BATS_FILE_TMPDIR/dbsrc" -czf "$SRV/db/kdb.tar.gz" kdb
	# the same directory as zip and as tar.zst
	(cd "$BATS_FILE_TMPDIR/dbsrc" && python3 -c 'import zipfile, sys
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as z:
    z.write("kdb/hash.k2d"); z.write("kdb/taxo/names.dmp")' "$SRV/db/kdb.zip")
	tar -C "$BATS_FILE_TMPDIR/dbsrc" -cf - kdb | zstd -q -c >"$SRV/db/kdb.tar.zst"
	# a zstd single file
	seq 1 20000 >"$BATS_FILE_TMPDIR/seqs.txt"
	zstd -q -c "$BATS_FILE_TMPDIR/seqs.txt" >"$SRV/seqs.txt.zst"
	xz -c "$BATS_FILE_TMPDIR/seqs.txt" >"$SRV/seqs2.txt.xz"
	bzip2 -c "$BATS_FILE_TMPDIR/seqs.txt" >"$SRV/seqs3.txt.bz2"
	# an archive with a member that climbs out
	python3 - "$SRV/evil.tar.gz" <<'PY'
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w:gz") as t:
    data = b"owned\n"
    i = tarfile.TarInfo("ok/../../escaped.txt"); i.size = len(data)
    t.addfile(i, io.BytesIO(data))
PY
	# 4 MiB for the concurrency and resume tests
	head -c $((4 << 20)) /dev/urandom >"$SRV/big.bin"

	PORT=$(start_http main) || return 1
	SLOW_PORT=$(start_http slow --chunk 65536 --throttle 0.01) || return 1
	CUT_PORT=$(start_http cut --cut-after 100000) || return 1
	NOHEAD_PORT=$(start_http nohead --no-head) || return 1
	LIE_PORT=$(start_http lie --lie-size 999) || return 1
	export PORT SLOW_PORT CUT_PORT NOHEAD_PORT LIE_PORT
	start_ftp || { stop_pidfile "$BATS_FILE_TMPDIR/ftp.pid"; start_ftp; } || return 1
	export FTP_PORT
	local u=http://127.0.0.1:$PORT
	manifest vcf 2024_01 noop "$(size "$SRV/small.vcf.gz")" "$(sha "$SRV/small.vcf.gz")" \
		"$u/small.vcf.gz" "$u/small.vcf.gz.tbi"
	manifest vcf 2023_06 noop - - "$u/small.vcf.gz"
	manifest kdb 1.0 extract "$(size "$SRV/db/kdb.tar.gz")" "$(sha "$SRV/db/kdb.tar.gz")" \
		"$u/db/kdb.tar.gz"
	manifest kdbzip 1 extract - - "$u/db/kdb.zip"
	manifest kdbzst 1 extract - - "$u/db/kdb.tar.zst"
	manifest seqs 3 decompress "$(size "$SRV/seqs.txt.zst")" "$(sha "$SRV/seqs.txt.zst")" \
		"$u/seqs.txt.zst"
	manifest hmm 36.0 decompress - - "$u/small.vcf.gz" "$u/small.vcf.gz.tbi" "$u/seqs2.txt.xz" \
		"$u/seqs3.txt.bz2"
	manifest badsha 1 noop - 0000000000000000000000000000000000000000000000000000000000000000 \
		"$u/small.vcf.gz"
	manifest evil 1 extract - - "$u/evil.tar.gz"
	manifest big 1 noop "$(size "$SRV/big.bin")" "$(sha "$SRV/big.bin")" \
		"http://127.0.0.1:$SLOW_PORT/big.bin"
	manifest resumed 1 noop "$(size "$SRV/big.bin")" "$(sha "$SRV/big.bin")" \
		"http://127.0.0.1:$CUT_PORT/big.bin"
	manifest ftpvcf 1 noop "$(size "$SRV/small.vcf.gz")" "$(sha "$SRV/small.vcf.gz")" \
		"ftp://127.0.0.1:$FTP_PORT/small.vcf.gz" "ftp://127.0.0.1:$FTP_PORT/small.vcf.gz.tbi"
}

teardown_file() {
	for n in main slow cut nohead lie ftp; do stop_pidfile "$BATS_FILE_TMPDIR/$n.pid"; done
	fixture_images_down
}

# A project in $PROJ with the fixture images reachable through the mirror.
project() {
	export BV_MIRRORS="quay.io=$ADDR"
	PROJ="$BATS_TEST_TMPDIR/proj"
	mkdir -p "$PROJ" && cd "$PROJ" || return 1
	bv init align >/dev/null 2>&1
	allow_shell_binary
}

setup() {
	common_setup
	export BV_REGISTRY="$DATA_REG" BV_CACHE_DIR="$BATS_TEST_TMPDIR/cache"
	DATA="$BV_CACHE_DIR/data"
}

@test "fetch: a VCF with its index sidecar, read-only, recorded, listed" {
	run bv data fetch vcf@2024_01 --yes
	assert_success
	assert_output --partial "Fetched vcf 2024_01"
	cmp "$DATA/vcf/2024_01/small.vcf.gz" "$SRV/small.vcf.gz"
	cmp "$DATA/vcf/2024_01/small.vcf.gz.tbi" "$SRV/small.vcf.gz.tbi"
	[ ! -w "$DATA/vcf/2024_01/small.vcf.gz" ] || [ "$(id -u)" = 0 ]
	[ "$(stat -c %a "$DATA/vcf/2024_01/small.vcf.gz")" = 444 ]
	[ "$(stat -c %a "$DATA/vcf/2024_01")" = 555 ]
	run jq -r '.files[].path' "$DATA/vcf/2024_01.json"
	assert_output $'small.vcf.gz\nsmall.vcf.gz.tbi'
	run bv data list
	assert_success
	assert_output --regexp 'vcf +2024_01 .* verified'
	run bv data list --json
	assert_success
	[ "$(echo "$output" | jq -r '.[0].id + " " + .[0].version + " " + (.[0].verified|tostring)')" = "vcf 2024_01 true" ]
	run bv data fetch vcf@2024_01 --yes
	assert_success
	assert_output --partial "vcf 2024_01 is already in the cache"
}

@test "fetch without a version takes the newest calendar version" {
	run bv data fetch vcf -y
	assert_success
	assert_output --partial "Fetched vcf 2024_01"
	[ ! -e "$DATA/vcf/2023_06" ]
}

@test "fetch asks first; without a terminal it needs --yes" {
	run bv data fetch kdb </dev/null
	assert_failure 1
	assert_output --partial "error: refusing to download"
	assert_output --partial "hint: pass --yes"
	[ ! -e "$DATA/kdb" ] || [ -z "$(ls "$DATA/kdb" | grep -v lock)" ]
}

@test "extract: a tar.gz database directory; decompress: a zstd file" {
	run bv data fetch kdb seqs --yes
	assert_success
	[ "$(cat "$DATA/kdb/1.0/kdb/hash.k2d")" = "k-mers" ]
	[ "$(cat "$DATA/kdb/1.0/kdb/taxo/names.dmp")" = "names" ]
	[ "$(readlink "$DATA/kdb/1.0/kdb/link.k2d")" = hash.k2d ]
	[ ! -e "$DATA/kdb/1.0/kdb.tar.gz" ]
	run bv data fetch kdbzip kdbzst --yes
	assert_success
	for d in kdbzip kdbzst; do
		[ "$(cat "$DATA/$d/1/kdb/hash.k2d")" = "k-mers" ]
		[ "$(cat "$DATA/$d/1/kdb/taxo/names.dmp")" = "names" ]
	done
	cmp "$DATA/seqs/3/seqs.txt" "$BATS_FILE_TMPDIR/seqs.txt"
	run bv data verify --local
	assert_success
	assert_line "OK        kdb 1.0"
	assert_line "OK        seqs 3"
}

@test "decompress: every compressed file (bgzip members, xz, bzip2); others kept as they are" {
	run bv data fetch hmm --yes
	assert_success
	[ "$(ls "$DATA/hmm/36.0")" = $'seqs2.txt\nseqs3.txt\nsmall.vcf\nsmall.vcf.gz.tbi' ]
	[ "$(cat "$DATA/hmm/36.0/small.vcf")" = "$(gzip -dc "$SRV/small.vcf.gz")" ]
	cmp "$DATA/hmm/36.0/seqs2.txt" "$BATS_FILE_TMPDIR/seqs.txt"
	cmp "$DATA/hmm/36.0/seqs3.txt" "$BATS_FILE_TMPDIR/seqs.txt"
	cmp "$DATA/hmm/36.0/small.vcf.gz.tbi" "$SRV/small.vcf.gz.tbi"
	run bv data verify --local
	assert_success
}

@test "ftp: anonymous download from vsftpd" {
	run bv data fetch ftpvcf --yes
	assert_success
	cmp "$DATA/ftpvcf/1/small.vcf.gz" "$SRV/small.vcf.gz"
	cmp "$DATA/ftpvcf/1/small.vcf.gz.tbi" "$SRV/small.vcf.gz.tbi"
}

@test "a wrong sha256 is refused and nothing is published" {
	run bv data fetch badsha --yes
	assert_failure 1
	assert_output --partial "error: could not fetch badsha 1: small.vcf.gz: sha256 mismatch"
	[ ! -e "$DATA/badsha/1" ]
	[ ! -e "$DATA/badsha/1.json" ]
	[ -z "$(ls -A "$DATA/.tmp")" ]
}

@test "an archive with a ../ member is refused and nothing is published" {
	run bv data fetch evil --yes
	assert_failure 1
	assert_output --partial "entry 'ok/../../escaped.txt' escapes the image root"
	[ ! -e "$DATA/evil/1" ]
	[ ! -e "$DATA/escaped.txt" ] && [ ! -e "$BV_CACHE_DIR/escaped.txt" ]
	[ -z "$(ls -A "$DATA/.tmp")" ]
}

@test "a connection cut mid-download resumes with Range" {
	run bv data fetch resumed --yes
	assert_success
	cmp "$DATA/resumed/1/big.bin" "$SRV/big.bin"
	grep -q '^GET /big.bin -$' "$BATS_FILE_TMPDIR/cut.log"
	grep -q '^GET /big.bin bytes=100000-$' "$BATS_FILE_TMPDIR/cut.log"
}

@test "eight concurrent fetches of one dataset download it once" {
	: >"$BATS_FILE_TMPDIR/slow.log"
	for i in 1 2 3 4 5 6 7 8; do
		"$BV" data fetch big --yes >"$BATS_TEST_TMPDIR/out.$i" 2>&1 &
	done
	wait
	for i in 1 2 3 4 5 6 7 8; do
		grep -qE 'Fetched big 1|big 1 is already in the cache' "$BATS_TEST_TMPDIR/out.$i" ||
			fail "fetch $i: $(cat "$BATS_TEST_TMPDIR/out.$i")"
	done
	[ "$(grep -c '^GET /big.bin' "$BATS_FILE_TMPDIR/slow.log")" = 1 ]
	[ "$(grep -l 'Fetched big 1' "$BATS_TEST_TMPDIR"/out.* | wc -l)" = 1 ]
	cmp "$DATA/big/1/big.bin" "$SRV/big.bin"
}

@test "verify: PASS, MISMATCH and FAIL against the servers" {
	local reg=$BATS_TEST_TMPDIR/vreg
	mkdir -p "$reg"
	DATA_REG=$reg manifest good 1 noop "$(size "$SRV/big.bin")" - "http://127.0.0.1:$PORT/big.bin"
	DATA_REG=$reg manifest nohead 1 noop "$(size "$SRV/big.bin")" - \
		"http://127.0.0.1:$NOHEAD_PORT/big.bin"
	DATA_REG=$reg manifest lying 1 noop "$(size "$SRV/big.bin")" - \
		"http://127.0.0.1:$LIE_PORT/big.bin"
	DATA_REG=$reg manifest gone 1 noop 10 - "http://127.0.0.1:$PORT/no-such-file"
	DATA_REG=$reg manifest viaftp 1 noop "$(size "$SRV/small.vcf.gz")" - \
		"ftp://127.0.0.1:$FTP_PORT/small.vcf.gz"
	run bv data verify --registry "$reg"
	assert_failure 1
	assert_line --regexp "^PASS +good +1 +declared 4194304, actual 4194304$"
	assert_line --regexp "^PASS +nohead +1 +declared 4194304, actual 4194304$"
	assert_line --regexp "^MISMATCH +lying +1 +declared 4194304, actual 999$"
	assert_line --regexp "^FAIL +gone +1 +declared 10, actual \?: the server returned 404$"
	assert_line --regexp "^PASS +viaftp +1 "
	assert_output --partial "error: 1 dataset could not be reached"
	grep -q '^GET /big.bin bytes=0-0$' "$BATS_FILE_TMPDIR/nohead.log"
	run bv data verify --registry "$reg" --filter good
	assert_success
	run bv data verify --registry "$reg" --filter lying --size-tolerance 1
	assert_success
	assert_output --regexp "^PASS +lying"
}

@test "verify --local finds a damaged dataset; rm removes it" {
	bv data fetch vcf@2024_01 --yes
	chmod u+w "$DATA/vcf/2024_01" "$DATA/vcf/2024_01/small.vcf.gz.tbi"
	echo tampered >>"$DATA/vcf/2024_01/small.vcf.gz.tbi"
	run bv data verify --local
	assert_failure 1
	assert_output --partial "DAMAGED   vcf 2024_01: 'small.vcf.gz.tbi' has changed"
	run bv data rm vcf@2024_01
	assert_success
	[ ! -e "$DATA/vcf/2024_01" ]
	run bv data list
	assert_output --partial "No datasets in the cache"
	run bv data rm vcf
	assert_failure 1
	assert_output "error: dataset vcf is not in the cache"
}

@test "bad input: one clear error each" {
	run bv data fetch '../etc@1' --yes
	assert_failure 1
	assert_output --partial "error: invalid dataset id '../etc'"
	run bv data fetch nosuch --yes
	assert_failure 1
	assert_output --partial "nosuch"
	run bv data fetch vcf@1999 --yes
	assert_failure 1
	assert_output --partial "dataset 'vcf' has no version '1999'"
	run bv data frobnicate
	assert_failure 2
	assert_output --partial "unknown data command 'frobnicate'"
	run bv data fetch
	assert_failure 2
	run bv data verify --size-tolerance abc
	assert_failure 2
	mkdir -p "$BATS_TEST_TMPDIR/r2/data/plain"
	printf '[data]\nid = "plain"\nversion = "1"\nsource_urls = ["http://example.org/x.gz"]\nformat = "x"\n' \
		>"$BATS_TEST_TMPDIR/r2/data/plain/1.toml"
	run bv data fetch plain --yes --registry "$BATS_TEST_TMPDIR/r2"
	assert_failure 1
	assert_output --partial "plain http is only allowed to a loopback host"
	printf '[data]\nid = "plain"\nversion = "1"\nsource_urls = ["https://example.org/a/.."]\nformat = "x"\n' \
		>"$BATS_TEST_TMPDIR/r2/data/plain/1.toml"
	run bv data fetch plain --yes --registry "$BATS_TEST_TMPDIR/r2"
	assert_failure 1
	assert_output --partial "does not end in a usable file name"
}

@test "mirrors: BV_DATA_MIRRORS and the [data] table of the mirrors file" {
	local reg=$BATS_TEST_TMPDIR/mreg
	mkdir -p "$reg"
	DATA_REG=$reg manifest far 1 noop "$(size "$SRV/small.vcf.gz")" "$(sha "$SRV/small.vcf.gz")" \
		"https://ftp.example.invalid/pub/small.vcf.gz"
	BV_DATA_MIRRORS="https://ftp.example.invalid/pub/=http://127.0.0.1:$PORT/" \
		run bv data fetch far --yes --registry "$reg"
	assert_success
	bv data rm far
	mkdir -p "$XDG_CONFIG_HOME/bv"
	printf '[data]\n"https://ftp.example.invalid/pub/" = "http://127.0.0.1:%s/"\n' "$PORT" \
		>"$XDG_CONFIG_HOME/bv/mirrors.toml"
	run bv data fetch far --yes --registry "$reg"
	assert_success
	cmp "$DATA/far/1/small.vcf.gz" "$SRV/small.vcf.gz"
	BV_DATA_MIRRORS="nonsense" run bv data fetch far --yes --registry "$reg"
	assert_failure 1
	assert_output --partial "invalid BV_DATA_MIRRORS entry 'nonsense'"
}

@test "a user without root fetches into a cache of their own" {
	reachable=$(reachable_bv)
	local home=$BATS_TEST_TMPDIR/nobody
	mkdir -p "$home"
	chmod 777 "$home"
	d=$home
	while [ "$d" != / ] && [ "$d" != /tmp ]; do chmod o+x "$d"; d=$(dirname "$d"); done
	cp -r "$DATA_REG" "$home/reg"
	chmod -R a+rX "$home/reg"
	run setpriv --reuid 65534 --regid 65534 --clear-groups env -i PATH=/usr/bin:/bin \
		HOME="$home" BV_REGISTRY="$home/reg" "$reachable" data fetch kdb vcf@2024_01 --yes
	assert_success
	[ "$(stat -c %u "$home/.cache/bv/data/kdb/1.0/kdb/hash.k2d")" = 65534 ]
	run setpriv --reuid 65534 --regid 65534 --clear-groups env -i PATH=/usr/bin:/bin \
		HOME="$home" "$reachable" data rm kdb
	assert_success
	[ ! -e "$home/.cache/bv/data/kdb/1.0" ]
}

@test "add: names the data a tool needs and the fetch line; bv.lock pins it; --fetch-data fetches" {
	project
	run bv add samtools
	assert_success
	assert_output --partial "samtools needs reference data vcf 2024_01"
	assert_output --partial "hint: fetch it with: bv data fetch vcf@2024_01"
	[ ! -e "$DATA/vcf/2024_01" ]
	run awk '/^\[tools.samtools.reference_data_pins.vcf\]/ {f = 1; next} /^\[/ {f = 0} f' bv.lock
	assert_output "id = \"vcf\"
sha256 = \"sha256:$(sha "$SRV/small.vcf.gz")\"
version = \"2024_01\""
	run bv lock --check
	assert_success
	run bv add bwa --fetch-data
	assert_success
	assert_output --partial "bwa can use reference data kdb 1.0"
	assert_output --partial "Fetched kdb 1.0"
	[ -d "$DATA/kdb/1.0/kdb" ]
	run bv doctor
	assert_output --partial "datasets    1 in the cache"
	assert_output --partial "missing     vcf 2024_01 (for samtools; 'bv data fetch vcf@2024_01')"
}

@test "run: required data mounted read-only; missing required fails with the fetch line" {
	project
	bv add samtools bwa >/dev/null 2>&1
	run bv run sh -c 'echo hi'
	assert_failure 125
	assert_output --partial "error: samtools needs reference data 'vcf' 2024_01, which is not in the cache; fetch it with 'bv data fetch vcf@2024_01'"
	bv data fetch vcf@2024_01 --yes
	run bv run sh -c 'gzip -dc /data/vcf/small.vcf.gz | head -1; ls /data/vcf; touch /data/vcf/x'
	assert_failure
	assert_line --index 0 "##fileformat=VCFv4.2"
	assert_line --index 1 "small.vcf.gz"
	assert_line --index 2 "small.vcf.gz.tbi"
	assert_output --partial "Read-only file system"
	# an optional dataset that is missing is a warning, and the tool runs
	run bv run bwa
	assert_output --partial "warning: bwa can use reference data 'kdb' 1.0, which is not in the cache"
	assert_output --partial "Program: bwa"
	bv data fetch kdb --yes
	run bv run bwa 2>&1
	refute_output --partial "warning:"
}

@test "sync --data fetches the pinned datasets; --frozen refuses a dataset whose digest differs" {
	project
	bv add samtools >/dev/null 2>&1
	run bv sync --data
	assert_success
	assert_output --partial "Fetched vcf 2024_01"
	run bv sync --frozen
	assert_success
	sed -i 's/"sha256": "sha256:[0-9a-f]*"/"sha256": "sha256:0000000000000000000000000000000000000000000000000000000000000000"/' \
		"$DATA/vcf/2024_01.json"
	run bv sync --frozen
	assert_failure 1
	assert_output --partial "error: bv.lock pins vcf 2024_01 for samtools at sha256:$(sha "$SRV/small.vcf.gz"), but the cache holds sha256:0000"
}

@test "prune removes unpinned datasets and keeps what a live project pins" {
	project
	bv add samtools >/dev/null 2>&1
	bv data fetch vcf@2024_01 seqs --yes
	run bv cache prune --dry-run
	assert_success
	assert_output --partial "would remove $DATA/seqs/3"
	refute_output --partial "would remove $DATA/vcf"
	[ -d "$DATA/seqs/3" ]
	run bv cache prune
	assert_success
	assert_output --partial "removed $DATA/seqs/3"
	[ ! -e "$DATA/seqs/3" ]
	[ -d "$DATA/vcf/2024_01" ]
	# once the project is gone, its data goes too
	rm -rf "$PROJ"
	mkdir -p "$BATS_TEST_TMPDIR/other" && cd "$BATS_TEST_TMPDIR/other"
	bv init other >/dev/null 2>&1 && bv add bwa >/dev/null 2>&1
	run bv cache prune
	assert_success
	assert_output --partial "removed $DATA/vcf/2024_01"
	[ ! -e "$DATA/vcf/2024_01" ]
}
