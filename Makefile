# Thin wrapper around Meson.  Every target sets up what it needs, so a fresh Debian 12
# machine only needs `make demo` or `make check`.
BUILD     ?= build
ASAN      ?= build-asan
FANALYZER ?= build-fanalyzer
FUZZ      ?= build-fuzz
MESON     ?= meson
MESON_OPTS ?=
SHARED    ?= ../shared
FUZZ_SECONDS ?= 60
FUZZ_LONG_SECONDS ?= 1800
PREFIX    ?= /usr/local
DESTDIR   ?=

SOURCES = $(shell git ls-files --cached --others --exclude-standard '*.c' '*.h' 2>/dev/null)


.PHONY: install uninstall
.PHONY: all deps deps-quiet deps-build setup check unit e2e asan fanalyzer lint tidy format format-check fuzz-build fuzz fuzz-long bench bench-unpack demo clean

# Building needs only the build packages (no root, docker or samtools); tests need the rest.
all: deps-build $(BUILD)/build.ninja
	ninja -C $(BUILD)

deps:
	@scripts/deps.sh

deps-quiet:
	@scripts/deps.sh --quiet

deps-build:
	@scripts/deps.sh --build

$(BUILD)/build.ninja:
	@scripts/deps.sh --build
	$(MESON) setup $(BUILD) --buildtype=debugoptimized $(MESON_OPTS)

setup: $(BUILD)/build.ninja

# bin/bv, the man pages, the completion scripts and the type vocabulary under
# $(DESTDIR)$(PREFIX), from $(BUILD) whatever prefix it was set up with (scripts/install.py).
install: all
	scripts/install.py $(BUILD) $(PREFIX) "$(DESTDIR)"

# Removes exactly those files (Meson's list of them).
uninstall: $(BUILD)/build.ninja
	scripts/install.py --uninstall $(BUILD) $(PREFIX) "$(DESTDIR)"

# Every test: unit (cmocka), conformance (toml-test) and end-to-end (bats).
check: deps-quiet all
	scripts/run-tests.sh $(BUILD)

asan:
	$(MAKE) check BUILD=$(ASAN) MESON_OPTS="-Dwerror=true -Db_sanitize=address,undefined \
		-Db_lundef=false -Dc_args=-fno-sanitize-recover=undefined"

fanalyzer:
	@scripts/deps.sh --build
	test -f $(FANALYZER)/build.ninja || CC=gcc $(MESON) setup $(FANALYZER) -Dwerror=true \
		-Dc_args=-fanalyzer -Dtests=disabled
	ninja -C $(FANALYZER)

lint: fanalyzer format-check tidy
	@echo "lint: clean"

# clang-tidy (.clang-tidy) over src/ from $(BUILD)'s compile_commands.json; about 15 s on two
# cores.  TIDY_ANALYZER=1 adds clang-analyzer-* (minutes; GCC -fanalyzer covers it).
tidy: $(BUILD)/build.ninja
	@scripts/deps.sh --lint
	scripts/tidy.sh $(BUILD)

format:
	clang-format -i $(SOURCES)

format-check:
	clang-format --dry-run --Werror $(SOURCES)

fuzz-build:
	@scripts/deps.sh --quiet
	test -f $(FUZZ)/build.ninja || CC=clang $(MESON) setup $(FUZZ) -Dfuzz=true -Dtests=disabled -Dwerror=true \
		-Db_sanitize=address,undefined -Db_lundef=false
	ninja -C $(FUZZ)

# Every target, FUZZ_SECONDS split between them.
fuzz: fuzz-build
	scripts/fuzz.sh $(FUZZ) $(FUZZ_SECONDS)

# Every target for FUZZ_LONG_SECONDS each, one at a time, continuing from the working corpus
# kept in $(FUZZ)/fuzz-corpus/<target>/ (FUZZ_TARGETS="fuzz_unpack ..." for a subset).
fuzz-long: fuzz-build
	scripts/fuzz.sh --each $(FUZZ) $(FUZZ_LONG_SECONDS)

bench: deps-quiet all
	scripts/bench.sh $(BUILD)
	scripts/bench-trust.sh $(BUILD)
	scripts/bench-data.sh $(BUILD)
	scripts/bench-services.sh $(BUILD)
	scripts/bench-nodelocal.sh $(BUILD)
	scripts/bench-hpc.sh $(BUILD)

# The unpack-only part of bench-pull.sh; BENCH_UNPACK_BASELINE=<builddir> compares two builds.
bench-unpack: all
	scripts/bench-pull.sh $(BUILD) --unpack-only

demo: deps-quiet all
	@scripts/demo.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN) $(FANALYZER) $(FUZZ)
