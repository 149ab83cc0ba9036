/*
 * Eventcounts: sleeping on shared memory without missing a wake-up.
 *
 * What: a waiter spins on its condition for the spin budget; then it
 * registers (waiters++), reads the word `seq`, clears `pending`, reads the
 * arena's death count, checks the condition once more and sleeps on the
 * futex at &seq with that value, and on the death count beside it. A
 * notifier changes the condition, then (after a full fence) looks at
 * `waiters`: only when someone registered does it claim the round
 * (pending 0 -> 1), bump seq and FUTEX_WAKE. So a publish with nobody
 * asleep costs a fence and one load, no syscall.
 *
 * Invariants:
 *  - a waiter that sleeps has registered, read seq, and re-checked its
 *    condition after a full fence; a notifier fences after changing the
 *    condition and before reading `waiters` (Dekker: one of them sees the
 *    other);
 *  - a waiter stays registered from its first round to its return, so a
 *    publish that lands between two rounds (an epoll poll, a spurious
 *    wake-up) still claims a round and wakes;
 *  - `pending` is set only by a notifier that then bumps seq and wakes,
 *    and cleared by every waiter that registers, so a waiter that registered
 *    after a wake is woken by the next publish;
 *  - a process that dies between claiming a round (pending = 1) and its
 *    FUTEX_WAKE, or between changing a condition and notifying, owes its
 *    sleepers a wake-up: repair of its slot bumps the arena's death count
 *    (gx_arena_wake_all), which every sleeper of the arena waits on too, so
 *    they all wake, re-register (clearing pending) and re-check.
 *
 * Who writes what: waiters write `waiters` (+1, -1) and clear `pending`;
 * notifiers set `pending` and bump `seq`; repairers bump `deaths` (arena
 * header). A waiter that dies asleep leaves `waiters` one too high: that
 * costs later notifiers at most one needless FUTEX_WAKE per round, never a
 * lost wake-up.
 *
 * Ordering: the condition's own stores and loads are the caller's (release
 * and acquire on its words); the fences here are seq_cst on both sides;
 * `deaths` is bumped with release after the repair's stores, and a woken
 * sleeper re-checks with the caller's acquire loads.
 *
 * How a waiter sleeps:
 * - in a coroutine on io_uring: IORING_OP_FUTEX_WAITV on seq and the death
 *   count through the loop (gx_io_futex_wait2); the process runs its other
 *   coroutines meanwhile;
 * - in a coroutine on epoll (no futex in epoll) or on a kernel without the
 *   opcode: timed sleeps on the loop, 20 us doubling to 1 ms between
 *   re-checks: a wake-up can lag by up to 1 ms there;
 * - outside coroutines: futex_waitv(2) on both words with the absolute
 *   deadline (futex(FUTEX_WAIT_BITSET) on seq alone where futex_waitv is
 *   missing, re-checking every 50 ms); a context is polled every ms.
 * The futexes are shared (never FUTEX_PRIVATE_FLAG): the words are in a
 * MAP_SHARED memfd mapped by several processes.
 *
 * Spinning on a shared CPU: when the runtime has more processes than CPUs
 * (gx_ec_spin_yields, set by the parallel runtime), a spinner gives its
 * CPU away (sched_yield) every 64 looks: an idle worker spinning on the
 * CPU of the main process would otherwise take half its time, and the
 * main process is the one that makes the work (two workers on two CPUs
 * ran tiny tasks at half the rate of one). Elsewhere a spinner keeps its
 * CPU: a yield there only delays the look that finds the word changed.
 *
 * Rejected: sleeping with a timeout to catch lost wake-ups (an idle runtime
 * would wake for nothing, and a lost one would still cost the timeout);
 * per-ecount lists of sleepers for repair to walk (a sleeper's death leaves
 * the list as broken as the count).
 */
#include "shm/shm.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "arch/relax.h"
#include "core/sched.h"
#include "core/wait.h"
#include "io/op.h"

#include <gonex/coro.h>

#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif

bool gx_ec_spin_yields;

static inline int64_t gx_mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Someone registered: wake this round of sleepers. One FUTEX_WAKE per
 * round: it wakes every waiter that registered before it, and a waiter
 * that registers later clears `pending` first, so the next publish wakes
 * it. Without this, every publish between a wake and the woken waiter's
 * decrement paid a syscall (13 per sleep, counted in the parallel
 * benchmark). */
static void gx_ec_wake_round(gx_ec *ec, _Atomic uint64_t *wakes)
{
	/* seq_cst: gx_ec_notify_claimed has no fence before it, and a
	 * relaxed load could see a pending that a waiter's later-ordered
	 * clearing already reset */
	if (atomic_load_explicit(&ec->pending, memory_order_seq_cst) || atomic_exchange(&ec->pending, 1))
		return;
	atomic_fetch_add(&ec->seq, 1);
	syscall(SYS_futex, &ec->seq, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
	if (wakes)
		atomic_fetch_add_explicit(wakes, 1, memory_order_relaxed);
}

void gx_ec_notify(gx_ec *ec, _Atomic uint64_t *wakes)
{
	/* seq_cst: the caller's condition store before the load of waiters
	 * (pairs with the fence in gx_ec_wait) */
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&ec->waiters, memory_order_relaxed) != 0)
		gx_ec_wake_round(ec, wakes);
}

