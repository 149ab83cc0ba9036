/*
 * The CPU's spin-wait hint, for every loop that polls a word another core
 * or process writes: x86-64 PAUSE (lets the sibling hyperthread run and
 * avoids the memory-order flush when the loop exits), AArch64 YIELD. No
 * dependencies, like the rest of arch/.
 */
#ifndef GX_ARCH_RELAX_H
#define GX_ARCH_RELAX_H

static inline void gx_cpu_relax(void)
{
#if defined(__x86_64__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield" ::: "memory");
#endif
}

#endif
