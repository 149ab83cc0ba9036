/*
 * Coroutine stacks.
 *
 * What: every coroutine stack is one stride of a slab: a guard page, then
 * the usable stack, whose top bytes hold the gx_co descriptor. Slabs are
 * large MAP_NORESERVE mappings (about 64 MiB, at least one stride), so a
 * million 16 KiB stacks cost address space, not memory: only touched pages
 * are resident. Stacks are carved from the newest slab on demand and return
 * to a per-size LIFO free list, so the next spawn reuses the warmest stack.
 *
 * Invariants:
 * - a slab is carved bottom-up; slab->carved strides have their guard
 *   installed, the rest are untouched;
 * - every stack is either on its class's free list (state GX_CO_FREE) or
 *   owned by exactly one coroutine (in_use counts these);
 * - the slab list only grows while gx_run runs (prepend is one pointer
 *   store), so the SIGSEGV handler can walk it at any moment.
 *
 * Guards: MADV_GUARD_INSTALL (Linux 6.13+) marks the page without splitting
 * the VMA; mprotect(PROT_NONE) splits it, so with mprotect a process meets
 * vm.max_map_count (65530 by default) near 32,000 stacks. The probe checks
 * that the guard really took (a write(2) from the page must fail with
 * EFAULT): qemu-user answers 0 to the madvise and installs nothing.
 *
 * Overflow: a fault inside a guard page runs gx_stack_segv on the
 * alternate signal stack, which prints which coroutine overflowed and
 * aborts. Any other SIGSEGV goes to the handler that was there before (or
 * the default action), so ordinary crashes keep their usual behaviour.
 *
 * Rejected: one mmap per stack (a syscall and a VMA each, 2x the VMA count
 * with mprotect guards); a guard-less pool (silent corruption on overflow);
 * growing stacks (needs pointer fix-ups C cannot do).
 */
#include "core/stack.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/panic.h"

#if GX_SANITIZE_HOOKS
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define GX_ASAN_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define GX_ASAN_UNPOISON(p, n) ((void)(p), (void)(n))
#endif
#include <valgrind/valgrind.h>
#endif

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

#define GX_SLAB_TARGET (64UL << 20)

typedef struct gx_slab {
	char *base;
	size_t len;
	size_t stride;
	size_t carved;
	struct gx_slab *next;
} gx_slab;

typedef struct gx_stack_class {
	size_t size;   /* usable bytes */
	size_t stride; /* guard + size */
	gx_co *free;   /* LIFO through gx_co.next */
	gx_slab *slab; /* the slab being carved, NULL when none */
	struct gx_stack_class *next;
} gx_stack_class;

static struct {
	size_t page;
	int use_madvise;
	gx_stack_class *classes;
	gx_slab *volatile slabs;
	gx_stack_stats stats;
	/* signal state to restore at fini */
	struct sigaction old_segv;
	int handler_installed;
	void *altstack;
	size_t altstack_len;
} S;

static int gx_guard_madvise_works(size_t page)
{
	char *p = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		       -1, 0);
	if (p == MAP_FAILED)
		return 0;
	int ok = 0;
	if (madvise(p, page, MADV_GUARD_INSTALL) == 0) {
		int fds[2];
		if (pipe(fds) == 0) {
			ok = write(fds[1], p, 1) < 0 && errno == EFAULT;
			close(fds[0]);
			close(fds[1]);
		}
	}
	munmap(p, 2 * page);
	return ok;
}

/* ---- the overflow report, async-signal-safe ---- */

static char *gx_fmt_u64(char *p, uint64_t v)
{
	char tmp[24];
	int n = 0;
	do
		tmp[n++] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	while (n > 0)
		*p++ = tmp[--n];
	return p;
}

static char *gx_fmt_str(char *p, const char *s, size_t max)
{
	for (size_t i = 0; i < max && s[i]; i++)
		*p++ = s[i];
	return p;
}