void gx_ec_notify_claimed(gx_ec *ec, _Atomic uint64_t *wakes)
{
	/* no fence: the caller's claim (a seq_cst CAS on head, or on tail or
	 * a slot for a receive) stands in for it. seq_cst load: in the single
	 * order of seq_cst operations either it comes after the waiter's
	 * registration (we see it) or the waiter's re-check comes after our
	 * claim (it sees head, tail or the slot moved) */
	if (atomic_load_explicit(&ec->waiters, memory_order_seq_cst) != 0)
		gx_ec_wake_round(ec, wakes);
}

/* The arena's death count for ec's sleepers, NULL when ec is not in an
 * arena mapped here. */
static _Atomic uint32_t *gx_deaths_of(const gx_ec *ec)
{
	gx_arena *a = gx_arena_of(ec);
	return a ? &gx_ah(a)->deaths : NULL;
}

/* The absolute wake-up time for a sleep outside coroutines: the deadline,
 * 1 ms when a context must be polled, `cap` ns from now at most (cap < 0:
 * none). -1 for none at all. */
static int64_t gx_wake_by(gx_until u, int64_t cap)
{
	int64_t until = u.deadline;
	int64_t poll = u.ctx ? 1000000 : cap;
	if (poll >= 0) {
		int64_t t = gx_mono() + poll;
		if (until < 0 || t < until)
			until = t;
	}
	return until;
}

/* One sleep outside coroutines: until woken (on seq or the death count),
 * the deadline, or 1 ms when a context must be polled. */
static void gx_futex_sleep(gx_ec *ec, uint32_t key, _Atomic uint32_t *deaths, uint32_t dkey, gx_until u)
{
	static int no_waitv;
	int64_t until = gx_wake_by(u, deaths && no_waitv ? 50 * 1000000 : -1);
	struct timespec ts, *tp = NULL;
	if (until >= 0) {
		ts.tv_sec = until / 1000000000;
		ts.tv_nsec = until % 1000000000;
		tp = &ts;
	}
	if (deaths && !no_waitv) {
		gx_futex_waitv v[2] = {
			{.val = key, .uaddr = (uint64_t)(uintptr_t)&ec->seq, .flags = GX_FUTEX2_SIZE_U32},
			{.val = dkey, .uaddr = (uint64_t)(uintptr_t)deaths, .flags = GX_FUTEX2_SIZE_U32},
		};
		if (syscall(SYS_futex_waitv, v, 2, 0, tp, CLOCK_MONOTONIC) >= 0 || errno != ENOSYS)
			return;
		no_waitv = 1; /* before 5.16: seq alone, re-checking every 50 ms */
		return;
	}
	syscall(SYS_futex, &ec->seq, FUTEX_WAIT_BITSET, key, tp, NULL, FUTEX_BITSET_MATCH_ANY);
}

/* One sleep in a coroutine: 0 or -ETIMEDOUT/-ECANCELED when u ended. The
 * epoll backend (no futex there) sleeps for *backoff instead. */
static int gx_co_sleep(gx_ec *ec, uint32_t key, _Atomic uint32_t *deaths, uint32_t dkey, gx_until u,
		       int64_t *backoff)
{
	int rc = deaths ? gx_io_futex_wait2(&ec->seq, key, deaths, dkey, u) : gx_io_futex_wait(&ec->seq, key, u);
	if (rc == -EOPNOTSUPP) {
		rc = gx_sleep_for(*backoff, u);
		*backoff = *backoff * 2 > 1000000 ? 1000000 : *backoff * 2;
	}
	return rc;
}

/* Spin on ready for spin_ns (< 0: for ever, yielding; 0: not at all).
 * 1 when ready, 0 when the budget ran out, u's error when u ended. */
static int gx_ec_spin(bool (*ready)(void *), void *arg, int64_t spin_ns, gx_until u, bool co)
{
	if (!spin_ns)
		return 0;
	int64_t start = gx_mono();
	for (unsigned i = 1;; i++) {
		if (ready(arg))
			return 1;
		if (i % 64 == 0) {
			int64_t now = gx_mono();
			int e = gx_until_err(u, now);
			if (e)
				return e;
			if (spin_ns >= 0 && now - start >= spin_ns)
				return 0;
			if (co)
				gx_yield(); /* let the others run while we spin */
			if (gx_ec_spin_yields)
				sched_yield(); /* and the processes that share our CPU */
			else if (spin_ns < 0)
				sched_yield();
		}
		gx_cpu_relax();
	}
}

