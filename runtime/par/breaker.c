/*
 * Circuit breakers (gonex/breaker.h): a table in the arena, so that every
 * process admits and reports against the same state.
 *
 * The state word (see par.h) changes only by CAS, so concurrent reports
 * from several workers never lose a transition: closed counts failures in
 * a row and opens at the threshold (stamping opened_at); the first
 * submission after the cool-down moves open to half-open and is the first
 * trial; half-open admits up to `probes` trials, closes after that many
 * successes and opens again on any failure.
 */
#include "par/par.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "arch/relax.h"
#include "core/sched.h"

#include <gonex/breaker.h>
#include <gonex/time.h>

gx_brk *gx_brk_at(uint32_t idx1)
{
	gx_par *p = gx_par_table();
	if (!p || idx1 == 0 || idx1 > GX_BREAKER_MAX)
		return NULL;
	gx_brk *b = &p->brk[idx1 - 1];
	/* acquire: pairs with gx_brk_new's store of used = 2 (the fields first) */
	return atomic_load_explicit(&b->used, memory_order_acquire) == 2 ? b : NULL;
}

uint32_t gx_brk_index(const gx_brk *b)
{
	return (uint32_t)(b - gx_par_table()->brk) + 1;
}

/* b names a ready breaker of the table, or NULL. */
static gx_brk *gx_brk_check(const gx_breaker *h)
{
	gx_par *p = gx_par_table();
	if (!p || !h)
		return NULL;
	uintptr_t x = (uintptr_t)h, lo = (uintptr_t)p->brk;
	if (x < lo || x >= lo + sizeof p->brk || (x - lo) % sizeof(gx_brk))
		return NULL;
	gx_brk *b = (gx_brk *)h;
	/* acquire: pairs with gx_brk_new's store of used = 2 */
	return atomic_load_explicit(&b->used, memory_order_acquire) == 2 ? b : NULL;
}

static int gx_brk_opts_ok(const gx_breaker_opts *o)
{
	if (o->failures < 1 || o->failures > 1000000 || o->probes < 1 || o->probes > 1000)
		return 0;
	if (o->cooldown < GX_MICROSECOND || o->cooldown > 86400 * GX_SECOND || o->retries > 100)
		return 0;
	if (o->backoff < 0 || o->backoff > 60 * GX_SECOND || o->backoff_max < o->backoff ||
	    o->backoff_max > 60 * GX_SECOND)
		return 0;
	if (o->fn && !gx_par_is_code((const void *)(uintptr_t)o->fn))
		return 0;
	if (o->fallback && !gx_par_is_code((const void *)(uintptr_t)o->fallback))
		return 0;
	return 1;
}

/* Find by name (name != NULL) or by function (fn != 0). */
static gx_brk *gx_brk_lookup(gx_par *p, const char *name, uint64_t fn)
{
	uint32_t n = atomic_load_explicit(&p->nbrk, memory_order_acquire);
	for (uint32_t i = 0; i < n && i < GX_BREAKER_MAX; i++) {
		gx_brk *b = &p->brk[i];
		/* acquire: pairs with gx_brk_new's store of used = 2 */
		if (atomic_load_explicit(&b->used, memory_order_acquire) != 2)
			continue;
		if ((name && strcmp(b->name, name) == 0) || (fn && b->fn == fn))
			return b;
	}
	return NULL;
}

static int gx_brk_new(gx_par *p, gx_brk **out, const char *name, const gx_breaker_opts *o)
{
	/* claim the next free entry; entries are never freed during a run */
	for (;;) {
		gx_brk *dup = gx_brk_lookup(p, name, (uint64_t)(uintptr_t)o->fn);
		if (dup) {
			*out = dup;
			return -EEXIST;
		}
		uint32_t n = atomic_load(&p->nbrk);
		if (n >= GX_BREAKER_MAX)
			return -ENOSPC;
		gx_brk *b = &p->brk[n];
		uint32_t z = 0;
		if (!atomic_compare_exchange_strong(&b->used, &z, 1)) {
			/* another process is making entry n: wait for its count
			 * (a few stores); if it died in between, skip the entry */
			for (int k = 0; k < 10000 && atomic_load(&p->nbrk) == n; k++)
				gx_yield();
			uint32_t m = n;
			atomic_compare_exchange_strong(&p->nbrk, &m, n + 1);
			continue;
		}
		snprintf(b->name, sizeof b->name, "%s", name);
		b->fn = (uint64_t)(uintptr_t)o->fn;
		b->fallback = gx_code_seal((uint64_t)(uintptr_t)o->fallback); /* 0 for none */
		b->failures = o->failures;
		b->probes = o->probes;
		b->retries = o->retries;
		b->last_good = o->last_good != 0;
		b->cooldown = o->cooldown;
		b->backoff = o->backoff;
		b->backoff_max = o->backoff_max;
		atomic_store(&b->st, GX_BRK_MAKE(GX_BREAKER_CLOSED, 0, 0, 0));
		atomic_store(&b->used, 2);
		atomic_store(&p->nbrk, n + 1);
		/* two makers of the same name raced: the later entry stays
		 * (entries are never freed) but the lookup returns the first */
		gx_brk *first = gx_brk_lookup(p, name, 0);
		*out = first ? first : b;
		return first && first != b ? -EEXIST : 0;
	}
}

