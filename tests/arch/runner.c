/*
 * The plain test runner for the switch, stacks and scheduler: no Criterion,
 * so it runs under qemu-user (aarch64 run) and natively alike. Ends with the
 * line "N passed, N failed".
 */
#include <errno.h>
#include <fenv.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "scenarios.h"

static int passed, failed, cur_failed;

#define CHECK(cond, ...)                                                                            \
	do {                                                                                        \
		if (!(cond)) {                                                                      \
			cur_failed = 1;                                                             \
			fprintf(stderr, "  FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);           \
			fprintf(stderr, __VA_ARGS__);                                               \
			fputc('\n', stderr);                                                        \
		}                                                                                   \
	} while (0)

static void run(const char *name, void (*fn)(void))
{
	cur_failed = 0;
	fn();
	printf("%s %s\n", cur_failed ? "FAIL" : "ok  ", name);
	fflush(stdout);
	if (cur_failed)
		failed++;
	else
		passed++;
}

/* ---- raw switch ---- */

#define STACK (64 * 1024)
static void *main_sp, *co_sp;
static uintptr_t entry_sp;
static int fp_a, fp_b;

static void clobber_entry(void *arg, void *from)
{
	(void)arg;
	(void)from;
	entry_sp = gx_test_caller_sp();
	for (;;)
		gx_test_clobber_switch(&co_sp, main_sp);
}

static void t_registers(void)
{
	char *stack = mmap(NULL, STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	co_sp = gx_arch_stack_init(stack + STACK, clobber_entry, NULL);
	uint64_t out[GX_TEST_NREGS];
	for (int round = 0; round < 3; round++) {
		memset(out, 0, sizeof out);
		gx_test_switch_regs(&main_sp, co_sp, out);
		for (int i = 0; i < GX_TEST_NREGS; i++)
			CHECK(out[i] == gx_test_reg_pattern(i), "reg %d = %#llx", i, (unsigned long long)out[i]);
	}
	CHECK(entry_sp % 16 == 0, "entry sp %#lx", (unsigned long)entry_sp);
	munmap(stack, STACK);
}

static void fp_entry(void *arg, void *from)
{
	(void)arg;
	(void)from;
	fesetround(FE_UPWARD);
	gx_arch_switch(&co_sp, main_sp, NULL);
	fp_b = fegetround();
	gx_arch_switch(&co_sp, main_sp, NULL);
}

static void t_fp_env(void)
{
	if (!GX_FP_ENV) {
		printf("skip fp_env (built without -Dfp_env=true)\n");
		return;
	}
	char *stack = mmap(NULL, STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	co_sp = gx_arch_stack_init(stack + STACK, fp_entry, NULL);
	fesetround(FE_DOWNWARD);
	gx_arch_switch(&main_sp, co_sp, NULL);
	fp_a = fegetround();
	gx_arch_switch(&main_sp, co_sp, NULL);
	fesetround(FE_TONEAREST);
	CHECK(fp_a == FE_DOWNWARD, "main's mode %d", fp_a);
	CHECK(fp_b == FE_UPWARD, "coroutine's mode %d", fp_b);
	munmap(stack, STACK);
}

/* ---- scheduler ---- */

static void t_yield(void)
{
	CHECK(gx_scn_yield() == 9, "result");
	CHECK(strcmp(gx_scn_trace, "bababa") == 0, "trace %s", gx_scn_trace);
}

static uint64_t counter;
static gx_co *parked;
static void park_once(void *arg)
{
	(void)arg;
	parked = gx_co_current();
	counter++;
	gx_park("runner");
	counter++;
}

static int park_main(void *arg)
{
	(void)arg;
	counter = 0;
	gx_go(park_once, NULL);
	gx_yield();
	gx_yield();
	CHECK(counter == 1, "counter %llu", (unsigned long long)counter);
	gx_ready(parked);
	gx_yield();
	CHECK(counter == 2, "counter %llu", (unsigned long long)counter);
	return 0;
}

static void t_park(void)
{
	CHECK(gx_run(NULL, park_main, NULL) == 0, "run");
}

static void count_once(void *arg)
{
	(void)arg;
	counter++;
}

static void bump_park(void *arg)
{
	(void)arg;
	counter++;
	gx_park("many");
}

static int many_main(void *arg)
{
	(void)arg;
	/* mprotect guards split a VMA per stack: vm.max_map_count (65530 by
	 * default) caps the stacks near 32,000 (qemu-user has no working
	 * MADV_GUARD_INSTALL) */
	gx_runtime_info info;
	gx_info(&info);
	int alive = strcmp(info.guard, "madvise") == 0 ? 100000 : 20000;
	printf("     %d alive at once (%s guards)\n", alive, info.guard);
	counter = 0;
	for (int i = 0; i < alive; i++)
		if (gx_go(bump_park, NULL) < 1)
			return -1;
	gx_yield();
	CHECK(counter == (uint64_t)alive, "alive %llu", (unsigned long long)counter);
	counter = 0;
	gx_stack_stats before;
	gx_stack_stats_get(&before);
	for (int b = 0; b < 1000; b++) {
		for (int i = 0; i < 1000; i++)
			gx_go(count_once, NULL);
		gx_yield();
	}
	gx_yield();
	gx_stack_stats after;
	gx_stack_stats_get(&after);
	CHECK(counter == 1000000, "ran %llu", (unsigned long long)counter);
	CHECK(after.carved - before.carved <= 1001, "carved %zu more", after.carved - before.carved);
	return 0;
}

static void t_many(void)
{
	gx_config c;
	gx_config_init(&c);
	c.stack_size = 16 * 1024;
	CHECK(gx_run(&c, many_main, NULL) == 0, "run");
}

/* ---- timers ---- */

static int64_t early_by;
static int order[8], norder;
static void sleeper(void *arg)
{
	int i = (int)(intptr_t)arg;
	int64_t deadline = gx_now() + (8 - i) * 3 * GX_MILLISECOND;
	gx_sleep_until(deadline);
	if (gx_now() < deadline && deadline - gx_now() > early_by)
		early_by = deadline - gx_now();
	order[norder++] = i;
}

static int sleep_main(void *arg)
{
	(void)arg;
	norder = 0;
	early_by = 0;
	for (int i = 0; i < 8; i++)
		gx_go(sleeper, (void *)(intptr_t)i);
	gx_sleep(60 * GX_MILLISECOND);
	return 0;
}

static void t_sleep(void)
{
	CHECK(gx_run(NULL, sleep_main, NULL) == 0, "run");
	CHECK(early_by == 0, "woke %lld ns early", (long long)early_by);
	CHECK(norder == 8, "woke %d", norder);
	for (int k = 0; k < norder; k++)
		CHECK(order[k] == 7 - k, "position %d is %d", k, order[k]);
}

static char backend[16], missing[160];
static int info_main(void *arg)
{
	(void)arg;
	gx_runtime_info info;
	if (gx_info(&info) != 0)
		return -1;
	snprintf(backend, sizeof backend, "%s", info.backend);
	snprintf(missing, sizeof missing, "%s", info.missing);
	printf("     arch %s backend %s guard %s flags %s missing %s\n", info.arch, info.backend, info.guard,
	       info.ring_flags_str, info.missing);
	return 0;
}

static void t_backend(void)
{
	CHECK(gx_run(NULL, info_main, NULL) == 0, "run");
	if (strcmp(backend, "epoll") == 0)
		CHECK(strstr(missing, "io_uring") != NULL, "epoll chosen, missing says %s", missing);
	else
		CHECK(strcmp(backend, "io_uring") == 0, "backend %s", backend);
}

/* ---- overflow ---- */

static void t_overflow(void)
{
	char buf[2048];
	int st = gx_scn_run_child(gx_scn_overflow_main, NULL, buf, sizeof buf);
	CHECK(st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "status %#x", st);
	CHECK(strstr(buf, GX_SCN_OVERFLOW_MSG) != NULL, "stderr: %s", buf);
}

/* ---- channels, select, context (portable C over the switch: checked here
 * too because this is what runs on aarch64) ---- */

static gx_chan *pp_ping, *pp_pong;
static void pp_echo(void *arg)
{
	(void)arg;
	uint64_t v;
	bool ok;
	while (gx_chan_recv(pp_ping, &v, &ok, GX_FOREVER) == 0 && ok) {
		v++;
		gx_chan_send(pp_pong, &v, GX_FOREVER);
	}
}

static gx_ctx *cancel_me;
static void cancel_after_yield(void *arg)
{
	(void)arg;
	gx_yield();
	gx_ctx_cancel(cancel_me);
}

static int chan_main(void *arg)
{
	(void)arg;
	gx_chan_make(&pp_ping, 8, 0, 0);
	gx_chan_make(&pp_pong, 8, 0, 0);
	gx_go(pp_echo, NULL);
	uint64_t v = 0;
	for (int i = 0; i < 10000; i++) {
		gx_chan_send(pp_ping, &v, GX_FOREVER);
		gx_chan_recv(pp_pong, &v, NULL, GX_FOREVER);
	}
	CHECK(v == 10000, "pingpong value %llu", (unsigned long long)v);
	gx_chan_close(pp_ping);
	gx_yield();
	gx_chan *b;
	gx_chan_make(&b, 8, 1, 0);
	gx_chan_try_send(b, &v);
	gx_case cs[2] = {{.chan = pp_pong, .op = GX_RECV, .elem = &v}, {.chan = b, .op = GX_RECV, .elem = &v}};
	CHECK(gx_select(cs, 2, GX_FOREVER) == 1, "select picks the ready case");
	gx_ctx_with_cancel(gx_ctx_background(), &cancel_me);
	gx_go(cancel_after_yield, NULL);
	int rc = gx_select(cs, 2, gx_ctx_until(cancel_me));
	CHECK(rc == -ECANCELED, "select ended by its context: %d", rc);
	gx_ctx_release(cancel_me);
	CHECK(gx_chan_recv(b, &v, NULL, gx_timeout(GX_MILLISECOND)) == -ETIMEDOUT, "deadline");
	gx_chan_free(b);
	gx_chan_free(pp_ping);
	gx_chan_free(pp_pong);
	return 0;
}

static void t_chan(void)
{
	CHECK(gx_run(NULL, chan_main, NULL) == 0, "run");
}

/* I/O on whichever backend runs here (epoll under qemu-user) */
static void io_echo(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char b[16];
	ssize_t n = gx_recv(fd, b, sizeof b, 0, GX_FOREVER);
	if (n > 0)
		gx_send(fd, b, (size_t)n, 0, GX_FOREVER);
}

static int io_main(void *arg)
{
	(void)arg;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		return -1;
	char b[16] = {0};
	CHECK(gx_recv(sv[0], b, sizeof b, 0, gx_timeout(2 * GX_MILLISECOND)) == -ETIMEDOUT, "recv deadline");
	gx_go(io_echo, (void *)(intptr_t)sv[1]);
	CHECK(gx_send(sv[0], "ping", 4, 0, GX_FOREVER) == 4, "send");
	CHECK(gx_recv(sv[0], b, sizeof b, 0, GX_FOREVER) == 4 && memcmp(b, "ping", 4) == 0, "echoed: %s", b);
	CHECK(gx_close(sv[0]) == 0 && gx_close(sv[1]) == 0, "close");
	return 0;
}

static void t_io(void)
{
	CHECK(gx_run(NULL, io_main, NULL) == 0, "run");
}

/* ---- shared memory: the ring and pools across processes ---- */

#define SHM_N 200000

static void t_shm_ring(void)
{
	gx_arena_opts o;
	gx_arena_opts_init(&o);
	o.size = (size_t)16 << 20;
	o.tier = GX_MEM_4K;
	gx_arena *a;
	CHECK(gx_arena_create(&a, &o) == 0, "arena");
	if (!a)
		return;
	gx_ring *r;
	CHECK(gx_ring_create(a, &r, 256, 8, 0) == 0, "ring");
	pid_t c = fork();
	if (c == 0) {
		/* producer: singles, batches and chunks */
		uint64_t v = 0, b[16];
		while (v < SHM_N) {
			if (v % 3 == 0) {
				if (gx_ring_send(r, &v, 8, GX_FOREVER) != 0)
					_exit(2);
				v++;
			} else if (v % 3 == 1) {
				int k = 0;
				while (k < 16 && v + (uint64_t)k < SHM_N)
					b[k] = v + (uint64_t)k, k++;
				int n = gx_ring_send_batch(r, b, (size_t)k, GX_FOREVER);
				if (n <= 0)
					_exit(3);
				v += (uint64_t)n;
			} else {
				int64_t ck = gx_pool_alloc(a, 256, -1);
				if (ck < 0)
					_exit(4);
				memcpy(gx_arena_ptr(a, (gx_off)ck, 8), &v, 8);
				if (gx_ring_send_chunk(r, (gx_off)ck, 256, GX_FOREVER) != 0)
					_exit(5);
				v++;
			}
		}
		_exit(0);
	}
	uint64_t sum = 0, got = 0;
	int bad = 0;
	while (got < SHM_N && !bad) {
		uint64_t v;
		gx_off ck = 0;
		ssize_t n = gx_ring_recv(r, &v, 8, &ck, gx_timeout(10 * GX_SECOND));
		if (n < 0) {
			bad = (int)n;
			break;
		}
		if (ck) {
			memcpy(&v, gx_arena_ptr(a, ck, 8), 8);
			bad = gx_pool_free(a, ck);
		}
		sum += v;
		got++;
	}
	int st = 0;
	waitpid(c, &st, 0);
	CHECK(bad == 0, "receive: %d", bad);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "producer status %d", st);
	CHECK(sum == (uint64_t)SHM_N * (SHM_N - 1) / 2, "sum %llu", (unsigned long long)sum);
	gx_pool_class_stats ps;
	gx_pool_stats(a, 0, 2, &ps); /* 256 B */
	CHECK(ps.in_use == 0, "chunks in use: %llu", (unsigned long long)ps.in_use);
	gx_arena_destroy(a);
}

/* a coroutine blocked on a ring while another process sends: on qemu-user
 * there is no io_uring, so this is the epoll backend's timed re-checks */
static gx_ring *co_ring;
static int shm_co_main(void *arg)
{
	(void)arg;
	uint64_t v = 0;
	ssize_t n = gx_ring_recv(co_ring, &v, 8, NULL, gx_timeout(10 * GX_SECOND));
	return n == 8 && v == 42 ? 0 : 1;
}

static void t_shm_coroutine(void)
{
	gx_arena_opts o;
	gx_arena_opts_init(&o);
	o.size = (size_t)8 << 20;
	o.tier = GX_MEM_4K;
	o.spin_ns = 0;
	gx_arena *a;
	CHECK(gx_arena_create(&a, &o) == 0, "arena");
	if (!a)
		return;
	CHECK(gx_ring_create(a, &co_ring, 16, 8, 0) == 0, "ring");
	pid_t c = fork();
	if (c == 0) {
		usleep(50000);
		uint64_t v = 42;
		_exit(gx_ring_send(co_ring, &v, 8, GX_FOREVER) == 0 ? 0 : 1);
	}
	CHECK(gx_run(NULL, shm_co_main, NULL) == 0, "the coroutine got the value");
	int st = 0;
	waitpid(c, &st, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "sender status %d", st);
	gx_arena_destroy(a);
}

/* two worker processes run tasks; results come back through futures */
static int sq_task(const void *arg, size_t len, gx_task_result *res)
{
	uint64_t x;
	if (len != 8)
		return -EINVAL;
	memcpy(&x, arg, 8);
	x *= x;
	gx_task_return(res, &x, 8);
	return gx_worker_id();
}

static int par_main(void *arg)
{
	(void)arg;
	gx_future f[64];
	for (uint64_t i = 0; i < 64; i++)
		if (gx_go_parallel(&f[i], sq_task, &i, 8, NULL) != 0)
			return 1;
	int bad = 0;
	for (uint64_t i = 0; i < 64; i++) {
		uint64_t y = 0;
		int rc = gx_future_get(f[i], &y, 8, NULL, gx_timeout(30 * GX_SECOND));
		bad += rc < 0 || rc > 1 || y != i * i;
	}
	return bad;
}

static void t_parallel(void)
{
	gx_config c;
	gx_config_init(&c);
	c.workers = 2;
	c.shm_size = (size_t)16 << 20;
	c.hugepages = 3;
	CHECK(gx_run(&c, par_main, NULL) == 0, "64 tasks on 2 workers");
	CHECK(waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD, "no child left");
}

/* breakers, figures and the coroutine dump (its frame walk is per arch) */
static int fail_task(const void *arg, size_t len, gx_task_result *res)
{
	(void)arg;
	(void)len;
	(void)res;
	return -EIO;
}

static gx_chan *obs_ch;
static int obs_rc[6];
static char obs_dump[16384];

static void obs_parked(void *arg)
{
	(void)arg;
	gx_chan_recv(obs_ch, NULL, NULL, GX_FOREVER);
}

static int obs_main(void *arg)
{
	(void)arg;
	gx_breaker_opts o = GX_BREAKER_OPTS_INIT;
	o.failures = 2;
	gx_breaker *b;
	obs_rc[0] = gx_breaker_make(&b, "arch", &o);
	gx_par_opts po = GX_PAR_OPTS_INIT;
	po.breaker = b;
	po.name = "fail";
	for (int i = 0; i < 3; i++) {
		gx_future f;
		gx_go_parallel(&f, fail_task, NULL, 0, &po);
		obs_rc[1 + i] = gx_future_get(f, NULL, 0, NULL, gx_timeout(30 * GX_SECOND));
	}
	static gx_stats s;
	gx_stats_snapshot(&s);
	obs_rc[4] = s.nfn == 1 && s.fn[0].count == 2 && s.fn[0].errors == 2 && s.fn[0].rejected == 1;
	gx_chan_make(&obs_ch, 0, 0, 0);
	gx_go_opts go = {.stack_size = 0, .name = "obs"};
	gx_go_with(obs_parked, NULL, &go);
	gx_yield();
	int fd = memfd_create("dump", 0);
	obs_rc[5] = gx_coro_dump(fd);
	ssize_t n = pread(fd, obs_dump, sizeof obs_dump - 1, 0);
	obs_dump[n > 0 ? n : 0] = 0;
	close(fd);
	gx_chan_close(obs_ch);
	gx_yield();
	gx_chan_free(obs_ch);
	return 0;
}

static void t_observe(void)
{
	gx_config c;
	gx_config_init(&c);
	c.workers = 2;
	c.shm_size = (size_t)16 << 20;
	c.hugepages = 3;
	CHECK(gx_run(&c, obs_main, NULL) == 0, "run");
	CHECK(obs_rc[0] == 0, "breaker made: %d", obs_rc[0]);
	CHECK(obs_rc[1] == -EIO && obs_rc[2] == -EIO, "two failures: %d %d", obs_rc[1], obs_rc[2]);
	CHECK(obs_rc[3] == -EBUSY, "then open: %d", obs_rc[3]);
	CHECK(obs_rc[4], "the figures count two runs, two errors, one refusal");
	CHECK(obs_rc[5] >= 2, "dumped %d", obs_rc[5]);
	const char *p = strstr(obs_dump, "\"obs\" parked: chan receive\n  #0 0x");
	CHECK(p && strstr(p, "\n  #1 0x"), "a parked coroutine with its frames: %s", obs_dump);
	CHECK(waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD, "no child left");
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	run("switch preserves callee-saved registers, entry sp aligned", t_registers);
	run("switch keeps the FP control state per coroutine", t_fp_env);
	run("yield round-robins", t_yield);
	run("park until ready", t_park);
	run("many alive, 1,000,000 in sequence with stack reuse", t_many);
	run("sleeps never early, in deadline order", t_sleep);
	run("backend chosen and reported", t_backend);
	run("stack overflow reported, then abort", t_overflow);
	run("channels, select and a context", t_chan);
	run("socket I/O with a deadline", t_io);
	run("shared memory: ring and pools across processes", t_shm_ring);
	run("shared memory: a coroutine sleeps on a ring", t_shm_coroutine);
	run("worker processes run tasks", t_parallel);
	run("breaker, figures and coroutine dump", t_observe);
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
