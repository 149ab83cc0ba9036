/*
 * The two-process harness, and the machine's floors measured on it.
 *
 * The harness (ring_pair) needs no gx_run. Before any pair the workload
 * maps the control page rctl (MAP_SHARED, so the children share it), picks
 * the CPUs (two_cpus: the first two of the affinity mask) and blocks
 * SIGCHLD (ring_block_chld). ring_pair then forks one pair of children,
 * side 0 pinned to ring_cpu[0] and side 1 to ring_cpu[1]. The two sides
 * meet at a spinning barrier in the control page, run a warm-up (a tenth
 * of the timed count), meet again and run the timed part; the measuring
 * side stores its interval in rctl->ns and both _exit. The parent reaps
 * both before it returns: a side that fails (non-zero exit, signal) or a
 * pair past RING_TIMEOUT gets the other side killed, and ring_pair returns
 * -1. Children hold PR_SET_PDEATHSIG, so none outlives the parent.
 *
 * Invariants: when ring_pair returns, no child of it is left; it returns
 * 0 only when both sides exited 0 and rctl->ns >= 0 (the parent sets it
 * to -1 before each pair). Barrier round r completes when rctl->arrived
 * reaches 2r.
 *
 * The floors, sides for ring_pair over a ring_count:
 *   floor_cacheline_rtt  side 0 stores 2k+1 into one cache line, side 1
 *                        spins until it sees it and stores 2k+2, side 0
 *                        spins until it sees that: one round trip; the
 *                        spins pause (without it the floor measured 2x
 *                        higher on the 2-vCPU EPYC VM, and the ring's own
 *                        spins pause too)
 *   floor_futex_rtt      the same with futex words (shared, no
 *                        FUTEX_PRIVATE_FLAG), each side sleeping in
 *                        FUTEX_WAIT every round (see futex_sleep)
 * The ring workload (ring.c) measures both next to its figures; chanxproc,
 * xpingpong, wake and dispatch measure one between their gx_runs (xp.c).
 */
#include <errno.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gonex/gonex.h>

#include "bench.h"

#define RING_TIMEOUT (60 * GX_SECOND) /* per pair of children */

static inline void cpu_relax(void)
{
#if defined(__x86_64__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield" ::: "memory");
#endif
}

ring_ctl *rctl;
int ring_cpu[2];
static sigset_t ring_oldmask; /* the mask before SIGCHLD was blocked */

/* -- the harness -- */

int two_cpus(const char *who)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof set, &set) != 0) {
		fprintf(stderr, "gx-bench: %s: sched_getaffinity: %s\n", who, strerror(errno));
		return -1;
	}
	int ncpu = 0;
	for (int c = 0; c < CPU_SETSIZE && ncpu < 2; c++)
		if (CPU_ISSET(c, &set))
			ring_cpu[ncpu++] = c;
	if (ncpu < 2) {
		fprintf(stderr, "gx-bench: %s needs two CPUs in its affinity mask; it has %d\n", who, CPU_COUNT(&set));
		return -1;
	}
	return 0;
}

void ring_barrier(uint64_t round)
{
	/* acq_rel: pairs with the partner's fetch_add and acquire load below */
	atomic_fetch_add_explicit(&rctl->arrived, 1, memory_order_acq_rel);
	/* acquire: pairs with the partner's fetch_add */
	while (atomic_load_explicit(&rctl->arrived, memory_order_acquire) < 2 * round)
		cpu_relax();
}

static _Noreturn void ring_child(int side, pid_t parent, ring_side_fn fn, void *arg)
{
	sigprocmask(SIG_SETMASK, &ring_oldmask, NULL);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
		_exit(1); /* the parent is gone already */
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(ring_cpu[side], &set);
	if (sched_setaffinity(0, sizeof set, &set) != 0) {
		fprintf(stderr, "gx-bench: ring: pinning to CPU %d: %s\n", ring_cpu[side], strerror(errno));
		_exit(1);
	}
	_exit(fn(side, arg));
}

