/*
 * The wait core: deadline and context clauses around a park.
 *
 * A wait is: the caller's clauses (already enlisted), plus the deadline
 * and a node among the context's waiters (on this stack); then one park.
 * Whoever fires first (a waker through gx_wake, the deadline timer, the
 * context's cancellation) sets w->fired and readies the coroutine; the
 * others find w->fired set and skip. After the park every extra clause is
 * removed here, and the caller removes its own.
 *
 * The deadline: one timer per coroutine (co->tn), armed lazily. A wait
 * sets co->due and its place among equal deadlines (co->due_seq), and
 * touches the heap only when the timer is not armed or armed later than
 * due; after the park the timer stays armed. When it fires early (the
 * coroutine waits for a later deadline now, or not at all), it re-arms at
 * due, at due's place, or stays off. A connection that waits again and
 * again with a deadline that moves later (an idle limit) so costs a heap
 * operation per expiry, not two per wait; and since a re-armed timer keeps
 * the place its wait was given, timers still fire in exactly the order
 * they would with a timer per wait.
 *
 * Invariants: w->fired goes from GX_FIRED_NONE to a final value exactly
 * once, and gx_ready is called exactly then; no node of this wait is linked
 * anywhere once gx_wait and the caller's unlinks returned; co->due >= 0
 * only while the coroutine is in a wait with a deadline, and then co->tn
 * is armed at or before due (or the wait is being fired).
 *
 * Rejected: a timer node per wait on the waiting stack (an add and a
 * delete per wait: the heap was a tenth of a served request's
 * instructions); updating the armed timer's key in place at every wait
 * (a sift per wait for nothing, most waits end before their deadline).
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

/* co's timer is due (t->when <= now): fire its wait, re-arm for a later
 * due, or stay off when it waits for no deadline. */
static void gx_wait_timeout_fire(gx_tnode *t)
{
	gx_co *co = t->data;
	gx_waiter *w = co->waiter;
	if (co->due < 0 || !w || w->fired != GX_FIRED_NONE)
		return;
	if (co->due > t->when) {
		t->when = co->due;
		if (gx_theap_add_seq(t, co->due_seq) == 0)
			return; /* fires in the same pass if due has passed too */
		/* no memory to re-arm: end the wait now rather than never */
	}
	w->fired = GX_FIRED_TIMEOUT;
	gx_ready(co);
}

/* Make sure co's timer fires by due (at due's place). 0 or -ENOMEM. */
static int gx_wait_arm(gx_co *co, int64_t due)
{
	co->due_seq = gx_theap_seq();
	if (co->tn.idx) {
		if (co->tn.when < due)
			return 0; /* fires early, then re-arms at due */
		gx_theap_del(&co->tn);
	}
	co->tn.when = due;
	co->tn.fn = gx_wait_timeout_fire;
	co->tn.data = co;
	return gx_theap_add_seq(&co->tn, co->due_seq);
}

int gx_wait_slow(gx_waiter *w, gx_until u, const char *reason)
{
	gx_wq_node cn = {.w = w, .idx = GX_FIRED_CTX, .elem = u.ctx};
	gx_co *co = w->co;
	if (u.ctx) {
		int e = gx_ctx_hook.enlist ? gx_ctx_hook.enlist(u.ctx, &cn) : -EINVAL;
		if (e < 0)
			return e;
	}
	if (u.deadline >= 0) {
		/* surely passed: the last turn's clock already read past it
		 * (one that passed since fires at the next turn) */
		int rc = u.deadline <= gx_theap_last_now() ? -ETIMEDOUT : gx_wait_arm(co, u.deadline);
		if (rc < 0) { /* -ENOMEM must not read as an early timeout */
			if (u.ctx)
				gx_ctx_hook.delist(u.ctx, &cn);
			return rc;
		}
		co->due = u.deadline;
	}
	co->waiter = w;
	gx_park(reason);
	co->waiter = NULL;
	co->due = -1; /* the timer stays armed: a later wait may use it */
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
	co->due = -1;
	gx_theap_del(&co->tn);
}

int gx_wait_until(gx_until u, const char *reason)
{
	gx_waiter w;
	gx_waiter_init(&w, gx_co_current());
	return gx_wait(&w, u, reason);
}
