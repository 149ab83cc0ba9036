/* Distributed channels across worker processes: Go's channel rules (capacity, FIFO, exactly once, rendezvous, close, deadlines, select, large and empty values), broadcast, scatter, gather, route, balance, bad input and freeing. */
/*
 * How these tests observe other processes (as in test_par.c): tasks run in
 * worker processes and never call Criterion; they report through their
 * return code, their result bytes, and the page S (MAP_SHARED, made before
 * gx_run, at the same address in every process). The gx_chan * travels in
 * a task's argument bytes: a distributed channel lives in the arena, so
 * the pointer is the same everywhere.
 *
 * Nothing passes or fails on timing. Where a test must show that something
 * did NOT happen yet (a rendezvous send that has not returned), the check
 * is one-sided: the receiver waits a little before receiving and then
 * checks that the sender's "returned" flag is still clear. A slow machine
 * can only make such a check pass when it should have failed, never the
 * other way round. Deadlines are short (20-50 ms) and only their error
 * codes are judged.
 *
 * Work stealing is off in every run with pinned tasks, so a task given
 * opts.worker = w runs on worker w (each task also reports gx_worker_id()).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#include "testing.h" /* gx_par_arena: to read the pools' in_use counters */

#define T_LONG (30 * GX_SECOND)       /* a wait only a lost wake-up outlasts */
#define T_SHORT (30 * GX_MILLISECOND) /* a deadline that is meant to pass */
#define T_NAP (20 * GX_MILLISECOND)   /* how long a receiver lets a sender wait */

/* ---------------------------------------------------------------- shared */

typedef struct {
	_Atomic int started;       /* blocking tasks that reached their call */
	_Atomic int send_returned; /* t_rv_send's send returned */
	_Atomic int recv_called;   /* t_late_recv is about to receive */
	_Atomic int done;          /* fork tests: the child got this far */
	int rc, ok, v;             /* fork tests: what the child saw */
} shared;

static shared *S;

static void shared_init(void)
{
	S = shared_page(sizeof *S);
}

static gx_config config(int workers)
{
	gx_config c;
	gx_config_init(&c);
	c.workers = workers;
	c.work_stealing = 0; /* pinned tasks stay where they were sent */
	return c;
}

static void run(const gx_config *c, gx_main_fn fn, void *arg)
{
	int rc = gx_run(c, fn, arg);
	cr_assert_eq(rc, 0, "gx_run returned %d (%s)", rc, strerror(-rc));
}

static void run2(gx_main_fn fn)
{
	shared_init();
	gx_config c = config(2);
	run(&c, fn, NULL);
}

/* ---------------------------------------------------------------- tasks */

/* A task's argument (inline: well under GX_TASK_INLINE). */
typedef struct {
	gx_chan *c;
	int n;         /* how many values */
	int base;      /* first value, or a seed */
	uint32_t size; /* bytes per value (large values) */
	int64_t ns;    /* a nap or a per-call deadline */
} targ;

_Static_assert(sizeof(targ) <= GX_TASK_INLINE, "targ must travel inline");

static bool targ_of(const void *arg, size_t len, targ *a)
{
	if (len != sizeof *a)
		return false;
	memcpy(a, arg, sizeof *a);
	return true;
}

static uint8_t pat(size_t i, uint32_t seed)
{
	return (uint8_t)(i * 131u + seed * 7u + (i >> 9));
}

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = pat(i, seed);
}

/* The first byte of p that is not pat(., seed), or -1. */
static int64_t first_bad(const uint8_t *p, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != pat(i, seed))
			return (int64_t)i;
	return -1;
}

typedef struct {
	int codes[8];
	uint64_t len, cap;
} fill_out;

/* try_send base, base+1, ... n times (n <= 8); result: the codes, then
 * gx_chan_len and gx_chan_cap as this worker sees them */
static int t_try_fill(const void *arg, size_t len, gx_task_result *res)
{
	targ a;
	if (!targ_of(arg, len, &a) || a.n > 8)
		return -EPROTO;
	fill_out o;
	memset(&o, 0, sizeof o);
	for (int i = 0; i < a.n; i++) {
		int v = a.base + i;
		o.codes[i] = gx_chan_try_send(a.c, &v);
	}
	o.len = gx_chan_len(a.c);
	o.cap = gx_chan_cap(a.c);
	return gx_task_return(res, &o, sizeof o);
}

