/*
 * Circuit breakers and fallbacks (gonex/breaker.h), with real workers:
 * every transition (closed -> open -> half-open -> closed, half-open ->
 * open), an open breaker answering without dispatching, half-open probe
 * limits, retries with backoff, the fallback function, the last good
 * result, per-function breakers (opts.fn and GONEX_CIRCUIT_BREAKER), and a
 * timed-out task feeding its breaker.
 *
 * What ran where is counted in a MAP_SHARED page made before gx_run, so
 * the workers (forked from the spawner) write the same page.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include <gonex/gonex.h>

typedef struct {
	_Atomic int runs;        /* flaky() calls */
	_Atomic int fallbacks;   /* fallback() calls */
	_Atomic int fail_first;  /* flaky fails its first N calls */
} shared_t;

static shared_t *sh;

static void shared_setup(void)
{
	sh = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert(sh != MAP_FAILED);
	memset(sh, 0, sizeof *sh);
}

static void shared_teardown(void)
{
	munmap(sh, 4096);
}

/* arg: int32 mode. 0: succeed with 100 + mode... (see below) */
enum { OK = 0, FAIL = 1, SLOW_OK = 2, FLAKY = 3, NAP = 4, CANCEL = 5 };

static int work(const void *arg, size_t len, gx_task_result *res)
{
	int32_t mode;
	if (len != 4)
		return -EINVAL;
	memcpy(&mode, arg, 4);
	int n = atomic_fetch_add(&sh->runs, 1) + 1;
	int32_t v = 100 + n;
	switch (mode) {
	case FAIL:
		return -EIO;
	case SLOW_OK:
		gx_sleep(80 * GX_MILLISECOND);
		break;
	case FLAKY:
		if (n <= atomic_load(&sh->fail_first))
			return -EAGAIN;
		break;
	case NAP:
		gx_sleep(500 * GX_MILLISECOND);
		break;
	case CANCEL:
		return -ECANCELED;
	}
	gx_task_return(res, &v, 4);
	return 7;
}

static int fallback(const void *arg, size_t len, gx_task_result *res)
{
	(void)arg;
	(void)len;
	atomic_fetch_add(&sh->fallbacks, 1);
	int32_t v = -1;
	gx_task_return(res, &v, 4);
	return 3;
}

typedef struct {
	int rc, origin;
	int32_t v;
} answer;

static answer call(gx_breaker *b, int32_t mode)
{
	answer a = {-12345, -1, 0};
	gx_par_opts o = GX_PAR_OPTS_INIT;
	o.breaker = b;
	gx_future f;
	int rc = gx_go_parallel(&f, work, &mode, 4, &o);
	if (rc < 0) {
		a.rc = rc;
		return a;
	}
	a.rc = gx_future_wait(f, &a.v, 4, NULL, gx_timeout(20 * GX_SECOND));
	a.origin = gx_future_origin(f);
	gx_future_free(f);
	return a;
}

static gx_config two_workers(void)
{
	gx_config c;
	gx_config_init(&c);
	c.workers = 2;
	return c;
}

/* ---- closed -> open -> (cool-down) half-open -> closed ---- */

static int t_state[8], t_runs_open;
static answer t_open, t_probe;

static int transitions_main(void *arg)
{
	(void)arg;
	gx_breaker_opts o = GX_BREAKER_OPTS_INIT;
	o.failures = 3;
	o.cooldown = 100 * GX_MILLISECOND;
	o.probes = 2;
	gx_breaker *b;
	if (gx_breaker_make(&b, "transitions", &o) != 0)
		return 1;
	t_state[0] = gx_breaker_state_get(b);
	for (int i = 0; i < 2; i++)
		call(b, FAIL);
	t_state[1] = gx_breaker_state_get(b); /* two in a row: still closed */
	call(b, OK);                          /* a success forgets them */
	for (int i = 0; i < 2; i++)
		call(b, FAIL);
	t_state[2] = gx_breaker_state_get(b); /* closed again: 2 < 3 */
	call(b, FAIL);
	t_state[3] = gx_breaker_state_get(b); /* the third in a row opens it */
	int before = atomic_load(&sh->runs);
	t_open = call(b, OK);                 /* answered at once */
	t_runs_open = atomic_load(&sh->runs) - before;
	gx_sleep(150 * GX_MILLISECOND);
	t_state[4] = gx_breaker_state_get(b); /* open until a submission */
	t_probe = call(b, OK);                /* first trial */
	t_state[5] = gx_breaker_state_get(b); /* half-open: 1 of 2 */
	call(b, OK);
	t_state[6] = gx_breaker_state_get(b); /* closed */
	return 0;
}

