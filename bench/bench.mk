# Benchmark programs, included from the Makefile after its variables and rules:
#   include bench/bench.mk
# They use the Makefile's CC, CFLAGS, LDFLAGS, LDLIBS and BUILD, its $(BUILD)/obj/%.o
# pattern rule (so -MMD dependency files come for free) and $(BUILD)/libsimcse.a.
# Also usable on its own: make -f Makefile -f bench/bench.mk $(BUILD)/bench_step
# (the guard makes a second inclusion harmless).
ifndef SIMCSE_BENCH_MK
SIMCSE_BENCH_MK := 1

BENCH_PROGS := $(BUILD)/bench_step $(BUILD)/bench_kernels

$(BUILD)/bench_step: $(BUILD)/obj/bench/bench_step.o $(BUILD)/libsimcse.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bench_kernels: $(BUILD)/obj/bench/bench_kernels.o $(BUILD)/libsimcse.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

.PHONY: bench-build
bench-build: $(BENCH_PROGS)

endif