int gx_breaker_make(gx_breaker **out, const char *name, const gx_breaker_opts *o)
{
	gx_breaker_opts d = GX_BREAKER_OPTS_INIT;
	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!name || !*name || strlen(name) > 31)
		return -EINVAL;
	if (!o)
		o = &d;
	if (!gx_sched_active() || !gx_par_arena(1))
		return -EPERM;
	if (!gx_brk_opts_ok(o))
		return -EINVAL;
	gx_brk *b = NULL;
	int rc = gx_brk_new(gx_par_table(), &b, name, o);
	*out = (gx_breaker *)b;
	return rc;
}

gx_breaker *gx_breaker_find(const char *name)
{
	gx_par *p = gx_par_table();
	if (!p || !name)
		return NULL;
	return (gx_breaker *)gx_brk_lookup(p, name, 0);
}

int gx_breaker_state_get(const gx_breaker *h)
{
	gx_brk *b = gx_brk_check(h);
	if (!b)
		return -EINVAL;
	return (int)GX_BRK_ST(atomic_load(&b->st));
}

int gx_breaker_reset(gx_breaker *h)
{
	gx_brk *b = gx_brk_check(h);
	if (!b)
		return -EINVAL;
	atomic_store(&b->st, GX_BRK_MAKE(GX_BREAKER_CLOSED, 0, 0, 0));
	return 0;
}

gx_brk *gx_brk_pick(uint64_t fn, const gx_par_opts *opts)
{
	gx_par *p = gx_par_table();
	if (opts && opts->breaker)
		return gx_brk_check(opts->breaker);
	gx_brk *b = gx_brk_lookup(p, NULL, fn);
	if (b || !gx_par_cfg()->circuit_breaker)
		return b;
	/* GONEX_CIRCUIT_BREAKER: one with the defaults, named after fn (not
	 * again once the table is full) */
	static gx_par *full;
	if (full == p)
		return NULL;
	gx_breaker_opts o = GX_BREAKER_OPTS_INIT;
	o.fn = (gx_task_fn)(uintptr_t)fn;
	char name[32];
	Dl_info di;
	if (dladdr((void *)(uintptr_t)fn, &di) && di.dli_sname && di.dli_saddr == (void *)(uintptr_t)fn)
		snprintf(name, sizeof name, "%s", di.dli_sname);
	else
		snprintf(name, sizeof name, "fn@%llx", (unsigned long long)fn);
	int rc = gx_brk_new(p, &b, name, &o);
	if (rc == -EEXIST && b && b->fn != fn) {
		/* the name belongs to another breaker: make it unique */
		snprintf(name, sizeof name, "fn@%llx", (unsigned long long)fn);
		rc = gx_brk_new(p, &b, name, &o);
	}
	if (rc == -ENOSPC)
		full = p;
	return b && b->fn == fn ? b : NULL;
}

int gx_brk_admit(gx_brk *b, int64_t now)
{
	uint64_t s = atomic_load(&b->st);
	for (;;) {
		uint64_t n;
		int res;
		switch (GX_BRK_ST(s)) {
		case GX_BREAKER_CLOSED:
			return GX_BRK_PASS;
		case GX_BREAKER_OPEN:
			if (now - atomic_load(&b->opened_at) < b->cooldown)
				return GX_BRK_REJECT;
			n = GX_BRK_MAKE(GX_BREAKER_HALF_OPEN, 1, 0, GX_BRK_FAILS(s));
			res = GX_BRK_TRIAL;
			break;
		default: /* half-open */
			if (GX_BRK_INFL(s) >= b->probes)
				return GX_BRK_REJECT;
			n = s + ((uint64_t)1 << 2);
			res = GX_BRK_TRIAL;
			break;
		}
		if (atomic_compare_exchange_weak(&b->st, &s, n))
			return res;
	}
}

/* A trial that ended without a verdict (cancelled, or never dispatched):
 * its place among the probes is free again. */
