/*
 * gx_coro_dump: every coroutine of this process with its state, wait
 * reason and, for a suspended one, a backtrace walked from its saved frame
 * (the build keeps frame pointers). Symbols come from dladdr (exported
 * ones); every frame also gets module+offset for addr2line.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "arch/switch.h"
#include "core/sched.h"

#include <gonex/dump.h>
#include <gonex/stats.h>

#define GX_DUMP_FRAMES 32

typedef struct {
	int fd;
	int err;
	size_t n;
	char buf[4096];
} gx_out;

static void gx_flush(gx_out *o)
{
	size_t off = 0;
	while (off < o->n && !o->err) {
		ssize_t w = write(o->fd, o->buf + off, o->n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			o->err = w < 0 ? -errno : -EIO;
		else
			off += (size_t)w;
	}
	o->n = 0;
}

__attribute__((format(printf, 2, 3))) static void gx_put(gx_out *o, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	int l = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (l < 0)
		return;
	if ((size_t)l >= sizeof line)
		l = sizeof line - 1;
	if (o->n + (size_t)l > sizeof o->buf)
		gx_flush(o);
	memcpy(o->buf + o->n, line, (size_t)l);
	o->n += (size_t)l;
}

static void gx_frame(gx_out *o, int k, uintptr_t pc)
{
	Dl_info di;
	/* a return address points after the call: look up pc - 1 */
	if (pc && dladdr((void *)(pc - 1), &di) && di.dli_fname) {
		const char *mod = strrchr(di.dli_fname, '/');
		mod = mod ? mod + 1 : di.dli_fname;
		uintptr_t rel = pc - (uintptr_t)di.dli_fbase;
		if (di.dli_sname)
			gx_put(o, "  #%d 0x%lx %s+0x%lx (%s+0x%lx)\n", k, (unsigned long)pc, di.dli_sname,
			       (unsigned long)(pc - (uintptr_t)di.dli_saddr), mod, (unsigned long)rel);
		else
			gx_put(o, "  #%d 0x%lx (%s+0x%lx)\n", k, (unsigned long)pc, mod, (unsigned long)rel);
	} else {
		gx_put(o, "  #%d 0x%lx\n", k, (unsigned long)pc);
	}
}

static void gx_backtrace(gx_out *o, const gx_co *co)
{
	uintptr_t lo = (uintptr_t)co->sp, hi = (uintptr_t)co->stack_lo + co->stack_size;
	uintptr_t fp, pc;
	if (lo < (uintptr_t)co->stack_lo || lo >= hi)
		return;
	gx_arch_parked(co->sp, &fp, &pc);
	for (int k = 0; k < GX_DUMP_FRAMES && pc; k++) {
		gx_frame(o, k, pc);
		/* the next frame record: inside the stack, above this one */
		if (fp < lo || fp + 16 > hi || (fp & 7))
			break;
		const uintptr_t *rec = (const uintptr_t *)fp;
		lo = fp + 16;
		fp = rec[0];
		pc = rec[1];
	}
}

static const char *gx_state_name(uint32_t st)
{
	switch (st) {
	case GX_CO_RUNNABLE:
		return "runnable";
	case GX_CO_RUNNING:
		return "running";
	case GX_CO_PARKED:
		return "parked";
	default:
		return "?";
	}
}

int gx_coro_dump(int fd)
{
	if (!gx_sched_active())
		return -EPERM;
	gx_out o = {.fd = fd};
	int n = 0;
	gx_put(&o, "gonex: coroutines of pid %d (%llu alive)\n", (int)getpid(),
	       (unsigned long long)gx_sched_alive());
	for (gx_co *co = gx_sched_state.all; co; co = co->all_next) {
		gx_put(&o, "coroutine %llu \"%s\" %s", (unsigned long long)co->id, co->name,
		       gx_state_name(co->state));
		if (co->state == GX_CO_PARKED && co->wait_reason)
			gx_put(&o, ": %s", co->wait_reason);
		gx_put(&o, "\n");
		if (co->state != GX_CO_RUNNING)
			gx_backtrace(&o, co);
		n++;
	}
	gx_flush(&o);
	return o.err ? o.err : n;
}
