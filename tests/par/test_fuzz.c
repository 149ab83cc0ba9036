/* A hostile peer, fuzzed: a child process writes random bytes over the runtime's arena (header, pool free lists and chunk headers, ring slots of the inboxes and a channel, futures, running tables, the stats page) for 10,000 rounds, while between rounds the main process sends, receives, allocates and runs tasks. Nothing crashes (main or a worker), no call outlasts its deadline, every call ends in success or an error, and a new gx_run works afterwards. */
/*
 * Rounds: the child waits for the main process to open round r, writes
 * WRITES_PER_ROUND short runs of random bytes at random places of the
 * regions below, and says it is done; then the main process does one of
 * everything, each call with a deadline, and opens the next round. The
 * control page is a MAP_SHARED mapping of its own, outside the arena.
 *
 * Crashes of workers are seen where they are reaped: the spawner's test
 * point "spawner.reaped" (test builds) records any death by SIGSEGV,
 * SIGBUS, SIGILL, SIGFPE or SIGABRT (ASan's). Without test points the
 * test runs but cannot see worker crashes; it says so.
 *
 * GX_TEST_FUZZ_ROUNDS sets the rounds (tests/run.sh --long: 200,000).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testing.h"

#include "harness.h"

#define WRITES_PER_ROUND 4
#define MAX_REGIONS 32
#define TASK_DEADLINE (5 * GX_MILLISECOND)
#define OP_SLACK (2 * GX_SECOND) /* past its deadline by this much: a hang */

typedef struct {
	gx_off off;
	uint64_t len;
} region;

typedef struct {
	_Atomic uint64_t round; /* opened by main */
	_Atomic uint64_t done;  /* finished by the scribbler */
	_Atomic int stop;
	_Atomic int crashes;    /* workers that died of a crash signal */
	_Atomic int last_sig;
	_Atomic long writes;
	int nregions;
	region regions[MAX_REGIONS];
} control;

static control *C;

#if GX_TEST_POINTS
static void on_reaped(const char *name, void *arg)
{
	if (strcmp(name, "spawner.reaped") != 0)
		return;
	int st = *(int *)arg;
	if (WIFEXITED(st) && WEXITSTATUS(st) != 0) {
		/* a worker that left with an error (UBSan's halt, a failed gx_run) */
		atomic_fetch_add(&C->crashes, 1);
		atomic_store(&C->last_sig, 1000 + WEXITSTATUS(st));
	}
	if (WIFSIGNALED(st)) {
		int sig = WTERMSIG(st);
		if (sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE || sig == SIGABRT) {
			atomic_fetch_add(&C->crashes, 1);
			atomic_store(&C->last_sig, sig);
		}
	}
}
#endif

static uint64_t xs(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static void add_region(const void *base, const void *p, uint64_t len)
{
	if (!p || !len || C->nregions >= MAX_REGIONS)
		return;
	C->regions[C->nregions++] = (region){(gx_off)((const char *)p - (const char *)base), len};
}

/* Where the scribbler writes: what the runtime keeps in its arena. */
static void find_regions(gx_arena *a, gx_chan *ch)
{
	const gx_arena_geo *g = gx_geo(a);
	C->nregions = 0;
	add_region(a, a, sizeof(gx_arena_hdr));            /* geometry, pool heads, slots, journals */
	add_region(a, gx_pl.p, sizeof(gx_par));            /* workers' slots, staging, breakers */
	add_region(a, gx_pl.futs, (uint64_t)gx_pl.nfut * sizeof(gx_fut));
	for (int i = 0; i < gx_pl.nslots; i++) {
		gx_ring *in = gx_inbox(i);
		gx_ring_stats s;
		if (in && gx_ring_stats_get(in, &s) == 0)
			add_region(a, in, GX_RING_HDR + (uint64_t)s.capacity * 128);
		add_region(a, gx_runtab_of(i), sizeof(gx_runtab));
	}
	if (gx_pl.p->shards)
		add_region(a, (char *)a + gx_pl.p->shards, (uint64_t)gx_pl.p->nshards * sizeof(gx_stat_shard));
	add_region(a, ch, 4096); /* the channel's header, and what follows it */
	/* the pools' first slabs: slab headers, chunk headers (free lists) */
	add_region(a, g->base + g->slab_first, 4 * GX_SLAB);
	add_region(a, a, g->size); /* and anywhere at all */
}

/* The scribbler: a forked child that touches nothing but memory. */
static _Noreturn void scribbler(gx_arena *a, uint64_t seed)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	unsigned char *base = (unsigned char *)a;
	for (uint64_t r = 1;; r++) {
		while (atomic_load(&C->round) < r) {
			if (atomic_load(&C->stop))
				_exit(0);
			struct timespec ts = {0, 2000};
			nanosleep(&ts, NULL);
		}
		for (int k = 0; k < WRITES_PER_ROUND; k++) {
			region *g = &C->regions[xs(&seed) % (uint64_t)C->nregions];
			uint64_t n = 1 + xs(&seed) % 16;
			uint64_t at = g->off + xs(&seed) % (g->len > n ? g->len - n : 1);
			for (uint64_t i = 0; i < n; i++)
				base[at + i] = (unsigned char)xs(&seed);
		}
		atomic_fetch_add(&C->writes, WRITES_PER_ROUND);
		atomic_store(&C->done, r);
	}
}

