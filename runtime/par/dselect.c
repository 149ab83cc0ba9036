/*
 * select with distributed cases (gx_select hands the whole select here
 * when one case names a distributed channel): it blocks, it does not poll.
 *
 * What: a round tries every case once, in a fresh random order (a try
 * performs only the case it reports, so the first ready case in a uniform
 * order is a uniform choice among the ready ones). When none is ready it
 * spins for the arena's spin budget: a step is a round, or, when every
 * case is a distributed receive, a look at each case's rings and a try
 * of the one that looks ready (two or more: a round), which sees a value
 * sooner than a round of whole receive paths (gx_dsel_look). After that
 * the select registers once with each of its channels and sleeps on all
 * of them at once:
 *  - a distributed receive case joins the channel's `data` eventcount and
 *    counts itself in its process's rwait word (so that senders that
 *    hand over only to a waiting receiver, try sends and other selects'
 *    send cases, see it); on an unbuffered channel it then notifies
 *    `space`, where such senders sleep;
 *  - a distributed send case joins `space`;
 *  - a local case enlists a wait-core node on its channel's queue, with
 *    the same waiter, index case + 1;
 *  - the sleep is one IORING_OP_FUTEX_WAITV on the eventcounts' words and
 *    the arena's death count (gx_io_futex_waitv_on), carrying that waiter:
 *    a local peer that fires a node ends it as well as a FUTEX_WAKE does.
 * After each wake-up the select tries every case again; it leaves every
 * registration when it returns.
 *
 * Invariants:
 *  - at most one case completes, the one returned: a local node fires at
 *    most once (its waiter's fired word), and a distributed case completes
 *    only through its own try;
 *  - registered from the first sleep to the return: the rwait words and
 *    the eventcounts' waiter counts come back to what they were;
 *  - no lost wake-up: every round takes each word's key and the death
 *    count, fences (seq_cst; pairs with the fence in gx_ec_notify), then
 *    re-tries every case before it sleeps on those keys; a receive wakes
 *    `space` with no fence (its claim stands in: gx_dch_took), so a
 *    buffered send case whose channel has a place claimed and not yet
 *    released keeps the select awake (gx_dsel_room_claimed);
 *  - a select never meets itself: its send case on an unbuffered channel
 *    does not count its own receive cases on that channel as receivers.
 *
 * Unbuffered send cases: the value is handed over only to a waiting
 * receiver, which may be asleep in another process; the try puts it in
 * the ring and waits for the take, 1 ms in the first round, doubling to
 * 32 ms, and withdraws it when nobody took it (gx_ring_withdraw: then it
 * was never received). Two selects on the same unbuffered channel meet
 * that way: the receiving one counts in rwait, the sending one sees it.
 *
 * Without the futex op (the epoll backend, a kernel before 6.7, more than
 * 127 distributed words) the sleep is a timed one, 20 us doubling to 1 ms,
 * still ended at once by a local node.
 *
 * Rejected: polling with sleeps (the old design: wake-ups lagged by up to
 * 1 ms and an idle select woke a thousand times a second); a per-channel
 * list of selects in the arena (a dead select would leave its entries for
 * repair to find, where a waiter count costs at most one needless wake).
 */
#include "par/dchan.h"

#include <stdlib.h>
#include <string.h>

#include "arch/relax.h"
#include "core/rand.h"
#include "core/wait.h"
#include "io/op.h"

#include <gonex/chan.h>
#include <gonex/coro.h>

#define GX_DSEL_STACK 16
#define GX_DSEL_RDV_FIRST GX_MILLISECOND
#define GX_DSEL_RDV_MAX (32 * GX_MILLISECOND)

/* One case's state. */
typedef struct {
	gx_dview v;      /* a distributed case's view */
	gx_ec *ec;       /* the eventcount it joins (NULL: local or nil) */
	uint32_t mine;   /* send on cap 0: this select's receive cases there */
	uint32_t word;   /* its word's index in the futex vector */
	bool d;
} gx_dsel;

