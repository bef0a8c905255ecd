# simcse build.
#   make            build/simcse (CUDA backend included when nvcc is found)
#   make deps       check the Debian packages, install the missing ones (.ci/deps)
#   make demo       train configs/demo.json, evaluate it, plot it (the README's first command)
#   make test       Criterion suite (GPU tests run only where a GPU is present)
#   make test SAN=1 the same suite under AddressSanitizer + UndefinedBehaviorSanitizer (CPU only)
#   make fuzz       libFuzzer targets (clang), short runs: make fuzz-run
#   make bench      benchmarks (see bench/README.md)
#   make test-emu   kernels/cuda on the CPU execution harness under ASan + UBSan (tests/emu/emu.mk)
#   make mutate     mutation check: each one-line bug of tests/mutations.txt in a scratch copy,
#                   CPU suite on each, killed/survived (slow: not part of CI)
# Options: CUDA=0 builds without the CUDA backend; SIMCSE_DATA_DIR for tests (default ../shared/data).

CC      ?= cc
NVCC    ?= $(shell command -v nvcc 2>/dev/null || ls /usr/local/cuda/bin/nvcc 2>/dev/null)
CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(NVCC))
SAN     ?= 0
CUDA    ?= $(if $(NVCC),1,0)
ifeq ($(SAN),1)
  CUDA  := 0
  BUILD ?= build-san
else
  BUILD ?= build
endif

# make demo and make test first run the deps step. It runs while this file is read, before
# pkg-config is asked for flags below, so what it installs is used by this same run; it is a
# sub-second check when all is present. Skipped under make -n.
ifneq ($(filter demo test,$(MAKECMDGOALS)),)
  ifeq ($(findstring n,$(firstword -$(MAKEFLAGS))),)
    ifneq ($(shell .ci/deps >&2 && echo ok),ok)
      $(error the deps step (.ci/deps) failed: see above)
    endif
  endif
endif

PKGS    := libcjson libutf8proc libpcre2-8 zlib openblas
WARN    := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 $(WARN) -Iinclude -I. -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -pthread -MMD -MP \
           $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  := $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lcjson -lutf8proc -lpcre2-8 -lz -lopenblas) -lcsv -lm -pthread
ifeq ($(SAN),1)
  CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  LDFLAGS += -fsanitize=address,undefined
endif