static int t_tiny(const void *arg, size_t len, gx_task_result *res)
{
	(void)res;
	uint64_t x = 0;
	if (len == sizeof x)
		memcpy(&x, arg, sizeof x);
	return (int)(x & 0xff);
}

typedef struct {
	long ok, err, hangs, rounds;
	int64_t worst;
	long op_ok[6], op_err[6];
	int op;
} fuzz_tally;

static void tally(fuzz_tally *t, int rc, int64_t t0, int64_t deadline)
{
	if (rc >= 0)
		t->op_ok[t->op % 6]++;
	else
		t->op_err[t->op % 6]++;
	t->op++;
	int64_t took = gx_now() - t0;
	if (took > t->worst)
		t->worst = took;
	if (took > deadline + OP_SLACK)
		t->hangs++;
	if (rc >= 0)
		t->ok++;
	else
		t->err++;
}

/* One of everything, each call with a deadline: allocations and channel
 * tries every round, a task and a blocking receive every tenth (a garbled
 * inbox or future table costs a task its whole deadline, every time). */
static void one_round(gx_arena *a, gx_chan *ch, uint64_t r, fuzz_tally *t)
{
	t->op = 0;
	int64_t t0 = gx_now();
	int rc = 0;
	if (r % 10 == 0) {
		gx_future f;
		gx_par_opts o = GX_PAR_OPTS_INIT;
		o.until = gx_timeout(TASK_DEADLINE); /* an inbox the scribbler made look full */
		rc = gx_go_parallel(&f, t_tiny, &r, sizeof r, &o);
		if (rc == 0) {
			rc = gx_future_wait(f, NULL, 0, NULL, gx_timeout(TASK_DEADLINE));
			gx_future_free(f);
		}
		tally(t, rc, t0, 2 * TASK_DEADLINE);
	} else {
		t->op++;
	}
	t0 = gx_now();
	int64_t c = gx_pool_alloc(a, 64 + r % 2000, -1);
	rc = c > 0 ? gx_pool_free(a, (gx_off)c) : (int)c;
	tally(t, rc, t0, 0);
	t0 = gx_now();
	uint64_t v = r;
	rc = gx_chan_try_send(ch, &v);
	tally(t, rc, t0, 0);
	t0 = gx_now();
	rc = r % 10 == 5 ? gx_chan_recv(ch, &v, NULL, gx_timeout(GX_MILLISECOND)) : gx_chan_try_recv(ch, &v, NULL);
	tally(t, rc, t0, GX_MILLISECOND);
	if (r % 64 == 0) {
		static gx_stats snap;
		t0 = gx_now();
		tally(t, gx_stats_snapshot(&snap), t0, 0);
	}
	if (r % 1000 == 0) {
		t0 = gx_now();
		gx_repair_report rep;
		tally(t, gx_arena_repair(a, 0, &rep), t0, 0);
	}
}

static fuzz_tally fz;
static uint64_t fz_rounds;

