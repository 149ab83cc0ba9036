/*
 * The wait core: deadline and context clauses around a park.
 *
 * A wait is: the caller's clauses (already enlisted), plus a timer node for
 * the deadline and a node among the context's waiters, all on this stack;
 * then one park. Whoever fires first (a waker through gx_wake, the timer,
 * the context's cancellation) sets w->fired and readies the coroutine; the
 * others find w->fired set and skip. After the park every extra clause is
 * removed here, and the caller removes its own.
 *
 * Invariants: w->fired goes from GX_FIRED_NONE to a final value exactly
 * once, and gx_ready is called exactly then; no node of this wait is linked
 * anywhere once gx_wait and the caller's unlinks returned.
 *
 * Contexts live in runtime/sync (above core); they reach the core through
 * gx_ctx_hooks, registered at start-up.
 */
#include "core/wait.h"

#include <errno.h>

#include "core/panic.h"
#include "core/timer.h"

static gx_ctx_hooks gx_ctx_hook;

void gx_wait_set_ctx_hooks(const gx_ctx_hooks *h)
{
	gx_ctx_hook = *h;
}

int gx_until_err(gx_until u, int64_t now)
{
	if (u.ctx && gx_ctx_hook.err) {
		int e = gx_ctx_hook.err(u.ctx);
		if (e)
			return e;
	}
	if (u.deadline >= 0 && now >= u.deadline)
		return -ETIMEDOUT;
	return 0;
}

static void gx_wait_timeout_fire(gx_tnode *t)
{
	gx_waiter *w = t->data;
	if (w->fired != GX_FIRED_NONE)
		return;
	w->fired = GX_FIRED_TIMEOUT;
	gx_ready(w->co);
}

int gx_wait_slow(gx_waiter *w, gx_until u, const char *reason)
{
	gx_wq_node cn = {.w = w, .idx = GX_FIRED_CTX, .elem = u.ctx};
	gx_tnode t = {.when = u.deadline, .fn = gx_wait_timeout_fire, .data = w};
	if (u.ctx) {
		int e = gx_ctx_hook.enlist ? gx_ctx_hook.enlist(u.ctx, &cn) : -EINVAL;
		if (e < 0)
			return e;
	}
	if (u.deadline >= 0) {
		int rc = u.deadline <= gx_clock_now() ? -ETIMEDOUT : gx_theap_add(&t);
		if (rc < 0) { /* -ENOMEM must not read as an early timeout */
			if (u.ctx)
				gx_ctx_hook.delist(u.ctx, &cn);
			return rc;
		}
	}
	w->co->waiter = w;
	gx_park(reason);
	w->co->waiter = NULL;
	if (u.deadline >= 0)
		gx_theap_del(&t);
	int rc = w->fired;
	if (rc == GX_FIRED_TIMEOUT)
		rc = -ETIMEDOUT;
	else if (rc == GX_FIRED_CTX && (rc = gx_ctx_hook.err(u.ctx)) == 0)
		gx_panic("wait", "context fired while alive");
	if (u.ctx) /* last: a context stays alive while it has waiters */
		gx_ctx_hook.delist(u.ctx, &cn);
	return rc;
}

void gx_wait_abandon(gx_co *co)
{
	gx_waiter *w = co->waiter;
	if (!w)
		return;
	for (gx_wq_node *n = w->nodes; n; n = n->wnext) {
		if (n->idx == GX_FIRED_CTX)
			gx_ctx_hook.delist(n->elem, n); /* unlinks, drops the reference */
		else
			gx_waitq_unlink(n->q, n);
	}
	co->waiter = NULL;
}

int gx_wait_until(gx_until u, const char *reason)
{
	gx_waiter w;
	gx_waiter_init(&w, gx_co_current());
	return gx_wait(&w, u, reason);
}