Test(breaker, closed_open_half_open_closed, .init = shared_setup, .fini = shared_teardown, .timeout = 60)
{
	gx_config c = two_workers();
	cr_assert_eq(gx_run(&c, transitions_main, NULL), 0);
	cr_expect_eq(t_state[0], GX_BREAKER_CLOSED);
	cr_expect_eq(t_state[1], GX_BREAKER_CLOSED);
	cr_expect_eq(t_state[2], GX_BREAKER_CLOSED, "a success resets the count of failures in a row");
	cr_expect_eq(t_state[3], GX_BREAKER_OPEN);
	cr_expect_eq(t_open.rc, -EBUSY, "open, no fallback: -EBUSY (%d)", t_open.rc);
	cr_expect_eq(t_open.origin, GX_ORIGIN_REJECTED);
	cr_expect_eq(t_runs_open, 0, "an open breaker does not dispatch");
	cr_expect_eq(t_state[4], GX_BREAKER_OPEN);
	cr_expect_eq(t_probe.rc, 7, "the trial ran: %d", t_probe.rc);
	cr_expect_eq(t_probe.origin, GX_ORIGIN_TASK);
	cr_expect_eq(t_state[5], GX_BREAKER_HALF_OPEN);
	cr_expect_eq(t_state[6], GX_BREAKER_CLOSED);
}

/* ---- half-open: probe limit, and a failed probe opens it again ---- */

static answer h_extra, h_after;
static int h_state[4];

static int half_open_main(void *arg)
{
	(void)arg;
	gx_breaker_opts o = GX_BREAKER_OPTS_INIT;
	o.failures = 1;
	o.cooldown = 50 * GX_MILLISECOND;
	o.probes = 1;
	gx_breaker *b;
	if (gx_breaker_make(&b, "half-open", &o) != 0)
		return 1;
	call(b, FAIL);
	gx_sleep(80 * GX_MILLISECOND);
	/* a slow trial is in flight: the next submission is refused */
	int32_t m = SLOW_OK;
	gx_par_opts po = GX_PAR_OPTS_INIT;
	po.breaker = b;
	gx_future slow;
	if (gx_go_parallel(&slow, work, &m, 4, &po) != 0)
		return 1;
	h_state[0] = gx_breaker_state_get(b);
	h_extra = call(b, OK);
	gx_future_get(slow, NULL, 0, NULL, gx_timeout(10 * GX_SECOND));
	h_state[1] = gx_breaker_state_get(b); /* the trial succeeded: closed */
	call(b, FAIL);
	h_state[2] = gx_breaker_state_get(b); /* open (1 failure) */
	gx_sleep(80 * GX_MILLISECOND);
	call(b, FAIL); /* the trial fails */
	h_state[3] = gx_breaker_state_get(b);
	h_after = call(b, OK); /* a new cool-down: refused */
	return 0;
}

Test(breaker, half_open_admits_its_probes_only_and_a_failed_probe_reopens, .init = shared_setup,
     .fini = shared_teardown, .timeout = 60)
{
	gx_config c = two_workers();
	cr_assert_eq(gx_run(&c, half_open_main, NULL), 0);
	cr_expect_eq(h_state[0], GX_BREAKER_HALF_OPEN);
	cr_expect_eq(h_extra.rc, -EBUSY, "past the probe limit: refused (%d)", h_extra.rc);
	cr_expect_eq(h_extra.origin, GX_ORIGIN_REJECTED);
	cr_expect_eq(h_state[1], GX_BREAKER_CLOSED);
	cr_expect_eq(h_state[2], GX_BREAKER_OPEN);
	cr_expect_eq(h_state[3], GX_BREAKER_OPEN, "a failed trial opens it again");
	cr_expect_eq(h_after.rc, -EBUSY);
}

/* ---- retries with backoff ---- */

static answer r_ok, r_out;
static int r_runs_ok, r_runs_out;
static gx_stats r_stats;

