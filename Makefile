# openshell-sandbox - see README.md
#   make            build build/openshell-sandbox
#   make demo       install deps, build, run the scripted tour (root)
#   make check      install deps, build (gcc + clang, and the bench probes), unit
#                   tests (plain and ASan/UBSan), fuzz smoke, integration tests (root)
#   make fuzz       build libFuzzer targets and run each FUZZ_SECONDS (60)
#   make bench      side-by-side benchmark vs squid, tinyproxy, mitmproxy (root)
#   make install    PREFIX=/usr/local DESTDIR=

CC      ?= gcc
PREFIX  ?= /usr/local
DESTDIR ?=
BUILD   ?= build
PYTEST  ?= /usr/bin/python3 -m pytest
FUZZ_SECONDS ?= 60

PKGS    := libnl-3.0 libnl-route-3.0 libnl-nf-3.0 libnftables libseccomp openssl libcap \
           yaml-0.1 libuv json-c libssh
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

# CFLAGS (optimisation, sanitizers) may be overridden; WFLAGS always apply.
CFLAGS  ?= -O2 -g
WARN    := -Wall -Wextra -Werror -Wshadow -Wformat=2
WFLAGS  := -std=gnu11 $(WARN) \
           -Wno-unused-parameter -fno-strict-aliasing -D_GNU_SOURCE \
           -I. $(PKG_CFLAGS)
LDLIBS  += $(PKG_LIBS)

MODULES := policy proxy netns landlock seccomp ssh-relay supervisor
LIB_SRCS := $(foreach m,$(filter-out supervisor,$(MODULES)),$(wildcard $(m)/*.c))
SUP_SRCS := $(wildcard supervisor/*.c)
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
SUP_OBJS := $(SUP_SRCS:%.c=$(BUILD)/obj/%.o)
# Everything but main: unit tests link these too.
TEST_OBJS := $(LIB_OBJS) $(filter-out $(BUILD)/obj/supervisor/main.o,$(SUP_OBJS))
HDRS     := $(wildcard */*.h)

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
# Helpers the unit tests share (tests/unit/support/), linked into each.
UNIT_SUPPORT_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard tests/unit/support/*.c))
UNIT_SUPPORT_HDRS := $(wildcard tests/unit/support/*.h)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(abspath $(BUILD))/unit/%)
ASAN_DIR  := $(BUILD)/asan
ASAN_BINS := $(UNIT_SRCS:tests/unit/%.c=$(ASAN_DIR)/unit/%)
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/fuzz/%)

BIN := $(BUILD)/openshell-sandbox

.PHONY: all deps demo check unit unit-asan clang-check integration fuzz fuzz-build \
        install clean bench probes

all: $(BIN)

deps:
	bash scripts/deps.sh

$(BIN): $(LIB_OBJS) $(SUP_OBJS)
	$(CC) $(WFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/obj/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(WFLAGS) $(CFLAGS) -c -o $@ $<

# Unit tests link every module object except the supervisor's main, and the
# helpers in tests/unit/support/.
$(UNIT_SUPPORT_OBJS): $(UNIT_SUPPORT_HDRS)
$(abspath $(BUILD))/unit/%: tests/unit/%.c $(TEST_OBJS) $(UNIT_SUPPORT_OBJS) $(HDRS) \
                            $(UNIT_SUPPORT_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(WFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(TEST_OBJS) $(UNIT_SUPPORT_OBJS) \
	  $(LDLIBS) -lcmocka

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

unit-asan:
	$(MAKE) --no-print-directory BUILD=$(ASAN_DIR) CC=clang \
	  CFLAGS="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all" \
	  LDFLAGS="-fsanitize=address,undefined" unit

clang-check:
	$(MAKE) --no-print-directory BUILD=$(BUILD)/clang CC=clang all probes

# The benchmark's probes (bench/probes/, standalone programs, each built as its
# header says): compiled by `make check` so they stay warning-free on both compilers.
PROBE_SRCS := $(wildcard bench/probes/*.c)
PROBE_BINS := $(PROBE_SRCS:bench/probes/%.c=$(BUILD)/probes/%)
probes: $(PROBE_BINS)
$(BUILD)/probes/%: bench/probes/%.c bench/probes/floor_common.h
	@mkdir -p $(dir $@)
	$(CC) -O2 -std=gnu11 $(WARN) -o $@ $< -lssl -lcrypto

FUZZ_CFLAGS := -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
fuzz-build:
	$(MAKE) --no-print-directory BUILD=$(BUILD)/fuzzobj CC=clang \
	  CFLAGS="-O1 -g -fsanitize=fuzzer-no-link,address,undefined" \
	  LDFLAGS="-fsanitize=address,undefined" $(patsubst $(BUILD)/%,$(BUILD)/fuzzobj/%,$(LIB_OBJS))
	@mkdir -p $(BUILD)/fuzz
	@set -e; for s in $(FUZZ_SRCS); do \
	  n=$$(basename $$s .c); \
	  echo "clang $$s -> $(BUILD)/fuzz/$$n"; \
	  clang -std=gnu11 -D_GNU_SOURCE -I. $(PKG_CFLAGS) $(FUZZ_CFLAGS) -o $(BUILD)/fuzz/$$n $$s \
	    $(patsubst $(BUILD)/%,$(BUILD)/fuzzobj/%,$(LIB_OBJS)) $(PKG_LIBS); \
	done

fuzz: fuzz-build
	@set -e; for s in $(FUZZ_SRCS); do \
	  n=$$(basename $$s .c); mkdir -p $(BUILD)/fuzz/corpus-$$n; \
	  echo "== fuzz $$n for $(FUZZ_SECONDS)s"; \
	  $(BUILD)/fuzz/$$n -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 \
	    $(BUILD)/fuzz/corpus-$$n tests/fuzz/seeds/$$n 2>$(BUILD)/fuzz/$$n.log \
	    || { tail -50 $(BUILD)/fuzz/$$n.log; exit 1; }; \
	  tail -1 $(BUILD)/fuzz/$$n.log; \
	done

integration: $(BIN)
	$(PYTEST) -q -p no:cacheprovider tests/integration

demo: deps
	$(MAKE) --no-print-directory all
	bash scripts/demo.sh

check: deps
	$(MAKE) --no-print-directory all probes
	$(MAKE) --no-print-directory clang-check
	$(MAKE) --no-print-directory unit
	$(MAKE) --no-print-directory unit-asan
	$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$${CHECK_FUZZ_SECONDS:-20}
	$(MAKE) --no-print-directory integration

# The side-by-side benchmark (issue 7): peers come from scripts/deps-bench.sh,
# kept out of `make check`. Ratios only; see bench/NOTES.md.
bench: all
	bash scripts/deps-bench.sh && bash scripts/bench.sh

install: $(BIN)
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/openshell-sandbox

clean:
	rm -rf $(BUILD)
