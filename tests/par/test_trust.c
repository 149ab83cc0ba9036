/* Nothing read from the arena picks a process to signal or to replace: a
 * peer that writes another pid where the spawner's pid is kept does not make
 * SIGTERM of the main process kill that pid, and a peer that writes "dead"
 * into a live worker's state does not get that worker replaced or the
 * memory it holds handed to someone else. */
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

#include "harness.h"
#include "par/dchan.h"
#include "testing.h"

static pid_t victim;

static int scribble_then_term_main(void *arg)
{
	(void)arg;
	gx_arena *a = gx_par_arena(0);
	cr_assert_not_null(a);
	gx_par *p = gx_arena_ptr(a, atomic_load(&gx_ah(a)->runtime_table), sizeof(gx_par));
	cr_assert_not_null(p);
	p->spawner_pid = victim; /* a peer's write */
	raise(SIGTERM);          /* the runtime's handler stops its spawner, then exits 143 */
	return 0;
}

Test(trust, sigterm_never_signals_a_pid_read_from_the_arena, .timeout = 60)
{
	victim = fork();
	cr_assert_geq(victim, 0);
	if (victim == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (;;)
			pause();
	}
	pid_t app = fork();
	cr_assert_geq(app, 0);
	if (app == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		gx_config c;
		gx_config_init(&c);
		c.workers = 1;
		_exit(gx_run(&c, scribble_then_term_main, NULL) == 0 ? 0 : 3);
	}
	int st;
	cr_assert_eq(waitpid(app, &st, 0), app);
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 128 + SIGTERM, "the program ended by its SIGTERM handler");
	struct timespec ts = {0, 100 * 1000 * 1000};
	nanosleep(&ts, NULL);
	int alive = waitpid(victim, &st, WNOHANG) == 0;
	cr_expect(alive, "the pid written into the arena was signalled: %s",
		  alive ? "" : (WIFSIGNALED(st) ? strsignal(WTERMSIG(st)) : "exited"));
	kill(victim, SIGKILL);
	waitpid(victim, &st, 0);
}

/* --- a forged "dead" ------------------------------------------------------- */

typedef struct {
	_Atomic int64_t chunk;
	_Atomic int pid;
} held;

static held *H;

/* Holds a chunk of its own for 1.5 s, then checks nobody wrote over it. */
static int t_hold(const void *arg, size_t len, gx_task_result *res)
{
	(void)arg;
	(void)len;
	(void)res;
	gx_arena *a = gx_par_arena(0);
	int64_t c = gx_pool_alloc(a, 4096, -1);
	if (c < 0)
		return (int)c;
	memset(gx_arena_ptr(a, (gx_off)c, 4096), 'W', 4096);
	atomic_store(&H->pid, getpid());
	atomic_store(&H->chunk, c);
	gx_sleep(1500 * GX_MILLISECOND);
	const char *p = gx_arena_ptr(a, (gx_off)c, 4096);
	for (int i = 0; i < 4096; i++)
		if (p[i] != 'W')
			return -EBADMSG;
	return gx_pool_free(a, (gx_off)c) == 0 ? 1 : -EBADMSG;
}

static int forged_task, forged_taken;
static uint64_t forged_restarts;
static int forged_pid_before, forged_pid_after;

static int forged_dead_main(void *arg)
{
	(void)arg;
	gx_par *p = gx_pl.p;
	gx_future f;
	cr_assert_eq(gx_go_parallel(&f, t_hold, NULL, 0, NULL), 0);
	while (!atomic_load(&H->chunk))
		gx_sleep(GX_MILLISECOND);
	uint64_t r0 = atomic_load(&p->w[0].restarts);
	forged_pid_before = atomic_load(&H->pid);
	atomic_store(&p->w[0].state, GX_W_DEAD); /* the peer's one store */
	gx_ec_notify(&p->events, NULL);
	gx_sleep(300 * GX_MILLISECOND); /* time for a (wrong) repair */
	gx_arena *a = gx_par_arena(0);
	int64_t got[64];
	for (int k = 0; k < 64; k++) {
		got[k] = gx_pool_alloc(a, 4096, -1);
		forged_taken += got[k] == atomic_load(&H->chunk);
	}
	for (int k = 0; k < 64; k++)
		if (got[k] >= 0)
			gx_pool_free(a, (gx_off)got[k]);
	forged_task = gx_future_get(f, NULL, 0, NULL, gx_timeout(20 * GX_SECOND));
	forged_restarts = atomic_load(&p->w[0].restarts) - r0;
	forged_pid_after = worker_info(0).pid;
	return 0;
}