static int retry_main(void *arg)
{
	(void)arg;
	gx_breaker_opts o = GX_BREAKER_OPTS_INIT;
	o.failures = 100;
	o.retries = 3;
	o.backoff = GX_MILLISECOND;
	o.backoff_max = 4 * GX_MILLISECOND;
	gx_breaker *b;
	if (gx_breaker_make(&b, "retry", &o) != 0)
		return 1;
	atomic_store(&sh->fail_first, 2);
	r_ok = call(b, FLAKY); /* fails twice, then succeeds */
	r_runs_ok = atomic_load(&sh->runs);
	atomic_store(&sh->runs, 0);
	atomic_store(&sh->fail_first, 100);
	r_out = call(b, FLAKY); /* 1 + 3 attempts, all fail */
	r_runs_out = atomic_load(&sh->runs);
	gx_stats_snapshot(&r_stats);
	return 0;
}

Test(breaker, a_failed_task_is_retried_with_backoff, .init = shared_setup, .fini = shared_teardown, .timeout = 60)
{
	gx_config c = two_workers();
	cr_assert_eq(gx_run(&c, retry_main, NULL), 0);
	cr_expect_eq(r_ok.rc, 7, "the third attempt succeeded: %d", r_ok.rc);
	cr_expect_eq(r_runs_ok, 3);
	cr_expect_eq(r_out.rc, -EAGAIN, "out of retries: the task's own error (%d)", r_out.rc);
	cr_expect_eq(r_runs_out, 4, "one run and three retries");
	int found = 0;
	for (int i = 0; i < r_stats.nfn; i++)
		if (r_stats.fn[i].kind == GX_STATS_TASK && r_stats.fn[i].count == 7) {
			found = 1;
			cr_expect_eq(r_stats.fn[i].retries, 5, "2 + 3 retries counted");
			cr_expect_eq(r_stats.fn[i].errors, 1, "one task failed for good");
		}
	cr_expect(found, "the task's figures count every run");
}

/* ---- fallback function ---- */

static answer f_fail, f_open;
static int f_runs_open, f_fallbacks;
static gx_stats f_stats;

static int fallback_main(void *arg)
{
	(void)arg;
	gx_breaker_opts o = GX_BREAKER_OPTS_INIT;
	o.failures = 2;
	o.cooldown = 10 * GX_SECOND;
	o.fallback = fallback;
	gx_breaker *b;
	if (gx_breaker_make(&b, "fallback", &o) != 0)
		return 1;
	f_fail = call(b, FAIL); /* fails: the fallback answers */
	call(b, FAIL);          /* opens */
	int before = atomic_load(&sh->runs);
	f_open = call(b, OK);   /* open: the fallback answers at once */
	f_runs_open = atomic_load(&sh->runs) - before;
	f_fallbacks = atomic_load(&sh->fallbacks);
	gx_stats_snapshot(&f_stats);
	return 0;
}

Test(breaker, the_fallback_answers_failures_and_an_open_breaker, .init = shared_setup, .fini = shared_teardown,
     .timeout = 60)
{
	gx_config c = two_workers();
	cr_assert_eq(gx_run(&c, fallback_main, NULL), 0);
	cr_expect_eq(f_fail.rc, 3, "the fallback's code: %d", f_fail.rc);
	cr_expect_eq(f_fail.v, -1);
	cr_expect_eq(f_fail.origin, GX_ORIGIN_FALLBACK);
	cr_expect_eq(f_open.rc, 3);
	cr_expect_eq(f_open.origin, GX_ORIGIN_FALLBACK);
	cr_expect_eq(f_runs_open, 0, "open: the task itself did not run");
	cr_expect_eq(f_fallbacks, 3);
	cr_assert_eq(f_stats.nbreaker, 1);
	cr_expect_eq(f_stats.breaker[0].fallbacks, 3);
	cr_expect_eq(f_stats.breaker[0].opens, 1);
	cr_expect_eq(f_stats.breaker[0].rejected, 1);
	cr_expect_eq(f_stats.breaker[0].state, GX_BREAKER_OPEN);
}

/* ---- last good result ---- */

static answer l_none, l_good, l_fail, l_open;

static int last_good_main(void *arg)
{
	(void)arg;
	gx_breaker_opts o = GX_BREAKER_OPTS_INIT;
	o.failures = 2;
	o.cooldown = 10 * GX_SECOND;
	o.last_good = 1;
	gx_breaker *b;
	if (gx_breaker_make(&b, "last-good", &o) != 0)
		return 1;
	l_none = call(b, FAIL); /* nothing good yet: the task's error */
	l_good = call(b, OK);
	l_fail = call(b, FAIL); /* the last good answers */
	call(b, FAIL);          /* opens */
	l_open = call(b, FAIL); /* open: the last good, at once */
	return 0;
}