static int fuzz_main(void *arg)
{
	(void)arg;
	gx_arena *a = gx_par_arena(0);
	cr_assert_not_null(a);
	gx_chan *ch;
	cr_assert_eq(gx_chan_make(&ch, 8, 16, GX_CHAN_DISTRIBUTED), 0);
	find_regions(a, ch);
	fflush(NULL);
	pid_t kid = fork();
	cr_assert_geq(kid, 0);
	if (kid == 0)
		scribbler(a, 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid());
	memset(&fz, 0, sizeof fz);
	for (uint64_t r = 1; r <= fz_rounds; r++) {
		atomic_store(&C->round, r);
		int64_t end = gx_now() + 10 * GX_SECOND;
		while (atomic_load(&C->done) < r && gx_now() < end)
			gx_yield();
		cr_assert_geq(atomic_load(&C->done), r, "the scribbler stopped at round %llu", (unsigned long long)r);
		one_round(a, ch, r, &fz);
		fz.rounds = (long)r;
	}
	atomic_store(&C->stop, 1);
	int st;
	waitpid(kid, &st, 0);
	return 0;
}

static int after_main(void *arg)
{
	int *ok = arg;
	for (uint64_t k = 0; k < 100; k++) {
		gx_future f;
		if (gx_go_parallel(&f, t_tiny, &k, sizeof k, NULL) == 0 &&
		    gx_future_get(f, NULL, 0, NULL, gx_timeout(10 * GX_SECOND)) == (int)k)
			(*ok)++;
	}
	return 0;
}

Test(fuzz, random_bytes_over_the_runtimes_arena_never_crash_or_hang_it, .timeout = 900)
{
	C = mmap(NULL, sizeof *C, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(C, MAP_FAILED);
	memset(C, 0, sizeof *C);
	const char *env = getenv("GX_TEST_FUZZ_ROUNDS");
	fz_rounds = env ? strtoull(env, NULL, 10) : 10000;
	if (!fz_rounds)
		fz_rounds = 10000;
#if GX_TEST_POINTS
	gx_test_point_fn = on_reaped;
#else
	cr_log_info("built without test points: crashes of workers are not seen");
#endif
	gx_config c;
	gx_config_init(&c);
	c.workers = 2;
	int64_t t0 = gx_now();
	int rc = gx_run(&c, fuzz_main, NULL);
	int64_t took = gx_now() - t0;
#if GX_TEST_POINTS
	gx_test_point_fn = NULL;
#endif
	cr_log_info("fuzz: %ld rounds, %ld writes, %ld calls ok, %ld errors, worst call %lld ms, %lld ms in all",
		    fz.rounds, atomic_load(&C->writes), fz.ok, fz.err, (long long)(fz.worst / GX_MILLISECOND),
		    (long long)(took / GX_MILLISECOND));
	cr_log_info("fuzz: ok/errors by call: task %ld/%ld, pool %ld/%ld, try send %ld/%ld, recv %ld/%ld, "
		    "snapshot %ld/%ld, repair %ld/%ld",
		    fz.op_ok[0], fz.op_err[0], fz.op_ok[1], fz.op_err[1], fz.op_ok[2], fz.op_err[2], fz.op_ok[3],
		    fz.op_err[3], fz.op_ok[4], fz.op_err[4], fz.op_ok[5], fz.op_err[5]);
	cr_expect_eq(rc, 0, "gx_run under the scribbler: %d", rc);
	cr_expect_eq(fz.rounds, (long)fz_rounds, "rounds done");
	cr_expect_eq(fz.hangs, 0, "calls that outlasted their deadline by %lld ms: %ld (worst %lld ms)",
		     (long long)(OP_SLACK / GX_MILLISECOND), fz.hangs, (long long)(fz.worst / GX_MILLISECOND));
	cr_expect_eq(atomic_load(&C->crashes), 0, "workers that crashed: %d (last by signal %d; 1000 + n: exit code n)",
		     atomic_load(&C->crashes), atomic_load(&C->last_sig));
	/* and a runtime started afresh works */
	int ok = 0;
	gx_config_init(&c);
	c.workers = 2;
	cr_expect_eq(gx_run(&c, after_main, &ok), 0);
	cr_expect_eq(ok, 100, "tasks of a new gx_run after the fuzzing: %d of 100", ok);
}
