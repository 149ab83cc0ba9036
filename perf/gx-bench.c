/*
 * gx-bench: one binary, one workload per subcommand (see
 * ../shared/BENCHMARKS.md). Each workload prints, last, one line per figure:
 *     RESULT <name> <value> <unit> [key=value ...]
 * Argument errors print usage and exit 2.
 */
#include <errno.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gonex/gonex.h>

static void usage(void)
{
	fprintf(stderr,
		"usage: gx-bench WORKLOAD [ARGS]\n"
		"  yield N    two coroutines yield to each other N times each\n"
		"  spawn N    spawn N coroutines (batches of 1024) that mark a WaitGroup done\n"
		"  idle N     N coroutines parked on a channel; resident memory per coroutine\n"
		"  pingpong N two coroutines exchange a value N times over two unbuffered channels\n"
		"  select N   as pingpong, the receiver selects over two channels\n"
		"  ring N [B] the MPMC ring between two processes on two CPUs: N values in\n"
		"             batches of B (default 256), a ping-pong of N/10, the same\n"
		"             sleeping (N/100, at least 1000), and the cache-line and\n"
		"             futex round-trip floors\n"
		"  chanxproc N  N 8-byte values over a distributed channel (capacity 1024)\n"
		"             from the main process to a task on a worker, on two CPUs\n"
		"  xpingpong N [CAP]  N round trips of a value between the main process and\n"
		"             a worker over two distributed channels (capacity CAP, default\n"
		"             1), next to the cache-line round trip\n"
		"  wake N [CAP]  as xpingpong with spin_ns 0 (both sides sleep every round),\n"
		"             next to the raw futex round trip\n"
		"  parallel T U P  T tasks of U xorshift units through gx_go_parallel on P\n"
		"             workers (and, when P > 1, on 1 worker as the baseline)\n"
		"  dispatch N N gx_go_parallel calls, each awaited before the next, on one\n"
		"             idle worker\n"
		"  restart N  SIGKILL worker 0 N times; each time, the time until its\n"
		"             replacement has run a task pinned to it\n"
		"  quiet S P  a runtime with P workers left idle for S seconds: the CPU\n"
		"             time and wake-ups of all its processes\n"
		"  config     print what the runtime chose\n"
		"GONEX_* variables tune the runtime (see README.md).\n");
	exit(2);
}

static long parse_count(const char *s)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || v <= 0) {
		fprintf(stderr, "gx-bench: '%s' is not a positive count\n", s);
		usage();
	}
	return v;
}

static long n_arg;

/* ---- yield ---- */

static void yield_partner(void *arg)
{
	long n = *(long *)arg;
	for (long i = 0; i < n; i++)
		gx_yield();
}

static int64_t yield_round(long n)
{
	gx_go(yield_partner, &n);
	int64_t t0 = gx_now();
	for (long i = 0; i < n; i++)
		gx_yield();
	int64_t t = gx_now() - t0;
	gx_yield(); /* let the partner finish */
	return t;
}

static int bench_yield(void *arg)
{
	(void)arg;
	yield_round(n_arg / 10 + 1);
	int64_t t = yield_round(n_arg);
	printf("RESULT yield_switch %.2f ns switches=%ld\n", (double)t / (2.0 * (double)n_arg), 2 * n_arg);
	return 0;
}

/* ---- spawn ---- */

static void spawn_child(void *arg)
{
	gx_wg_done(arg);
}

static int64_t spawn_round(long n)
{
	gx_wg wg = GX_WG_INIT;
	int64_t t0 = gx_now();
	for (long i = 0; i < n;) {
		long b = n - i < 1024 ? n - i : 1024;
		gx_wg_add(&wg, b);
		for (long k = 0; k < b; k++)
			if (gx_go(spawn_child, &wg) < 0)
				return -1;
		i += b;
		gx_wg_wait(&wg, GX_FOREVER);
	}
	return gx_now() - t0;
}

static int bench_spawn(void *arg)
{
	(void)arg;
	spawn_round(n_arg / 10 + 1);
	int64_t t = spawn_round(n_arg);
	if (t < 0) {
		fprintf(stderr, "gx-bench: spawn failed\n");
		return 1;
	}
	printf("RESULT spawn_exit %.2f ns coroutines=%ld\n", (double)t / (double)n_arg, n_arg);
	return 0;
}

/* ---- idle ---- */

static long parked;
static void idle_child(void *arg)
{
	parked++;
	gx_chan_recv(arg, NULL, NULL, GX_FOREVER); /* nobody ever sends */
}

static long resident_bytes(void)
{
	long pages = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (!f || fscanf(f, "%ld %ld", &pages, &rss) != 2)
		rss = -1;
	if (f)
		fclose(f);
	return rss * sysconf(_SC_PAGESIZE);
}

static int bench_idle(void *arg)
{
	(void)arg;
	gx_runtime_info info;
	gx_info(&info);
	gx_chan *ch;
	if (gx_chan_make(&ch, 0, 0, 0) < 0)
		return 1;
	long before = resident_bytes();
	for (long i = 0; i < n_arg; i++)
		if (gx_go(idle_child, ch) < 0) {
			fprintf(stderr, "gx-bench: spawn %ld failed\n", i);
			return 1;
		}
	while (parked < n_arg)
		gx_yield();
	long after = resident_bytes();
	printf("RESULT idle_rss_per_coroutine %.0f bytes coroutines=%ld stack=%zu guard=%s\n",
	       (double)(after - before) / (double)n_arg, n_arg, info.stack_size, info.guard);
	return 0;
}

/* ---- pingpong and select ---- */

typedef struct {
	gx_chan *ping, *pong, *idle;
	long n;
	int use_select;
} pp_t;

static void pp_echo(void *arg)
{
	pp_t *p = arg;
	uint64_t v;
	gx_case cases[2] = {{.chan = p->ping, .op = GX_RECV, .elem = &v},
			    {.chan = p->idle, .op = GX_RECV, .elem = &v}};
	for (long i = 0; i < p->n; i++) {
		if (p->use_select)
			gx_select(cases, 2, GX_FOREVER);
		else
			gx_chan_recv(p->ping, &v, NULL, GX_FOREVER);
		v++;
		gx_chan_send(p->pong, &v, GX_FOREVER);
	}
}

static int64_t pp_round(pp_t *p, long n)
{
	p->n = n;
	gx_go(pp_echo, p);
	uint64_t v = 0;
	int64_t t0 = gx_now();
	for (long i = 0; i < n; i++) {
		gx_chan_send(p->ping, &v, GX_FOREVER);
		gx_chan_recv(p->pong, &v, NULL, GX_FOREVER);
	}
	int64_t t = gx_now() - t0;
	if (v != (uint64_t)n)
		return -1;
	return t;
}

static int bench_pingpong_common(int use_select)
{
	pp_t p = {.use_select = use_select};
	if (gx_chan_make(&p.ping, 8, 0, 0) < 0 || gx_chan_make(&p.pong, 8, 0, 0) < 0 ||
	    gx_chan_make(&p.idle, 8, 0, 0) < 0)
		return 1;
	pp_round(&p, n_arg / 10 + 1);
	int64_t t = pp_round(&p, n_arg);
	if (t < 0) {
		fprintf(stderr, "gx-bench: values lost\n");
		return 1;
	}
	printf("RESULT %s %.2f ns rounds=%ld\n", use_select ? "select_rtt" : "pingpong_rtt",
	       (double)t / (double)n_arg, n_arg);
	gx_chan_free(p.ping);
	gx_chan_free(p.pong);
	gx_chan_free(p.idle);
	return 0;
}

static int bench_pingpong(void *arg)
{
	(void)arg;
	return bench_pingpong_common(0);
}

static int bench_select(void *arg)
{
	(void)arg;
	return bench_pingpong_common(1);
}

