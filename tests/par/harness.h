/*
 * Shared by the par suites: what a test in the main process may read of a
 * worker, and how it signals one.
 *
 * kill_pid refuses anything but a positive pid: a pid read from the
 * runtime while a slot is being replaced may be 0, and kill(0, ...) or
 * kill(-1, ...) would reach the test runner's group or, as root, every
 * process of the machine.
 */
#ifndef GX_TEST_PAR_HARNESS_H
#define GX_TEST_PAR_HARNESS_H

#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <gonex/gonex.h>

/* Worker i as the figures show it (all zero when they cannot be read). */
static inline gx_stats_worker worker_info(int i)
{
	static gx_stats *snap;
	gx_stats_worker w;
	memset(&w, 0, sizeof w);
	if (!snap)
		snap = calloc(1, sizeof *snap);
	if (snap && i >= 0 && i < GX_MAX_WORKERS && gx_stats_snapshot(snap) == 0)
		w = snap->w[i];
	return w;
}

/* Taking tasks (state ready). */
static inline bool worker_active(const gx_stats_worker *w)
{
	return w->state == 2;
}

static inline int kill_pid(int pid, int sig)
{
	return pid > 0 ? kill(pid, sig) : -1;
}

/* A zeroed page (or more) that the workers forked later share with the
 * test: how tasks report what they saw. */
static inline void *shared_page(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(p, MAP_FAILED, "mmap: %s", strerror(errno));
	memset(p, 0, size);
	return p;
}

/* The defaults with n workers. */
static inline gx_config workers_config(int n)
{
	gx_config c;
	gx_config_init(&c);
	c.workers = n;
	return c;
}

#endif
