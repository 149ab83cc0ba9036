/*
 * The context switch, the lowest layer: no dependencies.
 *
 * A suspended context is one pointer, its saved stack pointer. The frame at
 * that pointer is laid out by arch/<arch>/switch.S (see the table there);
 * gx_arch_stack_init builds the same frame on a fresh stack so that the first
 * switch into it "returns" into gx_arch_trampoline, which calls
 * entry(arg, first_switch_arg) and never returns.
 */
#ifndef GX_ARCH_SWITCH_H
#define GX_ARCH_SWITCH_H

#include <stdint.h>
#include <string.h>

#include "gx_build_config.h"

/* Save the callee-saved registers on the current stack, store the stack
 * pointer in *from_sp, resume the context saved at to_sp. Returns (on the
 * resumed side, later) the arg given by whoever switched back here. */
void *gx_arch_switch(void **from_sp, void *to_sp, void *arg);

/* First frame of every coroutine; see switch.S. */
void gx_arch_trampoline(void);

/* The current FP control state as stored in the switch frame. */
uint64_t gx_arch_fpenv_get(void);

typedef void (*gx_arch_entry_fn)(void *arg, void *first_switch_arg);

#if defined(__x86_64__)
#define GX_ARCH_FRAME 64
#define GX_ARCH_NAME "x86_64"
#elif defined(__aarch64__)
#define GX_ARCH_FRAME 176
#define GX_ARCH_NAME "aarch64"
#else
#error "libgonex-uring supports x86_64 and aarch64"
#endif

/* A suspended context's saved frame pointer and resume address (where
 * it called gx_arch_switch), for backtraces of parked coroutines. */
static inline void gx_arch_parked(const void *sp, uintptr_t *fp, uintptr_t *pc)
{
	const uint64_t *f = (const uint64_t *)sp;
#if defined(__x86_64__)
	*fp = (uintptr_t)f[6];
	*pc = (uintptr_t)f[7];
#else
	*fp = (uintptr_t)f[10];
	*pc = (uintptr_t)f[11];
#endif
}

/* Bytes below `top` that a fresh context uses before its entry runs. */
#define GX_ARCH_INIT_BYTES (GX_ARCH_FRAME + 16)

/*
 * Build the first frame under `top` (16-byte aligned). Returns the handle for
 * gx_arch_switch. The entry function starts with the ABI's stack alignment
 * and a zero frame pointer; its FP control state is the caller's.
 */
static inline void *gx_arch_stack_init(void *top, gx_arch_entry_fn entry, void *arg)
{
	uint64_t *sp = (uint64_t *)((uintptr_t)top - GX_ARCH_INIT_BYTES);
	memset(sp, 0, GX_ARCH_INIT_BYTES);
	sp[0] = gx_arch_fpenv_get();
#if defined(__x86_64__)
	/* +0 fpenv, +8 r15, +16 r14, +24 r13, +32 r12, +40 rbx, +48 rbp, +56 ret */
	sp[3] = (uint64_t)(uintptr_t)arg;
	sp[4] = (uint64_t)(uintptr_t)entry;
	sp[7] = (uint64_t)(uintptr_t)gx_arch_trampoline;
#else
	/* +0 x19 +8 x20 ... +80 x29 +88 x30 ... +160 fpcr */
	sp[20] = sp[0];
	sp[0] = (uint64_t)(uintptr_t)entry;
	sp[1] = (uint64_t)(uintptr_t)arg;
	sp[11] = (uint64_t)(uintptr_t)gx_arch_trampoline;
#endif
	return sp;
}

#endif