/* ---- ring: the bare MPMC ring between two processes ----
 *
 * No gx_run here: the ring API works in plain processes (a blocking call
 * sleeps on the futex syscall there). The parent creates two arenas before
 * any fork, one with the default spin budget and one with spin_ns 0, and
 * the rings in them; then it forks one pair of children per measurement,
 * side 0 pinned to the first CPU of its affinity mask and side 1 to the
 * second. In each pair the two sides meet at a spinning barrier in a shared
 * control page, run a warm-up (a tenth of the timed count), meet again and
 * run the timed part; the measuring side stores its interval in the control
 * page and both _exit. The parent reaps both before the next pair starts: a
 * side that fails (non-zero exit, signal) or a pair past RING_TIMEOUT gets
 * the other side killed, and the workload exits 1. Children hold
 * PR_SET_PDEATHSIG, so none outlives the parent.
 *
 * Each measurement runs RING_SLICES times, each time in a fresh pair of
 * children, interleaved (floor, figure, floor, figure, ..., then again), so
 * that a slow spell of the VM falls on a figure and its floor alike. A
 * slice passes N values (throughput) or N/10 round trips (spinning); the
 * two sleeping measurements split their N/100 round trips (at least 1000)
 * among the slices instead, as one costs ~40 us on the VM. The RESULT keys
 * say so: rounds= (msgs=) per slice, slices= how many. The measurements,
 * in their order:
 *   floor_cacheline_rtt  side 0 stores 2k+1 into one cache line, side 1
 *                        spins until it sees it and stores 2k+2, side 0
 *                        spins until it sees that: one round trip; the
 *                        spins pause (without it the floor measured 2x
 *                        higher on the 2-vCPU EPYC VM, and the ring's own
 *                        spins pause too)
 *   ring_pingpong_rtt    the same with 8-byte values over two rings, by
 *                        blocking gx_ring_send / gx_ring_recv with the
 *                        default spin budget (they spin, never sleep)
 *   floor_futex_rtt      the same with futex words (shared, no
 *                        FUTEX_PRIVATE_FLAG), each side sleeping in
 *                        FUTEX_WAIT every round (see futex_sleep)
 *   ring_wake_rtt        ring_pingpong on the spin_ns 0 arena: a receive
 *                        that finds its ring empty sleeps at once (in a
 *                        ping-pong, nearly every one: see sleeps_per_round)
 *   ring_throughput      side 0 sends 1..N in batches (gx_ring_send_batch),
 *                        side 1 receives them (gx_ring_recv_batch) and
 *                        checks their count, sum and sum of squares; timed
 *                        by the consumer from the barrier to the last one
 * Each figure is its BEST slice (the least time per round trip, the most
 * messages per second), not the median: noise on a shared VM only ever adds
 * time, and it is bimodal there (a vCPU that halts costs a VM exit to wake,
 * one kept busy by another task does not), so a median of 5 could still
 * pair a slow figure with a fast floor. The vs_floor ratios are best over
 * best. sleeps_per_round is the ring stats' futex waits entered per round
 * trip over all slices, warm-ups included: ~0 for the spinning ping-pong,
 * 2 when both sides sleep every time (as the futex floor does by design).
 *
 * Batch size: RING_BATCH (256). On the 2-vCPU EPYC VM (capacity 4096, N
 * 20,000,000, best slices over 5 to 10 runs each, a busy machine): batches
 * of 8 gave ~180 Mmsg/s, 16 ~200, 32 and 64 ~230, 128, 256 and 512 ~250 to
 * 280; 256 was the steadiest of the last three. `gx-bench ring N B` reruns
 * the scan.
 */

#define RING_CAP 4096
#define RING_BATCH 256
#define RING_BATCH_MAX 1024
#define RING_SLICES 5
#define RING_TIMEOUT (60 * GX_SECOND) /* per pair of children */

static inline void cpu_relax(void)
{
#if defined(__x86_64__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield" ::: "memory");
#endif
}

/* The control page shared with the children: what the two sides write to
 * each other sits on cache lines of its own. The parent resets it before
 * each pair. */
typedef struct ring_ctl {
	_Alignas(64) _Atomic uint64_t arrived; /* barrier arrivals */
	_Alignas(64) _Atomic uint64_t line;    /* floor_cacheline: the line */
	_Alignas(64) _Atomic uint32_t fping;   /* floor_futex: side 1 sleeps here */
	_Atomic uint32_t sping;                /* floor_futex: side 0 -> 1 value */
	_Alignas(64) _Atomic uint32_t fpong;   /* floor_futex: side 0 sleeps here */
	_Atomic uint32_t spong;                /* floor_futex: side 1 -> 0 value */
	_Alignas(64) int64_t ns;               /* the measuring side's interval */
} ring_ctl;

static ring_ctl *rctl;
static int ring_cpu[2];
static sigset_t ring_oldmask; /* the mask before SIGCHLD was blocked */

/* Rendezvous number round (1, 2, ...) of the two sides. */
static void ring_barrier(uint64_t round)
{
	/* acq_rel: pairs with the partner's fetch_add and acquire load below */
	atomic_fetch_add_explicit(&rctl->arrived, 1, memory_order_acq_rel);
	/* acquire: pairs with the partner's fetch_add */
	while (atomic_load_explicit(&rctl->arrived, memory_order_acquire) < 2 * round)
		cpu_relax();
}

static int ring_fail(const char *call, int rc)
{
	fprintf(stderr, "gx-bench: ring: %s: %s\n", call, strerror(-rc));
	return 1;
}

/* A side's first step: take its slot in the arena before the clock runs. */
static int ring_attach(gx_arena *a)
{
	int rc = gx_arena_attach(a);
	return rc < 0 ? ring_fail("gx_arena_attach", rc) : 0;
}

static int ring_detach(gx_arena *a)
{
	int rc = gx_arena_detach(a);
	return rc < 0 ? ring_fail("gx_arena_detach", rc) : 0;
}

typedef int (*ring_side_fn)(int side, void *arg);

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
 * with no child left behind. SIGCHLD is blocked by the caller, so a child's
 * exit stays pending until sigtimedwait takes it: no lost wake-up.
 */
static int ring_pair(const char *what, ring_side_fn fn, void *arg)
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

/* -- the floors -- */

typedef struct ring_count {
	long n, warm; /* one slice: timed rounds (values), warm-up rounds */
} ring_count;

/* n rounds (at least 1), with a tenth of them as warm-up. */
static ring_count ring_rounds(long n)
{
	n = n > 0 ? n : 1;
	return (ring_count){.n = n, .warm = n / 10};
}

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

static int cl_side(int side, void *arg)
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

static int futex_side(int side, void *arg)
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

/* -- ring ping-pong (spinning, and sleeping on the spin_ns 0 arena) -- */

typedef struct ring_pp {
	gx_arena *arena;
	gx_ring *ping, *pong;
	ring_count c;
} ring_pp;

/* Side 0 sends 2k+1 on ping, side 1 answers 2k+2 on pong. */
static int pp_rounds(int side, const ring_pp *p, uint64_t *k, long count)
{
	for (long i = 0; i < count; i++, ++*k) {
		uint64_t odd = 2 * *k + 1, v = 0;
		gx_ring *out = side == 0 ? p->ping : p->pong;
		gx_ring *in = side == 0 ? p->pong : p->ping;
		uint64_t want = side == 0 ? odd + 1 : odd;
		int rc;
		ssize_t got;
		if (side == 0 && (rc = gx_ring_send(out, &odd, sizeof odd, GX_FOREVER)) < 0)
			return ring_fail("gx_ring_send", rc);
		if ((got = gx_ring_recv(in, &v, sizeof v, NULL, GX_FOREVER)) < 0)
			return ring_fail("gx_ring_recv", (int)got);
		if (got != sizeof v || v != want) {
			fprintf(stderr, "gx-bench: ring: side %d received %zd bytes, value %llu; expected 8, %llu\n",
				side, got, (unsigned long long)v, (unsigned long long)want);
			return 1;
		}
		v++;
		if (side == 1 && (rc = gx_ring_send(out, &v, sizeof v, GX_FOREVER)) < 0)
			return ring_fail("gx_ring_send", rc);
	}
	return 0;
}

static int pp_side(int side, void *arg)
{
	ring_pp *p = arg;
	uint64_t k = 0;
	if (ring_attach(p->arena))
		return 1;
	ring_barrier(1);
	if (pp_rounds(side, p, &k, p->c.warm))
		return 1;
	ring_barrier(2);
	int64_t t0 = gx_now();
	if (pp_rounds(side, p, &k, p->c.n))
		return 1;
	if (side == 0)
		rctl->ns = gx_now() - t0;
	return ring_detach(p->arena);
}

/* -- ring throughput -- */

typedef struct ring_tp {
	gx_arena *arena;
	gx_ring *r;
	ring_count c;
	size_t batch;
} ring_tp;

/* Send 1..count in batches of up to batch values. */
static int tp_send(gx_ring *r, long count, size_t batch)
{
	uint64_t buf[RING_BATCH_MAX];
	uint64_t next = 1, end = (uint64_t)count + 1;
	while (next < end) {
		size_t k = end - next < batch ? (size_t)(end - next) : batch;
		for (size_t j = 0; j < k; j++)
			buf[j] = next + j;
		int rc = gx_ring_send_batch(r, buf, k, GX_FOREVER);
		if (rc < 0)
			return ring_fail("gx_ring_send_batch", rc);
		if (rc == 0 || (size_t)rc > k) {
			fprintf(stderr, "gx-bench: ring: gx_ring_send_batch of %zu sent %d\n", k, rc);
			return 1;
		}
		next += (uint64_t)rc;
	}
	return 0;
}

/* Receive count values and check that they are 1..count, in any order:
 * their sum and sum of squares (mod 2^64) must match. *t_last (if not
 * NULL) gets the time of the last message, before the check. */
static int tp_recv(gx_ring *r, long count, size_t batch, int64_t *t_last)
{
	uint64_t buf[RING_BATCH_MAX];
	uint64_t want = (uint64_t)count, got = 0, sum = 0, sq = 0;
	while (got < want) {
		size_t k = want - got < batch ? (size_t)(want - got) : batch;
		int rc = gx_ring_recv_batch(r, buf, k, GX_FOREVER);
		if (rc < 0)
			return ring_fail("gx_ring_recv_batch", rc);
		if (rc == 0 || (size_t)rc > k) {
			fprintf(stderr, "gx-bench: ring: gx_ring_recv_batch of %zu received %d\n", k, rc);
			return 1;
		}
		for (int j = 0; j < rc; j++) {
			sum += buf[j];
			sq += buf[j] * buf[j];
		}
		got += (uint64_t)rc;
	}
	if (t_last)
		*t_last = gx_now();
	uint64_t want_sq = 0;
	for (uint64_t v = 1; v <= want; v++)
		want_sq += v * v;
	if (sum != want * (want + 1) / 2 || sq != want_sq) {
		fprintf(stderr,
			"gx-bench: ring: %llu values received, sum %llu (expected %llu), sum of squares %llu "
			"(expected %llu)\n",
			(unsigned long long)got, (unsigned long long)sum, (unsigned long long)(want * (want + 1) / 2),
			(unsigned long long)sq, (unsigned long long)want_sq);
		return 1;
	}
	return 0;
}

