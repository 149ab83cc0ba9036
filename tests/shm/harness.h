/*
 * Shared by the shm suites. How they work:
 *  - every test makes its own arena (the GONEX_* variables that would change
 *    it are cleared first, except where a test is about them);
 *  - children are forked with fork_child(): they die with the test process
 *    (PR_SET_PDEATHSIG), never call cr_* (they report through their exit
 *    status and a line on stderr) and end with _exit; the parent reaps every
 *    one with reap(), which kills a child that outlives its bound and says
 *    so (a hang is a failure, never a timing assertion);
 *  - bookkeeping that children share with the parent (who sent what, who
 *    got what) lives in a MAP_SHARED mapping of its own, outside the arena,
 *    so that a test scribbling over the arena cannot rewrite the evidence;
 *  - pool counters are summed over every node the arena has.
 */
#ifndef GX_TEST_SHM_HARNESS_H
#define GX_TEST_SHM_HARNESS_H

#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gonex/gonex.h>

#define MiB ((size_t)1 << 20)

static inline void clear_shm_env(void)
{
	unsetenv("GONEX_SHM_SIZE");
	unsetenv("GONEX_HUGEPAGES");
	unsetenv("GONEX_SPIN_NS");
}

static inline gx_arena *new_arena_with(size_t size, gx_mem_tier tier, int64_t spin_ns)
{
	clear_shm_env();
	gx_arena_opts o;
	gx_arena_opts_init(&o);
	o.size = size;
	o.tier = tier;
	o.spin_ns = spin_ns;
	gx_arena *a = NULL;
	int rc = gx_arena_create(&a, &o);
	cr_assert_eq(rc, 0, "gx_arena_create(%zu bytes, tier %d): %s", size, (int)tier, strerror(-rc));
	cr_assert_not_null(a);
	return a;
}

/* The best tier that works (hugetlb when tests/run.sh reserved pages). */
static inline gx_arena *new_arena(size_t size)
{
	return new_arena_with(size, GX_MEM_AUTO, -1);
}

/* ---- children ---- */

/* Fork a child that is killed when the test process ends. */
static inline pid_t fork_child(void)
{
	pid_t parent = getpid();
	fflush(NULL);
	pid_t pid = fork();
	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(120);
	}
	return pid;
}

/* In a child: fork a grandchild that dies with it (no cr_* here). */
static inline pid_t fork_grandchild(void)
{
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(120);
	}
	return pid;
}

/* In a child: report a failure on stderr and exit with code. */
__attribute__((format(printf, 2, 3), noreturn)) static inline void child_fail(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "child %d: ", (int)getpid());
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	_exit(code);
}

#define CHILD_CHECK(cond, code, ...) \
	do { \
		if (!(cond)) \
			child_fail(code, __VA_ARGS__); \
	} while (0)

static inline void nap_us(long us)
{
	struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Reap pid, waiting at most bound_s seconds (then SIGKILL it). The status,
 * or -1 when it had to be killed. */
static inline int reap(pid_t pid, int bound_s)
{
	int64_t end = gx_now() + (int64_t)bound_s * GX_SECOND;
	int st = 0;
	for (;;) {
		pid_t w = waitpid(pid, &st, WNOHANG);
		if (w == pid)
			return st;
		cr_assert(w == 0 || errno == EINTR, "waitpid(%d): %s", (int)pid, strerror(errno));
		if (gx_now() > end) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			return -1;
		}
		nap_us(200);
	}
}

static inline const char *status_str(int st, char *buf, size_t n)
{
	if (st == -1)
		snprintf(buf, n, "hung (killed by the test)");
	else if (WIFEXITED(st))
		snprintf(buf, n, "exit code %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(buf, n, "killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
	else
		snprintf(buf, n, "status %#x", st);
	return buf;
}

/* Reap pid and expect a clean exit. */
static inline bool expect_clean_exit(pid_t pid, int bound_s, const char *what)
{
	int st = reap(pid, bound_s);
	char b[96];
	bool ok = st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
	cr_expect(ok, "%s (pid %d): %s", what, (int)pid, status_str(st, b, sizeof b));
	return ok;
}

/* ---- memory shared with children, outside the arena ---- */

static inline void *shared_map(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(p, MAP_FAILED, "mmap: %s", strerror(errno));
	return p;
}

/* ---- pool counters over every node ---- */

static inline gx_pool_class_stats class_sum(const gx_arena *a, int cls)
{
	gx_pool_class_stats s = {0};
	for (int n = 0; n < GX_SHM_MAX_NODES; n++) {
		gx_pool_class_stats t;
		if (gx_pool_stats(a, n, cls, &t) != 0)
			continue;
		s.chunk_size = t.chunk_size;
		s.allocs += t.allocs;
		s.frees += t.frees;
		s.bad_frees += t.bad_frees;
		s.chunks += t.chunks;
		s.in_use += t.in_use;
	}
	return s;
}

static inline uint64_t in_use_total(const gx_arena *a)
{
	uint64_t n = 0;
	for (int c = 0; c < GX_POOL_CLASSES; c++)
		n += class_sum(a, c).in_use;
	return n;
}

/* The class a request of len bytes lands in. */
static inline int class_of(size_t len)
{
	int c = 0;
	while (((size_t)64 << c) < len)
		c++;
	return c;
}

/* ---- a seeded generator (xorshift64*), so a failure can be replayed ---- */

static inline uint64_t rnd(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1Dull;
}

static inline uint64_t seed_from(uint64_t a, uint64_t b)
{
	uint64_t s = a * 0x9E3779B97F4A7C15ull ^ (b + 0x632BE59BD9B4E019ull);
	return s ? s : 1;
}

static inline gx_until secs(int s)
{
	return gx_timeout((int64_t)s * GX_SECOND);
}

#endif