Test(breaker, the_last_good_result_answers, .init = shared_setup, .fini = shared_teardown, .timeout = 60)
{
	gx_config c = two_workers();
	cr_assert_eq(gx_run(&c, last_good_main, NULL), 0);
	cr_expect_eq(l_none.rc, -EIO);
	cr_expect_eq(l_none.origin, GX_ORIGIN_TASK);
	cr_expect_eq(l_good.rc, 7);
	cr_expect_eq(l_fail.rc, 7, "the last good code: %d", l_fail.rc);
	cr_expect_eq(l_fail.v, l_good.v, "the last good bytes");
	cr_expect_eq(l_fail.origin, GX_ORIGIN_LAST_GOOD);
	cr_expect_eq(l_open.rc, 7);
	cr_expect_eq(l_open.v, l_good.v);
	cr_expect_eq(l_open.origin, GX_ORIGIN_LAST_GOOD);
}

/* ---- per function: opts.fn, and GONEX_CIRCUIT_BREAKER ---- */

static int p_state, p_auto_state, p_auto_n;
static answer p_open;

static int per_fn_main(void *arg)
{
	int automatic = *(int *)arg;
	gx_breaker *b = NULL;
	if (!automatic) {
		gx_breaker_opts o = GX_BREAKER_OPTS_INIT;
		o.fn = work;
		o.failures = 2;
		if (gx_breaker_make(&b, "work", &o) != 0)
			return 1;
	}
	/* no breaker named in the options: the function's own */
	for (int i = 0; i < 5; i++)
		call(NULL, FAIL);
	p_open = call(NULL, OK);
	gx_stats s;
	gx_stats_snapshot(&s);
	p_auto_n = s.nbreaker;
	p_auto_state = s.nbreaker ? s.breaker[0].state : -1;
	p_state = b ? gx_breaker_state_get(b) : -1;
	return 0;
}

Test(breaker, a_breaker_per_function, .init = shared_setup, .fini = shared_teardown, .timeout = 60)
{
	gx_config c = two_workers();
	int automatic = 0;
	cr_assert_eq(gx_run(&c, per_fn_main, &automatic), 0);
	cr_expect_eq(p_state, GX_BREAKER_OPEN);
	cr_expect_eq(p_open.rc, -EBUSY);
	cr_expect_eq(atomic_load(&sh->runs), 2, "only the two failures before it opened ran");
}

Test(breaker, circuit_breaker_on_gives_every_function_one, .init = shared_setup, .fini = shared_teardown,
     .timeout = 60)
{
	gx_config c = two_workers();
	c.circuit_breaker = 1; /* defaults: 5 failures open it */
	int automatic = 1;
	cr_assert_eq(gx_run(&c, per_fn_main, &automatic), 0);
	cr_expect_eq(p_auto_n, 1, "one breaker, made on first use");
	cr_expect_eq(p_auto_state, GX_BREAKER_OPEN);
	cr_expect_eq(p_open.rc, -EBUSY);
	cr_expect_eq(atomic_load(&sh->runs), 5);
}

/* ---- a timed-out task counts as a failure; the fallback answers ---- */

static answer to_ans;
static int to_state, to_fallbacks;
static gx_stats to_stats;

static int timeout_main(void *arg)
{
	(void)arg;
	gx_breaker_opts o = GX_BREAKER_OPTS_INIT;
	o.failures = 1;
	o.cooldown = 10 * GX_SECOND;
	o.fallback = fallback;
	gx_breaker *b;
	if (gx_breaker_make(&b, "timeout", &o) != 0)
		return 1;
	to_ans = call(b, NAP);
	to_state = gx_breaker_state_get(b);
	gx_sleep(700 * GX_MILLISECOND); /* the task ends late; the watchdog looked many times */
	to_fallbacks = atomic_load(&sh->fallbacks);
	gx_stats_snapshot(&to_stats);
	return 0;
}