static int tp_side(int side, void *arg)
{
	ring_tp *t = arg;
	if (ring_attach(t->arena))
		return 1;
	ring_barrier(1);
	if (t->c.warm && side == 0 && tp_send(t->r, t->c.warm, t->batch))
		return 1;
	if (t->c.warm && side == 1 && tp_recv(t->r, t->c.warm, t->batch, NULL))
		return 1;
	ring_barrier(2); /* the warm-up is all received: the ring is empty */
	int64_t t0 = gx_now(), t1;
	if (side == 0)
		return tp_send(t->r, t->c.n, t->batch) || ring_detach(t->arena);
	if (tp_recv(t->r, t->c.n, t->batch, &t1))
		return 1;
	rctl->ns = t1 - t0;
	return ring_detach(t->arena);
}

/* -- the parent -- */

/* Futex waits entered on the given rings so far (0 when stats fail). */
static uint64_t ring_sleeps(gx_ring *a, gx_ring *b)
{
	gx_ring_stats sa, sb;
	if (gx_ring_stats_get(a, &sa) != 0 || (b && gx_ring_stats_get(b, &sb) != 0))
		return 0;
	return sa.sleeps + (b ? sb.sleeps : 0);
}

static double ring_min(const int64_t *v, int n)
{
	int64_t m = v[0];
	for (int i = 1; i < n; i++)
		if (v[i] < m)
			m = v[i];
	return (double)m;
}

/* ring_cpu[] gets the first two CPUs of the affinity mask; -1 (reported)
 * when there are fewer. */
static int two_cpus(const char *who)
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