Test(trust, a_forged_dead_state_neither_replaces_a_live_worker_nor_takes_its_memory, .timeout = 60)
{
	void *m = mmap(NULL, sizeof *H, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(m, MAP_FAILED);
	H = m;
	memset(H, 0, sizeof *H);
	gx_config c = workers_config(1);
	cr_assert_eq(gx_run(&c, forged_dead_main, NULL), 0);
	cr_expect_eq(forged_taken, 0, "main was handed the chunk the live worker holds");
	cr_expect_eq(forged_task, 1, "the worker's task: %d (its chunk %s)", forged_task,
		     forged_task == 1 ? "intact" : "taken or scribbled");
	cr_expect_eq(forged_restarts, 0, "a live worker was restarted");
	cr_expect_eq(forged_pid_after, forged_pid_before, "worker 0 is still the same process");
}

/* --- forged task records --------------------------------------------------- */

/* What a peer holding only the mapping can put into an inbox: a record
 * for a future of ours, naming fn (as the sealed word) and name. */
static int forge_record(int64_t code, uint64_t name, const char *arg, gx_future *out)
{
	uint32_t idx;
	uint64_t fh;
	int rc = gx_fut_alloc(&idx, &fh);
	if (rc < 0)
		return rc;
	gx_task_rec r;
	memset(&r, 0, sizeof r);
	r.code = (uint64_t)code;
	r.fut = fh;
	r.name = name;
	r.len = arg ? (uint32_t)strlen(arg) + 1 : 0;
	if (arg)
		memcpy(r.arg, arg, r.len);
	out->h = fh;
	return gx_ring_try_send(gx_inbox(0), &r, sizeof r);
}

static char pwned[40];
static int forged_code_rc, forged_file;

static int forged_code_main(void *arg)
{
	(void)arg;
	char cmd[GX_TASK_INLINE];
	snprintf(cmd, sizeof cmd, "touch %s", pwned);
	gx_future f;
	/* the address of system() itself, and the word that opens to it under
	 * some other key: neither is this run's seal of it */
	cr_assert_eq(forge_record((int64_t)(uintptr_t)system, 0, cmd, &f), 0);
	forged_code_rc = gx_future_get(f, NULL, 0, NULL, gx_timeout(20 * GX_SECOND));
	forged_file = access(pwned, F_OK) == 0;
	return 0;
}

Test(trust, a_record_naming_a_function_nobody_sealed_is_not_called, .timeout = 60)
{
	snprintf(pwned, sizeof pwned, "/tmp/gx-trust-%d", (int)getpid());
	unlink(pwned);
	gx_config c = workers_config(1);
	cr_assert_eq(gx_run(&c, forged_code_main, NULL), 0);
	cr_expect_eq(forged_code_rc, -EBADMSG, "the forged task's future: %d", forged_code_rc);
	cr_expect_not(forged_file, "the worker ran system() for a peer");
	unlink(pwned);
}

static int t_zero(const void *arg, size_t len, gx_task_result *res)
{
	(void)arg;
	(void)len;
	(void)res;
	return 0;
}

static int forged_name_rc;
static uint64_t forged_name_restarts;

static int forged_name_main(void *arg)
{
	(void)arg;
	gx_future f;
	uint64_t r0 = worker_info(0).restarts;
	/* a sealed word copied from a real record, with a name that is no
	 * string at all */
	int64_t code = (int64_t)gx_code_seal((uint64_t)(uintptr_t)t_zero);
	cr_assert_eq(forge_record(code, 0x10, NULL, &f), 0);
	forged_name_rc = gx_future_get(f, NULL, 0, NULL, gx_timeout(20 * GX_SECOND));
	forged_name_restarts = worker_info(0).restarts - r0;
	return 0;
}

Test(trust, a_task_name_that_is_no_string_of_the_image_is_never_read, .timeout = 60)
{
	gx_config c = workers_config(1);
	cr_assert_eq(gx_run(&c, forged_name_main, NULL), 0);
	cr_expect_eq(forged_name_rc, 0, "the task's future: %d", forged_name_rc);
	cr_expect_eq(forged_name_restarts, 0, "the worker died reading the name");
}

/* --- a future's word set to "being completed" ------------------------------ */

static int forged_free_rc = 1, forged_wait_rc = 1;

static int forged_completing_main(void *arg)
{
	(void)arg;
	uint32_t idx;
	uint64_t fh;
	cr_assert_eq(gx_fut_alloc(&idx, &fh), 0);
	/* the peer's one store: completing, by the main process, for ever */
	atomic_store(&gx_pl.futs[idx].sw, (fh >> 32) << 32 | GX_FUT_COMPLETING);
	gx_future f = {fh};
	forged_wait_rc = gx_future_wait(f, NULL, 0, NULL, gx_timeout(100 * GX_MILLISECOND));
	forged_free_rc = gx_future_free(f); /* must not wait for a completer */
	return 0;
}

Test(trust, freeing_a_future_a_peer_marked_as_being_completed_does_not_wait, .timeout = 30)
{
	gx_config c = workers_config(1);
	cr_assert_eq(gx_run(&c, forged_completing_main, NULL), 0);
	cr_expect_eq(forged_wait_rc, -ETIMEDOUT, "a wait ends at its deadline: %d", forged_wait_rc);
	cr_expect_eq(forged_free_rc, 0, "the free: %d", forged_free_rc);
}

/* A peer rewrites a distributed channel's header with a fresh nonce (as if
 * the channel were made anew there) and a 200-byte element, and queues a
 * 200-byte value: a receive into the 8-byte element the channel was made
 * with must write nothing past it. */
static int forged_geometry_rc = 1, forged_geometry_overrun = -1;

static int forged_geometry_main(void *arg)
{
	(void)arg;
	gx_chan *c;
	cr_assert_eq(gx_chan_make(&c, 8, 4, GX_CHAN_DISTRIBUTED), 0);
	uint64_t x = 5;
	cr_assert_eq(gx_chan_try_send(c, &x), 0);
	cr_assert_eq(gx_chan_try_recv(c, &x, NULL), 0); /* this process has seen it */
	gx_arena *a = gx_par_arena(0);
	gx_dch *d = (gx_dch *)c;
	int64_t ck = gx_pool_alloc(a, GX_DCH_HDR + 200, -1);
	cr_assert_gt(ck, 0);
	char *p = gx_arena_ptr(a, (gx_off)ck, GX_DCH_HDR + 200);
	memset(p, 0, GX_DCH_HDR);
	memset(p + GX_DCH_HDR, 0x41, 200);
	cr_assert_eq(gx_ring_try_send_chunk(gx_ring_at(a, d->main), (gx_off)ck, GX_DCH_HDR + 200), 0);
	d->elem_size = 200;
	atomic_store(&d->nonce, atomic_load(&d->nonce) + 2);
	struct {
		uint64_t v;
		unsigned char canary[256];
	} b;
	memset(b.canary, 0xa5, sizeof b.canary);
	forged_geometry_rc = gx_chan_try_recv(c, &b.v, NULL);
	forged_geometry_overrun = 0;
	for (size_t i = 0; i < sizeof b.canary; i++)
		forged_geometry_overrun += b.canary[i] != 0xa5;
	return 0;
}

Test(trust, a_channel_header_rewritten_with_a_fresh_nonce_changes_no_copy_length, .timeout = 30)
{
	gx_config c = workers_config(1);
	cr_assert_eq(gx_run(&c, forged_geometry_main, NULL), 0);
	cr_expect_eq(forged_geometry_overrun, 0, "%d bytes past the element were written", forged_geometry_overrun);
	cr_expect_lt(forged_geometry_rc, 0, "the forged channel is refused: %d", forged_geometry_rc);
}

/* Times a peer wrote into a worker's slot (its idle time, when it went
 * idle, its start, its heartbeat) never make the figures overflow: busy
 * and idle stay within the worker's wall time, utilisation within [0, 1],
 * and the heartbeat's age is not negative. */
static gx_stats_worker scribbled_times;

static int scribbled_times_main(void *arg)
{
	(void)arg;
	gx_arena *a = gx_par_arena(0);
	gx_par *p = gx_arena_ptr(a, atomic_load(&gx_ah(a)->runtime_table), sizeof(gx_par));
	cr_assert_not_null(p);
	for (int i = 0; i < 1000; i++) {
		gx_stats_worker w0 = worker_info(0);
		if (worker_active(&w0))
			break;
		gx_sleep(GX_MILLISECOND);
	}
	gx_sleep(20 * GX_MILLISECOND); /* idle now: it writes none of these until a task comes */
	atomic_store(&p->w[0].idle_ns, -4393974251873490193); /* what the fuzz test's scribbler wrote */
	atomic_store(&p->w[0].idle_since, 0);
	atomic_store(&p->w[0].heartbeat, INT64_MIN + 9);
	scribbled_times = worker_info(0);
	return 0;
}

Test(trust, times_a_peer_wrote_into_a_worker_slot_never_overflow_the_figures, .timeout = 30)
{
	gx_config c = workers_config(1);
	cr_assert_eq(gx_run(&c, scribbled_times_main, NULL), 0);
	gx_stats_worker w = scribbled_times;
	cr_assert(worker_active(&w), "worker 0 was taking tasks");
	cr_expect(w.idle_ns >= 0 && w.busy_ns >= 0, "idle %lld ns, busy %lld ns", (long long)w.idle_ns,
		  (long long)w.busy_ns);
	cr_expect(w.util >= 0 && w.util <= 1, "utilisation %f", w.util);
	cr_expect_geq(w.heartbeat_age_ns, -1, "heartbeat age %lld", (long long)w.heartbeat_age_ns);
}
