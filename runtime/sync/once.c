/* Once: run a function exactly once; later callers wait until it returned. */
#include <errno.h>

#include "core/wait.h"

#include <gonex/sync.h>

enum { GX_ONCE_NEW = 0, GX_ONCE_RUNNING, GX_ONCE_DONE };

typedef struct {
	uint32_t state;
	gx_co *runner;
	gx_waitq waiters;
} gx_once_impl;
_Static_assert(sizeof(gx_once_impl) <= sizeof(gx_once), "gx_once storage");

int gx_once_do(gx_once *once, void (*fn)(void *), void *arg)
{
	gx_once_impl *o = (gx_once_impl *)once;
	if (!once || !fn)
		return -EINVAL;
	if (o->state == GX_ONCE_DONE)
		return 0;
	gx_co *self = gx_co_current();
	if (o->state == GX_ONCE_RUNNING) {
		if (self == o->runner)
			return -EDEADLK;
		gx_wq_node n;
		int rc = gx_wait_in(&o->waiters, &n, GX_FOREVER, "once");
		return rc < 0 ? rc : 0;
	}
	o->state = GX_ONCE_RUNNING;
	o->runner = self;
	fn(arg);
	o->state = GX_ONCE_DONE;
	o->runner = NULL;
	gx_waitq_wake_all(&o->waiters);
	return 0;
}