static _Noreturn void gx_stack_report(const gx_co *co)
{
	char buf[160], *p = buf;
	p = gx_fmt_str(p, "gonex: coroutine ", 32);
	p = gx_fmt_u64(p, co->id);
	p = gx_fmt_str(p, " (", 4);
	p = gx_fmt_str(p, co->name[0] ? co->name : "unnamed", GX_NAME_MAX);
	p = gx_fmt_str(p, ") overflowed its ", 32);
	if (co->stack_size % 1024 == 0) {
		p = gx_fmt_u64(p, co->stack_size / 1024);
		p = gx_fmt_str(p, " KiB stack\n", 16);
	} else {
		p = gx_fmt_u64(p, co->stack_size);
		p = gx_fmt_str(p, " byte stack\n", 16);
	}
	gx_write_stderr(buf, (unsigned long)(p - buf));
	struct sigaction dfl;
	memset(&dfl, 0, sizeof dfl);
	dfl.sa_handler = SIG_DFL;
	sigaction(SIGABRT, &dfl, NULL);
	abort();
}

static void gx_stack_segv(int sig, siginfo_t *si, void *uctx)
{
	char *a = si->si_addr;
	if (si->si_code > 0) {
		for (gx_slab *s = S.slabs; s; s = s->next) {
			if (a < s->base || a >= s->base + s->len)
				continue;
			size_t off = (size_t)(a - s->base);
			size_t idx = off / s->stride;
			if (idx < s->carved && off % s->stride < S.page) {
				char *lo = s->base + idx * s->stride + S.page;
				gx_stack_report(gx_co_of_stack(lo, s->stride - S.page));
			}
			break;
		}
	}
	/* Not a coroutine overflow: behave as if we were never installed. */
	struct sigaction *old = &S.old_segv;
	if ((old->sa_flags & SA_SIGINFO) && old->sa_sigaction) {
		old->sa_sigaction(sig, si, uctx);
		return;
	}
	if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN) {
		old->sa_handler(sig);
		return;
	}
	sigaction(SIGSEGV, old, NULL);
	if (si->si_code <= 0 || old->sa_handler == SIG_IGN) {
		/* sent, not a fault (or ignored): deliver again with the old
		 * disposition; a real fault re-faults on return */
		struct sigaction dfl;
		memset(&dfl, 0, sizeof dfl);
		dfl.sa_handler = SIG_DFL;
		sigaction(SIGSEGV, &dfl, NULL);
		raise(sig);
	}
}

int gx_stack_init(gx_guard_kind guard)
{
	memset(&S, 0, sizeof S);
	S.page = (size_t)sysconf(_SC_PAGESIZE);
	if (guard == GX_GUARD_MPROTECT) {
		S.use_madvise = 0;
	} else {
		S.use_madvise = gx_guard_madvise_works(S.page);
		if (!S.use_madvise && guard == GX_GUARD_MADVISE) {
			gx_log("GONEX_GUARD=madvise: MADV_GUARD_INSTALL does not work here (needs Linux 6.13+)");
			return -EOPNOTSUPP;
		}
	}

	stack_t cur;
	if (sigaltstack(NULL, &cur) == 0 && (cur.ss_flags & SS_DISABLE)) {
		size_t len = 64 * 1024;
		long min = sysconf(_SC_SIGSTKSZ);
		if (min > 0 && (size_t)min * 4 > len)
			len = (size_t)min * 4;
		void *alt = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (alt == MAP_FAILED)
			return -ENOMEM;
		stack_t ss = {.ss_sp = alt, .ss_size = len, .ss_flags = 0};
		if (sigaltstack(&ss, NULL) != 0) {
			int e = -errno;
			munmap(alt, len);
			return e;
		}
		S.altstack = alt;
		S.altstack_len = len;
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = gx_stack_segv;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSEGV, &sa, &S.old_segv) != 0)
		return -errno;
	S.handler_installed = 1;
	return 0;
}