/* Everything one select keeps. */
typedef struct {
	gx_case *cases;
	size_t n;
	gx_dsel *st;
	gx_wq_node *nodes;
	gx_futex_waitv *vec;
	gx_ec **ecs;     /* the distinct eventcounts, vec[i] is ecs[i]'s word */
	uint32_t nvec;   /* distinct eventcounts, then the death count */
	_Atomic uint32_t *deaths;
	gx_until u;      /* the select's own end: a send case's wait for its take ends by it too */
	bool joined;
} gx_dsel_state;

/* Check every case and take the views: 0 or -EINVAL (-EPERM for a send
 * on a context's done channel). */
static int gx_dsel_check(gx_dsel_state *s)
{
	for (size_t i = 0; i < s->n; i++) {
		gx_case *k = &s->cases[i];
		gx_dsel *c = &s->st[i];
		memset(c, 0, sizeof *c);
		if (k->op != GX_RECV && k->op != GX_SEND)
			return -EINVAL;
		if (!k->chan)
			continue;
		if (gx_chan_is_d(k->chan)) {
			if (!gx_dch_view(k->chan, &c->v) || (k->op == GX_SEND && !k->elem && c->v.elem_size))
				return -EINVAL;
			c->d = true;
			continue;
		}
		gx_chan_impl *ci = gx_chan_impl_of(k->chan);
		if (!gx_chan_valid(ci))
			return -EINVAL;
		int rc = k->op == GX_SEND ? gx_chan_send_check(ci, k->elem) : 0;
		if (rc < 0)
			return rc;
	}
	for (size_t i = 0; i < s->n; i++) {
		gx_dsel *c = &s->st[i];
		if (!c->d || s->cases[i].op != GX_SEND || c->v.cap != 0)
			continue;
		for (size_t j = 0; j < s->n; j++)
			c->mine += s->st[j].d && s->cases[j].op == GX_RECV && s->st[j].v.d == c->v.d;
	}
	return 0;
}

/* Try case i once: 1 done, 0 not ready, or -errno (the select's result). */
static int gx_dsel_try_one(gx_dsel_state *s, size_t i, int64_t rdv)
{
	gx_case *k = &s->cases[i];
	gx_dsel *c = &s->st[i];
	int rc;
	if (!c->d)
		rc = k->op == GX_SEND ? gx_chan_try_send(k->chan, k->elem) : gx_chan_try_recv(k->chan, k->elem, &k->ok);
	else if (k->op == GX_SEND)
		rc = gx_dch_send_opt(k->chan, k->elem, s->u, true, rdv, s->joined ? c->mine : 0);
	else
		rc = gx_dch_recv(k->chan, k->elem, &k->ok, GX_FOREVER, true);
	if (rc == -EAGAIN)
		return 0;
	return rc < 0 ? rc : 1;
}

/* One round over every case in a fresh random order (a shuffle; past 64
 * cases a random rotation): the index of the case done, -EAGAIN when
 * none was ready, or another error. */
static int gx_dsel_round(gx_dsel_state *s, int64_t rdv)
{
	size_t n = s->n;
	uint32_t perm[64];
	size_t start = n ? gx_rand_below((uint32_t)n) : 0;
	if (n <= 64) {
		for (uint32_t k = 0; k < n; k++)
			perm[k] = k;
		for (uint32_t k = (uint32_t)n; k > 1; k--) {
			uint32_t j = gx_rand_below(k), t = perm[k - 1];
			perm[k - 1] = perm[j];
			perm[j] = t;
		}
	}
	for (size_t j = 0; j < n; j++) {
		size_t i = n <= 64 ? perm[j] : (start + j) % n;
		if (!s->cases[i].chan)
			continue;
		int rc = gx_dsel_try_one(s, i, rdv);
		if (rc < 0)
			return rc;
		if (rc > 0)
			return (int)i;
	}
	return -EAGAIN;
}

