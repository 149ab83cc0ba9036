/* WaitGroup: a counter and the coroutines waiting for it to reach 0. */
#include <errno.h>

#include "core/wait.h"

#include <gonex/sync.h>

typedef struct {
	int64_t count;
	gx_waitq waiters;
} gx_wg_impl;
_Static_assert(sizeof(gx_wg_impl) <= sizeof(gx_wg), "gx_wg storage");

int gx_wg_add(gx_wg *wg, int64_t delta)
{
	gx_wg_impl *w = (gx_wg_impl *)wg;
	if (!wg)
		return -EINVAL;
	if (delta < 0 ? delta == INT64_MIN || w->count < -delta : w->count > INT64_MAX - delta)
		return -ERANGE;
	w->count += delta;
	if (w->count == 0)
		gx_waitq_wake_all(&w->waiters);
	return 0;
}

int gx_wg_done(gx_wg *wg)
{
	return gx_wg_add(wg, -1);
}

int gx_wg_wait(gx_wg *wg, gx_until u)
{
	gx_wg_impl *w = (gx_wg_impl *)wg;
	if (!wg)
		return -EINVAL;
	if (w->count == 0)
		return 0;
	gx_wq_node n;
	return gx_wait_in(&w->waiters, &n, u, "waitgroup");
}