void gx_stack_fini(void)
{
	if (S.handler_installed)
		sigaction(SIGSEGV, &S.old_segv, NULL);
	gx_slab *s = S.slabs;
	S.slabs = NULL;
	while (s) {
		gx_slab *next = s->next;
#if GX_SANITIZE_HOOKS
		for (size_t i = 0; i < s->carved; i++) {
			char *lo = s->base + i * s->stride + S.page;
			VALGRIND_STACK_DEREGISTER(gx_co_of_stack(lo, s->stride - S.page)->vg_stack_id);
		}
#endif
		munmap(s->base, s->len);
		free(s);
		s = next;
	}
	for (gx_stack_class *c = S.classes, *n; c; c = n) {
		n = c->next;
		free(c);
	}
	if (S.altstack) {
		stack_t ss = {.ss_sp = NULL, .ss_size = 0, .ss_flags = SS_DISABLE};
		sigaltstack(&ss, NULL);
		munmap(S.altstack, S.altstack_len);
	}
	memset(&S, 0, sizeof S);
}

static gx_stack_class *gx_stack_class_for(size_t size)
{
	gx_stack_class **pp = &S.classes;
	for (gx_stack_class *c = *pp; c; c = c->next)
		if (c->size == size)
			return c;
	gx_stack_class *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->size = size;
	c->stride = size + S.page;
	c->next = S.classes;
	S.classes = c;
	return c;
}

static gx_co *gx_stack_carve(gx_stack_class *c, int *err)
{
	gx_slab *s = c->slab;
	if (!s || s->carved * s->stride >= s->len) {
		size_t n = GX_SLAB_TARGET / c->stride;
		if (n == 0)
			n = 1;
		s = calloc(1, sizeof *s);
		if (!s)
			goto err_nomem;
		s->stride = c->stride;
		s->len = n * c->stride;
		s->base = mmap(NULL, s->len, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
		if (s->base == MAP_FAILED)
			goto err_free_slab;
		s->next = S.slabs;
		S.slabs = s; /* one store: the SIGSEGV handler sees it whole */
		c->slab = s;
		S.stats.slabs++;
	}
	char *guard = s->base + s->carved * s->stride;
	int rc = S.use_madvise ? madvise(guard, S.page, MADV_GUARD_INSTALL)
			       : mprotect(guard, S.page, PROT_NONE);
	if (rc != 0) /* ENOMEM: out of VMAs (vm.max_map_count) */
		goto err_nomem;
	s->carved++;
	S.stats.carved++;
	char *lo = guard + S.page;
	gx_co *co = gx_co_of_stack(lo, c->size);
	co->cls = c;
	co->stack_lo = lo;
	co->stack_size = c->size;
#if GX_SANITIZE_HOOKS
	co->vg_stack_id = VALGRIND_STACK_REGISTER(lo, lo + c->size);
#endif
	return co;

err_free_slab:
	free(s);
err_nomem:
	*err = -ENOMEM;
	return NULL;
}

gx_co *gx_stack_get(size_t size, int *err)
{
	gx_stack_class *c = S.classes;
	if (!c || c->size != size) {
		c = gx_stack_class_for(size);
		if (!c) {
			*err = -ENOMEM;
			return NULL;
		}
	}
	gx_co *co = c->free;
	if (co) {
		c->free = co->next;
	} else {
		co = gx_stack_carve(c, err);
		if (!co)
			return NULL;
	}
#if GX_SANITIZE_HOOKS
	/* Frames of the stack's last user (or of an earlier mapping at the
	 * same address) left redzones behind in ASan's shadow. */
	GX_ASAN_UNPOISON(co->stack_lo, co->stack_size);
#endif
	S.stats.in_use++;
	return co;
}

void gx_stack_put(gx_co *co)
{
	gx_stack_class *c = co->cls;
	co->state = GX_CO_FREE;
	co->next = c->free;
	c->free = co;
	S.stats.in_use--;
}

const char *gx_stack_guard_name(void)
{
	return S.use_madvise ? "madvise" : "mprotect";
}

void gx_stack_stats_get(gx_stack_stats *out)
{
	*out = S.stats;
}
