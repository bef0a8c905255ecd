# The CPU execution harness build (issue 11), included from the Makefile after its variables:
#   make test-emu    kernels/cuda compiled as host C++ against tests/emu/include, the cuda_ops and
#                    cuda_model suites plus the harness self-tests, all under ASan + UBSan
#   make bench-emu   build-emu/bench_step (--device cuda runs on the harness; --counters)
#   make build-emu/simcse   the CLI on the harness (CI trains and encodes the demo with it)
# Everything lands in build-emu/. The .cu files are not edited for it: tests/emu/rewrite.pl turns
# their <<<...>>> launches and __shared__ declarations into harness calls in build-emu/gen/,
# whose rewritten .cuh headers shadow the originals (-I build-emu/gen comes first).
# Library stand-ins (harnesslib: cuBLAS, cuBLASLt, NCCL) are the tests/emu/*.cpp files, picked up
# by the wildcard; their headers are tests/emu/include/*.h. curand_kernel.h is the real one, from
# $(CUDA_HOME)/include, through a directory of links so no other CUDA header can be picked up.

EMU        := build-emu
EMU_CC     ?= gcc
EMU_CXX    ?= g++
EMU_SAN    := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
EMU_OPT    ?= -O2 -g
EMU_NCCL   := $(if $(wildcard tests/emu/include/nccl.h),-DSIMCSE_NCCL=1)
EMU_INC    := -Itests/emu/include -isystem $(EMU)/cuda-include -Iinclude -I.
EMU_CFLAGS := -std=c11 $(WARN) $(EMU_OPT) $(EMU_SAN) -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -pthread -MMD -MP \
              -DSIMCSE_CUDA=1 -DSIMCSE_EMU=1 $(EMU_NCCL) $(EMU_INC) $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
EMU_CXXFLAGS := -std=c++17 -Wall -Wextra -Werror -Wno-unused-parameter -Wno-unknown-pragmas $(EMU_OPT) $(EMU_SAN) -ffp-contract=off -pthread \
              -MMD -MP -DSIMCSE_CUDA=1 -DSIMCSE_EMU=1 $(EMU_NCCL) -I$(EMU)/gen $(EMU_INC)
EMU_LDFLAGS := $(EMU_SAN) -pthread
EMU_LDLIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lcjson -lutf8proc -lpcre2-8 -lz) -lcsv -lm \
              -lboost_context -pthread

