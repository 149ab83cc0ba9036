/*
 * Eventcounts: sleeping on shared memory without missing a wake-up.
 *
 * What: a waiter spins on its condition for the spin budget; then it
 * registers (waiters++), reads the word `seq`, checks the condition once
 * more and sleeps on the futex at &seq with that value. A notifier changes
 * the condition, then (after a full fence) looks at `waiters`: only when
 * someone registered does it bump seq and FUTEX_WAKE. The fences pair up
 * (Dekker): either the notifier sees the waiter registered, or the waiter's
 * re-check sees the new condition. So a publish with nobody asleep costs a
 * fence and one load, no syscall.
 *
 * How a waiter sleeps:
 * - in a coroutine on io_uring: IORING_OP_FUTEX_WAIT through the loop
 *   (gx_io_futex_wait); the process runs its other coroutines meanwhile;
 * - in a coroutine on epoll (no futex in epoll) or on a kernel without the
 *   opcode: timed sleeps on the loop, 20 us doubling to 1 ms between
 *   re-checks: a wake-up can lag by up to 1 ms there;
 * - outside coroutines: futex(FUTEX_WAIT_BITSET) with the absolute
 *   deadline; a context is polled every millisecond.
 * The futex is shared (never FUTEX_PRIVATE_FLAG): the word is in a
 * MAP_SHARED memfd mapped by several processes.
 */
#include "shm/shm.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/sched.h"
#include "io/op.h"

#include <gonex/context.h>
#include <gonex/coro.h>

static inline void gx_relax(void)
{
#if defined(__x86_64__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield" ::: "memory");
#endif
}

static inline int64_t gx_mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void gx_ec_notify(gx_ec *ec, uint64_t *wakes)
{
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&ec->waiters, memory_order_relaxed) == 0)
		return;
	/* one FUTEX_WAKE per round of sleepers: it wakes every waiter that
	 * registered before it, and a waiter that registers later clears
	 * `pending` first, so the next publish wakes it. Without this, every
	 * publish between a wake and the woken waiter's decrement paid a
	 * syscall (13 per sleep, counted in the parallel benchmark). */
	if (atomic_load_explicit(&ec->pending, memory_order_relaxed) || atomic_exchange(&ec->pending, 1))
		return;
	atomic_fetch_add(&ec->seq, 1);
	syscall(SYS_futex, &ec->seq, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
	if (wakes)
		atomic_fetch_add_explicit((_Atomic uint64_t *)wakes, 1, memory_order_relaxed);
}

/* u's error if it has ended, else 0 */
static int gx_until_err(gx_until u, int64_t now)
{
	if (u.ctx) {
		int e = gx_ctx_err(u.ctx);
		if (e)
			return e;
	}
	if (u.deadline >= 0 && now >= u.deadline)
		return -ETIMEDOUT;
	return 0;
}

/* One sleep outside coroutines: until woken, the deadline, or 1 ms when a
 * context must be polled. */
static void gx_futex_sleep(gx_ec *ec, uint32_t key, gx_until u)
{
	int64_t until = u.deadline;
	if (u.ctx) {
		int64_t poll = gx_mono() + 1000000;
		if (until < 0 || poll < until)
			until = poll;
	}
	struct timespec ts, *tp = NULL;
	if (until >= 0) {
		ts.tv_sec = until / 1000000000;
		ts.tv_nsec = until % 1000000000;
		tp = &ts;
	}
	syscall(SYS_futex, &ec->seq, FUTEX_WAIT_BITSET, key, tp, NULL, FUTEX_BITSET_MATCH_ANY);
}

int gx_ec_wait(gx_ec *ec, bool (*ready)(void *), void *arg, int64_t spin_ns, gx_until u, uint64_t *sleeps)
{
	bool co = gx_co_current() != NULL;
	if (ready(arg))
		return 0;
	/* spin: spin_ns < 0 means never sleep, 0 sleeps at once */
	int64_t start = spin_ns ? gx_mono() : 0;
	for (unsigned i = 1; spin_ns; i++) {
		if (ready(arg))
			return 0;
		if (i % 64 == 0) {
			int64_t now = gx_mono();
			int e = gx_until_err(u, now);
			if (e)
				return e;
			if (spin_ns >= 0 && now - start >= spin_ns)
				break;
			if (co)
				gx_yield(); /* let the others run while we spin */
			else if (spin_ns < 0)
				sched_yield();
		}
		gx_relax();
	}
	int64_t backoff = 20000;
	for (;;) {
		atomic_fetch_add(&ec->waiters, 1);
		/* key first, then clear pending: a publish that bumped seq
		 * before our key read already cleared our way (the wait
		 * returns at once), and one after it finds pending clear */
		uint32_t key = atomic_load(&ec->seq);
		atomic_store(&ec->pending, 0); /* the next publish must wake us */
		atomic_thread_fence(memory_order_seq_cst);
		if (ready(arg)) {
			atomic_fetch_sub(&ec->waiters, 1);
			return 0;
		}
		int e = gx_until_err(u, gx_mono());
		if (e) {
			atomic_fetch_sub(&ec->waiters, 1);
			return e;
		}
		if (sleeps)
			atomic_fetch_add_explicit((_Atomic uint64_t *)sleeps, 1, memory_order_relaxed);
		int rc = 0;
		if (co) {
			rc = gx_io_futex_wait(&ec->seq, key, u);
			if (rc == -EOPNOTSUPP) {
				rc = gx_sleep_for(backoff, u);
				backoff = backoff * 2 > 1000000 ? 1000000 : backoff * 2;
			}
		} else {
			gx_futex_sleep(ec, key, u);
		}
		atomic_fetch_sub(&ec->waiters, 1);
		if (ready(arg))
			return 0;
		if (rc == -ETIMEDOUT || rc == -ECANCELED)
			return rc;
		if ((e = gx_until_err(u, gx_mono())))
			return e;
	}
}