int gx_ec_claim_step(unsigned *looks, int64_t *nap, gx_until u)
{
	if (++*looks <= 1000) {
		gx_cpu_relax();
		return 0;
	}
	*nap = !*nap ? GX_MILLISECOND : *nap < 64 * GX_MILLISECOND ? *nap * 2 : *nap;
	if (gx_co_current()) {
		int rc = gx_sleep_for(*nap, u);
		return rc < 0 ? rc : 0;
	}
	int rc = gx_until_err(u, gx_mono());
	if (rc)
		return rc;
	struct timespec ts = {*nap / GX_SECOND, *nap % GX_SECOND};
	nanosleep(&ts, NULL);
	return 0;
}

/* The full look held, the spinner's does not: a place claimed and not yet
 * published (or released). Its peer finishes it within a few
 * instructions, unless it was stopped or died there; then repair finishes
 * it (a dead peer's) or nothing does until it runs again. Wait for it
 * without a registration (no wake-up is owed for it), a step at a time
 * (gx_ec_claim_step), ended by u. */
static int gx_ec_settle(bool (*spin_ready)(void *), void *arg, gx_until u)
{
	unsigned looks = 0;
	int64_t nap = 0;
	while (!spin_ready(arg)) {
		int rc = gx_ec_claim_step(&looks, &nap, u);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int gx_ec_wait(gx_ec *ec, bool (*ready)(void *), void *arg, int64_t spin_ns, gx_until u, _Atomic uint64_t *sleeps)
{
	return gx_ec_wait_spin(ec, ready, ready, arg, spin_ns, u, sleeps);
}

int gx_ec_wait_spin(gx_ec *ec, bool (*ready)(void *), bool (*spin_ready)(void *), void *arg, int64_t spin_ns,
		    gx_until u, _Atomic uint64_t *sleeps)
{
	bool co = gx_co_current() != NULL;
	if (spin_ready(arg))
		return 0;
	int s = gx_ec_spin(spin_ready, arg, spin_ns, u, co);
	if (s)
		return s > 0 ? 0 : s;
	_Atomic uint32_t *deaths = gx_deaths_of(ec);
	int64_t backoff = 20000;
	/* registered for the whole wait, not per sleep: a publish between two
	 * rounds (a poll on epoll, a spurious wake-up) still finds us counted */
	atomic_fetch_add(&ec->waiters, 1);
	int rc = 0;
	for (;;) {
		/* key first, then clear pending: a publish that bumped seq
		 * before our key read already cleared our way (the wait
		 * returns at once), and one after it finds pending clear */
		uint32_t key = atomic_load(&ec->seq);
		atomic_store(&ec->pending, 0); /* the next publish must wake us */
		/* the death count before the re-check: a repair after it changes
		 * the word, and the sleep returns at once */
		uint32_t dkey = deaths ? atomic_load_explicit(deaths, memory_order_acquire) : 0;
		/* seq_cst: registered before the re-check (pairs with the fence
		 * in gx_ec_notify) */
		atomic_thread_fence(memory_order_seq_cst);
		if (ready(arg))
			break;
		if ((rc = gx_until_err(u, gx_mono())))
			break;
		if (sleeps)
			atomic_fetch_add_explicit(sleeps, 1, memory_order_relaxed);
		int r = 0;
		if (co)
			r = gx_co_sleep(ec, key, deaths, dkey, u, &backoff);
		else
			gx_futex_sleep(ec, key, deaths, dkey, u);
		if (ready(arg))
			break;
		if (r == -ETIMEDOUT || r == -ECANCELED) {
			rc = r;
			break;
		}
		if ((rc = gx_until_err(u, gx_mono())))
			break;
	}
	atomic_fetch_sub(&ec->waiters, 1);
	if (rc == 0 && spin_ready != ready && !spin_ready(arg))
		rc = gx_ec_settle(spin_ready, arg, u);
	return rc;
}

int gx_ec_pause(unsigned *misses, gx_until u)
{
	if (++*misses < 1000)
		return 0;
	*misses = 0;
	if (gx_co_current()) {
		int rc = gx_sleep_for(GX_MILLISECOND, u);
		return rc < 0 ? rc : 0;
	}
	struct timespec ts = {0, 1000000};
	nanosleep(&ts, NULL);
	return gx_until_err(u, gx_mono());
}

/* ---- one waiter on several eventcounts (a select) ---- */

void gx_ec_join(gx_ec *ec)
{
	atomic_fetch_add(&ec->waiters, 1);
}

uint32_t gx_ec_key(gx_ec *ec)
{
	/* as in gx_ec_wait: key first, then clear pending */
	uint32_t key = atomic_load(&ec->seq);
	atomic_store(&ec->pending, 0);
	return key;
}

void gx_ec_leave(gx_ec *ec)
{
	atomic_fetch_sub(&ec->waiters, 1);
}

_Atomic uint32_t *gx_ec_deaths(const gx_ec *ec)
{
	return gx_deaths_of(ec);
}