EMU_KSRC     := $(wildcard kernels/cuda/*.cu)
EMU_KHDR     := $(wildcard kernels/cuda/*.cuh)
EMU_GEN_HDR  := $(EMU_KHDR:%=$(EMU)/gen/%)
EMU_RT_SRC   := $(wildcard tests/emu/*.cpp)
EMU_LIB_OBJ  := $(HOST_SRC:%.c=$(EMU)/obj/%.o) $(CPU_SRC:%.c=$(EMU)/obj/%.o) \
                $(EMU_KSRC:%.cu=$(EMU)/obj/%.o) $(EMU_RT_SRC:%.cpp=$(EMU)/obj/%.o)
# the suites that run on the harness, and its self-tests (deliberately broken kernels)
EMU_TEST_SRC := tests/test_cuda_ops.c tests/test_cuda_model.c $(wildcard tests/emu/test_*.c)
EMU_TEST_CU  := $(wildcard tests/emu/test_*.cu)
EMU_TEST_OBJ := $(EMU_TEST_SRC:%.c=$(EMU)/obj/%.o) $(EMU_TEST_CU:%.cu=$(EMU)/obj/%.o)
EMU_CURAND   := $(EMU)/cuda-include/.stamp

.PHONY: test-emu bench-emu emu-build
.PRECIOUS: $(EMU)/gen/%.cu.cpp $(EMU)/gen/%.cuh
emu-build: $(EMU)/simcse $(EMU)/simcse_tests

$(EMU_CURAND):
	@test -e $(CUDA_HOME)/include/curand_kernel.h || { echo "test-emu: $(CUDA_HOME)/include/curand_kernel.h not found (set CUDA_HOME)"; exit 1; }
	@mkdir -p $(@D)
	for f in $(CUDA_HOME)/include/curand*.h $(CUDA_HOME)/include/nv; do ln -sfn $$f $(@D)/; done
	@touch $@

$(EMU)/gen/%.cu.cpp: %.cu tests/emu/rewrite.pl
	@mkdir -p $(@D)
	perl tests/emu/rewrite.pl $< > $@.tmp && mv $@.tmp $@
$(EMU)/gen/%.cuh: %.cuh tests/emu/rewrite.pl
	@mkdir -p $(@D)
	perl tests/emu/rewrite.pl $< > $@.tmp && mv $@.tmp $@

$(EMU)/obj/%.o: $(EMU)/gen/%.cu.cpp $(EMU_GEN_HDR) $(EMU_CURAND)
	@mkdir -p $(@D)
	$(EMU_CXX) $(EMU_CXXFLAGS) -c -o $@ $<
$(EMU)/obj/tests/emu/%.o: tests/emu/%.cpp $(EMU_CURAND)
	@mkdir -p $(@D)
	$(EMU_CXX) $(EMU_CXXFLAGS) -c -o $@ $<
$(EMU)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(EMU_CC) $(EMU_CFLAGS) -c -o $@ $<

$(EMU)/libsimcse.a: $(EMU_LIB_OBJ)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

$(EMU)/simcse: $(EMU)/obj/host/cli/main.o $(EMU)/libsimcse.a
	$(EMU_CXX) $(EMU_LDFLAGS) -o $@ $^ $(EMU_LDLIBS)

$(EMU)/simcse_tests: $(EMU_TEST_OBJ) $(EMU)/libsimcse.a
	$(EMU_CXX) $(EMU_LDFLAGS) -o $@ $^ -lcriterion $(EMU_LDLIBS)

$(EMU)/bench_step: $(EMU)/obj/bench/bench_step.o $(EMU)/libsimcse.a
	$(EMU_CXX) $(EMU_LDFLAGS) -o $@ $^ $(EMU_LDLIBS)

# SIMCSE_TEST_SMALL: the suites' small shapes. The summary must show no skipped test, no leak report
# (LeakSanitizer's report of a test's worker does not fail the test) and, unfiltered, as many tests
# as the sources declare.
EMU_RUN_ENV := SIMCSE_TEST_SMALL=1 SIMCSE_BIN=$(EMU)/simcse LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp \
               ASAN_OPTIONS=detect_stack_use_after_return=0
test-emu: $(EMU)/simcse $(EMU)/simcse_tests
	{ $(EMU_RUN_ENV) $(EMU)/simcse_tests --jobs 2 $(TEST_ARGS); echo $$? > $(EMU)/test-emu.rc; } 2>&1 | tee $(EMU)/test-emu.log
	@test "$$(cat $(EMU)/test-emu.rc)" = 0
	@! grep -q 'SKIP' $(EMU)/test-emu.log || { echo "test-emu: a test was skipped (every test must run on the harness)"; exit 1; }
	@! grep -q 'ERROR: LeakSanitizer' $(EMU)/test-emu.log || { echo "test-emu: LeakSanitizer reported a leak (a test's worker leaks only into the log)"; exit 1; }
	@[ -n "$(TEST_ARGS)" ] || { want=$$(cat $(EMU_TEST_SRC) $(EMU_TEST_CU) | grep -c '^Test('); \
	  ran=$$(sed -n 's/.*Synthesis: Tested: \([0-9]*\).*/\1/p' $(EMU)/test-emu.log | tail -1); \
	  [ "$$ran" = "$$want" ] || { echo "test-emu: $$ran tests ran; the suites declare $$want (every test must run)"; exit 1; }; }

bench-emu: $(EMU)/bench_step

-include $(shell find $(EMU) -name '*.d' 2>/dev/null)