static void ring_report_child(const char *what, int side, pid_t pid, int st)
{
	if (WIFEXITED(st))
		fprintf(stderr, "gx-bench: ring: %s: side %d (pid %d) exited with status %d\n", what, side,
			(int)pid, WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		fprintf(stderr, "gx-bench: ring: %s: side %d (pid %d) killed by signal %d (%s)\n", what, side,
			(int)pid, WTERMSIG(st), strsignal(WTERMSIG(st)));
}

/*
 * Run fn(0, arg) and fn(1, arg) in two children pinned to ring_cpu[0] and
 * ring_cpu[1]; reap both. 0 when both exited 0; -1 (reported) otherwise,
 * with no child left behind. SIGCHLD is blocked by the caller
 * (ring_block_chld), so a child's exit stays pending until sigtimedwait
 * takes it: no lost wake-up.
 */
int ring_pair(const char *what, ring_side_fn fn, void *arg)
{
	pid_t parent = getpid();
	pid_t pid[2] = {0, 0};
	int alive = 0, failed = 0;

	atomic_store(&rctl->arrived, 0);
	atomic_store(&rctl->line, 0);
	atomic_store(&rctl->fping, 0);
	atomic_store(&rctl->fpong, 0);
	atomic_store(&rctl->sping, 0);
	atomic_store(&rctl->spong, 0);
	rctl->ns = -1;
	fflush(stdout);
	fflush(stderr);
	for (int s = 0; s < 2; s++) {
		pid[s] = fork();
		if (pid[s] < 0) {
			fprintf(stderr, "gx-bench: ring: %s: fork: %s\n", what, strerror(errno));
			pid[s] = 0;
			failed = 1;
			break;
		}
		if (pid[s] == 0)
			ring_child(s, parent, fn, arg);
		alive++;
	}

	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	int64_t deadline = gx_now() + RING_TIMEOUT;
	while (alive > 0) {
		for (int s = 0; s < 2; s++) {
			int st;
			if (pid[s] == 0 || waitpid(pid[s], &st, WNOHANG) != pid[s])
				continue;
			if (!failed && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
				ring_report_child(what, s, pid[s], st);
				failed = 1;
			}
			pid[s] = 0;
			alive--;
		}
		if (alive == 0)
			break;
		int64_t left = deadline - gx_now();
		if (!failed && left <= 0) {
			fprintf(stderr, "gx-bench: ring: %s: no result after %lld s\n", what,
				(long long)(RING_TIMEOUT / GX_SECOND));
			failed = 1;
		}
		if (failed) { /* the other side may wait for its partner forever */
			for (int s = 0; s < 2; s++) {
				if (pid[s] == 0)
					continue;
				kill(pid[s], SIGKILL);
				waitpid(pid[s], NULL, 0);
				pid[s] = 0;
				alive--;
			}
			break;
		}
		struct timespec ts = {.tv_sec = left / GX_SECOND, .tv_nsec = left % GX_SECOND};
		sigtimedwait(&chld, NULL, &ts); /* SIGCHLD, timeout or EINTR: look again */
	}
	if (!failed && rctl->ns < 0) {
		fprintf(stderr, "gx-bench: ring: %s: no interval recorded\n", what);
		failed = 1;
	}
	return failed ? -1 : 0;
}

/* Children's exits are taken by sigtimedwait in ring_pair. */
void ring_block_chld(void)
{
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	signal(SIGCHLD, SIG_DFL); /* not SIG_IGN, which would reap them */
	sigprocmask(SIG_BLOCK, &chld, &ring_oldmask);
}

void ring_unblock_chld(void)
{
	sigprocmask(SIG_SETMASK, &ring_oldmask, NULL);
}

double ring_min(const int64_t *v, int n)
{
	int64_t m = v[0];
	for (int i = 1; i < n; i++)
		if (v[i] < m)
			m = v[i];
	return (double)m;
}

ring_count ring_rounds(long n)
{
	n = n > 0 ? n : 1;
	return (ring_count){.n = n, .warm = n / 10};
}

/* -- the floors -- */

static void cl_rounds(int side, uint64_t *k, long count)
{
	_Atomic uint64_t *x = &rctl->line;
	for (long i = 0; i < count; i++, ++*k) {
		uint64_t odd = 2 * *k + 1;
		if (side == 0) {
			/* release: pairs with side 1's acquire load of odd */
			atomic_store_explicit(x, odd, memory_order_release);
			/* acquire: pairs with side 1's release store of odd + 1 */
			while (atomic_load_explicit(x, memory_order_acquire) != odd + 1)
				cpu_relax();
		} else {
			/* acquire: pairs with side 0's release store of odd */
			while (atomic_load_explicit(x, memory_order_acquire) != odd)
				cpu_relax();
			/* release: pairs with side 0's acquire load of odd + 1 */
			atomic_store_explicit(x, odd + 1, memory_order_release);
		}
	}
}

int cl_side(int side, void *arg)
{
	ring_count *c = arg;
	uint64_t k = 0;
	ring_barrier(1);
	cl_rounds(side, &k, c->warm);
	ring_barrier(2);
	int64_t t0 = gx_now();
	cl_rounds(side, &k, c->n);
	if (side == 0)
		rctl->ns = gx_now() - t0;
	return 0;
}

static long futex_call(_Atomic uint32_t *w, int op, uint32_t val)
{
	return syscall(SYS_futex, (uint32_t *)w, op, val, NULL, NULL, 0);
}

/*
 * The futex floor makes each side really sleep every round: a side sleeps
 * on its own word, which is never changed, so FUTEX_WAIT never returns
 * EAGAIN and returns 0 only once a FUTEX_WAKE took it off the queue; the
 * partner stores the round's value in its own sequence word, then repeats
 * FUTEX_WAKE until it returns 1 (the sleeper is queued). A plain "store,
 * wake, wait for the answer" ping-pong falls, now and then, into a mode
 * where each FUTEX_WAIT finds the value already changed and nobody sleeps
 * (445 ns a round trip instead of tens of us on the VM): not the floor of
 * a sleeping wake-up.
 */
static int futex_sleep(_Atomic uint32_t *w, _Atomic uint32_t *seq, uint32_t want)
{
	while (futex_call(w, FUTEX_WAIT, 0) != 0)
		if (errno != EINTR) {
			fprintf(stderr, "gx-bench: ring: FUTEX_WAIT: %s\n", strerror(errno));
			return 1;
		}
	/* acquire: pairs with the release store in futex_post */
	uint32_t v = atomic_load_explicit(seq, memory_order_acquire);
	if (v != want) {
		fprintf(stderr, "gx-bench: ring: woken with value %u, expected %u\n", v, want);
		return 1;
	}
	return 0;
}

static int futex_post(_Atomic uint32_t *w, _Atomic uint32_t *seq, uint32_t v)
{
	/* release: pairs with the acquire load in futex_sleep */
	atomic_store_explicit(seq, v, memory_order_release);
	long rc;
	while ((rc = futex_call(w, FUTEX_WAKE, 1)) == 0)
		cpu_relax(); /* the partner is not queued yet */
	if (rc < 0) {
		fprintf(stderr, "gx-bench: ring: FUTEX_WAKE: %s\n", strerror(errno));
		return 1;
	}
	return 0;
}

static int futex_rounds(int side, uint32_t *k, long count)
{
	ring_ctl *c = rctl;
	for (long i = 0; i < count; i++) {
		uint32_t v = ++*k;
		if (side == 0) {
			if (futex_post(&c->fping, &c->sping, v) || futex_sleep(&c->fpong, &c->spong, v))
				return 1;
		} else {
			if (futex_sleep(&c->fping, &c->sping, v) || futex_post(&c->fpong, &c->spong, v))
				return 1;
		}
	}
	return 0;
}

int futex_side(int side, void *arg)
{
	ring_count *c = arg;
	uint32_t k = 0;
	ring_barrier(1);
	if (futex_rounds(side, &k, c->warm))
		return 1;
	ring_barrier(2);
	int64_t t0 = gx_now();
	if (futex_rounds(side, &k, c->n))
		return 1;
	if (side == 0)
		rctl->ns = gx_now() - t0;
	return 0;
}