/* Register with every distributed channel (once for the whole select) and
 * lay out the futex vector: the distinct eventcounts, then the death
 * count. */
static void gx_dsel_join(gx_dsel_state *s)
{
	s->nvec = 0;
	s->deaths = NULL;
	for (size_t i = 0; i < s->n; i++) {
		gx_dsel *c = &s->st[i];
		if (!c->d)
			continue;
		gx_dch *d = c->v.d;
		bool recv = s->cases[i].op == GX_RECV;
		c->ec = recv ? &d->data : &d->space;
		gx_ec_join(c->ec);
		uint32_t w = 0;
		while (w < s->nvec && s->ecs[w] != c->ec)
			w++;
		if (w == s->nvec)
			s->ecs[s->nvec++] = c->ec;
		c->word = w;
		if (!s->deaths)
			s->deaths = gx_ec_deaths(c->ec);
		if (recv) {
			atomic_fetch_add(gx_dch_rwait_mine(d), 1);
			if (c->v.cap == 0) /* a receiver waits: senders' try may go ahead */
				gx_ec_notify(&d->space, NULL);
		}
	}
	s->joined = true;
}

static void gx_dsel_leave(gx_dsel_state *s)
{
	if (!s->joined)
		return;
	for (size_t i = 0; i < s->n; i++) {
		gx_dsel *c = &s->st[i];
		if (!c->ec)
			continue;
		if (s->cases[i].op == GX_RECV)
			atomic_fetch_sub(gx_dch_rwait_mine(c->v.d), 1);
		gx_ec_leave(c->ec);
	}
	s->joined = false;
}

/* This round's keys: every word's value now (pending cleared), then the
 * death count; the vector's length. */
static uint32_t gx_dsel_keys(gx_dsel_state *s)
{
	uint32_t m = 0;
	for (; m < s->nvec; m++)
		s->vec[m] = (gx_futex_waitv){
			.val = gx_ec_key(s->ecs[m]),
			.uaddr = (uint64_t)(uintptr_t)&s->ecs[m]->seq,
			.flags = GX_FUTEX2_SIZE_U32,
		};
	if (s->deaths)
		s->vec[m++] = (gx_futex_waitv){
			/* acquire: a repair's stores before its bump are seen by the re-check */
			.val = atomic_load_explicit(s->deaths, memory_order_acquire),
			.uaddr = (uint64_t)(uintptr_t)s->deaths,
			.flags = GX_FUTEX2_SIZE_U32,
		};
	return m;
}

/* The earlier of u and now + ns. */
static gx_until gx_dsel_nap(gx_until u, int64_t ns)
{
	gx_until t = u;
	int64_t at = gx_time_after(ns);
	if (t.deadline < 0 || at < t.deadline)
		t.deadline = at;
	return t;
}

/* One sleep with the local nodes enlisted: the case a local peer
 * completed (>= 0), -EAGAIN to go round again, or u's error. */