static int bench_ring(long n, size_t batch)
{
	int ret = 1, rc;
	if (two_cpus("ring") < 0)
		return 1;

	rctl = mmap(NULL, sizeof *rctl, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (rctl == MAP_FAILED) {
		fprintf(stderr, "gx-bench: ring: mmap: %s\n", strerror(errno));
		return 1;
	}

	/* Before any fork: every child maps the arenas at the same address. */
	gx_arena *spin_arena, *sleep_arena;
	gx_arena_opts o;
	gx_arena_opts_init(&o);
	if ((rc = gx_arena_create(&spin_arena, &o)) < 0) {
		ring_fail("gx_arena_create", rc);
		goto err_unmap;
	}
	o.spin_ns = 0;
	if ((rc = gx_arena_create(&sleep_arena, &o)) < 0) {
		ring_fail("gx_arena_create (spin_ns 0)", rc);
		goto err_spin_arena;
	}
	gx_arena_info spin_info, sleep_info;
	if ((rc = gx_arena_info_get(spin_arena, &spin_info)) < 0 ||
	    (rc = gx_arena_info_get(sleep_arena, &sleep_info)) < 0) {
		ring_fail("gx_arena_info_get", rc);
		goto err_sleep_arena;
	}
	if (sleep_info.spin_ns != 0) {
		fprintf(stderr, "gx-bench: ring: asked for spin_ns 0, the arena has %lld\n",
			(long long)sleep_info.spin_ns);
		goto err_sleep_arena;
	}

	gx_ring *tp_r, *ping, *pong, *wping, *wpong;
	if ((rc = gx_ring_create(spin_arena, &tp_r, RING_CAP, 8, 0)) < 0) {
		ring_fail("gx_ring_create", rc);
		goto err_sleep_arena;
	}
	if ((rc = gx_ring_create(spin_arena, &ping, RING_CAP, 8, 0)) < 0) {
		ring_fail("gx_ring_create", rc);
		goto err_tp_ring;
	}
	if ((rc = gx_ring_create(spin_arena, &pong, RING_CAP, 8, 0)) < 0) {
		ring_fail("gx_ring_create", rc);
		goto err_ping;
	}
	if ((rc = gx_ring_create(sleep_arena, &wping, RING_CAP, 8, 0)) < 0) {
		ring_fail("gx_ring_create", rc);
		goto err_pong;
	}
	if ((rc = gx_ring_create(sleep_arena, &wpong, RING_CAP, 8, 0)) < 0) {
		ring_fail("gx_ring_create", rc);
		goto err_wping;
	}

	/* Children's exits are taken by sigtimedwait in ring_pair. */
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	signal(SIGCHLD, SIG_DFL); /* not SIG_IGN, which would reap them */
	sigprocmask(SIG_BLOCK, &chld, &ring_oldmask);

	long wk_total = n / 100 > 1000 ? n / 100 : 1000;
	ring_count cl = ring_rounds(n / 10), fx = ring_rounds(wk_total / RING_SLICES);
	ring_pp pp = {.arena = spin_arena, .ping = ping, .pong = pong, .c = cl};
	ring_pp wk = {.arena = sleep_arena, .ping = wping, .pong = wpong, .c = fx};
	ring_tp tp = {.arena = spin_arena, .r = tp_r, .c = ring_rounds(n), .batch = batch};
	int64_t t_cl[RING_SLICES], t_pp[RING_SLICES], t_fx[RING_SLICES], t_wk[RING_SLICES], t_tp[RING_SLICES];
	uint64_t pp_sleeps = 0, wk_sleeps = 0, tp_sleeps = 0;

	for (int i = 0; i < RING_SLICES; i++) {
		uint64_t s0;
		if (ring_pair("floor_cacheline_rtt", cl_side, &cl))
			goto err_unblock;
		t_cl[i] = rctl->ns;

		s0 = ring_sleeps(ping, pong);
		if (ring_pair("ring_pingpong_rtt", pp_side, &pp))
			goto err_unblock;
		t_pp[i] = rctl->ns;
		pp_sleeps += ring_sleeps(ping, pong) - s0;

		if (ring_pair("floor_futex_rtt", futex_side, &fx))
			goto err_unblock;
		t_fx[i] = rctl->ns;

		s0 = ring_sleeps(wping, wpong);
		if (ring_pair("ring_wake_rtt", pp_side, &wk))
			goto err_unblock;
		t_wk[i] = rctl->ns;
		wk_sleeps += ring_sleeps(wping, wpong) - s0;

		s0 = ring_sleeps(tp_r, NULL);
		if (ring_pair("ring_throughput", tp_side, &tp))
			goto err_unblock;
		t_tp[i] = rctl->ns;
		tp_sleeps += ring_sleeps(tp_r, NULL) - s0;
	}

	double cl_rtt = ring_min(t_cl, RING_SLICES) / (double)cl.n;
	double fx_rtt = ring_min(t_fx, RING_SLICES) / (double)fx.n;
	double pp_rtt = ring_min(t_pp, RING_SLICES) / (double)pp.c.n;
	double wk_rtt = ring_min(t_wk, RING_SLICES) / (double)wk.c.n;
	double mmsg = (double)tp.c.n / ring_min(t_tp, RING_SLICES) * 1e3; /* per ns, * 1e9 / 1e6 */
	/* every round trip run, warm-ups included, for sleeps_per_round */
	double all = (double)RING_SLICES * (double)(cl.n + cl.warm);
	double wall = (double)RING_SLICES * (double)(fx.n + fx.warm);
	double wk_spr = (double)wk_sleeps / wall;
	if (wk_spr < 1.5)
		fprintf(stderr,
			"gx-bench: ring: warning: on the spin_ns 0 arena the receives slept %.2f times a round trip, "
			"not 2: ring_wake_rtt is not a wake-up latency\n",
			wk_spr);
	printf("RESULT floor_cacheline_rtt %.1f ns rounds=%ld slices=%d cpus=%d,%d\n", cl_rtt, cl.n, RING_SLICES,
	       ring_cpu[0], ring_cpu[1]);
	printf("RESULT floor_futex_rtt %.1f ns rounds=%ld slices=%d\n", fx_rtt, fx.n, RING_SLICES);
	printf("RESULT ring_throughput %.2f Mmsg/s msgs=%ld slices=%d batch=%zu capacity=%d sleeps=%llu tier=%s\n",
	       mmsg, tp.c.n, RING_SLICES, batch, RING_CAP, (unsigned long long)tp_sleeps, spin_info.tier_name);
	printf("RESULT ring_pingpong_rtt %.1f ns rounds=%ld slices=%d floor_cacheline_rtt=%.1f vs_floor=%.2f "
	       "sleeps_per_round=%.3f spin_ns=%lld\n",
	       pp_rtt, pp.c.n, RING_SLICES, cl_rtt, pp_rtt / cl_rtt, (double)pp_sleeps / all,
	       (long long)spin_info.spin_ns);
	printf("RESULT ring_wake_rtt %.1f ns rounds=%ld slices=%d floor_futex_rtt=%.1f vs_floor=%.2f "
	       "sleeps_per_round=%.2f spin_ns=0\n",
	       wk_rtt, wk.c.n, RING_SLICES, fx_rtt, wk_rtt / fx_rtt, wk_spr);
	ret = 0;

err_unblock:
	sigprocmask(SIG_SETMASK, &ring_oldmask, NULL);
	gx_ring_destroy(sleep_arena, wpong);
err_wping:
	gx_ring_destroy(sleep_arena, wping);
err_pong:
	gx_ring_destroy(spin_arena, pong);
err_ping:
	gx_ring_destroy(spin_arena, ping);
err_tp_ring:
	gx_ring_destroy(spin_arena, tp_r);
err_sleep_arena:
	gx_arena_destroy(sleep_arena);
err_spin_arena:
	gx_arena_destroy(spin_arena);
err_unmap:
	munmap(rctl, sizeof *rctl);
	return ret;
}

/* ---- the parallel runtime: chanxproc, xpingpong, wake, parallel, dispatch ----
 *
 * These run gx_run with worker processes. Each builds its gx_config here
 * (workers, cpu_affinity, spin_ns, no autoscaling), so no GONEX_* variable
 * is needed; the GONEX_* overrides still apply, as gx_run applies them, and
 * xp_config applies them to its copy too so that the RESULT keys say what
 * ran (spin_ns=, workers=, cpus=).
 *
 * CPUs: ring_cpu[0] and ring_cpu[1], the first two CPUs of the affinity
 * mask. With cpu_affinity the runtime pins worker 0 to ring_cpu[0];
 * chanxproc, xpingpong, wake and dispatch move the main process to
 * ring_cpu[1] inside main_fn (sched_setaffinity) and restore its mask
 * before main_fn returns, so the next gx_run's workers are placed from the
 * full mask again. `parallel` moves the main process to the first CPU of
 * the mask that no worker is pinned to, and when there is none (P workers
 * on P CPUs) leaves it where the scheduler puts it, competing with the
 * workers (main_cpu=-1). Left to the scheduler with one worker, U = 10
 * gave 1.5 to 12 M tasks/s from run to run (1.3 M with the main process
 * and the worker made to share one CPU); pinned, 11.9 to 12.5 M.
 *
 * Slices: every figure is measured XP_SLICES times, each time in a gx_run
 * of its own after a warm-up there (a tenth of the count), and printed as
 * its BEST slice (stat=best), for the reason given for the ring workload;
 * median= gives the median slice. Before each slice of chanxproc,
 * xpingpong and dispatch the ring workload's cache-line floor is measured
 * (wake: its futex floor), in plain processes forked between the gx_runs,
 * so that a slow spell of the VM falls on a figure and its floor alike;
 * vs_floor is best over best. On the 2-vCPU VM the cache-line floor is
 * bimodal over minutes (~45 ns, or ~350 ns when the host places the vCPUs
 * far apart) and every cross-core figure moves with it: compare vs_floor,
 * or figures with similar floors. `parallel` alternates each slice with a
 * 1-worker run of the same tasks when P > 1 (vs_1_worker is best over
 * best).
 *
 * Hygiene: each gx_run is bounded by an alarm: 60 s plus its operations
 * at a pessimistic cost each (xp_budget: ~10x to 100x what they take on
 * the 2-vCPU VM); on SIGALRM the program says so and _exits 1, and the
 * spawner and the workers die with it (PR_SET_PDEATHSIG, see
 * gonex/parallel.h). A task that fails closes the
 * channel the main process sends on, so the main process sees -EPIPE rather
 * than blocking; a main process that fails closes the channel the task
 * receives on, so gx_run's drain does not wait forever.
 *
 * Sleeps: xpingpong and wake count the voluntary context switches of the
 * main process and the worker during a slice (getrusage ru_nvcsw, warm-up
 * included): a receive that sleeps on the futex (through io_uring in a
 * coroutine) is one. sleeps_per_round is their sum over the round trips:
 * ~0 when the receives spin, 2 when both sides sleep every round.
 */

#define XP_SLICES 5
#define XP_CHAN_CAP 1024
#define PAR_WINDOW 4096 /* futures in flight (the table holds 65536) */
#define XP_FLOOR_ROUNDS 100000 /* cache-line floor for chanxproc and dispatch */

static void xp_alarm(int sig)
{
	(void)sig;
	static const char m[] = "gx-bench: a gx_run went past its time limit; giving up\n";
	ssize_t w = write(2, m, sizeof m - 1);
	(void)w;
	_exit(1);
}

static int xp_fail(const char *call, int rc)
{
	fprintf(stderr, "gx-bench: %s: %s\n", call, strerror(-rc));
	return 1;
}

/* The configuration of one run (spin_ns < 0 keeps the default), with the
 * GONEX_* overrides applied. -EINVAL when one is refused (printed). */
static int xp_config(gx_config *c, int workers, int64_t spin_ns)
{
	gx_config_init(c);
	c->workers = workers;
	c->workers_min = 0;
	c->workers_max = 0;
	c->autoscaling = 0;
	c->cpu_affinity = 1;
	if (spin_ns >= 0)
		c->spin_ns = spin_ns;
	return gx_config_from_env(c);
}

/* The alarm for a gx_run of ops operations of at most worst_ns each. */
static unsigned xp_budget(double ops, double worst_ns)
{
	double s = 60.0 + ops * worst_ns / 1e9;
	return s < 86400.0 ? (unsigned)s : 86400u;
}

/* gx_run under an alarm of budget seconds. 0, or 1 (main_fn failed or
 * gx_run refused: said). */
static int xp_run(const gx_config *c, gx_main_fn fn, void *arg, unsigned budget)
{
	struct sigaction sa = {.sa_handler = xp_alarm};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	alarm(budget);
	int rc = gx_run(c, fn, arg);
	alarm(0);
	if (rc < 0)
		return xp_fail("gx_run", rc);
	return rc ? 1 : 0;
}

typedef struct xp_pin {
	cpu_set_t old;
	int main_cpu, worker_cpu; /* -1: not pinned */
} xp_pin;

/* Inside main_fn: the main process to ring_cpu[1]; worker 0's CPU noted. */
static int xp_pin_main(xp_pin *p)
{
	gx_worker_stats s;
	p->worker_cpu = gx_worker_stats_get(0, &s) == 0 ? s.cpu : -1;
	p->main_cpu = -1;
	if (sched_getaffinity(0, sizeof p->old, &p->old) != 0) {
		fprintf(stderr, "gx-bench: sched_getaffinity: %s\n", strerror(errno));
		return 1;
	}
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(ring_cpu[1], &set);
	if (sched_setaffinity(0, sizeof set, &set) != 0) {
		fprintf(stderr, "gx-bench: pinning the main process to CPU %d: %s\n", ring_cpu[1], strerror(errno));
		return 1;
	}
	p->main_cpu = ring_cpu[1];
	return 0;
}

static void xp_unpin_main(const xp_pin *p)
{
	if (p->main_cpu >= 0)
		sched_setaffinity(0, sizeof p->old, &p->old);
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

static double median_i64(const int64_t *v, int n)
{
	int64_t s[XP_SLICES];
	memcpy(s, v, (size_t)n * sizeof *s);
	qsort(s, (size_t)n, sizeof *s, cmp_i64);
	return n % 2 ? (double)s[n / 2] : ((double)s[n / 2 - 1] + (double)s[n / 2]) / 2.0;
}

static int64_t vol_switches(void)
{
	struct rusage ru;
	return getrusage(RUSAGE_SELF, &ru) == 0 ? (int64_t)ru.ru_nvcsw : 0;
}

/* A floor measurement (ring_pair) outside gx_run, SIGCHLD blocked meanwhile. */
static int floor_pair(const char *what, ring_side_fn fn, void *arg)
{
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	signal(SIGCHLD, SIG_DFL);
	sigprocmask(SIG_BLOCK, &chld, &ring_oldmask);
	int rc = ring_pair(what, fn, arg);
	sigprocmask(SIG_SETMASK, &ring_oldmask, NULL);
	return rc;
}

/* XP_SLICES rounds, each the machine's floor (side over c) then one run of
 * fn: their times go to t_fl[] and t[] (fn leaves its time in *ns).
 * 0, or -1 when a floor or a run failed. */
static int xp_slices(const char *fl_name, ring_side_fn side, ring_count *c, const gx_config *cfg, gx_main_fn fn,
		     void *arg, const int64_t *ns, unsigned budget, int64_t *t_fl, int64_t *t)
{
	for (int i = 0; i < XP_SLICES; i++) {
		if (floor_pair(fl_name, side, c))
			return -1;
		t_fl[i] = rctl->ns;
		if (xp_run(cfg, fn, arg, budget))
			return -1;
		t[i] = *ns;
	}
	return 0;
}

static int xp_ctl_map(void)
{
	rctl = mmap(NULL, sizeof *rctl, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (rctl == MAP_FAILED) {
		rctl = NULL;
		fprintf(stderr, "gx-bench: mmap: %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

/* The start of a cross-process workload: two CPUs, the configuration
 * (one worker, spin_ns when >= 0, GONEX_* applied) and the shared control
 * page. 0, or the exit status: 1 (no two CPUs, no page), 2 (bad GONEX_*). */
static int xp_begin(const char *name, gx_config *cfg, int64_t spin_ns)
{
	if (two_cpus(name) < 0)
		return 1;
	if (xp_config(cfg, 1, spin_ns) < 0)
		return 2;
	return xp_ctl_map() < 0 ? 1 : 0;
}

/* -- chanxproc: N values from the main process to a task on worker 0 -- */

typedef struct cx_arg {
	gx_chan *ch;
	long n;
} cx_arg;

typedef struct cx_res {
	uint64_t count, sum, sq;
	int64_t t_last; /* gx_now() at the last value (one clock for all processes) */
} cx_res;

/* On the worker: receive a.n values, return their count, sum and sum of
 * squares (mod 2^64). */
static int cx_consume(const void *arg, size_t len, gx_task_result *res)
{
	cx_arg a;
	if (len != sizeof a)
		return -EINVAL;
	memcpy(&a, arg, sizeof a);
	cx_res r = {0};
	int rc = 0;
	for (long i = 0; i < a.n; i++) {
		uint64_t v;
		bool ok;
		if ((rc = gx_chan_recv(a.ch, &v, &ok, GX_FOREVER)) < 0 || (!ok && (rc = -EPIPE)))
			break;
		r.count++;
		r.sum += v;
		r.sq += v * v;
	}
	r.t_last = gx_now();
	if (rc < 0) {
		gx_chan_close(a.ch); /* the sender must not block forever */
		return rc;
	}
	return gx_task_return(res, &r, sizeof r);
}

typedef struct cx_state {
	long n, warm;
	int64_t ns; /* this slice */
	xp_pin pin;
} cx_state;

/* One slice: start the consumer, send 1..n, check what it got. *ns: from
 * before the first send to the consumer's last value. */
static int cx_slice(gx_chan *ch, long n, int64_t *ns)
{
	cx_arg a = {ch, n};
	gx_future f;
	int rc = gx_go_parallel(&f, cx_consume, &a, sizeof a, NULL);
	if (rc < 0)
		return xp_fail("gx_go_parallel", rc);
	int64_t t0 = gx_now();
	for (uint64_t v = 1; v <= (uint64_t)n; v++)
		if ((rc = gx_chan_send(ch, &v, GX_FOREVER)) < 0)
			break;
	cx_res r = {0};
	size_t len = 0;
	int frc = gx_future_get(f, &r, sizeof r, &len, GX_FOREVER);
	if (rc < 0)
		return xp_fail("gx_chan_send", rc);
	if (frc < 0)
		return xp_fail("the consumer task", frc);
	uint64_t want = (uint64_t)n, want_sq = 0;
	for (uint64_t v = 1; v <= want; v++)
		want_sq += v * v;
	if (len != sizeof r || r.count != want || r.sum != want * (want + 1) / 2 || r.sq != want_sq) {
		fprintf(stderr, "gx-bench: chanxproc: received %llu values, sum %llu, sum of squares %llu; expected %llu, "
				"%llu, %llu\n",
			(unsigned long long)r.count, (unsigned long long)r.sum, (unsigned long long)r.sq,
			(unsigned long long)want, (unsigned long long)(want * (want + 1) / 2),
			(unsigned long long)want_sq);
		return 1;
	}
	*ns = r.t_last - t0;
	return 0;
}

static int cx_main(void *arg)
{
	cx_state *s = arg;
	if (xp_pin_main(&s->pin))
		return 1;
	int ret = 1;
	gx_chan *ch;
	int rc = gx_chan_make(&ch, sizeof(uint64_t), XP_CHAN_CAP, GX_CHAN_DISTRIBUTED);
	if (rc < 0) {
		xp_fail("gx_chan_make", rc);
		goto err_unpin;
	}
	int64_t warm_ns;
	if (s->warm && cx_slice(ch, s->warm, &warm_ns))
		goto err_free;
	if (cx_slice(ch, s->n, &s->ns))
		goto err_free;
	ret = 0;
err_free:
	gx_chan_free(ch);
err_unpin:
	xp_unpin_main(&s->pin);
	return ret;
}

static int bench_chanxproc(long n)
{
	gx_config cfg;
	int e = xp_begin("chanxproc", &cfg, -1);
	if (e)
		return e;
	int ret = 1;
	cx_state s = {.n = n, .warm = n / 10};
	ring_count fc = ring_rounds(XP_FLOOR_ROUNDS);
	int64_t t_fl[XP_SLICES], t[XP_SLICES];
	if (xp_slices("floor_cacheline_rtt", cl_side, &fc, &cfg, cx_main, &s, &s.ns,
		      xp_budget((double)(s.n + s.warm), 1000), t_fl, t))
		goto out;
	double best = (double)n / ring_min(t, XP_SLICES) * 1e3; /* per ns * 1e9 / 1e6 */
	double med = (double)n / median_i64(t, XP_SLICES) * 1e3;
	printf("RESULT xcore_chan_throughput %.2f Mmsg/s msgs=%ld slices=%d stat=best median=%.2f capacity=%d "
	       "floor_cacheline_rtt=%.1f spin_ns=%lld cpus=%d,%d\n",
	       best, n, XP_SLICES, med, XP_CHAN_CAP, ring_min(t_fl, XP_SLICES) / (double)fc.n, (long long)cfg.spin_ns,
	       s.pin.worker_cpu, s.pin.main_cpu);
	ret = 0;
out:
	munmap(rctl, sizeof *rctl);
	rctl = NULL;
	return ret;
}

/* -- xpingpong and wake: round trips between the main process and a task -- */

typedef struct xpp_arg {
	gx_chan *ping, *pong;
	long rounds;
	long warm; /* the first `warm` rounds are not timed */
} xpp_arg;

typedef struct xpp_res {
	int64_t switches; /* the worker's voluntary context switches */
	int64_t cpu_ns;   /* the worker's CPU time over the timed rounds */
} xpp_res;

/* CPU time this process used so far (every thread, the kernel's share
 * included), in ns. */
static int64_t cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* On the worker: answer every value v on ping with v + 1 on pong. */
static int xpp_echo(const void *arg, size_t len, gx_task_result *res)
{
	xpp_arg a;
	if (len != sizeof a)
		return -EINVAL;
	memcpy(&a, arg, sizeof a);
	int64_t s0 = vol_switches(), c0 = 0;
	int rc = 0;
	for (long i = 0; i < a.rounds; i++) {
		uint64_t v;
		bool ok;
		if (i == a.warm)
			c0 = cpu_now(); /* the timed rounds start (within one round) */
		if ((rc = gx_chan_recv(a.ping, &v, &ok, GX_FOREVER)) < 0 || (!ok && (rc = -EPIPE)))
			break;
		v++;
		if ((rc = gx_chan_send(a.pong, &v, GX_FOREVER)) < 0)
			break;
	}
	if (rc < 0) {
		gx_chan_close(a.pong);
		return rc;
	}
	xpp_res r = {vol_switches() - s0, cpu_now() - c0};
	return gx_task_return(res, &r, sizeof r);
}

typedef struct xpp_state {
	size_t cap;
	ring_count c;
	int64_t ns;                  /* this slice */
	int64_t cpu[XP_SLICES];      /* both sides' CPU time over each slice's timed rounds */
	int slice;
	int64_t switches, rounds_all; /* all slices so far, warm-ups included */
	xp_pin pin;
} xpp_state;

/* The main side: send 2k+1 on ping, expect 2k+2 on pong. */
static int xpp_rounds(const xpp_arg *a, uint64_t *k, long count)
{
	for (long i = 0; i < count; i++, ++*k) {
		uint64_t v = 2 * *k + 1;
		bool ok;
		int rc = gx_chan_send(a->ping, &v, GX_FOREVER);
		if (rc < 0)
			return xp_fail("gx_chan_send", rc);
		rc = gx_chan_recv(a->pong, &v, &ok, GX_FOREVER);
		if (rc < 0)
			return xp_fail("gx_chan_recv", rc);
		if (!ok || v != 2 * *k + 2) {
			fprintf(stderr, "gx-bench: received %llu (ok %d), expected %llu\n", (unsigned long long)v, ok,
				(unsigned long long)(2 * *k + 2));
			return 1;
		}
	}
	return 0;
}

static int xpp_main(void *arg)
{
	xpp_state *s = arg;
	if (xp_pin_main(&s->pin))
		return 1;
	int ret = 1, rc;
	xpp_arg a = {.rounds = s->c.warm + s->c.n, .warm = s->c.warm};
	if ((rc = gx_chan_make(&a.ping, sizeof(uint64_t), s->cap, GX_CHAN_DISTRIBUTED)) < 0) {
		xp_fail("gx_chan_make", rc);
		goto err_unpin;
	}
	if ((rc = gx_chan_make(&a.pong, sizeof(uint64_t), s->cap, GX_CHAN_DISTRIBUTED)) < 0) {
		xp_fail("gx_chan_make", rc);
		goto err_ping;
	}
	gx_future f;
	if ((rc = gx_go_parallel(&f, xpp_echo, &a, sizeof a, NULL)) < 0) {
		xp_fail("gx_go_parallel", rc);
		goto err_pong;
	}
	int64_t s0 = vol_switches();
	uint64_t k = 0;
	int failed = xpp_rounds(&a, &k, s->c.warm);
	int64_t t0 = gx_now(), c0 = cpu_now();
	failed = failed || xpp_rounds(&a, &k, s->c.n);
	s->ns = gx_now() - t0;
	int64_t cpu_main = cpu_now() - c0;
	int64_t sw = vol_switches() - s0;
	if (failed)
		gx_chan_close(a.ping); /* the echo task ends */
	xpp_res r = {0};
	size_t len = 0;
	rc = gx_future_get(f, &r, sizeof r, &len, GX_FOREVER);
	if (!failed && rc < 0)
		xp_fail("the echo task", rc);
	else if (!failed && len == sizeof r) {
		s->switches += sw + r.switches;
		s->rounds_all += a.rounds;
		if (s->slice < XP_SLICES)
			s->cpu[s->slice++] = cpu_main + r.cpu_ns;
		ret = 0;
	}
err_pong:
	gx_chan_free(a.pong);
err_ping:
	gx_chan_free(a.ping);
err_unpin:
	xp_unpin_main(&s->pin);
	return ret;
}

/* xpingpong (wake = 0) and wake (wake = 1): n round trips per slice. */
static int bench_xpp(long n, size_t cap, int wake)
{
	const char *name = wake ? "wake" : "xpingpong";
	gx_config cfg;
	int e = xp_begin(name, &cfg, wake ? 0 : -1);
	if (e)
		return e;
	int ret = 1;
	ring_count c = ring_rounds(n);
	xpp_state s = {.cap = cap, .c = c};
	int64_t t_fl[XP_SLICES], t_x[XP_SLICES];
	const char *fl_name = wake ? "floor_futex_rtt" : "floor_cacheline_rtt";
	if (xp_slices(fl_name, wake ? futex_side : cl_side, &c, &cfg, xpp_main, &s, &s.ns,
		      xp_budget((double)(c.n + c.warm), wake ? 1e6 : 1e5), t_fl, t_x))
		goto out;
	double fl = ring_min(t_fl, XP_SLICES) / (double)c.n;
	double best = ring_min(t_x, XP_SLICES) / (double)c.n;
	double med = median_i64(t_x, XP_SLICES) / (double)c.n;
	double spr = (double)s.switches / (double)s.rounds_all;
	if (wake && spr < 1.5)
		fprintf(stderr,
			"gx-bench: wake: the two sides slept %.2f times a round trip, not 2: xproc_wake_rtt is not a "
			"wake-up latency\n",
			spr);
	/* what the latency costs: CPU time of both sides per round trip, and
	 * cores kept busy (CPU time over wall time), medians of the slices */
	int64_t busy[XP_SLICES];
	for (int i = 0; i < XP_SLICES; i++)
		busy[i] = t_x[i] ? s.cpu[i] * 1000 / t_x[i] : 0; /* thousandths of a core */
	double cpu_round = median_i64(s.cpu, XP_SLICES) / (double)c.n;
	double cores = median_i64(busy, XP_SLICES) / 1000.0;
	printf("RESULT %s %.1f ns rounds=%ld slices=%d stat=best median=%.1f %s=%.1f vs_floor=%.2f "
	       "sleeps_per_round=%.3f cpu_per_round=%.1f cores_busy=%.2f capacity=%zu spin_ns=%lld cpus=%d,%d\n",
	       wake ? "xproc_wake_rtt" : "xcore_pingpong_rtt", best, c.n, XP_SLICES, med, fl_name, fl, best / fl, spr,
	       cpu_round, cores, cap, (long long)cfg.spin_ns, s.pin.worker_cpu, s.pin.main_cpu);
	printf("RESULT %s %.1f ns (CPU time of both sides per round trip, median of the slices)\n",
	       wake ? "xproc_wake_cpu" : "xcore_pingpong_cpu", cpu_round);
	printf("RESULT %s %.2f cores (CPU time of both sides over wall time, median of the slices)\n",
	       wake ? "xproc_wake_cores" : "xcore_pingpong_cores", cores);
	ret = 0;
out:
	munmap(rctl, sizeof *rctl);
	rctl = NULL;
	return ret;
}

/* -- parallel: T tasks of U xorshift units on P workers -- */

/* The work function of BENCHMARKS.md. */
static uint64_t xorshift_units(uint64_t units)
{
	uint64_t x = 88172645463325252ull;
	for (uint64_t i = 0; i < units; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
	}
	return x;
}

static int par_work(const void *arg, size_t len, gx_task_result *res)
{
	uint64_t units;
	if (len != sizeof units)
		return -EINVAL;
	memcpy(&units, arg, sizeof units);
	uint64_t x = xorshift_units(units);
	return gx_task_return(res, &x, sizeof x);
}

typedef struct par_state {
	long tasks, warm;
	uint64_t units, want;
	int64_t ns;       /* this run's timed batch */
	int workers_seen; /* gx_workers() in main_fn */
	int main_cpu;     /* where par_main pinned the main process, or -1 */
} par_state;

static gx_future par_win[PAR_WINDOW];

static int par_wait(gx_future f, uint64_t want)
{
	uint64_t x = 0;
	size_t len = 0;
	int rc = gx_future_get(f, &x, sizeof x, &len, GX_FOREVER);
	if (rc < 0)
		return xp_fail("a parallel task", rc);
	if (len != sizeof x || x != want) {
		fprintf(stderr, "gx-bench: parallel: a task returned %zu bytes, %#llx; expected 8, %#llx\n", len,
			(unsigned long long)x, (unsigned long long)want);
		return 1;
	}
	return 0;
}

/* count tasks, at most PAR_WINDOW in flight: the oldest is awaited first. */
static int par_batch(const par_state *p, long count)
{
	long head = 0;
	for (long i = 0; i < count; i++) {
		if (i - head == PAR_WINDOW && par_wait(par_win[head++ % PAR_WINDOW], p->want))
			return 1;
		int rc = gx_go_parallel(&par_win[i % PAR_WINDOW], par_work, &p->units, sizeof p->units, NULL);
		if (rc < 0)
			return xp_fail("gx_go_parallel", rc);
	}
	while (head < count)
		if (par_wait(par_win[head++ % PAR_WINDOW], p->want))
			return 1;
	return 0;
}

/* The main process to the first CPU of its mask that no worker is pinned
 * to; p->main_cpu -1 when there is none (or pinning failed: said). */
static void par_pin_main(par_state *p, cpu_set_t *old)
{
	p->main_cpu = -1;
	if (sched_getaffinity(0, sizeof *old, old) != 0)
		return;
	cpu_set_t free_cpus = *old;
	for (int i = 0; i < GX_MAX_WORKERS; i++) {
		gx_worker_stats st;
		if (gx_worker_stats_get(i, &st) == 0 && st.cpu >= 0 && st.cpu < CPU_SETSIZE)
			CPU_CLR(st.cpu, &free_cpus);
	}
	for (int c = 0; c < CPU_SETSIZE; c++) {
		if (!CPU_ISSET(c, &free_cpus))
			continue;
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(c, &set);
		if (sched_setaffinity(0, sizeof set, &set) == 0)
			p->main_cpu = c;
		else
			fprintf(stderr, "gx-bench: parallel: pinning the main process to CPU %d: %s\n", c,
				strerror(errno));
		return;
	}
}

static int par_main(void *arg)
{
	par_state *p = arg;
	p->workers_seen = gx_workers();
	cpu_set_t old;
	par_pin_main(p, &old);
	int ret = 1;
	if (p->warm && par_batch(p, p->warm))
		goto out;
	int64_t t0 = gx_now();
	if (par_batch(p, p->tasks))
		goto out;
	p->ns = gx_now() - t0;
	ret = 0;
out:
	if (p->main_cpu >= 0)
		sched_setaffinity(0, sizeof old, &old);
	return ret;
}

static const char *balance_name(gx_balance_kind b)
{
	switch (b) {
	case GX_BALANCE_ROUND_ROBIN:
		return "round-robin";
	case GX_BALANCE_LEAST_BUSY:
		return "least-busy";
	case GX_BALANCE_WEIGHTED:
		return "weighted";
	case GX_BALANCE_PREDICTIVE:
		return "predictive";
	}
	return "?";
}

static int bench_parallel(long tasks, long units, long workers)
{
	gx_config cfg, cfg1;
	if (xp_config(&cfg, (int)workers, -1) < 0 || xp_config(&cfg1, 1, -1) < 0)
		return 2;
	par_state p = {.tasks = tasks, .warm = tasks / 10, .units = (uint64_t)units};
	p.want = xorshift_units(p.units);
	par_state p1 = p;
	int64_t t[XP_SLICES], t1[XP_SLICES];
	int seen = 0, seen1 = 0;
	unsigned budget = xp_budget((double)(p.tasks + p.warm), 1e4 + 10.0 * (double)units);
	for (int i = 0; i < XP_SLICES; i++) {
		if (workers > 1) {
			if (xp_run(&cfg1, par_main, &p1, budget))
				return 1;
			t1[i] = p1.ns;
			seen1 = p1.workers_seen;
		}
		if (xp_run(&cfg, par_main, &p, budget))
			return 1;
		t[i] = p.ns;
		seen = p.workers_seen;
	}
	if (workers > 1 && seen1 != 1)
		fprintf(stderr, "gx-bench: parallel: the baseline ran on %d workers, not 1 (GONEX_WORKERS?)\n", seen1);
	double best = (double)tasks / ring_min(t, XP_SLICES) * 1e9;
	double med = (double)tasks / median_i64(t, XP_SLICES) * 1e9;
	printf("RESULT parallel_tasks_per_s %.0f tasks/s tasks=%ld units=%ld workers=%d slices=%d stat=best "
	       "median=%.0f ns_per_task=%.1f",
	       best, tasks, units, seen, XP_SLICES, med, 1e9 / best);
	if (workers > 1) {
		double best1 = (double)tasks / ring_min(t1, XP_SLICES) * 1e9;
		double med1 = (double)tasks / median_i64(t1, XP_SLICES) * 1e9;
		printf(" vs_1_worker=%.2f median_vs_1_worker=%.2f one_worker=%.0f one_worker_median=%.0f baseline_workers=%d "
		       "baseline_main_cpu=%d",
		       best / best1, med / med1, best1, med1, seen1, p1.main_cpu);
	}
	printf(" main_cpu=%d window=%d balance=%s stealing=%d spin_ns=%lld\n", p.main_cpu, PAR_WINDOW,
	       balance_name(cfg.balance), cfg.work_stealing, (long long)cfg.spin_ns);
	return 0;
}

/* -- dispatch: one task at a time on an idle (spinning) worker -- */

static int dp_task(const void *arg, size_t len, gx_task_result *res)
{
	uint64_t v;
	if (len != sizeof v)
		return -EINVAL;
	memcpy(&v, arg, sizeof v);
	v++;
	return gx_task_return(res, &v, sizeof v);
}

typedef struct dp_state {
	long n, warm;
	int64_t ns; /* this slice */
	xp_pin pin;
} dp_state;

static int dp_rounds(long count, int64_t *ns)
{
	int64_t t0 = gx_now();
	for (uint64_t i = 0; i < (uint64_t)count; i++) {
		gx_future f;
		uint64_t v = 0;
		size_t len = 0;
		int rc = gx_go_parallel(&f, dp_task, &i, sizeof i, NULL);
		if (rc < 0)
			return xp_fail("gx_go_parallel", rc);
		if ((rc = gx_future_get(f, &v, sizeof v, &len, GX_FOREVER)) < 0)
			return xp_fail("the task", rc);
		if (len != sizeof v || v != i + 1) {
			fprintf(stderr, "gx-bench: dispatch: the task returned %llu, expected %llu\n",
				(unsigned long long)v, (unsigned long long)(i + 1));
			return 1;
		}
	}
	*ns = gx_now() - t0;
	return 0;
}

static int dp_main(void *arg)
{
	dp_state *s = arg;
	if (xp_pin_main(&s->pin))
		return 1;
	int ret = 1;
	int64_t warm_ns;
	if (s->warm && dp_rounds(s->warm, &warm_ns))
		goto out;
	if (dp_rounds(s->n, &s->ns))
		goto out;
	ret = 0;
out:
	xp_unpin_main(&s->pin);
	return ret;
}

static int bench_dispatch(long n)
{
	gx_config cfg;
	int e = xp_begin("dispatch", &cfg, -1);
	if (e)
		return e;
	int ret = 1;
	dp_state s = {.n = n, .warm = n / 10};
	ring_count fc = ring_rounds(XP_FLOOR_ROUNDS);
	int64_t t_fl[XP_SLICES], t[XP_SLICES];
	if (xp_slices("floor_cacheline_rtt", cl_side, &fc, &cfg, dp_main, &s, &s.ns,
		      xp_budget((double)(s.n + s.warm), 1e5), t_fl, t))
		goto out;
	double best = ring_min(t, XP_SLICES) / (double)n, fl = ring_min(t_fl, XP_SLICES) / (double)fc.n;
	printf("RESULT parallel_roundtrip %.1f ns rounds=%ld slices=%d stat=best median=%.1f floor_cacheline_rtt=%.1f "
	       "vs_floor=%.2f spin_ns=%lld cpus=%d,%d\n",
	       best, n, XP_SLICES, median_i64(t, XP_SLICES) / (double)n, fl, best / fl, (long long)cfg.spin_ns,
	       s.pin.worker_cpu, s.pin.main_cpu);
	ret = 0;
out:
	munmap(rctl, sizeof *rctl);
	rctl = NULL;
	return ret;
}

/* ---- restart: from SIGKILL to a replacement running tasks ---- */

static int rs_who(const void *arg, size_t len, gx_task_result *res)
{
	(void)arg;
	(void)len;
	(void)res;
	return gx_worker_id();
}

typedef struct {
	long n;
	int64_t *ns;
	int bad;
} rs_state;

static int rs_main(void *arg)
{
	rs_state *s = arg;
	for (long k = 0; k < s->n; k++) {
		gx_worker_stats st;
		/* let the previous replacement settle, then kill it */
		for (int t = 0; t < 1000 && (gx_worker_stats_get(0, &st) != 0 || !st.active); t++)
			gx_sleep(GX_MILLISECOND);
		gx_sleep(5 * GX_MILLISECOND);
		gx_worker_stats_get(0, &st);
		int64_t t0 = gx_now();
		kill(st.pid, SIGKILL);
		gx_par_opts o = GX_PAR_OPTS_INIT;
		o.worker = 0; /* stealing is off: only worker 0's replacement runs it */
		gx_future f;
		if (gx_go_parallel(&f, rs_who, NULL, 0, &o) != 0 ||
		    gx_future_get(f, NULL, 0, NULL, gx_timeout(10 * GX_SECOND)) != 0) {
			s->bad++;
			continue;
		}
		s->ns[k] = gx_now() - t0;
	}
	return 0;
}

/* -- quiet: what an idle runtime costs -- */

typedef struct qt_state {
	long seconds;
	int nproc;
	double cpu_pct, wakeups_per_s;
	int bad;
} qt_state;

/* Voluntary context switches of pid (each a wake-up after a block). */
static long qt_wakeups(int pid)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%d/status", pid);
	FILE *f = fopen(path, "r");
	long v = -1;
	while (f && fgets(line, sizeof line, f))
		if (!strncmp(line, "voluntary_ctxt_switches:", 24))
			v = atol(line + 24);
	if (f)
		fclose(f);
	return v;
}

/* CPU time of pid in ns (its CPU clock: exact, unlike /proc ticks). */
static int64_t qt_cpu(int pid)
{
	clockid_t clk;
	struct timespec ts;
	if (clock_getcpuclockid(pid, &clk) != 0 || clock_gettime(clk, &ts) != 0)
		return -1;
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int qt_main(void *arg)
{
	qt_state *s = arg;
	gx_sleep(500 * GX_MILLISECOND); /* let start-up settle */
	int pids[GX_MAX_WORKERS + 1];
	int n = 0;
	pids[n++] = getpid();
	for (int i = 0; i < gx_workers() && n <= GX_MAX_WORKERS; i++) {
		gx_worker_stats ws;
		if (gx_worker_stats_get(i, &ws) == 0 && ws.pid > 0)
			pids[n++] = ws.pid;
	}
	long w0[GX_MAX_WORKERS + 1];
	int64_t c0[GX_MAX_WORKERS + 1];
	for (int i = 0; i < n; i++) {
		w0[i] = qt_wakeups(pids[i]);
		c0[i] = qt_cpu(pids[i]);
	}
	int64_t t0 = gx_now();
	gx_sleep(s->seconds * GX_SECOND);
	double wall = (double)(gx_now() - t0);
	long wakes = 0;
	int64_t cpu = 0;
	for (int i = 0; i < n; i++) {
		long w1 = qt_wakeups(pids[i]);
		int64_t c1 = qt_cpu(pids[i]);
		if (w0[i] < 0 || w1 < 0 || c0[i] < 0 || c1 < 0)
			s->bad = 1;
		wakes += w1 - w0[i];
		cpu += c1 - c0[i];
	}
	s->nproc = n;
	s->cpu_pct = 100.0 * (double)cpu / wall;
	s->wakeups_per_s = (double)wakes / (wall / 1e9);
	return 0;
}

static int bench_quiet(long seconds, long workers)
{
	gx_config cfg;
	gx_config_init(&cfg);
	cfg.workers = (int)workers;
	if (gx_config_from_env(&cfg) < 0)
		return 2;
	qt_state s = {.seconds = seconds};
	int rc = gx_run(&cfg, qt_main, &s);
	if (rc != 0 || s.bad) {
		fprintf(stderr, "gx-bench quiet: gx_run %d%s\n", rc, s.bad ? ", a process could not be read" : "");
		return 1;
	}
	printf("RESULT idle_wakeups_per_s %.2f /s processes=%d seconds=%ld health=%d (voluntary context switches of "
	       "all processes)\n",
	       s.wakeups_per_s, s.nproc, seconds, cfg.health_monitoring);
	printf("RESULT idle_cpu_percent %.4f %% processes=%d seconds=%ld (CPU time of all processes over wall time)\n",
	       s.cpu_pct, s.nproc, seconds);
	return 0;
}

static int bench_restart(long n)
{
	gx_config cfg;
	gx_config_init(&cfg);
	cfg.workers = 2;
	cfg.work_stealing = 0;
	cfg.restart_max = 1000;
	if (gx_config_from_env(&cfg) < 0)
		return 2;
	int64_t *ns = calloc((size_t)n, sizeof *ns);
	if (!ns)
		return 1;
	rs_state s = {.n = n, .ns = ns};
	int rc = gx_run(&cfg, rs_main, &s);
	if (rc != 0 || s.bad) {
		fprintf(stderr, "gx-bench restart: gx_run %d, %d kills without a replacement running the task\n", rc, s.bad);
		free(ns);
		return 1;
	}
	qsort(ns, (size_t)n, sizeof *ns, cmp_i64);
	int64_t mx = ns[n - 1];
	double med = (n % 2 ? (double)ns[n / 2] : ((double)ns[n / 2 - 1] + (double)ns[n / 2]) / 2.0) / 1e6;
	printf("RESULT restart_to_task %.2f ms kills=%ld stat=median max=%.2f workers=%d\n", med, n, (double)mx / 1e6,
	       cfg.workers);
	free(ns);
	return 0;
}

/* ---- config ---- */

/* The CPUs of this process's affinity mask, as "0-3,6". */
static void cpu_list(char *buf, size_t cap)
{
	cpu_set_t set;
	buf[0] = 0;
	if (sched_getaffinity(0, sizeof set, &set) != 0) {
		snprintf(buf, cap, "?");
		return;
	}
	size_t l = 0;
	for (int c = 0; c < CPU_SETSIZE && l + 16 < cap; c++) {
		if (!CPU_ISSET(c, &set))
			continue;
		int e = c;
		while (e + 1 < CPU_SETSIZE && CPU_ISSET(e + 1, &set))
			e++;
		l += (size_t)snprintf(buf + l, cap - l, "%s%d", l ? "," : "", c);
		if (e > c)
			l += (size_t)snprintf(buf + l, cap - l, "-%d", e);
		c = e;
	}
}

static const char *on_off(int v)
{
	return v ? "on" : "off";
}

static int bench_config(void *arg)
{
	(void)arg;
	gx_runtime_info i;
	gx_config c;
	if (gx_info(&i) != 0 || gx_config_get(&c) != 0)
		return 1;
	static const char *bal[] = {"round-robin", "least-busy", "weighted", "predictive"};
	static const char *tiers[] = {"auto", "hugetlb", "thp", "off"};
	char cpus[256];
	cpu_list(cpus, sizeof cpus);
	int ncpu = 0;
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof set, &set) == 0)
		ncpu = CPU_COUNT(&set);
	printf("version        %s\n", gx_version());
	printf("arch           %s\n", i.arch);
	printf("kernel         %s\n", i.kernel);
	printf("cpus           %d allowed (%s)\n", ncpu, cpus);
	printf("backend        %s\n", i.backend);
	printf("ring flags     %s (%#x)\n", i.ring_flags_str, i.ring_flags);
	printf("ring features  %#x\n", i.ring_features);
	printf("sq/cq entries  %u/%u (asked %u/%u)\n", i.sq_entries, i.cq_entries, c.ring_entries, c.cq_entries);
	printf("defer_taskrun  asked %s, %s\n", on_off(c.defer_taskrun),
	       strstr(i.ring_flags_str, "DEFER_TASKRUN") ? "in force" : "not in force");
	printf("sqpoll         asked %s, %s; idle %u ms; cpu %d\n", on_off(c.sqpoll),
	       strstr(i.ring_flags_str, "SQPOLL") ? "in force" : "not in force", c.sqpoll_idle_ms, c.sqpoll_cpu);
	printf("buffer ring    %u x %u bytes\n", c.buf_count, c.buf_size);
	printf("missing        %s\n", i.missing);
	printf("stack size     %zu\n", i.stack_size);
	printf("guard          %s\n", i.guard);
	printf("fp_env         %d\n", i.fp_env);
	printf("sanitize_hooks %d\n", i.sanitize_hooks);
	/* the memory tier: an arena made as gx_run with workers would */
	gx_arena_opts o;
	gx_arena_opts_init(&o);
	o.size = c.shm_size;
	o.tier = (gx_mem_tier)c.hugepages;
	o.numa = c.numa_aware;
	o.spin_ns = c.spin_ns;
	gx_arena *a;
	gx_arena_info ai;
	if (gx_arena_create(&a, &o) == 0) {
		if (gx_arena_info_get(a, &ai) == 0) {
			printf("arena          %zu MiB, tier %s (asked %s), page %zu KiB\n", (size_t)(ai.size >> 20),
			       ai.tier_name, c.hugepages >= 0 && c.hugepages <= 3 ? tiers[c.hugepages] : "?",
			       (size_t)(ai.page_size >> 10));
			printf("numa nodes     %d placed (numa_aware %s)\n", ai.numa_nodes, on_off(c.numa_aware));
			printf("arena why      %s\n", ai.why[0] ? ai.why : "-");
		}
		gx_arena_destroy(a);
	} else {
		printf("arena          could not be made with these settings\n");
	}
	printf("spin budget    %lld ns\n", (long long)c.spin_ns);
	int nw = c.workers < 0 ? ncpu : c.workers;
	printf("workers        %d (GONEX_WORKERS=%d; min %d, max %d, autoscaling %s)\n", nw, c.workers,
	       c.workers_min ? c.workers_min : nw, c.workers_max ? c.workers_max : nw, on_off(c.autoscaling));
	printf("cpu pinning    %s", on_off(c.cpu_affinity));
	if (c.cpu_affinity && nw > 0) {
		printf(":");
		for (int w = 0, k = 0; w < nw && w < 16; w++) {
			/* worker w takes the (w mod count)-th allowed CPU */
			int cpu = -1;
			for (int x = 0, seen = 0; x < CPU_SETSIZE; x++)
				if (CPU_ISSET(x, &set) && seen++ == w % (ncpu ? ncpu : 1)) {
					cpu = x;
					break;
				}
			printf("%s w%d->cpu%d", k++ ? "," : "", w, cpu);
		}
	}
	printf("\n");
	printf("balance        %s, stealing %s%s%s\n", c.balance >= 0 && c.balance <= 3 ? bal[c.balance] : "?",
	       on_off(c.work_stealing), c.weights[0] ? ", weights " : "", c.weights);
	printf("fault          restart %s (max %u in %u ms), retries %u, timeout %u ms, max rss %zu, "
	       "breakers %s, health %s, degradation %s\n",
	       on_off(c.auto_restart), c.restart_max, c.restart_window_ms, c.retry_attempts, c.worker_timeout_ms,
	       c.worker_max_rss, on_off(c.circuit_breaker), on_off(c.health_monitoring),
	       on_off(c.graceful_degradation));
	printf("stats          %s, dump on SIGQUIT %s\n", on_off(c.stats), on_off(c.dump_signal));
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	const char *w = argv[1];
	if (!strcmp(w, "ring")) { /* plain processes, no gx_run */
		if (argc != 3 && argc != 4)
			usage();
		long n = parse_count(argv[2]);
		long b = argc == 4 ? parse_count(argv[3]) : RING_BATCH;
		if (b > RING_BATCH_MAX) {
			fprintf(stderr, "gx-bench: batch %ld is over %d\n", b, RING_BATCH_MAX);
			usage();
		}
		return bench_ring(n, (size_t)b);
	}
	if (!strcmp(w, "chanxproc") || !strcmp(w, "dispatch")) {
		if (argc != 3)
			usage();
		long n = parse_count(argv[2]);
		return w[0] == 'c' ? bench_chanxproc(n) : bench_dispatch(n);
	}
	if (!strcmp(w, "xpingpong") || !strcmp(w, "wake")) {
		if (argc != 3 && argc != 4)
			usage();
		long n = parse_count(argv[2]);
		long cap = 1;
		if (argc == 4) {
			char *end;
			errno = 0;
			cap = strtol(argv[3], &end, 10);
			if (errno || *end || cap < 0 || cap > 4096) {
				fprintf(stderr, "gx-bench: capacity '%s' is not 0..4096\n", argv[3]);
				usage();
			}
		}
		return bench_xpp(n, (size_t)cap, w[0] == 'w');
	}
	if (!strcmp(w, "restart")) {
		if (argc != 3)
			usage();
		return bench_restart(parse_count(argv[2]));
	}
	if (!strcmp(w, "quiet")) {
		if (argc != 4)
			usage();
		long sec = parse_count(argv[2]), p = parse_count(argv[3]);
		if (p > GX_MAX_WORKERS || sec > 3600) {
			fprintf(stderr, "gx-bench: quiet takes at most 3600 s and %d workers\n", GX_MAX_WORKERS);
			usage();
		}
		return bench_quiet(sec, p);
	}
	if (!strcmp(w, "parallel")) {
		if (argc != 5)
			usage();
		long t = parse_count(argv[2]), u = parse_count(argv[3]), p = parse_count(argv[4]);
		if (p > GX_MAX_WORKERS) {
			fprintf(stderr, "gx-bench: %ld workers is over %d\n", p, GX_MAX_WORKERS);
			usage();
		}
		return bench_parallel(t, u, p);
	}
	gx_main_fn fn = NULL;
	if (!strcmp(w, "yield"))
		fn = bench_yield;
	else if (!strcmp(w, "spawn"))
		fn = bench_spawn;
	else if (!strcmp(w, "idle"))
		fn = bench_idle;
	else if (!strcmp(w, "pingpong"))
		fn = bench_pingpong;
	else if (!strcmp(w, "select"))
		fn = bench_select;
	else if (!strcmp(w, "config"))
		fn = bench_config;
	else
		usage();
	if (fn != bench_config) {
		if (argc != 3)
			usage();
		n_arg = parse_count(argv[2]);
	} else if (argc != 2) {
		usage();
	}
	int rc = gx_run(NULL, fn, NULL);
	if (rc == -EINVAL)
		return 2; /* configuration refused; the message is printed */
	if (rc < 0) {
		fprintf(stderr, "gx-bench: gx_run: %s\n", strerror(-rc));
		return 1;
	}
	return rc;
}