# host/base/ is the ground floor (errors, allocation, files, RNG, data directory);
# kernels/*.c other than cuda_absent.c is backend-neutral code of the kernel layer.
HOST_SRC   := $(filter-out host/cli/main.c,$(wildcard host/*/*.c))
CPU_SRC    := $(filter-out kernels/cuda_absent.c,$(wildcard kernels/*.c)) $(wildcard kernels/cpu/*.c)
CUDA_SRC   := $(wildcard kernels/cuda/*.cu)
TEST_SRC   := $(wildcard tests/test_*.c)

LIB_OBJ    := $(HOST_SRC:%.c=$(BUILD)/obj/%.o) $(CPU_SRC:%.c=$(BUILD)/obj/%.o)
ifeq ($(CUDA),1)
  NVCCFLAGS := -O3 -std=c++17 -Iinclude -I. --expt-relaxed-constexpr -MMD -MP \
               -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
               -gencode arch=compute_90,code=compute_90 \
               -Xcompiler -Wall,-Wextra,-Werror,-Wno-unused-parameter -Werror all-warnings
  LIB_OBJ   += $(CUDA_SRC:%.cu=$(BUILD)/obj/%.o)
  CFLAGS    += -DSIMCSE_CUDA=1 -I$(CUDA_HOME)/include
  LDLIBS    += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcublasLt -lcublas -lcurand -lcudart -lstdc++
  NCCL_OK   := $(shell test -e $(CUDA_HOME)/lib64/libnccl.so -o -e /usr/lib/x86_64-linux-gnu/libnccl.so && echo 1)
  ifeq ($(NCCL_OK),1)
    CFLAGS  += -DSIMCSE_NCCL=1
    LDLIBS  += -lnccl
  endif
else
  LIB_OBJ   += $(BUILD)/obj/kernels/cuda_absent.o
endif

TEST_OBJ   := $(TEST_SRC:%.c=$(BUILD)/obj/%.o)
# the GPU side of tests/test_cuda_mma.c (tensor-core layouts vs the harness's; CUDA builds only)
ifeq ($(CUDA),1)
  TEST_OBJ += $(BUILD)/obj/tests/gpu/mma_probe.o
endif

.PHONY: all deps test demo bench fuzz fuzz-run mutate clean
all: $(BUILD)/simcse

deps:
	@.ci/deps

# Rebuilt from scratch, and whenever the list of its objects changes (the list is kept in
# libsimcse.objs): ar r into an old archive would keep the objects of moved or deleted
# sources, and their symbols would clash with the new ones.
LIB_LIST := $(BUILD)/libsimcse.objs
$(shell mkdir -p $(BUILD) && (echo '$(LIB_OBJ)' | cmp -s - $(LIB_LIST) || echo '$(LIB_OBJ)' > $(LIB_LIST)))
$(BUILD)/libsimcse.a: $(LIB_OBJ) $(LIB_LIST)
	@mkdir -p $(@D)
	rm -f $@
	$(AR) rcs $@ $(LIB_OBJ)

$(BUILD)/simcse: $(BUILD)/obj/host/cli/main.o $(BUILD)/libsimcse.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/obj/kernels/cuda_absent.o: kernels/cuda_absent.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/obj/%.o: %.cu
	@mkdir -p $(@D)
	$(NVCC) $(NVCCFLAGS) -c -o $@ $<

$(BUILD)/simcse_tests: $(TEST_OBJ) $(BUILD)/libsimcse.a
	$(CC) $(LDFLAGS) -o $@ $^ -lcriterion $(LDLIBS)

# One Criterion binary for the whole suite; --jobs 2 matches the CI machine.
test: $(BUILD)/simcse $(BUILD)/simcse_tests
	SIMCSE_BIN=$(BUILD)/simcse LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp \
	  $(BUILD)/simcse_tests --jobs 2 $(TEST_ARGS)

FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=build-fuzz/%)
FUZZ_LIB_SRC := $(HOST_SRC) $(CPU_SRC) kernels/cuda_absent.c
build-fuzz/%: tests/fuzz/%.c $(FUZZ_LIB_SRC)
	@mkdir -p $(@D)
	clang -std=c11 -g -O1 -Iinclude -I. -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE \
	  $(shell pkg-config --cflags $(PKGS) 2>/dev/null) \
	  -fsanitize=fuzzer,address,undefined -o $@ $< $(FUZZ_LIB_SRC) $(LDLIBS)
fuzz: $(FUZZ_BIN)
fuzz-run: fuzz
	@for f in $(FUZZ_BIN); do n=$$(basename $$f); mkdir -p build-fuzz/corpus-$$n; \
	  echo "fuzz: $$n"; $$f -max_total_time=$${FUZZ_SECONDS:-20} -rss_limit_mb=2048 \
	  build-fuzz/corpus-$$n tests/fuzz/seeds/$$n || exit 1; done

# The README's main command: train the demo config, score the export on STS test sets, draw the run.
demo: $(BUILD)/simcse
	$(BUILD)/simcse train --config configs/demo.json --output runs/demo --overwrite --device auto
	$(BUILD)/simcse eval --model runs/demo --pooler avg --tasks stsb,sickr --split test --device auto
	$(BUILD)/simcse plot --run runs/demo

include bench/bench.mk
include tests/emu/emu.mk
bench: $(BUILD)/simcse
	bash bench/run.sh

# Each mutation of tests/mutations.txt, applied alone to a scratch copy of the tree, must fail the CPU suite.
mutate:
	bash tests/mutate.sh tests/mutations.txt

clean:
	rm -rf build build-san build-fuzz build-emu

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