static int gx_dsel_sleep(gx_dsel_state *s, uint32_t m, bool *futex, int64_t *backoff, gx_until u)
{
	gx_waiter w;
	gx_waiter_init(&w, gx_co_current());
	for (size_t i = 0; i < s->n; i++) {
		gx_case *k = &s->cases[i];
		s->nodes[i] = (gx_wq_node){.w = &w, .elem = k->elem, .idx = (int32_t)i + 1};
		if (k->chan && !s->st[i].d) {
			gx_chan_impl *c = gx_chan_impl_of(k->chan);
			gx_waitq_push(k->op == GX_SEND ? &c->sendq : &c->recvq, &s->nodes[i]);
		}
	}
	int r = *futex ? gx_io_futex_waitv_on(s->vec, m, &w, u) : -EOPNOTSUPP;
	if (r == -EOPNOTSUPP) {
		*futex = false;
		r = gx_wait(&w, gx_dsel_nap(u, *backoff), "select");
		*backoff = *backoff * 2 > GX_MILLISECOND ? GX_MILLISECOND : *backoff * 2;
		if (r == -ETIMEDOUT && !gx_until_err(u, gx_now()))
			r = 0; /* only the nap ended */
	}
	for (size_t i = 0; i < s->n; i++) {
		gx_case *k = &s->cases[i];
		if (k->chan && !s->st[i].d) {
			gx_chan_impl *c = gx_chan_impl_of(k->chan);
			gx_waitq_unlink(k->op == GX_SEND ? &c->sendq : &c->recvq, &s->nodes[i]);
		}
	}
	if (w.fired >= 1) { /* a local peer completed case fired - 1 */
		int i = w.fired - 1;
		gx_case *k = &s->cases[i];
		if (k->op == GX_SEND && !s->nodes[i].ok)
			return -EPIPE;
		if (k->op == GX_RECV)
			k->ok = s->nodes[i].ok;
		return i;
	}
	if (r == -ETIMEDOUT || r == -ECANCELED)
		return r;
	return -EAGAIN;
}

/* A spinner's looks need every case that is not nil to be a distributed
 * receive, and at most GX_DSEL_STACK cases: then geo[i] is a copy of case
 * i's shared ring's geometry (from the views' table), and true. */
static bool gx_dsel_looks_init(const gx_dsel_state *s, gx_rgeo *geo)
{
	if (s->n > GX_DSEL_STACK)
		return false;
	for (size_t i = 0; i < s->n; i++) {
		if (!s->cases[i].chan)
			continue;
		if (!s->st[i].d || s->cases[i].op != GX_RECV)
			return false;
		const gx_dview *e = gx_dch_hot(s->cases[i].chan);
		const gx_rgeo *g = e && e->main == s->st[i].v.main ? gx_dch_geo(e, e->main) : NULL;
		if (!g)
			return false;
		geo[i] = *g;
	}
	return true;
}

/* A spinner's step when every case is a distributed receive: look at
 * each case (gx_dch_ready_look, through geo), and try at once the one that looks ready (several: a round,
 * which chooses among them at random). A round per step tried every case
 * by its whole receive path, so a value that came waited for half a round
 * before it was seen. The case done, or -EAGAIN. */
static int gx_dsel_look(gx_dsel_state *s, const gx_rgeo *geo, int64_t rdv)
{
	size_t one = 0, ready = 0;
	for (size_t i = 0; i < s->n; i++)
		if (s->cases[i].chan && gx_dch_ready_look(&s->st[i].v, &geo[i])) {
			one = i;
			ready++;
		}
	if (ready > 1)
		return gx_dsel_round(s, rdv);
	int rc = ready ? gx_dsel_try_one(s, one, rdv) : 0;
	return rc < 0 ? rc : rc > 0 ? (int)one : -EAGAIN;
}

/* Spin for the arena's spin budget (GONEX_SPIN_NS) trying rounds, yielding
 * to the process's other coroutines every 64: a peer that answers within
 * it costs no futex round trip. The round's result, or -EAGAIN when the
 * budget ran out. */
static int gx_dsel_spin(gx_dsel_state *s, int64_t rdv, gx_until u)
{
	int64_t spin = 0;
	for (size_t i = 0; i < s->n; i++)
		if (s->st[i].d) {
			spin = gx_dspin(s->st[i].v.a);
			break;
		}
	if (spin <= 0)
		return -EAGAIN;
	gx_rgeo geo[GX_DSEL_STACK];
	bool looks = gx_dsel_looks_init(s, geo);
	int64_t start = gx_now();
	for (unsigned i = 1;; i++) {
		int rc = looks ? gx_dsel_look(s, geo, rdv) : gx_dsel_round(s, rdv);
		if (rc != -EAGAIN)
			return rc;
		if (i % 64 == 0) {
			int64_t now = gx_now();
			if ((rc = gx_until_err(u, now)))
				return rc;
			if (now - start >= spin)
				return -EAGAIN;
			gx_yield();
		}
		gx_cpu_relax();
	}
}