static void gx_brk_release(gx_brk *b)
{
	uint64_t s = atomic_load(&b->st);
	while (GX_BRK_ST(s) == GX_BREAKER_HALF_OPEN && GX_BRK_INFL(s) > 0)
		if (atomic_compare_exchange_weak(&b->st, &s, s - ((uint64_t)1 << 2)))
			return;
}

void gx_brk_report(gx_brk *b, int trial, int rc, int64_t now)
{
	int fail = gx_brk_failed(rc);
	if (rc == -ECANCELED) {
		if (trial)
			gx_brk_release(b);
		return;
	}
	atomic_fetch_add_explicit(fail ? &b->fails : &b->successes, 1, memory_order_relaxed);
	uint64_t s = atomic_load(&b->st);
	for (;;) {
		uint64_t n = s;
		uint32_t st = GX_BRK_ST(s);
		int opening = 0;
		if (st == GX_BREAKER_CLOSED) {
			if (!fail) {
				if (!GX_BRK_FAILS(s))
					return;
				n = GX_BRK_MAKE(GX_BREAKER_CLOSED, 0, 0, 0);
			} else if (GX_BRK_FAILS(s) + 1 >= b->failures) {
				n = GX_BRK_MAKE(GX_BREAKER_OPEN, 0, 0, GX_BRK_FAILS(s) + 1);
				opening = 1;
			} else {
				n = GX_BRK_MAKE(GX_BREAKER_CLOSED, 0, 0, GX_BRK_FAILS(s) + 1);
			}
		} else if (st == GX_BREAKER_HALF_OPEN) {
			if (fail) {
				n = GX_BRK_MAKE(GX_BREAKER_OPEN, 0, 0, GX_BRK_FAILS(s) + 1);
				opening = 1;
			} else if (!trial) {
				return; /* admitted before it opened: not a trial */
			} else if (GX_BRK_OK(s) + 1 >= b->probes) {
				n = GX_BRK_MAKE(GX_BREAKER_CLOSED, 0, 0, 0);
			} else {
				n = s + ((uint64_t)1 << 18);
			}
		} else {
			return; /* open: a late report changes nothing */
		}
		if (opening)
			atomic_store(&b->opened_at, now); /* before the state: admit reads it after */
		if (atomic_compare_exchange_weak(&b->st, &s, n)) {
			if (opening)
				atomic_fetch_add(&b->opens, 1);
			return;
		}
	}
}

int gx_brk_closed(const gx_brk *b)
{
	return GX_BRK_ST(atomic_load(&((gx_brk *)b)->st)) == GX_BREAKER_CLOSED;
}

void gx_brk_keep(gx_brk *b, int rc, const void *res, size_t len)
{
	if (!b->last_good || len > GX_BREAKER_LAST_MAX)
		return;
	/* one writer at a time: take the lock by making seq odd */
	uint32_t s = atomic_load_explicit(&b->lg_seq, memory_order_relaxed);
	for (;;) {
		if (s & 1)
			return; /* someone is storing a result as good as ours */
		if (atomic_compare_exchange_weak_explicit(&b->lg_seq, &s, s + 1, memory_order_relaxed,
							  memory_order_relaxed))
			break;
	}
	/* release fence: the odd sequence is visible before any byte of the
	 * result changes; pairs with the reader's acquire fence between its
	 * copy and its second load of the sequence (gx_brk_last) */
	atomic_thread_fence(memory_order_release);
	b->lg_rc = rc;
	b->lg_len = (uint32_t)len;
	if (len)
		memcpy(b->lg, res, len);
	b->lg_have = 1;
	/* release: the result before the even sequence (pairs with the
	 * reader's first, acquire, load) */
	atomic_store_explicit(&b->lg_seq, s + 2, memory_order_release);
}

int gx_brk_last(gx_brk *b, int *rc, void *buf, size_t *len)
{
	/* never parks (the supervisor calls it from gx_handle_death): a
	 * writer holds the lock for one copy of at most 1 KiB; one that died
	 * holding it leaves no last good result */
	for (int tries = 0; tries < 100000; tries++) {
		uint32_t s = atomic_load_explicit(&b->lg_seq, memory_order_acquire);
		if (s & 1) {
			gx_cpu_relax();
			continue;
		}
		if (!b->lg_have)
			return 0;
		uint32_t l = b->lg_len;
		if (l > GX_BREAKER_LAST_MAX)
			return 0;
		*rc = b->lg_rc;
		memcpy(buf, b->lg, l);
		/* acquire fence: the copy above before the second load of the
		 * sequence; pairs with the writer's release fence (gx_brk_keep) */
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&b->lg_seq, memory_order_relaxed) == s) {
			*len = l;
			return 1;
		}
	}
	return 0;
}