/* nap a.ns, then send base .. base+n-1 (blocking); code: the first error */
static int t_send_seq(const void *arg, size_t len, gx_task_result *res)
{
	targ a;
	(void)res;
	if (!targ_of(arg, len, &a))
		return -EPROTO;
	if (a.ns > 0)
		gx_sleep(a.ns);
	for (int i = 0; i < a.n; i++) {
		int v = a.base + i;
		int rc = gx_chan_send(a.c, &v, gx_timeout(T_LONG));
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Send n values: the k-th is base + 1000 * k + this worker's id (gather
 * learns the sender from the message; the value says it too). */
static int t_send_self(const void *arg, size_t len, gx_task_result *res)
{
	targ a;
	(void)res;
	if (!targ_of(arg, len, &a))
		return -EPROTO;
	for (int k = 0; k < a.n; k++) {
		int v = a.base + 1000 * k + gx_worker_id();
		int rc = gx_chan_send(a.c, &v, gx_timeout(T_LONG));
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Receive exactly n values (a.ns per receive, T_LONG when 0), then one
 * try_recv. Result: [worker, try_recv code, the n values]; code: 0, or the
 * first failed receive's error (-EPROTO for ok == false). */
static int t_recv_n(const void *arg, size_t len, gx_task_result *res)
{
	targ a;
	if (!targ_of(arg, len, &a) || a.n < 0)
		return -EPROTO;
	int *out = calloc((size_t)a.n + 2, sizeof *out);
	if (!out)
		return -ENOMEM;
	out[0] = gx_worker_id();
	int rc = 0, k = 0;
	for (; k < a.n; k++) {
		bool ok = false;
		rc = gx_chan_recv(a.c, &out[k + 2], &ok, gx_timeout(a.ns ? a.ns : T_LONG));
		if (rc == 0 && !ok)
			rc = -EPROTO;
		if (rc < 0)
			break;
	}
	int v = 0;
	bool ok = false;
	out[1] = rc == 0 ? gx_chan_try_recv(a.c, &v, &ok) : 1;
	int rc2 = gx_task_return(res, out, (size_t)(k + 2) * sizeof *out);
	free(out);
	return rc < 0 ? rc : rc2;
}

/* try_recv until -EAGAIN (at most n). Result: [worker, the values]. */
static int t_drain(const void *arg, size_t len, gx_task_result *res)
{
	targ a;
	if (!targ_of(arg, len, &a) || a.n < 0)
		return -EPROTO;
	int *out = calloc((size_t)a.n + 1, sizeof *out);
	if (!out)
		return -ENOMEM;
	out[0] = gx_worker_id();
	int k = 0, rc = 0;
	while (k < a.n) {
		bool ok = false;
		rc = gx_chan_try_recv(a.c, &out[k + 1], &ok);
		if (rc == -EAGAIN) {
			rc = 0;
			break;
		}
		if (rc == 0 && !ok)
			rc = -EPROTO;
		if (rc < 0)
			break;
		k++;
	}
	int rc2 = gx_task_return(res, out, (size_t)(k + 1) * sizeof *out);
	free(out);
	return rc < 0 ? rc : rc2;
}

/* Receive until the channel is closed and drained (at most n values).
 * Result: the values; code: 0, -EOVERFLOW past n, or a receive error. */
static int t_recv_until_closed(const void *arg, size_t len, gx_task_result *res)
{
	targ a;
	if (!targ_of(arg, len, &a) || a.n < 0)
		return -EPROTO;
	int *out = calloc((size_t)a.n + 1, sizeof *out);
	if (!out)
		return -ENOMEM;
	int k = 0, rc = 0;
	for (;;) {
		int v = 0;
		bool ok = false;
		rc = gx_chan_recv(a.c, &v, &ok, gx_timeout(T_LONG));
		if (rc < 0 || !ok)
			break;
		if (k == a.n) {
			rc = -EOVERFLOW;
			break;
		}
		out[k++] = v;
	}
	int rc2 = gx_task_return(res, out, (size_t)k * sizeof *out);
	free(out);
	return rc < 0 ? rc : rc2;
}

/* Rendezvous: note the start, send base, note the return. Code: send's. */
static int t_rv_send(const void *arg, size_t len, gx_task_result *res)
{
	targ a;
	(void)res;
	if (!targ_of(arg, len, &a))
		return -EPROTO;
	atomic_store(&S->send_returned, 0);
	atomic_fetch_add(&S->started, 1);
	int v = a.base;
	int rc = gx_chan_send(a.c, &v, gx_timeout(T_LONG));
	atomic_store(&S->send_returned, 1);
	return rc;
}

typedef struct {
	int rc, v, ok, worker;
} recv_out;

/* nap a.ns, note it, receive one value (T_LONG). Result: recv_out. */
static int t_late_recv(const void *arg, size_t len, gx_task_result *res)
{
	targ a;
	if (!targ_of(arg, len, &a))
		return -EPROTO;
	if (a.ns > 0)
		gx_sleep(a.ns);
	atomic_store(&S->recv_called, 1);
	recv_out o = {0, -1, -1, gx_worker_id()};
	bool ok = false;
	o.rc = gx_chan_recv(a.c, &o.v, &ok, gx_timeout(T_LONG));
	o.ok = ok;
	return gx_task_return(res, &o, sizeof o);
}

/* Note the start, receive one value with deadline a.ns (T_LONG when 0).
 * The value is pre-filled with -1, so a zeroed one shows. Result: recv_out. */
static int t_block_recv(const void *arg, size_t len, gx_task_result *res)
{
	targ a;
	if (!targ_of(arg, len, &a))
		return -EPROTO;
	recv_out o = {0, -1, -1, gx_worker_id()};
	atomic_fetch_add(&S->started, 1);
	bool ok = true;
	o.rc = gx_chan_recv(a.c, &o.v, &ok, gx_timeout(a.ns ? a.ns : T_LONG));
	o.ok = ok;
	return gx_task_return(res, &o, sizeof o);
}

/* Note the start, send base (blocking, T_LONG). Code: send's. */
static int t_block_send(const void *arg, size_t len, gx_task_result *res)
{
	targ a;
	(void)res;
	if (!targ_of(arg, len, &a))
		return -EPROTO;
	atomic_fetch_add(&S->started, 1);
	int v = a.base;
	return gx_chan_send(a.c, &v, gx_timeout(T_LONG));
}

/* nap a.ns, close. Code: close's. */
static int t_close_later(const void *arg, size_t len, gx_task_result *res)
{
	targ a;
	(void)res;
	if (!targ_of(arg, len, &a))
		return -EPROTO;
	gx_sleep(a.ns);
	return gx_chan_close(a.c);
}

typedef struct {
	int rc[6], v[6], ok[6];
	int send_rc, try_send_rc, close_rc;
	uint64_t len;
} close_out;

/* On a closed channel holding 3 values: 5 receives and a try_recv (values
 * pre-filled with -1), then a send, a try_send and a close. */
static int t_close_probe(const void *arg, size_t len, gx_task_result *res)
{
	targ a;
	if (!targ_of(arg, len, &a))
		return -EPROTO;
	close_out o;
	memset(&o, 0, sizeof o);
	for (int i = 0; i < 6; i++) {
		bool ok = false;
		o.v[i] = -1;
		o.rc[i] = i < 5 ? gx_chan_recv(a.c, &o.v[i], &ok, gx_timeout(T_LONG)) : gx_chan_try_recv(a.c, &o.v[i], &ok);
		o.ok[i] = ok;
	}
	int v = 5;
	o.send_rc = gx_chan_send(a.c, &v, gx_timeout(T_LONG));
	o.try_send_rc = gx_chan_try_send(a.c, &v);
	o.close_rc = gx_chan_close(a.c);
	o.len = gx_chan_len(a.c);
	return gx_task_return(res, &o, sizeof o);
}

static void cancel_later(void *p)
{
	gx_sleep(T_NAP);
	gx_ctx_cancel(p);
}

typedef struct {
	int timeout_recv;   /* recv, empty, gx_timeout: -ETIMEDOUT */
	int timeout_send;   /* send, full, gx_timeout: -ETIMEDOUT */
	int cancel_recv;    /* recv, empty, cancelled meanwhile: -ECANCELED */
	int cancel_send;    /* send, full, cancelled meanwhile: -ECANCELED */
	int ctx_timeout;    /* recv, empty, context with a timeout: -ETIMEDOUT */
	int precancelled;   /* recv, empty, a context already cancelled: -ECANCELED */
	uint64_t len_after; /* the full channel still holds just its one value */
} deadline_out;

/* Deadlines and cancellation on an empty channel a.c and a full cap-1
 * channel (a.c's partner is made here: a.c must have cap 1, empty). */
static int deadlines(gx_chan *c, deadline_out *o)
{
	int rc;
	int v = 0;
	bool ok = false;
	o->timeout_recv = gx_chan_recv(c, &v, &ok, gx_timeout(T_SHORT));

	gx_ctx *ctx = NULL;
	if ((rc = gx_ctx_with_cancel(gx_ctx_background(), &ctx)) < 0)
		return rc;
	if (gx_go(cancel_later, ctx) < 1)
		return -ENOMEM;
	o->cancel_recv = gx_chan_recv(c, &v, &ok, gx_ctx_until(ctx));
	gx_ctx_release(ctx);

	if ((rc = gx_ctx_with_timeout(gx_ctx_background(), T_SHORT, &ctx)) < 0)
		return rc;
	o->ctx_timeout = gx_chan_recv(c, &v, &ok, gx_ctx_until(ctx));
	gx_ctx_release(ctx);

	if ((rc = gx_ctx_with_cancel(gx_ctx_background(), &ctx)) < 0)
		return rc;
	gx_ctx_cancel(ctx);
	o->precancelled = gx_chan_recv(c, &v, &ok, gx_ctx_until(ctx));
	gx_ctx_release(ctx);

	/* now full */
	v = 1;
	if ((rc = gx_chan_send(c, &v, gx_timeout(T_LONG))) < 0)
		return rc;
	v = 2;
	o->timeout_send = gx_chan_send(c, &v, gx_timeout(T_SHORT));
	if ((rc = gx_ctx_with_cancel(gx_ctx_background(), &ctx)) < 0)
		return rc;
	if (gx_go(cancel_later, ctx) < 1)
		return -ENOMEM;
	v = 3;
	o->cancel_send = gx_chan_send(c, &v, gx_ctx_until(ctx));
	gx_ctx_release(ctx);
	o->len_after = gx_chan_len(c);
	/* empty it again */
	v = 0;
	if ((rc = gx_chan_recv(c, &v, &ok, gx_timeout(T_LONG))) < 0)
		return rc;
	return v == 1 && ok ? 0 : -EPROTO;
}

static int t_deadlines(const void *arg, size_t len, gx_task_result *res)
{
	targ a;
	if (!targ_of(arg, len, &a))
		return -EPROTO;
	deadline_out o;
	memset(&o, 0, sizeof o);
	int rc = deadlines(a.c, &o);
	int rc2 = gx_task_return(res, &o, sizeof o);
	return rc < 0 ? rc : rc2;
}

/* Send n values of a.size bytes, the k-th filled with pat(., base + k). */
static int t_big_send(const void *arg, size_t len, gx_task_result *res)
{
	targ a;
	(void)res;
	if (!targ_of(arg, len, &a))
		return -EPROTO;
	uint8_t *b = malloc(a.size ? a.size : 1); /* never on a 64 KiB coroutine stack */
	if (!b)
		return -ENOMEM;
	int rc = 0;
	for (int k = 0; k < a.n && rc == 0; k++) {
		fill(b, a.size, (uint32_t)(a.base + k));
		rc = gx_chan_send(a.c, b, gx_timeout(T_LONG));
	}
	free(b);
	return rc;
}

typedef struct {
	int got;        /* values received */
	int bad_value;  /* the first that differed, -1 for none */
	int64_t bad_at; /* its first differing byte */
} big_out;

/* Receive n values of a.size bytes and check the k-th is pat(., base + k). */
static int t_big_check(const void *arg, size_t len, gx_task_result *res)
{
	targ a;
	if (!targ_of(arg, len, &a))
		return -EPROTO;
	uint8_t *b = malloc(a.size ? a.size : 1);
	if (!b)
		return -ENOMEM;
	big_out o = {0, -1, -1};
	int rc = 0;
	for (int k = 0; k < a.n; k++) {
		bool ok = false;
		memset(b, 0, a.size);
		rc = gx_chan_recv(a.c, b, &ok, gx_timeout(T_LONG));
		if (rc == 0 && !ok)
			rc = -EPROTO;
		if (rc < 0)
			break;
		o.got++;
		int64_t at = first_bad(b, a.size, (uint32_t)(a.base + k));
		if (at >= 0 && o.bad_value < 0) {
			o.bad_value = k;
			o.bad_at = at;
		}
	}
	free(b);
	int rc2 = gx_task_return(res, &o, sizeof o);
	return rc < 0 ? rc : rc2;
}

/* Signals (elem_size 0): send n with a NULL value, blocking. */
static int t_signal(const void *arg, size_t len, gx_task_result *res)
{
	targ a;
	(void)res;
	if (!targ_of(arg, len, &a))
		return -EPROTO;
	for (int k = 0; k < a.n; k++) {
		int rc = gx_chan_send(a.c, NULL, gx_timeout(T_LONG));
		if (rc < 0)
			return rc;
	}
	return 0;
}

typedef struct {
	int rc, v, ok;
} sel_out;

/* select over a local channel of its own (never ready) and a.c (recv),
 * after noting the start. Result: sel_out. */
static int t_select(const void *arg, size_t len, gx_task_result *res)
{
	targ a;
	if (!targ_of(arg, len, &a))
		return -EPROTO;
	gx_chan *l = NULL;
	int rc = gx_chan_make(&l, sizeof(int), 1, 0);
	if (rc < 0)
		return rc;
	int lv = -1, dv = -1;
	gx_case cs[2] = {{l, GX_RECV, &lv, false}, {a.c, GX_RECV, &dv, false}};
	atomic_fetch_add(&S->started, 1);
	sel_out o = {gx_select(cs, 2, gx_timeout(T_LONG)), dv, cs[1].ok};
	gx_chan_free(l);
	return gx_task_return(res, &o, sizeof o);
}

/* ------------------------------------------------ main-process helpers */

/* Run fn on worker w (-1: any) with a; fails the test when refused. */
static gx_future spawn(gx_task_fn fn, const targ *a, int w)
{
	gx_future f = {0};
	gx_par_opts o = GX_PAR_OPTS_INIT;
	o.worker = w;
	int rc = gx_go_parallel(&f, fn, a, sizeof *a, &o);
	cr_assert_eq(rc, 0, "gx_go_parallel: %d (%s)", rc, strerror(-rc));
	return f;
}

/* Wait for f (T_LONG): its code; its result into buf (cap bytes), the
 * length into *n when n is non-NULL. */
static int get(gx_future f, void *buf, size_t cap, size_t *n)
{
	size_t len = 0;
	int rc = gx_future_get(f, buf, cap, &len, gx_timeout(T_LONG));
	if (n)
		*n = len;
	return rc;
}

/* Nap (in a coroutine) until *v >= want; false after 10 s. */
static bool wait_flag(_Atomic int *v, int want)
{
	int64_t end = gx_time_after(10 * GX_SECOND);
	while (atomic_load(v) < want) {
		if (gx_now() > end)
			return false;
		gx_sleep(GX_MILLISECOND);
	}
	return true;
}

static gx_chan *dmake(size_t elem, size_t cap)
{
	gx_chan *c = NULL;
	int rc = gx_chan_make(&c, elem, cap, GX_CHAN_DISTRIBUTED);
	cr_assert_eq(rc, 0, "gx_chan_make(%zu, %zu, DISTRIBUTED): %d (%s)", elem, cap, rc, strerror(-rc));
	cr_assert_not_null(c);
	return c;
}

static void dfree(gx_chan *c)
{
	int rc = gx_chan_free(c);
	cr_expect_eq(rc, 0, "gx_chan_free of a distributed channel: %d (%s)", rc, strerror(-rc));
}

/* Receive one int (T_LONG); -1000 - err on an error, -999 for ok false. */
static int recv_int(gx_chan *c)
{
	int v = -1;
	bool ok = false;
	int rc = gx_chan_recv(c, &v, &ok, gx_timeout(T_LONG));
	if (rc < 0)
		return -1000 + rc;
	return ok ? v : -999;
}

/* Chunks in use in every pool of the runtime's arena. */
static uint64_t pool_in_use(void)
{
	gx_arena *a = gx_par_arena(0);
	uint64_t n = 0;
	for (int node = 0; node < 64; node++) {
		gx_pool_class_stats st;
		if (gx_pool_stats(a, node, 0, &st) < 0)
			break;
		for (int cls = 0; cls < GX_POOL_CLASSES; cls++)
			if (gx_pool_stats(a, node, cls, &st) == 0)
				n += st.in_use;
	}
	return n;
}

/* ============================================ 1. Go's rules across processes */

/* A cap-`cap` channel filled by try_send from worker 0: exactly cap fit.
 * cap 4 is kept by the ring itself, 1 and 5 by a credit counter. */
static void capacity_round(int cap)
{
	gx_chan *c = dmake(sizeof(int), (size_t)cap);
	cr_expect_eq(gx_chan_cap(c), (size_t)cap);
	cr_expect_eq(gx_chan_len(c), 0);

	targ a = {.c = c, .n = cap + 1, .base = 1};
	fill_out o;
	memset(&o, 0x55, sizeof o);
	size_t n = 0;
	cr_expect_eq(get(spawn(t_try_fill, &a, 0), &o, sizeof o, &n), 0);
	cr_expect_eq(n, sizeof o);
	for (int i = 0; i < cap; i++)
		cr_expect_eq(o.codes[i], 0, "cap %d: try_send %d from a worker: %d", cap, i + 1, o.codes[i]);
	cr_expect_eq(o.codes[cap], -EAGAIN, "cap %d: try_send %d from a worker: %d, want -EAGAIN", cap, cap + 1,
		     o.codes[cap]);
	cr_expect_eq(o.len, (uint64_t)cap, "cap %d: len seen by the worker: %llu", cap, (unsigned long long)o.len);
	cr_expect_eq(o.cap, (uint64_t)cap, "cap %d: cap seen by the worker: %llu", cap, (unsigned long long)o.cap);

	/* the main process sees the same channel */
	cr_expect_eq(gx_chan_len(c), (size_t)cap);
	int v = 99;
	cr_expect_eq(gx_chan_try_send(c, &v), -EAGAIN, "cap %d: full for the main process too", cap);
	cr_expect_eq(gx_chan_send(c, &v, gx_timeout(T_SHORT)), -ETIMEDOUT, "cap %d: a blocking send when full", cap);
	cr_expect_eq(gx_chan_len(c), (size_t)cap, "cap %d: a timed-out send delivered nothing", cap);
	for (int i = 0; i < cap; i++)
		cr_expect_eq(recv_int(c), 1 + i, "cap %d: value %d", cap, i);
	cr_expect_eq(gx_chan_len(c), 0);
	bool ok = true;
	cr_expect_eq(gx_chan_try_recv(c, &v, &ok), -EAGAIN, "cap %d: the refused value was never queued", cap);

	/* room again: exactly cap once more, now from the main process */
	for (int i = 0; i < cap; i++)
		cr_expect_eq(gx_chan_try_send(c, &i), 0, "cap %d: refill %d", cap, i);
	cr_expect_eq(gx_chan_try_send(c, &v), -EAGAIN, "cap %d: full after the refill", cap);
	a.n = 1;
	memset(&o, 0x55, sizeof o);
	cr_expect_eq(get(spawn(t_try_fill, &a, 1), &o, sizeof o, NULL), 0);
	cr_expect_eq(o.codes[0], -EAGAIN, "cap %d: full for worker 1 as well", cap);
	dfree(c);
}

static int capacity_main(void *arg)
{
	(void)arg;
	capacity_round(4);
	capacity_round(1);
	capacity_round(5);
	return 0;
}

Test(dchan, buffered_capacity_is_exact_across_processes, .timeout = 30)
{
	run2(capacity_main);
}

#define FIFO_N 2000

static int fifo_main(void *arg)
{
	(void)arg;
	gx_chan *c = dmake(sizeof(int), 3); /* not a power of two: the credit counter */
	targ a = {.c = c, .n = FIFO_N, .base = 0};
	gx_future f = spawn(t_send_seq, &a, 0);
	int bad = -1, badv = 0;
	for (int i = 0; i < FIFO_N; i++) {
		int v = recv_int(c);
		if (v != i && bad < 0) {
			bad = i;
			badv = v;
		}
	}
	cr_expect_eq(bad, -1, "value %d arrived as %d (FIFO from one sender)", bad, badv);
	cr_expect_eq(get(f, NULL, 0, NULL), 0);

	/* and the other way: the main process sends, a worker receives */
	a.n = 500;
	a.ns = 0;
	f = spawn(t_recv_n, &a, 1);
	for (int i = 0; i < 500; i++)
		cr_expect_eq(gx_chan_send(c, &i, gx_timeout(T_LONG)), 0);
	int *out = calloc(502, sizeof *out);
	cr_assert_not_null(out);
	size_t n = 0;
	cr_expect_eq(get(f, out, 502 * sizeof *out, &n), 0);
	cr_expect_eq(n, 502 * sizeof *out);
	cr_expect_eq(out[0], 1, "ran on worker %d", out[0]);
	cr_expect_eq(out[1], -EAGAIN, "nothing beyond the 500: %d", out[1]);
	bad = -1;
	for (int i = 0; i < 500 && bad < 0; i++)
		if (out[i + 2] != i)
			bad = i;
	cr_expect_eq(bad, -1, "value %d arrived at the worker as %d", bad, bad >= 0 ? out[bad + 2] : 0);
	free(out);
	dfree(c);
	return 0;
}

Test(dchan, fifo_from_a_single_sender, .timeout = 30)
{
	run2(fifo_main);
}

/* Send base .. base+n-1 as gx_select does, each with a nil case beside it
 * (so the select is the distributed one, dselect.c); code: the first error. */
static int t_sel_send_seq(const void *arg, size_t len, gx_task_result *res)
{
	targ a;
	(void)res;
	if (!targ_of(arg, len, &a))
		return -EPROTO;
	for (int i = 0; i < a.n; i++) {
		int v = a.base + i;
		gx_case cs[2] = {{.chan = NULL, .op = GX_RECV}, {.chan = a.c, .op = GX_SEND, .elem = &v}};
		int rc = gx_select(cs, 2, gx_timeout(T_LONG));
		if (rc != 1)
			return rc < 0 ? rc : -EPROTO;
	}
	return 0;
}

#define WAKE_N 20000
#define WAKE_WAIT (5 * GX_SECOND) /* only a lost wake-up outlasts it */

/* A receive wakes a sender asleep on a full channel without a fence (its
 * claim stands in: gx_dch_took), so the sender's look after registering
 * must count a place a receiver claimed (gx_dch_room), and a select with
 * that send case must not sleep past one (gx_dsel_room_claimed). With
 * the spin budget at 0 every wait sleeps at once: on a channel of
 * capacity 1, nearly every send and every receive sleeps. A lost wake-up
 * leaves both sides asleep, and the receive times out. */
static int sleepy_main(void *arg)
{
	(void)arg;
	for (int sel = 0; sel < 2; sel++) {
		gx_chan *c = dmake(sizeof(int), 1);
		targ a = {.c = c, .n = WAKE_N, .base = 0};
		gx_future f = spawn(sel ? t_sel_send_seq : t_send_seq, &a, 0);
		int bad = -1, badv = 0;
		for (int i = 0; i < WAKE_N && bad < 0; i++) {
			int v = -1;
			bool ok = false;
			int rc = gx_chan_recv(c, &v, &ok, gx_timeout(WAKE_WAIT));
			if (rc < 0 || !ok || v != i) {
				bad = i;
				badv = rc < 0 ? rc : v;
			}
		}
		cr_expect_eq(bad, -1, "%s: receive %d gave %d (a negative code: an error; -110: timed out)",
			     sel ? "select sender" : "sender", bad, badv);
		if (bad >= 0)
			gx_chan_close(c); /* the sender must not wait out T_LONG */
		int rc = get(f, NULL, 0, NULL);
		cr_expect(bad >= 0 || rc == 0, "the sender's code: %d", rc);
		dfree(c);
	}
	return 0;
}

Test(dchan, a_sender_asleep_on_a_full_channel_is_woken_by_every_take, .timeout = 120)
{
	shared_init();
	gx_config c = config(2);
	c.spin_ns = 0;
	run(&c, sleepy_main, NULL);
}

#define PROD_N 5000

static int producers_main(void *arg)
{
	(void)arg;
	gx_chan *c = dmake(sizeof(int), 8);
	gx_future f[2];
	for (int w = 0; w < 2; w++) {
		targ a = {.c = c, .n = PROD_N, .base = w * PROD_N};
		f[w] = spawn(t_send_seq, &a, w);
	}
	uint8_t *seen = calloc(2 * PROD_N, 1);
	cr_assert_not_null(seen);
	int64_t sum = 0;
	int last[2] = {-1, -1}, out_of_range = 0, reordered = 0, errors = 0;
	for (int i = 0; i < 2 * PROD_N; i++) {
		int v = recv_int(c);
		if (v < 0) {
			errors++;
			continue;
		}
		if (v >= 2 * PROD_N) {
			out_of_range++;
			continue;
		}
		seen[v]++;
		sum += v;
		int p = v / PROD_N;
		if (v <= last[p])
			reordered++;
		last[p] = v;
	}
	cr_expect_eq(errors, 0, "receives that failed");
	cr_expect_eq(out_of_range, 0, "values nobody sent");
	cr_expect_eq(reordered, 0, "values out of their producer's order");
	int missing = 0, dup = 0;
	for (int v = 0; v < 2 * PROD_N; v++) {
		missing += seen[v] == 0;
		dup += seen[v] > 1;
	}
	cr_expect_eq(missing, 0, "values never received");
	cr_expect_eq(dup, 0, "values received twice");
	int64_t want = (int64_t)(2 * PROD_N) * (2 * PROD_N - 1) / 2;
	cr_expect_eq(sum, want, "sum %lld, want %lld", (long long)sum, (long long)want);
	for (int w = 0; w < 2; w++)
		cr_expect_eq(get(f[w], NULL, 0, NULL), 0, "producer %d", w);
	int v = 0;
	bool ok = false;
	cr_expect_eq(gx_chan_try_recv(c, &v, &ok), -EAGAIN, "nothing left over");
	free(seen);
	dfree(c);
	return 0;
}

Test(dchan, every_value_exactly_once_from_two_producer_processes, .timeout = 30)
{
	run2(producers_main);
}

#define CONS_N 4000

static int consumers_main(void *arg)
{
	(void)arg;
	gx_chan *c = dmake(sizeof(int), 6); /* the credit counter (producers_main: the ring) */
	gx_future f[2];
	for (int w = 0; w < 2; w++) {
		targ a = {.c = c, .n = CONS_N};
		f[w] = spawn(t_recv_until_closed, &a, w);
	}
	for (int i = 0; i < CONS_N; i++)
		cr_expect_eq(gx_chan_send(c, &i, gx_timeout(T_LONG)), 0);
	cr_expect_eq(gx_chan_close(c), 0);
	uint8_t *seen = calloc(CONS_N, 1);
	int *out = calloc(CONS_N, sizeof *out);
	cr_assert(seen && out);
	int total = 0, reordered = 0, bogus = 0;
	for (int w = 0; w < 2; w++) {
		size_t n = 0;
		cr_expect_eq(get(f[w], out, CONS_N * sizeof *out, &n), 0, "consumer %d", w);
		int k = (int)(n / sizeof *out);
		total += k;
		for (int i = 0; i < k; i++) {
			if (out[i] < 0 || out[i] >= CONS_N) {
				bogus++;
				continue;
			}
			seen[out[i]]++;
			if (i && out[i] <= out[i - 1])
				reordered++;
		}
	}
	int missing = 0, dup = 0;
	for (int v = 0; v < CONS_N; v++) {
		missing += seen[v] == 0;
		dup += seen[v] > 1;
	}
	cr_expect_eq(total, CONS_N, "values received by the two workers: %d", total);
	cr_expect_eq(bogus, 0);
	cr_expect_eq(missing, 0, "values no consumer got");
	cr_expect_eq(dup, 0, "values both consumers got");
	cr_expect_eq(reordered, 0, "a consumer saw one sender's values out of order");
	free(seen);
	free(out);
	dfree(c);
	return 0;
}

Test(dchan, every_value_exactly_once_to_two_consumer_processes, .timeout = 30)
{
	run2(consumers_main);
}

static int rendezvous_main(void *arg)
{
	(void)arg;
	gx_chan *c = dmake(sizeof(int), 0);
	cr_expect_eq(gx_chan_cap(c), 0);
	for (int round = 0; round < 3; round++) {
		atomic_store(&S->started, 0);
		atomic_store(&S->send_returned, 0);
		targ a = {.c = c, .base = 70 + round};
		gx_future f = spawn(t_rv_send, &a, round % 2);
		cr_assert(wait_flag(&S->started, 1), "the sender never started");
		gx_sleep(T_NAP); /* the sender is now blocked in its send, or about to be */
		cr_expect_eq(atomic_load(&S->send_returned), 0,
			     "round %d: an unbuffered send returned before anyone received", round);
		cr_expect_eq(recv_int(c), 70 + round, "round %d", round);
		cr_expect_eq(get(f, NULL, 0, NULL), 0, "round %d: the send", round);
		cr_expect_eq(atomic_load(&S->send_returned), 1);
	}

	/* the other way: the main process sends to a worker that waits T_NAP
	 * before its receive; the send cannot return before that receive */
	for (int round = 0; round < 2; round++) {
		atomic_store(&S->recv_called, 0);
		targ a = {.c = c, .ns = T_NAP};
		gx_future f = spawn(t_late_recv, &a, round);
		int v = 80 + round;
		cr_expect_eq(gx_chan_send(c, &v, gx_timeout(T_LONG)), 0);
		cr_expect_eq(atomic_load(&S->recv_called), 1,
			     "round %d: the main process's unbuffered send returned before the worker received", round);
		recv_out o = {0, 0, 0, 0};
		cr_expect_eq(get(f, &o, sizeof o, NULL), 0);
		cr_expect_eq(o.rc, 0);
		cr_expect_eq(o.v, v);
		cr_expect(o.ok);
		cr_expect_eq(o.worker, round);
	}
	dfree(c);
	return 0;
}

Test(dchan, unbuffered_send_returns_only_after_a_receiver_took_the_value, .timeout = 30)
{
	run2(rendezvous_main);
}

static int unbuffered_try_main(void *arg)
{
	(void)arg;
	gx_chan *c = dmake(sizeof(int), 0);
	int v = 5;
	cr_expect_eq(gx_chan_try_send(c, &v), -EAGAIN, "try_send on an unbuffered channel without a receiver");
	bool ok = true;
	cr_expect_eq(gx_chan_try_recv(c, &v, &ok), -EAGAIN, "try_recv on an unbuffered channel without a sender");
	targ a = {.c = c, .n = 1, .base = 6};
	fill_out o;
	memset(&o, 0x55, sizeof o);
	cr_expect_eq(get(spawn(t_try_fill, &a, 0), &o, sizeof o, NULL), 0);
	cr_expect_eq(o.codes[0], -EAGAIN, "try_send from a worker without a receiver: %d", o.codes[0]);
	cr_expect_eq(o.len, 0);
	cr_expect_eq(o.cap, 0);
	cr_expect_eq(gx_chan_len(c), 0);
	cr_expect_eq(gx_chan_try_recv(c, &v, &ok), -EAGAIN, "a failed try_send left nothing behind");
	dfree(c);
	return 0;
}

Test(dchan, unbuffered_try_send_without_a_receiver_is_eagain, .timeout = 30)
{
	run2(unbuffered_try_main);
}

/* Go: len(c) of an unbuffered channel is always 0, even while a sender is
 * blocked on it. */
static int unbuffered_len_main(void *arg)
{
	(void)arg;
	gx_chan *c = dmake(sizeof(int), 0);
	targ a = {.c = c, .base = 11};
	gx_future f = spawn(t_rv_send, &a, 0);
	cr_assert(wait_flag(&S->started, 1));
	gx_sleep(T_NAP);
	size_t len = gx_chan_len(c);
	cr_expect_eq(len, 0, "gx_chan_len of an unbuffered channel with a sender waiting: %zu, want 0 (len <= cap)",
		     len);
	cr_expect_eq(recv_int(c), 11);
	cr_expect_eq(get(f, NULL, 0, NULL), 0);
	dfree(c);
	return 0;
}

Test(dchan, unbuffered_len_stays_zero_while_a_sender_waits, .timeout = 30)
{
	run2(unbuffered_len_main);
}

/* Go: a non-blocking send (select with default) on an unbuffered channel
 * proceeds when a receiver is waiting; so does a select's send case. */
static int unbuffered_ready_main(void *arg)
{
	(void)arg;
	gx_chan *c = dmake(sizeof(int), 0);
	targ a = {.c = c, .ns = 5 * GX_SECOND};
	gx_future f = spawn(t_block_recv, &a, 0);
	cr_assert(wait_flag(&S->started, 1));
	gx_sleep(T_NAP); /* the receiver is blocked in its recv */

	int v = 31;
	int rc = gx_chan_try_send(c, &v);
	cr_expect_eq(rc, 0, "try_send on an unbuffered channel with a receiver waiting in a worker: %d, want 0", rc);
	if (rc != 0) {
		gx_case cs[2] = {{NULL, GX_RECV, NULL, false}, {c, GX_SEND, &v, false}};
		rc = gx_select(cs, 2, gx_timeout(GX_SECOND));
		cr_expect_eq(rc, 1,
			     "select with a send case on an unbuffered channel, a receiver waiting in a worker: "
			     "%d, want 1",
			     rc);
	}
	if (rc < 0)
		gx_chan_close(c); /* let the receiver go */
	recv_out o = {0, 0, 0, 0};
	cr_expect_eq(get(f, &o, sizeof o, NULL), 0);
	if (rc >= 0) {
		cr_expect_eq(o.rc, 0);
		cr_expect_eq(o.v, 31);
		cr_expect(o.ok);
	}
	dfree(c);
	return 0;
}

Test(dchan, unbuffered_send_without_blocking_reaches_a_waiting_receiver, .timeout = 30)
{
	run2(unbuffered_ready_main);
}

/* ---- a rendezvous send that gives up ---- */

#define WD_N 3000
static _Atomic uint8_t *wd_got; /* shared: how often value i was received */

/* Receive until closed, napping 0..63 us before each receive (so that
 * some senders give up and some win), counting each value got. */
static int t_recv_counting(const void *arg, size_t len, gx_task_result *res)
{
	(void)res;
	targ a;
	if (!targ_of(arg, len, &a))
		return -EPROTO;
	uint32_t x = 2463534242u;
	for (;;) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		gx_sleep((int64_t)(x & 63) * GX_MICROSECOND);
		int v = 0;
		bool ok = false;
		int rc = gx_chan_recv(a.c, &v, &ok, gx_timeout(T_LONG));
		if (rc < 0)
			return rc;
		if (!ok)
			return 0;
		if (v < 1 || v > WD_N)
			return -EBADMSG;
		atomic_fetch_add(&wd_got[v], 1);
	}
}

static int withdraw_main(void *arg)
{
	(void)arg;
	gx_chan *c = dmake(sizeof(int), 0);
	targ a = {.c = c};
	gx_future f = spawn(t_recv_counting, &a, 0);
	static int rc[WD_N + 1];
	int timed_out = 0;
	for (int i = 1; i <= WD_N; i++) {
		rc[i] = gx_chan_send(c, &i, gx_timeout((10 + (i * 37) % 60) * GX_MICROSECOND));
		timed_out += rc[i] == -ETIMEDOUT;
	}
	cr_expect_eq(gx_chan_close(c), 0);
	cr_expect_eq(get(f, NULL, 0, NULL), 0, "the receiver");
	int wrong = 0;
	for (int i = 1; i <= WD_N; i++) {
		cr_expect(rc[i] == 0 || rc[i] == -ETIMEDOUT, "send %d: %d", i, rc[i]);
		int want = rc[i] == 0;
		if (atomic_load(&wd_got[i]) != want && wrong++ < 5)
			cr_expect_fail("value %d: send returned %d, received %d times", i, rc[i],
				       (int)atomic_load(&wd_got[i]));
	}
	cr_expect_eq(wrong, 0, "%d of %d values were received against what their send returned", wrong, WD_N);
	cr_log_info("%d of %d sends timed out", timed_out, WD_N);
	dfree(c);
	return 0;
}

Test(dchan, a_rendezvous_send_that_times_out_was_never_received, .timeout = 60)
{
	wd_got = shared_page(WD_N + 1);
	run2(withdraw_main);
}

/* ---- select that blocks ---- */

#define MEET_N 200

/* MEET_N rounds of a select that receives from a.c or from a channel
 * nobody sends on; result: the values in order. */
static int t_select_recv_n(const void *arg, size_t len, gx_task_result *res)
{
	targ a;
	if (!targ_of(arg, len, &a))
		return -EPROTO;
	gx_chan *quiet = NULL;
	int rc = gx_chan_make(&quiet, sizeof(int), 0, GX_CHAN_DISTRIBUTED);
	if (rc < 0)
		return rc;
	int out[MEET_N];
	for (int i = 0; i < MEET_N && rc >= 0; i++) {
		int v = -1, q = -1;
		gx_case cs[2] = {{quiet, GX_RECV, &q, false}, {a.c, GX_RECV, &v, false}};
		rc = gx_select(cs, 2, gx_timeout(T_LONG));
		if (rc == 1)
			out[i] = v;
		else if (rc >= 0)
			rc = -EPROTO; /* the quiet channel never delivers */
	}
	gx_chan_free(quiet);
	if (rc < 0)
		return rc;
	return gx_task_return(res, out, sizeof out);
}

static int meet_main(void *arg)
{
	(void)arg;
	gx_chan *c = dmake(sizeof(int), 0);
	gx_chan *local = NULL;
	cr_assert_eq(gx_chan_make(&local, sizeof(int), 0, 0), 0);
	targ a = {.c = c};
	gx_future f = spawn(t_select_recv_n, &a, 0);
	int bad = 0;
	for (int i = 0; i < MEET_N; i++) {
		int v = 1000 + i, l = -1;
		/* a send case on the unbuffered channel, and a local receive
		 * that nobody sends to */
		gx_case cs[2] = {{local, GX_RECV, &l, false}, {c, GX_SEND, &v, false}};
		int rc = gx_select(cs, 2, gx_timeout(T_LONG));
		if (rc != 1 && bad++ < 3)
			cr_expect_fail("select %d: %d", i, rc);
	}
	int out[MEET_N];
	size_t n = 0;
	cr_expect_eq(get(f, out, sizeof out, &n), 0, "the receiving select");
	cr_expect_eq(n, sizeof out);
	for (size_t i = 0; i < n / sizeof(int) && i < MEET_N; i++)
		if (out[i] != 1000 + (int)i && bad++ < 6)
			cr_expect_fail("value %zu: %d", i, out[i]);
	cr_expect_eq(bad, 0);
	gx_chan_free(local);
	dfree(c);
	return 0;
}

Test(dchan, two_selects_on_one_unbuffered_channel_meet, .timeout = 60)
{
	run2(meet_main);
}

static int self_main(void *arg)
{
	(void)arg;
	gx_chan *c = dmake(sizeof(int), 0);
	int v = 5, got = -1;
	gx_case cs[2] = {{c, GX_SEND, &v, false}, {c, GX_RECV, &got, false}};
	cr_expect_eq(gx_select(cs, 2, gx_timeout(T_SHORT)), -ETIMEDOUT, "nobody else on the channel");
	cr_expect_eq(gx_select_try(cs, 2), -EAGAIN);
	cr_expect_eq(got, -1);
	/* and nothing was left in it */
	cr_expect_eq(gx_chan_try_recv(c, &got, NULL), -EAGAIN);
	dfree(c);
	return 0;
}

Test(dchan, a_select_does_not_meet_itself_on_an_unbuffered_channel, .timeout = 30)
{
	run2(self_main);
}

/* Send a.base on a.c after a nap of a.ns. */
static int t_send_later(const void *arg, size_t len, gx_task_result *res)
{
	(void)res;
	targ a;
	if (!targ_of(arg, len, &a))
		return -EPROTO;
	gx_sleep(a.ns);
	int v = a.base;
	return gx_chan_send(a.c, &v, gx_timeout(T_LONG));
}

static long sleep_switches;
static int sleep_rc, sleep_v;

static int sleeps_main(void *arg)
{
	(void)arg;
	gx_chan *c = dmake(sizeof(int), 1);
	gx_chan *quiet = dmake(sizeof(int), 0);
	targ a = {.c = c, .base = 77, .ns = 300 * GX_MILLISECOND};
	gx_future f = spawn(t_send_later, &a, 0);
	int v = -1, q = -1;
	gx_case cs[2] = {{quiet, GX_RECV, &q, false}, {c, GX_RECV, &v, false}};
	struct rusage r0, r1;
	getrusage(RUSAGE_SELF, &r0);
	sleep_rc = gx_select(cs, 2, gx_timeout(T_LONG));
	getrusage(RUSAGE_SELF, &r1);
	sleep_v = v;
	sleep_switches = (r1.ru_nvcsw - r0.ru_nvcsw) + (r1.ru_nivcsw - r0.ru_nivcsw);
	cr_expect_eq(get(f, NULL, 0, NULL), 0);
	dfree(c);
	dfree(quiet);
	return 0;
}

Test(dchan, select_over_distributed_channels_sleeps_until_one_is_ready, .timeout = 30)
{
	run2(sleeps_main);
	cr_expect_eq(sleep_rc, 1);
	cr_expect_eq(sleep_v, 77);
	cr_log_info("context switches of the main process over a 300 ms select: %ld", sleep_switches);
	/* one sleep on io_uring (a few switches around it); polling every
	 * 1 ms made hundreds. Elsewhere (epoll) it naps 1 ms at a time. */
	const char *b = getenv("GONEX_BACKEND");
	if (b && strcmp(b, "uring") == 0)
		cr_expect_lt(sleep_switches, 40, "the select woke %ld times", sleep_switches);
}

/* A select that spins (a budget far longer than the waits) over
 * distributed receive cases looks at each case's rings and tries the one
 * that looks ready (gx_dsel_look): a value that comes on the second case,
 * a close of the first, each from a worker 20 ms on. */
static int spin_select_main(void *arg)
{
	(void)arg;
	gx_chan *quiet = dmake(sizeof(int), 0);
	gx_chan *c = dmake(sizeof(int), 1);
	targ a = {.c = c, .base = 78, .ns = 20 * GX_MILLISECOND};
	gx_future f = spawn(t_send_later, &a, 0);
	int v = -1, q = -1;
	gx_case cs[2] = {{quiet, GX_RECV, &q, false}, {c, GX_RECV, &v, false}};
	cr_expect_eq(gx_select(cs, 2, gx_timeout(T_LONG)), 1);
	cr_expect_eq(v, 78);
	cr_expect(cs[1].ok);
	cr_expect_eq(q, -1, "the quiet case's element was touched");
	cr_expect_eq(get(f, NULL, 0, NULL), 0);
	targ b = {.c = quiet, .ns = 20 * GX_MILLISECOND};
	f = spawn(t_close_later, &b, 1);
	gx_case cs2[2] = {{quiet, GX_RECV, &q, true}, {c, GX_RECV, &v, false}};
	cr_expect_eq(gx_select(cs2, 2, gx_timeout(T_LONG)), 0);
	cr_expect_not(cs2[0].ok, "a closed channel's case reports !ok");
	cr_expect_eq(get(f, NULL, 0, NULL), 0);
	dfree(c);
	dfree(quiet);
	return 0;
}

Test(dchan, a_spinning_select_takes_the_case_that_becomes_ready, .timeout = 30)
{
	shared_init();
	gx_config c = config(2);
	c.spin_ns = GX_SECOND; /* the most it takes; the waits are 20 ms */
	run(&c, spin_select_main, NULL);
}

/* A local peer ends a select that sleeps on distributed channels too. */
static void local_later(void *p)
{
	gx_chan *l = p;
	gx_sleep(50 * GX_MILLISECOND);
	int v = 42;
	gx_chan_send(l, &v, gx_timeout(T_LONG));
}

static void local_recv_later(void *p)
{
	struct {
		gx_chan *l, *done;
	} *pr = p;
	gx_sleep(50 * GX_MILLISECOND);
	int v = -1;
	if (gx_chan_recv(pr->l, &v, NULL, gx_timeout(T_LONG)) == 0)
		gx_chan_send(pr->done, &v, gx_timeout(T_LONG));
}

static int local_wake_main(void *arg)
{
	(void)arg;
	gx_chan *quiet = dmake(sizeof(int), 0);
	gx_chan *l = NULL;
	cr_assert_eq(gx_chan_make(&l, sizeof(int), 0, 0), 0);
	cr_assert_gt(gx_go(local_later, l), 0);
	int v = -1, q = -1;
	gx_case cs[2] = {{quiet, GX_RECV, &q, false}, {l, GX_RECV, &v, false}};
	cr_expect_eq(gx_select(cs, 2, gx_timeout(T_LONG)), 1);
	cr_expect_eq(v, 42);
	cr_expect(cs[1].ok);
	/* and a local receiver takes a select's send */
	gx_case cs2[2] = {{quiet, GX_RECV, &q, false}, {l, GX_SEND, &v, false}};
	int got = -1;
	gx_chan *done = NULL;
	cr_assert_eq(gx_chan_make(&done, sizeof(int), 1, 0), 0);
	v = 43;
	struct {
		gx_chan *l, *done;
	} pr = {l, done};
	cr_assert_gt(gx_go(local_recv_later, &pr), 0);
	cr_expect_eq(gx_select(cs2, 2, gx_timeout(T_LONG)), 1);
	cr_expect_eq(gx_chan_recv(done, &got, NULL, gx_timeout(T_LONG)), 0);
	cr_expect_eq(got, 43);
	gx_chan_free(done);
	gx_chan_free(l);
	dfree(quiet);
	return 0;
}

Test(dchan, a_local_peer_ends_a_select_that_sleeps_on_distributed_channels, .timeout = 30)
{
	run2(local_wake_main);
}

/* gx_chan_free while a rendezvous sender of this process waits for its
 * take: -EBUSY, and the send then ends on its own. */
static gx_chan *fr_ch;
static int fr_send = 99, fr_done, fr_free;

static void fr_sender(void *arg)
{
	(void)arg;
	int v = 5;
	fr_send = gx_chan_send(fr_ch, &v, gx_timeout(300 * GX_MILLISECOND));
	fr_done = 1;
}

static int free_sender_main(void *arg)
{
	(void)arg;
	fr_ch = dmake(sizeof(int), 0);
	cr_assert_gt(gx_go(fr_sender, NULL), 0);
	gx_yield(); /* the sender put its value and spins, yielding */
	fr_free = gx_chan_free(fr_ch);
	for (int i = 0; i < 400 && !fr_done; i++)
		gx_sleep(5 * GX_MILLISECOND);
	cr_expect(fr_done, "the send returned");
	if (fr_free != 0)
		dfree(fr_ch);
	return 0;
}

Test(dchan, free_while_a_rendezvous_sender_waits_is_ebusy, .timeout = 30)
{
	run2(free_sender_main);
	cr_expect_eq(fr_free, -EBUSY, "gx_chan_free with a sender waiting: %d", fr_free);
	cr_expect_eq(fr_send, -ETIMEDOUT, "the send nobody took: %d", fr_send);
}

static int close_main(void *arg)
{
	(void)arg;
	gx_chan *c = dmake(sizeof(int), 4);
	for (int i = 0; i < 3; i++) {
		int v = 7 + i;
		cr_expect_eq(gx_chan_send(c, &v, gx_timeout(T_LONG)), 0);
	}
	cr_expect_eq(gx_chan_close(c), 0);
	cr_expect_eq(gx_chan_close(c), -EALREADY, "close twice");
	int v = 1;
	cr_expect_eq(gx_chan_send(c, &v, gx_timeout(T_LONG)), -EPIPE, "send after close");
	cr_expect_eq(gx_chan_try_send(c, &v), -EPIPE, "try_send after close");
	cr_expect_eq(gx_chan_len(c), 3, "close keeps the buffered values");

	targ a = {.c = c};
	close_out o;
	memset(&o, 0x55, sizeof o);
	cr_expect_eq(get(spawn(t_close_probe, &a, 1), &o, sizeof o, NULL), 0);
	for (int i = 0; i < 3; i++) {
		cr_expect_eq(o.rc[i], 0, "worker: receive %d", i);
		cr_expect_eq(o.v[i], 7 + i, "worker: the buffered value %d drains first: %d", i, o.v[i]);
		cr_expect_eq(o.ok[i], 1, "worker: ok for buffered value %d", i);
	}
	for (int i = 3; i < 6; i++) {
		cr_expect_eq(o.rc[i], 0, "worker: receive %d from a closed, drained channel returns at once: %d", i,
			     o.rc[i]);
		cr_expect_eq(o.ok[i], 0, "worker: receive %d: ok == false", i);
		cr_expect_eq(o.v[i], 0, "worker: receive %d: the zero value, got %d", i, o.v[i]);
	}
	cr_expect_eq(o.send_rc, -EPIPE, "worker: send after close");
	cr_expect_eq(o.try_send_rc, -EPIPE, "worker: try_send after close");
	cr_expect_eq(o.close_rc, -EALREADY, "worker: close of a closed channel");
	cr_expect_eq(o.len, 0);

	/* the main process, too */
	v = -1;
	bool ok = true;
	cr_expect_eq(gx_chan_recv(c, &v, &ok, gx_timeout(T_LONG)), 0);
	cr_expect(!ok);
	cr_expect_eq(v, 0, "main: the zero value");
	v = -1;
	ok = true;
	cr_expect_eq(gx_chan_try_recv(c, &v, &ok), 0);
	cr_expect(!ok);
	cr_expect_eq(v, 0);
	dfree(c);

	/* receivers drain what was sent before the close, across processes */
	c = dmake(sizeof(int), 16);
	targ s = {.c = c, .n = 10, .base = 100};
	cr_expect_eq(get(spawn(t_send_seq, &s, 0), NULL, 0, NULL), 0);
	cr_expect_eq(gx_chan_close(c), 0);
	int out[16];
	size_t n = 0;
	targ r = {.c = c, .n = 16};
	cr_expect_eq(get(spawn(t_recv_until_closed, &r, 1), out, sizeof out, &n), 0);
	cr_expect_eq(n, 10 * sizeof(int), "worker 1 drained %zu values, want 10", n / sizeof(int));
	for (size_t i = 0; i < n / sizeof(int); i++)
		cr_expect_eq(out[i], 100 + (int)i);
	dfree(c);
	return 0;
}

Test(dchan, close_drains_then_zero_value_and_go_errors, .timeout = 30)
{
	run2(close_main);
}

static int close_wakes_main(void *arg)
{
	(void)arg;
	gx_chan *r = dmake(sizeof(int), 1); /* empty: a receiver blocks */
	gx_chan *w = dmake(sizeof(int), 1); /* full: a sender blocks */
	int v = 1;
	cr_expect_eq(gx_chan_try_send(w, &v), 0);
	targ ra = {.c = r}, wa = {.c = w, .base = 2};
	gx_future fr = spawn(t_block_recv, &ra, 0);
	gx_future fw = spawn(t_block_send, &wa, 1);
	cr_assert(wait_flag(&S->started, 2));
	gx_sleep(T_NAP);
	cr_expect_eq(gx_chan_close(r), 0);
	cr_expect_eq(gx_chan_close(w), 0);
	recv_out o = {1, 1, 1, 1};
	cr_expect_eq(get(fr, &o, sizeof o, NULL), 0);
	cr_expect_eq(o.rc, 0, "a receiver blocked in a worker, woken by close: %d", o.rc);
	cr_expect_eq(o.ok, 0, "ok == false");
	cr_expect_eq(o.v, 0, "the zero value");
	cr_expect_eq(get(fw, NULL, 0, NULL), -EPIPE, "a sender blocked in a worker, woken by close");
	cr_expect_eq(recv_int(w), 1, "the value buffered before the close still drains");
	dfree(r);
	dfree(w);

	/* a close in a worker wakes the main process */
	gx_chan *c = dmake(sizeof(int), 2);
	targ ca = {.c = c, .ns = T_NAP};
	gx_future fc = spawn(t_close_later, &ca, 0);
	v = -1;
	bool ok = true;
	cr_expect_eq(gx_chan_recv(c, &v, &ok, gx_timeout(T_LONG)), 0);
	cr_expect(!ok, "main: woken by a worker's close with ok == false");
	cr_expect_eq(v, 0);
	cr_expect_eq(get(fc, NULL, 0, NULL), 0);
	dfree(c);
	return 0;
}

Test(dchan, close_wakes_receivers_and_senders_in_other_processes, .timeout = 30)
{
	run2(close_wakes_main);
}

static void expect_deadlines(const deadline_out *o, const char *who)
{
	cr_expect_eq(o->timeout_recv, -ETIMEDOUT, "%s: recv on an empty channel with gx_timeout: %d", who,
		     o->timeout_recv);
	cr_expect_eq(o->cancel_recv, -ECANCELED, "%s: recv with a context cancelled meanwhile: %d", who,
		     o->cancel_recv);
	cr_expect_eq(o->ctx_timeout, -ETIMEDOUT, "%s: recv with a context timing out: %d", who, o->ctx_timeout);
	cr_expect_eq(o->precancelled, -ECANCELED, "%s: recv with a cancelled context: %d", who, o->precancelled);
	cr_expect_eq(o->timeout_send, -ETIMEDOUT, "%s: send on a full channel with gx_timeout: %d", who,
		     o->timeout_send);
	cr_expect_eq(o->cancel_send, -ECANCELED, "%s: send with a context cancelled meanwhile: %d", who,
		     o->cancel_send);
	cr_expect_eq(o->len_after, 1, "%s: failed sends delivered something (len %llu)", who,
		     (unsigned long long)o->len_after);
}

static int deadlines_main(void *arg)
{
	(void)arg;
	gx_chan *c = dmake(sizeof(int), 1);
	deadline_out o;
	memset(&o, 0, sizeof o);
	cr_expect_eq(deadlines(c, &o), 0, "main: the deadline sequence");
	expect_deadlines(&o, "main");

	targ a = {.c = c};
	memset(&o, 0, sizeof o);
	cr_expect_eq(get(spawn(t_deadlines, &a, 0), &o, sizeof o, NULL), 0, "worker: the deadline sequence");
	expect_deadlines(&o, "worker");
	cr_expect_eq(gx_chan_len(c), 0);
	dfree(c);
	return 0;
}

Test(dchan, deadlines_and_cancel_in_a_worker_and_in_main, .timeout = 30)
{
	run2(deadlines_main);
}

static int select_main(void *arg)
{
	(void)arg;
	gx_chan *l = NULL;
	cr_assert_eq(gx_chan_make(&l, sizeof(int), 1, 0), 0);
	gx_chan *d = dmake(sizeof(int), 1);
	int lv = -1, dv = -1;
	gx_case cs[2] = {{l, GX_RECV, &lv, false}, {d, GX_RECV, &dv, false}};

	/* nothing ready: the default, and a deadline */
	cr_expect_eq(gx_select_try(cs, 2), -EAGAIN, "select with a default, nothing ready");
	cr_expect_eq(gx_select(cs, 2, gx_timeout(T_SHORT)), -ETIMEDOUT);

	/* a worker makes the distributed case ready while we wait */
	targ a = {.c = d, .n = 1, .base = 42, .ns = T_NAP};
	gx_future f = spawn(t_send_seq, &a, 0);
	int rc = gx_select(cs, 2, gx_timeout(T_LONG));
	cr_expect_eq(rc, 1, "the distributed case was the ready one: %d", rc);
	cr_expect_eq(dv, 42);
	cr_expect(cs[1].ok);
	cr_expect_eq(lv, -1, "the local case did nothing");
	cr_expect_eq(get(f, NULL, 0, NULL), 0);

	/* only the local one ready */
	int x = 5;
	cr_expect_eq(gx_chan_try_send(l, &x), 0);
	rc = gx_select(cs, 2, gx_timeout(T_LONG));
	cr_expect_eq(rc, 0, "the local case was the ready one: %d", rc);
	cr_expect_eq(lv, 5);
	cr_expect(cs[0].ok);
	cr_expect_eq(gx_chan_len(d), 0);

	/* both ready: each is picked sometimes, only the picked one moves */
	int picked[2] = {0, 0}, other_moved = 0;
	for (int i = 0; i < 200; i++) {
		if (gx_chan_len(l) == 0)
			gx_chan_try_send(l, &i);
		if (gx_chan_len(d) == 0)
			gx_chan_try_send(d, &i);
		rc = gx_select_try(cs, 2);
		if (rc == 0 || rc == 1) {
			picked[rc]++;
			other_moved += gx_chan_len(rc == 0 ? d : l) != 1;
		}
	}
	cr_expect_eq(picked[0] + picked[1], 200, "select_try with both ready");
	cr_expect_gt(picked[0], 0, "the local case never won in 200 selects with both ready");
	cr_expect_gt(picked[1], 0, "the distributed case never won in 200 selects with both ready");
	cr_expect_eq(other_moved, 0, "a case that lost consumed its value");
	bool ok;
	gx_chan_try_recv(l, &x, &ok);
	gx_chan_try_recv(d, &x, &ok);

	/* send cases: the local one full, the distributed one has room */
	x = 1;
	cr_expect_eq(gx_chan_try_send(l, &x), 0);
	int sv = 77;
	gx_case ss[2] = {{l, GX_SEND, &x, false}, {d, GX_SEND, &sv, false}};
	rc = gx_select(ss, 2, gx_timeout(T_LONG));
	cr_expect_eq(rc, 1, "a send case with room on the distributed channel: %d", rc);
	cr_expect_eq(recv_int(d), 77);
	cr_expect_eq(recv_int(l), 1);

	/* a worker selecting over its local channel and d */
	atomic_store(&S->started, 0);
	targ sa = {.c = d};
	f = spawn(t_select, &sa, 1);
	cr_assert(wait_flag(&S->started, 1));
	x = 99;
	cr_expect_eq(gx_chan_send(d, &x, gx_timeout(T_LONG)), 0);
	sel_out so = {-5, -5, -5};
	cr_expect_eq(get(f, &so, sizeof so, NULL), 0);
	cr_expect_eq(so.rc, 1, "the worker's select: %d", so.rc);
	cr_expect_eq(so.v, 99);
	cr_expect_eq(so.ok, 1);

	/* a closed distributed channel is ready: its index, ok == false */
	cr_expect_eq(gx_chan_close(d), 0);
	dv = -1;
	cs[1].ok = true;
	rc = gx_select_try(cs, 2);
	cr_expect_eq(rc, 1, "select_try on a closed distributed channel: %d", rc);
	cr_expect(!cs[1].ok, "ok == false from a closed channel");
	cr_expect_eq(dv, 0, "the zero value");
	dv = -1;
	cs[1].ok = true;
	rc = gx_select(cs, 2, gx_timeout(T_LONG));
	cr_expect_eq(rc, 1, "select on a closed distributed channel: %d", rc);
	cr_expect(!cs[1].ok);
	cr_expect_eq(dv, 0);
	gx_case sc[1] = {{d, GX_SEND, &sv, false}};
	cr_expect_eq(gx_select_try(sc, 1), -EPIPE, "a send case on a closed distributed channel");
	dfree(d);
	cr_expect_eq(gx_chan_free(l), 0);
	return 0;
}

Test(dchan, select_mixes_local_and_distributed_channels, .timeout = 30)
{
	run2(select_main);
}

static void big_round(size_t size, int n)
{
	gx_chan *c = dmake(size, 2);
	/* worker -> main */
	targ a = {.c = c, .n = n, .base = (int)(size % 251), .size = (uint32_t)size};
	gx_future f = spawn(t_big_send, &a, 0);
	uint8_t *b = malloc(size);
	cr_assert_not_null(b);
	for (int k = 0; k < n; k++) {
		bool ok = false;
		memset(b, 0, size);
		int rc = gx_chan_recv(c, b, &ok, gx_timeout(T_LONG));
		cr_expect_eq(rc, 0, "%zu-byte value %d: %d", size, k, rc);
		cr_expect(ok);
		int64_t at = first_bad(b, size, (uint32_t)(a.base + k));
		cr_expect_eq(at, -1, "%zu-byte value %d from a worker: byte %lld differs", size, k, (long long)at);
	}
	cr_expect_eq(get(f, NULL, 0, NULL), 0, "%zu-byte sender", size);

	/* main -> worker */
	a.base += 3;
	f = spawn(t_big_check, &a, 1);
	for (int k = 0; k < n; k++) {
		fill(b, size, (uint32_t)(a.base + k));
		cr_expect_eq(gx_chan_send(c, b, gx_timeout(T_LONG)), 0);
		memset(b, 0, size); /* the channel has its own copy */
	}
	big_out o = {-1, -2, -2};
	cr_expect_eq(get(f, &o, sizeof o, NULL), 0, "%zu-byte receiver", size);
	cr_expect_eq(o.got, n);
	cr_expect_eq(o.bad_value, -1, "%zu-byte value %d at the worker: byte %lld differs", size, o.bad_value,
		     (long long)o.bad_at);
	free(b);
	dfree(c);
}

static int large_main(void *arg)
{
	(void)arg;
	/* inline up to 112 bytes, pool chunks beyond; the largest fitting a
	 * chunk with the message header */
	size_t sizes[] = {1, 112, 113, 4096, 300 * 1024, GX_POOL_MAX_CHUNK - 8};
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
		big_round(sizes[i], 4);
	return 0;
}

Test(dchan, large_values_arrive_intact, .timeout = 30)
{
	run2(large_main);
}

/* chan.h allows elem_size up to GX_CHAN_ELEM_MAX: a distributed channel
 * either refuses it at make or carries it. */
static int elem_max_main(void *arg)
{
	(void)arg;
	gx_chan *c = NULL;
	int rc = gx_chan_make(&c, GX_CHAN_ELEM_MAX, 1, GX_CHAN_DISTRIBUTED);
	if (rc == -EINVAL) {
		cr_expect_null(c);
		return 0;
	}
	cr_assert_eq(rc, 0, "gx_chan_make(GX_CHAN_ELEM_MAX, DISTRIBUTED): %d", rc);
	uint8_t *b = malloc(GX_CHAN_ELEM_MAX);
	cr_assert_not_null(b);
	fill(b, GX_CHAN_ELEM_MAX, 3);
	rc = gx_chan_send(c, b, gx_timeout(T_LONG));
	cr_expect_eq(rc, 0,
		     "make accepted elem_size GX_CHAN_ELEM_MAX (1 MiB) but send gives %d (%s): a value plus its "
		     "8-byte header does not fit one pool chunk",
		     rc, strerror(-rc));
	if (rc == 0) {
		memset(b, 0, GX_CHAN_ELEM_MAX);
		bool ok = false;
		cr_expect_eq(gx_chan_recv(c, b, &ok, gx_timeout(T_LONG)), 0);
		cr_expect_eq(first_bad(b, GX_CHAN_ELEM_MAX, 3), -1);
	}
	free(b);
	dfree(c);
	return 0;
}

Test(dchan, largest_element_is_refused_at_make_or_carried, .timeout = 30)
{
	run2(elem_max_main);
}

static int signal_main(void *arg)
{
	(void)arg;
	size_t caps[] = {0, 3};
	for (size_t i = 0; i < 2; i++) {
		gx_chan *c = dmake(0, caps[i]);
		targ a = {.c = c, .n = 5};
		gx_future f = spawn(t_signal, &a, (int)i);
		for (int k = 0; k < 5; k++) {
			bool ok = false;
			cr_expect_eq(gx_chan_recv(c, NULL, &ok, gx_timeout(T_LONG)), 0, "cap %zu: signal %d", caps[i], k);
			cr_expect(ok);
		}
		cr_expect_eq(get(f, NULL, 0, NULL), 0, "cap %zu: the sender", caps[i]);
		bool ok = true;
		cr_expect_eq(gx_chan_try_recv(c, NULL, &ok), -EAGAIN, "cap %zu: exactly 5 signals", caps[i]);
		if (caps[i]) {
			for (size_t k = 0; k < caps[i]; k++)
				cr_expect_eq(gx_chan_try_send(c, NULL), 0);
			cr_expect_eq(gx_chan_try_send(c, NULL), -EAGAIN, "cap %zu holds %zu signals", caps[i], caps[i]);
			cr_expect_eq(gx_chan_len(c), caps[i]);
		}
		cr_expect_eq(gx_chan_close(c), 0);
		for (size_t k = 0; k < caps[i]; k++) {
			ok = false;
			cr_expect_eq(gx_chan_recv(c, NULL, &ok, gx_timeout(T_LONG)), 0);
			cr_expect(ok, "cap %zu: buffered signal %zu drains after close", caps[i], k);
		}
		ok = true;
		cr_expect_eq(gx_chan_recv(c, NULL, &ok, gx_timeout(T_LONG)), 0);
		cr_expect(!ok, "cap %zu: closed", caps[i]);
		dfree(c);
	}
	return 0;
}

Test(dchan, signal_channel_with_elem_size_zero, .timeout = 30)
{
	run2(signal_main);
}

/* ============================================ 2. broadcast */

static int broadcast_main(void *arg)
{
	(void)arg;
	gx_chan *c = dmake(sizeof(int), 4);

	/* sent first, received later */
	int v = 4242;
	int rc = gx_chan_broadcast(c, &v, gx_timeout(T_LONG));
	cr_expect_eq(rc, gx_workers(), "broadcast returns the number of workers: %d, want %d", rc, gx_workers());
	cr_expect_eq(rc, 2);
	cr_expect_eq(gx_chan_len(c), 0, "broadcast does not use the shared queue");
	bool ok;
	cr_expect_eq(gx_chan_try_recv(c, &v, &ok), -EAGAIN, "the main process gets no copy");
	gx_future f[2];
	for (int w = 0; w < 2; w++) {
		targ a = {.c = c, .n = 1};
		f[w] = spawn(t_recv_n, &a, w);
	}
	for (int w = 0; w < 2; w++) {
		int out[3] = {-5, -5, -5};
		size_t n = 0;
		cr_expect_eq(get(f[w], out, sizeof out, &n), 0, "worker %d's receive", w);
		cr_expect_eq(n, sizeof out);
		cr_expect_eq(out[0], w, "ran on worker %d", out[0]);
		cr_expect_eq(out[2], 4242, "worker %d got %d", w, out[2]);
		cr_expect_eq(out[1], -EAGAIN, "worker %d got a second copy (try_recv: %d)", w, out[1]);
	}

	/* receivers blocked first, then the broadcast wakes them */
	atomic_store(&S->started, 0);
	for (int w = 0; w < 2; w++) {
		targ a = {.c = c};
		f[w] = spawn(t_block_recv, &a, w);
	}
	cr_assert(wait_flag(&S->started, 2));
	gx_sleep(T_NAP);
	v = 77;
	cr_expect_eq(gx_chan_broadcast(c, &v, gx_timeout(T_LONG)), 2);
	for (int w = 0; w < 2; w++) {
		recv_out o = {-5, -5, -5, -5};
		cr_expect_eq(get(f[w], &o, sizeof o, NULL), 0);
		cr_expect_eq(o.rc, 0, "blocked worker %d: %d", w, o.rc);
		cr_expect_eq(o.v, 77, "blocked worker %d got %d", w, o.v);
		cr_expect_eq(o.worker, w);
	}

	/* a worker's copy comes before what waits in the shared queue */
	v = 1;
	cr_expect_eq(gx_chan_send(c, &v, gx_timeout(T_LONG)), 0);
	v = 2;
	cr_expect_eq(gx_chan_broadcast(c, &v, gx_timeout(T_LONG)), 2);
	targ a = {.c = c, .n = 2};
	int out[4] = {0};
	cr_expect_eq(get(spawn(t_recv_n, &a, 0), out, sizeof out, NULL), 0);
	cr_expect_eq(out[2], 2, "worker 0 got its broadcast copy first");
	cr_expect_eq(out[3], 1, "then the shared queue's value");
	a.n = 1;
	cr_expect_eq(get(spawn(t_recv_n, &a, 1), out, 3 * sizeof(int), NULL), 0);
	cr_expect_eq(out[2], 2, "worker 1's copy");
	dfree(c);
	return 0;
}

Test(dchan, broadcast_gives_every_worker_exactly_one_copy, .timeout = 30)
{
	run2(broadcast_main);
}

/* ============================================ 3. scatter */

static int scatter_main(void *arg)
{
	(void)arg;
	gx_chan *c = dmake(sizeof(int), 4);
	int vals[11];
	for (int k = 0; k < 11; k++)
		vals[k] = 100 + k;
	int rc = gx_chan_scatter(c, vals, 11, gx_timeout(T_LONG));
	cr_expect_eq(rc, 11, "scatter returns n: %d", rc);
	cr_expect_eq(gx_chan_len(c), 0, "scatter does not use the shared queue");
	for (int w = 0; w < 2; w++) {
		targ a = {.c = c, .n = 32};
		int out[33];
		size_t n = 0;
		cr_expect_eq(get(spawn(t_drain, &a, w), out, sizeof out, &n), 0);
		int got = (int)(n / sizeof(int)) - 1;
		cr_expect_eq(out[0], w);
		int want = w == 0 ? 6 : 5;
		cr_expect_eq(got, want, "worker %d got %d values, want %d", w, got, want);
		for (int i = 0; i < got && i < want; i++)
			cr_expect_eq(out[i + 1], 100 + w + 2 * i, "worker %d, value %d: %d, want %d (value k to worker k %% 2)",
				     w, i, out[i + 1], 100 + w + 2 * i);
	}

	/* more than the workers' queues hold: scatter waits for receivers */
	enum { BIG = 600 };
	int *many = malloc(BIG * sizeof *many);
	cr_assert_not_null(many);
	for (int k = 0; k < BIG; k++)
		many[k] = k;
	gx_future f[2];
	for (int w = 0; w < 2; w++) {
		targ a = {.c = c, .n = BIG / 2};
		f[w] = spawn(t_recv_n, &a, w);
	}
	cr_expect_eq(gx_chan_scatter(c, many, BIG, gx_timeout(T_LONG)), BIG);
	int *out = malloc((BIG / 2 + 2) * sizeof *out);
	cr_assert_not_null(out);
	for (int w = 0; w < 2; w++) {
		size_t n = 0;
		cr_expect_eq(get(f[w], out, (BIG / 2 + 2) * sizeof *out, &n), 0, "worker %d", w);
		cr_expect_eq(n, (BIG / 2 + 2) * sizeof *out);
		cr_expect_eq(out[1], -EAGAIN, "worker %d got more than its share", w);
		int bad = -1;
		for (int i = 0; i < BIG / 2 && bad < 0; i++)
			if (out[i + 2] != w + 2 * i)
				bad = i;
		cr_expect_eq(bad, -1, "worker %d's value %d: %d", w, bad, bad >= 0 ? out[bad + 2] : 0);
	}
	free(out);
	free(many);
	dfree(c);
	return 0;
}

Test(dchan, scatter_sends_value_k_to_worker_k_mod_w, .timeout = 30)
{
	run2(scatter_main);
}

/* ============================================ 4. gather */

static int gather_main(void *arg)
{
	(void)arg;
	gx_chan *c = dmake(sizeof(int), 4);
	for (int round = 0; round < 3; round++) {
		gx_future f[2];
		for (int w = 0; w < 2; w++) {
			targ a = {.c = c, .n = 1, .base = 500 + 10 * round};
			f[w] = spawn(t_send_self, &a, w);
		}
		int out[2] = {-1, -1}, from[2] = {-1, -1};
		int rc = gx_chan_gather(c, out, from, gx_timeout(T_LONG));
		cr_expect_eq(rc, gx_workers(), "gather returns gx_workers(): %d", rc);
		cr_expect(from[0] != from[1] && from[0] >= 0 && from[0] < 2 && from[1] >= 0 && from[1] < 2,
			  "round %d: from = {%d, %d}, want each worker once", round, from[0], from[1]);
		for (int k = 0; k < 2; k++)
			cr_expect_eq(out[k], 500 + 10 * round + from[k], "round %d: value %d (%d) is not worker %d's", round, k,
				     out[k], from[k]);
		for (int w = 0; w < 2; w++)
			cr_expect_eq(get(f[w], NULL, 0, NULL), 0);
	}

	/* worker 0 sends twice: one value each is gathered, the second of
	 * worker 0 goes back into the queue */
	gx_future f0, f1;
	targ a0 = {.c = c, .n = 2, .base = 600}, a1 = {.c = c, .n = 1, .base = 600};
	f0 = spawn(t_send_self, &a0, 0);
	cr_expect_eq(get(f0, NULL, 0, NULL), 0, "worker 0's two sends");
	f1 = spawn(t_send_self, &a1, 1);
	int out[2] = {-1, -1}, from[2] = {-1, -1};
	cr_expect_eq(gx_chan_gather(c, out, from, gx_timeout(T_LONG)), 2);
	cr_expect(from[0] != from[1], "from = {%d, %d}", from[0], from[1]);
	for (int k = 0; k < 2; k++)
		cr_expect_eq(out[k], 600 + from[k], "value %d: %d from worker %d", k, out[k], from[k]);
	cr_expect_eq(get(f1, NULL, 0, NULL), 0);
	cr_expect_eq(recv_int(c), 1600, "worker 0's second value stays in the queue");
	bool ok;
	int v;
	cr_expect_eq(gx_chan_try_recv(c, &v, &ok), -EAGAIN);

	/* only one worker sends: a deadline, then a close, end the gather */
	targ a = {.c = c, .n = 1, .base = 700};
	cr_expect_eq(get(spawn(t_send_self, &a, 1), NULL, 0, NULL), 0);
	int rc = gx_chan_gather(c, out, from, gx_timeout(T_SHORT));
	cr_expect_eq(rc, -ETIMEDOUT, "gather with one worker silent: %d", rc);
	cr_expect_eq(gx_chan_len(c), 1,
		     "a gather that timed out must leave worker 1's value in the queue (neither delivered nor "
		     "consumed); len %zu",
		     gx_chan_len(c));
	gx_chan_try_recv(c, &v, &ok);
	cr_expect_eq(get(spawn(t_send_self, &a, 1), NULL, 0, NULL), 0);
	cr_expect_eq(gx_chan_close(c), 0);
	rc = gx_chan_gather(c, out, from, gx_timeout(T_LONG));
	cr_expect_eq(rc, -EPIPE, "gather on a channel closed before every worker sent: %d", rc);
	dfree(c);
	return 0;
}

Test(dchan, gather_takes_one_value_from_each_worker, .timeout = 30)
{
	run2(gather_main);
}

/* ============================================ 5. route */

static int route_main(void *arg)
{
	(void)arg;
	gx_chan *c = dmake(sizeof(int), 16);
	cr_expect_eq(gx_chan_route(c, 1), 0);
	for (int i = 0; i < 10; i++)
		cr_expect_eq(gx_chan_send(c, &i, gx_timeout(T_LONG)), 0);
	cr_expect_eq(gx_chan_len(c), 10);
	int v = -1;
	bool ok;
	cr_expect_eq(gx_chan_try_recv(c, &v, &ok), -EAGAIN, "routed to worker 1: the main process takes nothing");
	/* what is addressed to worker 0 still reaches it */
	v = 500;
	cr_expect_eq(gx_chan_broadcast(c, &v, gx_timeout(T_LONG)), 2);

	targ a0 = {.c = c, .n = 2, .ns = 50 * GX_MILLISECOND};
	int out0[4] = {-5, -5, -5, -5};
	size_t n = 0;
	int rc = get(spawn(t_recv_n, &a0, 0), out0, sizeof out0, &n);
	cr_expect_eq(rc, -ETIMEDOUT, "worker 0's second receive: %d, want -ETIMEDOUT (the queue is worker 1's)", rc);
	cr_expect_eq(out0[2], 500, "worker 0 got its broadcast copy");
	cr_expect_eq(n, 3 * sizeof(int), "worker 0 received %zu values, want 1", n / sizeof(int) - 2);
	cr_expect_eq(gx_chan_len(c), 10, "worker 0 took nothing from the shared queue");

	targ a1 = {.c = c, .n = 11};
	int out1[13];
	memset(out1, 0xff, sizeof out1);
	cr_expect_eq(get(spawn(t_recv_n, &a1, 1), out1, sizeof out1, &n), 0);
	cr_expect_eq(n, sizeof out1);
	cr_expect_eq(out1[0], 1);
	cr_expect_eq(out1[1], -EAGAIN, "worker 1 got everything and no more");
	cr_expect_eq(out1[2], 500, "worker 1's broadcast copy first");
	for (int i = 0; i < 10; i++)
		cr_expect_eq(out1[i + 3], i, "worker 1: value %d", i);

	/* route -1: anyone again */
	cr_expect_eq(gx_chan_route(c, -1), 0);
	v = 7;
	cr_expect_eq(gx_chan_send(c, &v, gx_timeout(T_LONG)), 0);
	v = -1;
	cr_expect_eq(gx_chan_try_recv(c, &v, &ok), 0, "route -1: the main process receives again");
	cr_expect_eq(v, 7);
	v = 8;
	cr_expect_eq(gx_chan_send(c, &v, gx_timeout(T_LONG)), 0);
	a0.n = 1;
	a0.ns = 0;
	cr_expect_eq(get(spawn(t_recv_n, &a0, 0), out0, 3 * sizeof(int), NULL), 0, "route -1: worker 0 receives again");
	cr_expect_eq(out0[2], 8);

	/* a receiver already blocked in worker 0 while routed elsewhere gets
	 * the queue once the route is lifted */
	cr_expect_eq(gx_chan_route(c, 1), 0);
	v = 9;
	cr_expect_eq(gx_chan_send(c, &v, gx_timeout(T_LONG)), 0);
	atomic_store(&S->started, 0);
	targ b = {.c = c};
	gx_future f = spawn(t_block_recv, &b, 0);
	cr_assert(wait_flag(&S->started, 1));
	gx_sleep(T_NAP);
	cr_expect_eq(gx_chan_len(c), 1, "worker 0 is blocked, the value waits for worker 1");
	cr_expect_eq(gx_chan_route(c, -1), 0);
	recv_out o = {-5, -5, -5, -5};
	cr_expect_eq(get(f, &o, sizeof o, NULL), 0);
	cr_expect_eq(o.rc, 0);
	cr_expect_eq(o.v, 9, "the blocked worker 0 got the value after route -1");
	dfree(c);
	return 0;
}

Test(dchan, route_pins_the_shared_queue_to_one_worker, .timeout = 30)
{
	run2(route_main);
}

/* A receiver outside the routed worker, on a closed channel whose shared
 * queue still holds worker 1's values, must honour its deadline (or see
 * the close): run in a child so that a spin cannot hang the suite. */
static int route_close_main(void *arg)
{
	(void)arg;
	gx_chan *c = NULL;
	if (gx_chan_make(&c, sizeof(int), 4, GX_CHAN_DISTRIBUTED) < 0)
		return 1;
	gx_chan_route(c, 1);
	int v = 3;
	gx_chan_send(c, &v, gx_timeout(T_LONG));
	gx_chan_close(c);
	atomic_store(&S->done, 1);
	v = -1;
	bool ok = true;
	S->rc = gx_chan_recv(c, &v, &ok, gx_timeout(100 * GX_MILLISECOND));
	S->ok = ok;
	S->v = v;
	atomic_store(&S->done, 2);
	gx_chan_route(c, -1);
	gx_chan_free(c);
	return 0;
}

Test(dchan, receiver_outside_the_route_on_a_closed_channel_does_not_hang, .timeout = 30)
{
	shared_init();
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		gx_config c = config(2);
		_exit(gx_run(&c, route_close_main, NULL) == 0 ? 0 : 1);
	}
	int st = -1;
	for (int i = 0; i < 3000; i++) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			break;
		st = -1;
		struct timespec ts = {0, 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	if (st == -1) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	cr_expect_eq(atomic_load(&S->done), 2,
		     "gx_chan_recv in the main process (route = worker 1, channel closed, one value queued) did not "
		     "return within 3 s with a 100 ms deadline (reached step %d)",
		     atomic_load(&S->done));
	if (atomic_load(&S->done) == 2)
		cr_expect(S->rc == -ETIMEDOUT || (S->rc == 0 && !S->ok && S->v == 0),
			  "recv gave %d, ok %d, v %d: want -ETIMEDOUT, or ok == false with the zero value", S->rc, S->ok,
			  S->v);
	cr_expect(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child's gx_run (status %#x)", st);
}

/* ============================================ 6. balance */

static int balance_main(void *arg)
{
	(void)arg;
	gx_chan *c = dmake(sizeof(int), 16);
	cr_expect_eq(gx_chan_balance(c), 0, "nothing queued, nothing moved");
	for (int i = 0; i < 10; i++)
		cr_expect_eq(gx_chan_send(c, &i, gx_timeout(T_LONG)), 0);
	cr_expect_eq(gx_chan_len(c), 10);
	int rc = gx_chan_balance(c);
	cr_expect_eq(rc, 10, "balance moved %d, want all 10", rc);
	cr_expect_eq(gx_chan_len(c), 0, "the shared queue is empty after balance");
	int v;
	bool ok;
	cr_expect_eq(gx_chan_try_recv(c, &v, &ok), -EAGAIN, "the main process has no queue of its own");
	int got[2] = {0, 0};
	uint8_t seen[10] = {0};
	for (int w = 0; w < 2; w++) {
		targ a = {.c = c, .n = 16};
		int out[17];
		size_t n = 0;
		cr_expect_eq(get(spawn(t_drain, &a, w), out, sizeof out, &n), 0);
		cr_expect_eq(out[0], w);
		got[w] = (int)(n / sizeof(int)) - 1;
		for (int i = 0; i < got[w]; i++) {
			if (out[i + 1] >= 0 && out[i + 1] < 10)
				seen[out[i + 1]]++;
			if (i)
				cr_expect_gt(out[i + 1], out[i], "worker %d: its share in order", w);
		}
	}
	cr_expect_eq(got[0], 5, "worker 0's share: %d of 10", got[0]);
	cr_expect_eq(got[1], 5, "worker 1's share: %d of 10", got[1]);
	for (int i = 0; i < 10; i++)
		cr_expect_eq(seen[i], 1, "value %d was received %d times", i, seen[i]);
	dfree(c);
	return 0;
}

Test(dchan, balance_moves_the_shared_queue_to_the_workers, .timeout = 30)
{
	run2(balance_main);
}

/* ============================================ 7. errors and freeing */

Test(dchan, distributed_outside_gx_run_is_eperm)
{
	gx_chan *c = (gx_chan *)(uintptr_t)1;
	cr_expect_eq(gx_chan_make(&c, sizeof(int), 4, GX_CHAN_DISTRIBUTED), -EPERM, "before any gx_run");
	cr_expect_null(c);
	gx_chan st;
	cr_expect_eq(gx_chan_init(&st, sizeof(int), 0, NULL, GX_CHAN_DISTRIBUTED), -ENOTSUP);

	/* and after a run (the hooks are installed then) */
	run2(capacity_main);
	c = (gx_chan *)(uintptr_t)1;
	cr_expect_eq(gx_chan_make(&c, sizeof(int), 4, GX_CHAN_DISTRIBUTED), -EPERM, "after gx_run returned");
	cr_expect_null(c);
	cr_expect_eq(gx_chan_init(&st, sizeof(int), 0, NULL, GX_CHAN_DISTRIBUTED), -ENOTSUP);
}

static int errors_main(void *arg)
{
	(void)arg;
	gx_chan st;
	int ibuf[4];
	cr_expect_eq(gx_chan_init(&st, sizeof(int), 4, ibuf, GX_CHAN_DISTRIBUTED), -ENOTSUP,
		     "caller storage cannot be distributed");
	gx_chan *c = (gx_chan *)(uintptr_t)1;
	cr_expect_eq(gx_chan_make(NULL, 4, 1, GX_CHAN_DISTRIBUTED), -EINVAL);
	cr_expect_eq(gx_chan_make(&c, GX_CHAN_ELEM_MAX + 1, 1, GX_CHAN_DISTRIBUTED), -EINVAL);
	cr_expect_null(c);
	c = (gx_chan *)(uintptr_t)1;
	cr_expect_eq(gx_chan_make(&c, 4, (size_t)1 << 20, GX_CHAN_DISTRIBUTED), -EINVAL,
		     "capacity x slot beyond one ring");
	cr_expect_null(c);
	cr_expect_eq(gx_chan_make(&c, 4, 1, 0x80u), -EINVAL, "unknown flags");

	/* the worker-addressing calls on a local channel and on nil */
	gx_chan *l = NULL;
	cr_assert_eq(gx_chan_make(&l, sizeof(int), 4, 0), 0);
	int v = 1, out[2], from[2], vals[2] = {1, 2};
	gx_chan *chans[2] = {l, NULL};
	for (int i = 0; i < 2; i++) {
		const char *what = i ? "nil" : "a local channel";
		cr_expect_eq(gx_chan_broadcast(chans[i], &v, gx_timeout(T_SHORT)), -EINVAL, "broadcast on %s", what);
		cr_expect_eq(gx_chan_scatter(chans[i], vals, 2, gx_timeout(T_SHORT)), -EINVAL, "scatter on %s", what);
		cr_expect_eq(gx_chan_gather(chans[i], out, from, gx_timeout(T_SHORT)), -EINVAL, "gather on %s", what);
		cr_expect_eq(gx_chan_route(chans[i], 0), -EINVAL, "route on %s", what);
		cr_expect_eq(gx_chan_balance(chans[i]), -EINVAL, "balance on %s", what);
	}
	cr_expect_eq(gx_chan_len(l), 0, "nothing was queued on the local channel");
	cr_expect_eq(gx_chan_free(l), 0);

	gx_chan *d = dmake(sizeof(int), 4);
	cr_expect_eq(gx_chan_route(d, -2), -EINVAL);
	cr_expect_eq(gx_chan_route(d, 2), -EINVAL, "worker 2 of 2");
	cr_expect_eq(gx_chan_route(d, GX_MAX_WORKERS), -EINVAL);
	cr_expect_eq(gx_chan_route(d, 0), 0);
	cr_expect_eq(gx_chan_route(d, -1), 0);
	cr_expect_eq(gx_chan_send(d, NULL, gx_timeout(T_SHORT)), -EINVAL, "a NULL value with elem_size 4");
	cr_expect_eq(gx_chan_try_send(d, NULL), -EINVAL);
	cr_expect_eq(gx_chan_broadcast(d, NULL, gx_timeout(T_SHORT)), -EINVAL);
	cr_expect_eq(gx_chan_scatter(d, NULL, 2, gx_timeout(T_SHORT)), -EINVAL);
	cr_expect_eq(gx_chan_gather(d, NULL, from, gx_timeout(T_SHORT)), -EINVAL);
	cr_expect_eq(gx_chan_len(d), 0, "the refused calls queued nothing");
	dfree(d);
	cr_expect_eq(gx_chan_free(NULL), 0);
	return 0;
}

Test(dchan, bad_input_is_refused, .timeout = 30)
{
	run2(errors_main);
}

/* Freeing: chunks of the channel (header, rings) and of values still
 * queued go back to the pools. */
static int free_main(void *arg)
{
	(void)arg;
	uint64_t base = pool_in_use();
	cr_assert_gt(base, 0, "no arena to read (in_use %llu)", (unsigned long long)base);

	gx_chan *c = dmake(300 * 1024, 2);
	gx_chan *s = dmake(sizeof(int), 8);
	cr_expect_gt(pool_in_use(), base, "making channels takes chunks");
	uint8_t *b = malloc(300 * 1024);
	cr_assert_not_null(b);
	fill(b, 300 * 1024, 1);
	cr_expect_eq(gx_chan_send(c, b, gx_timeout(T_LONG)), 0);
	bool ok;
	cr_expect_eq(gx_chan_recv(c, b, &ok, gx_timeout(T_LONG)), 0);
	dfree(c);
	dfree(s);
	uint64_t after = pool_in_use();
	cr_expect_eq(after, base, "chunks in use: %llu before make, %llu after free (drained channels)",
		     (unsigned long long)base, (unsigned long long)after);

	/* a channel freed with a large value still queued (from a worker),
	 * and with a value in a worker's own queue */
	base = pool_in_use();
	c = dmake(300 * 1024, 2);
	targ a = {.c = c, .n = 1, .base = 9, .size = 300 * 1024};
	cr_expect_eq(get(spawn(t_big_send, &a, 0), NULL, 0, NULL), 0);
	cr_expect_eq(gx_chan_broadcast(c, b, gx_timeout(T_LONG)), 2);
	cr_expect_eq(gx_chan_len(c), 1);
	dfree(c);
	after = pool_in_use();
	cr_expect_eq(after, base,
		     "chunks in use: %llu before make, %llu after freeing a channel holding 3 large values "
		     "(leaked: %lld)",
		     (unsigned long long)base, (unsigned long long)after, (long long)(after - base));
	free(b);
	return 0;
}

Test(dchan, free_returns_the_pool_chunks, .timeout = 30)
{
	run2(free_main);
}

/* chan.h: gx_chan_free gives -EBUSY (and frees nothing) while a coroutine
 * waits on the channel; here the waiter is in a worker. */
static int free_busy_main(void *arg)
{
	(void)arg;
	gx_chan *c = dmake(sizeof(int), 1);
	targ a = {.c = c, .ns = 500 * GX_MILLISECOND};
	gx_future f = spawn(t_block_recv, &a, 0);
	cr_assert(wait_flag(&S->started, 1));
	gx_sleep(T_NAP);
	gx_stats_worker ws0 = worker_info(0);
	int rc = gx_chan_free(c);
	cr_expect_eq(rc, -EBUSY, "gx_chan_free while a worker's receive waits on it: %d, want -EBUSY", rc);
	recv_out o = {-5, -5, -5, -5};
	if (rc == -EBUSY) {
		int v = 12;
		cr_expect_eq(gx_chan_send(c, &v, gx_timeout(T_LONG)), 0);
		cr_expect_eq(get(f, &o, sizeof o, NULL), 0);
		cr_expect_eq(o.v, 12, "the channel was left intact");
		dfree(c);
	} else {
		/* freed under the waiter: see what it made of it */
		int code = gx_future_get(f, &o, sizeof o, NULL, gx_timeout(2 * GX_SECOND));
		gx_stats_worker ws1 = worker_info(0);
		cr_log_info("after the free, the waiting worker's task gave code %d, recv %d; worker 0 pid %d -> %d, "
			    "tasks %llu -> %llu, running %llu",
			    code, o.rc, ws0.pid, ws1.pid, (unsigned long long)ws0.tasks, (unsigned long long)ws1.tasks,
			    (unsigned long long)ws1.running);
	}
	return 0;
}

Test(dchan, free_while_a_worker_waits_is_ebusy, .timeout = 30)
{
	run2(free_busy_main);
}

/* ============================================ 8. no worker processes */

typedef struct {
	gx_chan *c;
	int n, err;
} local_sender;

static void local_send(void *p)
{
	local_sender *s = p;
	for (int i = 0; i < s->n && !s->err; i++)
		s->err = gx_chan_send(s->c, &i, gx_timeout(T_LONG));
}

static int zero_workers_main(void *arg)
{
	(void)arg;
	cr_expect_eq(gx_workers(), 0);
	size_t caps[] = {0, 4};
	for (size_t k = 0; k < 2; k++) {
		gx_chan *c = dmake(sizeof(int), caps[k]);
		cr_expect_eq(gx_chan_cap(c), caps[k]);
		local_sender s = {c, 200, 0};
		cr_assert_geq(gx_go(local_send, &s), 1);
		int bad = -1;
		for (int i = 0; i < 200; i++) {
			int v = recv_int(c);
			if (v != i && bad < 0)
				bad = i;
		}
		cr_expect_eq(bad, -1, "cap %zu: value %d out of order or missing", caps[k], bad);
		gx_sleep(GX_MILLISECOND);
		cr_expect_eq(s.err, 0, "cap %zu: the sending coroutine: %d", caps[k], s.err);
		int v = 3;
		if (caps[k]) {
			for (size_t i = 0; i < caps[k]; i++)
				cr_expect_eq(gx_chan_try_send(c, &v), 0);
			cr_expect_eq(gx_chan_try_send(c, &v), -EAGAIN, "cap %zu is exact without workers", caps[k]);
		} else {
			cr_expect_eq(gx_chan_try_send(c, &v), -EAGAIN);
		}
		cr_expect_eq(gx_chan_close(c), 0);
		for (size_t i = 0; i < caps[k]; i++)
			cr_expect_eq(recv_int(c), 3);
		bool ok = true;
		cr_expect_eq(gx_chan_recv(c, &v, &ok, gx_timeout(T_LONG)), 0);
		cr_expect(!ok);
		cr_expect_eq(gx_chan_recv(c, &v, &ok, gx_timeout(T_SHORT)), 0, "closed: no wait");
		dfree(c);
	}
	gx_chan *c = dmake(sizeof(int), 1);
	int v;
	bool ok;
	cr_expect_eq(gx_chan_recv(c, &v, &ok, gx_timeout(T_SHORT)), -ETIMEDOUT, "no workers: deadlines still work");
	dfree(c);
	return 0;
}

Test(dchan, zero_workers_still_carry_values_between_coroutines, .timeout = 30)
{
	shared_init();
	gx_config c = config(0);
	run(&c, zero_workers_main, NULL);
}