/* A buffered distributed send case whose channel has room or a place a
 * receiver claimed and is about to release: the receiver's wake-up has no
 * fence (gx_dch_took), so the round may have missed the release while the
 * wake-up missed our registration; the select tries again rather than
 * sleep. (An unbuffered send case waits for a receiver, whose wait
 * notifies with a fence, and for the take within its try.) */
static bool gx_dsel_room_claimed(gx_dsel_state *s)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->st[i].d && s->cases[i].op == GX_SEND && s->st[i].v.cap && gx_dch_room(&s->st[i].v))
			return true;
	return false;
}

static int gx_dsel_run(gx_dsel_state *s, bool block, gx_until u)
{
	int64_t rdv = GX_DSEL_RDV_FIRST, backoff = 20 * GX_MICROSECOND;
	unsigned claimed = 0;
	int64_t nap = 0;
	int rc = gx_dsel_round(s, rdv);
	if (rc != -EAGAIN || !block)
		return rc;
	if ((rc = gx_dsel_spin(s, rdv, u)) != -EAGAIN)
		return rc;
	gx_dsel_join(s);
	bool futex = s->nvec + (s->deaths != NULL) <= GX_FUTEX_WAITV_MAX;
	for (;;) {
		uint32_t m = gx_dsel_keys(s);
		/* seq_cst: registered and keyed before the re-check (pairs with
		 * the fence in gx_ec_notify) */
		atomic_thread_fence(memory_order_seq_cst);
		if ((rc = gx_dsel_round(s, rdv)) != -EAGAIN)
			return rc;
		if ((rc = gx_until_err(u, gx_now())))
			return rc;
		if (gx_dsel_room_claimed(s)) {
			/* its receiver releases the place within a few
			 * instructions (unless stopped or dead there): try
			 * every case again after each step */
			if ((rc = gx_ec_claim_step(&claimed, &nap, u)) < 0)
				return rc;
			continue;
		}
		claimed = 0;
		nap = 0;
		if ((rc = gx_dsel_sleep(s, m, &futex, &backoff, u)) != -EAGAIN)
			return rc;
		rdv = rdv * 2 > GX_DSEL_RDV_MAX ? GX_DSEL_RDV_MAX : rdv * 2;
	}
}

int gx_dch_select(gx_case *cases, size_t n, bool block, gx_until u)
{
	if (block && !gx_co_current())
		return -EPERM;
	gx_dsel st_small[GX_DSEL_STACK];
	gx_wq_node nodes_small[GX_DSEL_STACK];
	gx_futex_waitv vec_small[GX_DSEL_STACK + 1];
	gx_ec *ecs_small[GX_DSEL_STACK];
	gx_dsel_state s = {.cases = cases, .n = n, .st = st_small, .nodes = nodes_small, .vec = vec_small,
			   .ecs = ecs_small, .u = block ? u : GX_FOREVER};
	if (n > GX_DSEL_STACK) {
		s.st = malloc(n * sizeof *s.st);
		s.nodes = malloc(n * sizeof *s.nodes);
		s.vec = malloc((n + 1) * sizeof *s.vec);
		s.ecs = malloc(n * sizeof *s.ecs);
	}
	int rc = -ENOMEM;
	if (s.st && s.nodes && s.vec && s.ecs) {
		rc = gx_dsel_check(&s);
		if (rc == 0)
			rc = gx_dsel_run(&s, block, u);
		gx_dsel_leave(&s);
	}
	if (n > GX_DSEL_STACK) {
		free(s.st);
		free(s.nodes);
		free(s.vec);
		free(s.ecs);
	}
	return rc;
}
