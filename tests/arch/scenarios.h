/*
 * Scenarios shared by the Criterion suites and the plain runner (which runs
 * where Criterion cannot: qemu-user). Each returns what it observed; the
 * caller asserts in its own framework.
 */
#ifndef GX_TEST_SCENARIOS_H
#define GX_TEST_SCENARIOS_H

#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testing.h"

/* ---- yield: two coroutines and main yield in turn ---- */

static char gx_scn_trace[64];
static int gx_scn_ntrace;

static inline void gx_scn_yielder(void *arg)
{
	for (int i = 0; i < 3; i++) {
		gx_scn_trace[gx_scn_ntrace++] = *(char *)arg;
		gx_yield();
	}
}

static inline int gx_scn_yield_main(void *arg)
{
	(void)arg;
	gx_scn_ntrace = 0;
	gx_go(gx_scn_yielder, "a");
	gx_go(gx_scn_yielder, "b");
	for (int i = 0; i < 5; i++)
		gx_yield();
	gx_scn_trace[gx_scn_ntrace] = 0;
	return 9;
}

/* Run it: returns gx_run's result (9), the order of turns in gx_scn_trace
 * ("bababa": the newest spawn runs first, then strict round robin). */
static inline int gx_scn_yield(void)
{
	return gx_run(NULL, gx_scn_yield_main, NULL);
}

/* ---- overflow: a coroutine named "runaway" recurses off its 16 KiB stack ---- */

#define GX_SCN_OVERFLOW_MSG "gonex: coroutine 2 (runaway) overflowed its 16 KiB stack"

static volatile int gx_scn_recurse_limit = 1 << 30;
static inline int gx_scn_recurse(int n)
{
	volatile char pad[256];
	pad[0] = (char)n;
	if (n >= gx_scn_recurse_limit)
		return n;
	return n + gx_scn_recurse(n + 1) + pad[0];
}

static inline void gx_scn_overflow_entry(void *arg)
{
	(void)arg;
	gx_scn_recurse(0);
}

static inline int gx_scn_overflow_main(void *arg)
{
	(void)arg;
	gx_go_opts o = {.stack_size = 16 * 1024, .name = "runaway"};
	gx_go_with(gx_scn_overflow_entry, NULL, &o);
	gx_yield();
	return 0;
}

/* Run gx_run(NULL, main_fn) in a child with GONEX_GUARD=guard (unless
 * NULL), no core file, stderr captured into buf. Returns the wait status,
 * -1 if the child could not be run. */
static inline int gx_scn_run_child(gx_main_fn main_fn, const char *guard, char *buf, size_t len)
{
	int fds[2];
	if (pipe(fds) != 0)
		return -1;
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		dup2(fds[1], 2);
		close(fds[0]);
		if (guard)
			setenv("GONEX_GUARD", guard, 1);
		struct rlimit rl = {0, 0};
		setrlimit(RLIMIT_CORE, &rl);
		gx_run(NULL, main_fn, NULL);
		_exit(0);
	}
	close(fds[1]);
	size_t n = 0;
	ssize_t r;
	while (n < len - 1 && (r = read(fds[0], buf + n, len - 1 - n)) > 0)
		n += (size_t)r;
	buf[n] = 0;
	close(fds[0]);
	int st;
	return waitpid(pid, &st, 0) == pid ? st : -1;
}

#endif