Test(breaker, a_timed_out_task_feeds_its_breaker, .init = shared_setup, .fini = shared_teardown, .timeout = 60)
{
	gx_config c = two_workers();
	c.worker_timeout_ms = 100;
	cr_assert_eq(gx_run(&c, timeout_main, NULL), 0);
	cr_expect_eq(to_ans.rc, 3, "the fallback answered the timeout: %d", to_ans.rc);
	cr_expect_eq(to_ans.origin, GX_ORIGIN_FALLBACK);
	cr_expect_eq(to_state, GX_BREAKER_OPEN);
	cr_expect_eq(to_fallbacks, 1, "the fallback ran once: %d", to_fallbacks);
	cr_assert_eq(to_stats.nbreaker, 1);
	cr_expect_eq(to_stats.breaker[0].failures, 1, "one failure, not one per watchdog look: %llu",
		     (unsigned long long)to_stats.breaker[0].failures);
	cr_expect_eq(to_stats.breaker[0].successes, 0, "the late finish does not count");
}

/* ---- a trial without a verdict frees its place; -ECANCELED is not good ---- */

static answer n_trial, n_next, n_lg;
static int n_state;

static int no_verdict_main(void *arg)
{
	(void)arg;
	gx_breaker_opts o = GX_BREAKER_OPTS_INIT;
	o.failures = 1;
	o.cooldown = 50 * GX_MILLISECOND;
	o.probes = 1;
	o.last_good = 1;
	gx_breaker *b;
	if (gx_breaker_make(&b, "no-verdict", &o) != 0)
		return 1;
	call(b, CANCEL); /* not a failure, and not a good result */
	n_lg = call(b, FAIL); /* opens; nothing good to answer with */
	gx_sleep(80 * GX_MILLISECOND);
	n_trial = call(b, CANCEL); /* the trial ends without a verdict */
	n_next = call(b, OK);      /* so the next one is the trial */
	n_state = gx_breaker_state_get(b);
	return 0;
}

Test(breaker, a_trial_without_a_verdict_frees_its_place, .init = shared_setup, .fini = shared_teardown,
     .timeout = 60)
{
	gx_config c = two_workers();
	cr_assert_eq(gx_run(&c, no_verdict_main, NULL), 0);
	cr_expect_eq(n_lg.rc, -EIO, "-ECANCELED was not kept as the last good result: %d", n_lg.rc);
	cr_expect_eq(n_lg.origin, GX_ORIGIN_TASK);
	cr_expect_eq(n_trial.rc, -ECANCELED);
	cr_expect_eq(n_next.rc, 7, "admitted as the next trial: %d", n_next.rc);
	cr_expect_eq(n_state, GX_BREAKER_CLOSED);
}

/* ---- the API's errors ---- */

static int e_rc[10];
static gx_breaker *e_first, *e_dup;

static int errors_main(void *arg)
{
	(void)arg;
	gx_breaker_opts o = GX_BREAKER_OPTS_INIT;
	gx_breaker *b;
	e_rc[0] = gx_breaker_make(&b, NULL, &o);
	e_rc[1] = gx_breaker_make(&b, "", &o);
	e_rc[2] = gx_breaker_make(&b, "a-name-that-is-longer-than-31-bytes", &o);
	o.failures = 0;
	e_rc[3] = gx_breaker_make(&b, "bad", &o);
	o = (gx_breaker_opts)GX_BREAKER_OPTS_INIT;
	o.fallback = (gx_task_fn)(uintptr_t)&e_rc; /* data, not code */
	e_rc[4] = gx_breaker_make(&b, "bad", &o);
	e_rc[5] = gx_breaker_make(&e_first, "ok", NULL);
	e_rc[6] = gx_breaker_make(&e_dup, "ok", NULL);
	e_rc[7] = gx_breaker_find("ok") == e_first && gx_breaker_find("nope") == NULL;
	e_rc[8] = gx_breaker_state_get((gx_breaker *)(uintptr_t)&e_rc);
	e_rc[9] = gx_breaker_reset(e_first);
	return 0;
}

Test(breaker, bad_input_is_refused)
{
	gx_breaker *b = (gx_breaker *)1;
	cr_expect_eq(gx_breaker_make(&b, "outside", NULL), -EPERM);
	cr_expect_null(b);
	gx_config c;
	gx_config_init(&c);
	cr_assert_eq(gx_run(&c, errors_main, NULL), 0);
	for (int i = 0; i < 5; i++)
		cr_expect_eq(e_rc[i], -EINVAL, "case %d: %d", i, e_rc[i]);
	cr_expect_eq(e_rc[5], 0);
	cr_expect_eq(e_rc[6], -EEXIST);
	cr_expect_eq(e_dup, e_first, "-EEXIST hands back the existing one");
	cr_expect(e_rc[7]);
	cr_expect_eq(e_rc[8], -EINVAL);
	cr_expect_eq(e_rc[9], 0);
}
