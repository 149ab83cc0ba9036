/*
 * The tests' window on internals. Not installed; only tests/ includes it.
 */
#ifndef GX_TESTING_H
#define GX_TESTING_H

#include "arch/switch.h"
#include "core/co.h"
#include "core/rand.h"
#include "core/sched.h"
#include "core/stack.h"
#include "core/testpoint.h"
#include "core/timer.h"
#include "io/loop.h"
#include "io/op.h"
#include "par/par.h"
#include "shm/shm.h"

#include <gonex/gonex.h>

/* tests/arch/regs_<arch>.S */

/* Load known values into every callee-saved register, gx_arch_switch(from,
 * to, NULL), then store what those registers hold into out[] (x86-64: rbx,
 * rbp, r12, r13, r14, r15; aarch64: x19..x29, then d8..d15 as bits) and
 * restore the caller's registers. */
void gx_test_switch_regs(void **from, void *to, uint64_t *out);
/* Set every callee-saved register to garbage and gx_arch_switch(from, to). */
void gx_test_clobber_switch(void **from, void *to);
/* The caller's stack pointer at its call instruction. */
uintptr_t gx_test_caller_sp(void);
/* The values gx_test_switch_regs loads, in its out[] order. */
#if defined(__x86_64__)
#define GX_TEST_NREGS 6
#else
#define GX_TEST_NREGS 19
#endif
static inline uint64_t gx_test_reg_pattern(int i)
{
	return 0x1020304050607080ull + (uint64_t)i * 0x0101010101010101ull;
}

#endif
