/*
 * Contexts.
 *
 * What: a tree of gx_ctx nodes. A cancellable node owns a done channel
 * (capacity 0, element size 0, on its own storage) that cancellation
 * closes; a value node delegates done and err to its nearest cancellable
 * ancestor. Cancellation walks the subtree depth-first and closes every
 * done channel in it before returning.
 *
 * Lifetime: refs counts the creator's handle (until gx_ctx_release), each
 * gx_ctx_retain (until gx_ctx_put), each child, and each coroutine waiting
 * with this context (enlisted by the wait core). The node is freed when
 * refs reaches 0, and then drops its reference on its parent.
 *
 * Waits: the wait core enlists a receive node on the done channel of the
 * nearest cancellable ancestor, so closing that channel fires the waiter
 * with GX_FIRED_CTX, and a select on gx_ctx_done() works the same way.
 *
 * Invariants: err goes from 0 to -ECANCELED or -ETIMEDOUT once; a
 * cancelled node's children are all cancelled; a freed node is in no
 * children list and has no armed timer.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "core/list.h"
#include "core/timer.h"
#include "core/wait.h"
#include "sync/chan.h"
#include "sync/sync.h"

#include <gonex/context.h>

enum { GX_CTX_BACKGROUND, GX_CTX_CANCEL, GX_CTX_VALUE };

struct gx_ctx {
	gx_ctx *parent;
	gx_ctx *children; /* first child; siblings through next/prev */
	gx_ctx *next, *prev;
	int kind;
	int refs;
	int err;
	int cause;
	int64_t deadline;
	const void *key;
	void *value;
	gx_tnode timer;
	gx_chan done;
};

static gx_ctx gx_ctx_bg = {.kind = GX_CTX_BACKGROUND, .refs = 1, .deadline = -1};

gx_ctx *gx_ctx_background(void)
{
	return &gx_ctx_bg;
}

/* The node whose done channel and err speak for ctx (NULL: never ends). */
static gx_ctx *gx_ctx_owner(gx_ctx *ctx)
{
	while (ctx && ctx->kind == GX_CTX_VALUE)
		ctx = ctx->parent;
	return ctx && ctx->kind == GX_CTX_CANCEL ? ctx : NULL;
}

static void gx_ctx_unref(gx_ctx *c)
{
	while (c && c->kind != GX_CTX_BACKGROUND && --c->refs == 0) {
		gx_ctx *p = c->parent;
		if (p->kind != GX_CTX_BACKGROUND)
			GX_LIST_UNLINK(&p->children, c, next, prev);
		gx_theap_del(&c->timer);
		free(c);
		c = p;
	}
}

/* Cancel c itself; false when its subtree needs no visit (a cancellable
 * node cancelled earlier has its whole subtree cancelled). */
static bool gx_ctx_mark(gx_ctx *c, int err, int cause)
{
	if (c->kind != GX_CTX_CANCEL)
		return true;
	if (c->err)
		return false;
	c->err = err;
	c->cause = cause;
	gx_theap_del(&c->timer);
	gx_chan_close_now(gx_chan_impl_of(&c->done));
	return true;
}

/* Pre-order walk of root's subtree without recursion (trees may be deep:
 * a chain of thousands of contexts must not overflow a coroutine stack). */
static void gx_ctx_cancel_tree(gx_ctx *root, int err, int cause)
{
	if (!gx_ctx_mark(root, err, cause))
		return;
	gx_ctx *c = root->children;
	while (c) {
		if (gx_ctx_mark(c, err, cause) && c->children) {
			c = c->children;
			continue;
		}
		while (c != root && !c->next)
			c = c->parent;
		if (c == root)
			break;
		c = c->next;
	}
}

static void gx_ctx_deadline_fire(gx_tnode *t)
{
	gx_ctx *c = t->data;
	gx_ctx_cancel_tree(c, -ETIMEDOUT, -ETIMEDOUT);
}

static int gx_ctx_new(gx_ctx *parent, int kind, gx_ctx **out)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!parent)
		return -EINVAL;
	gx_ctx *c = calloc(1, sizeof *c);
	if (!c)
		return -ENOMEM;
	c->kind = kind;
	c->refs = 1;
	c->parent = parent;
	c->deadline = parent->deadline;
	c->timer.data = c;
	c->timer.fn = gx_ctx_deadline_fire;
	if (kind == GX_CTX_CANCEL) {
		gx_chan_init(&c->done, 0, 0, NULL, 0);
		gx_chan_impl_of(&c->done)->flags |= GX_CHAN_F_DONE;
	}
	if (parent->kind != GX_CTX_BACKGROUND) {
		parent->refs++;
		GX_LIST_PUSH(&parent->children, c, next, prev);
	}
	gx_ctx *owner = gx_ctx_owner(parent);
	if (kind == GX_CTX_CANCEL && owner && owner->err)
		gx_ctx_cancel_tree(c, owner->err, owner->cause);
	*out = c;
	return 0;
}

int gx_ctx_with_cancel(gx_ctx *parent, gx_ctx **out)
{
	return gx_ctx_new(parent, GX_CTX_CANCEL, out);
}

int gx_ctx_with_deadline(gx_ctx *parent, int64_t deadline, gx_ctx **out)
{
	if (!gx_sched_active()) {
		if (out)
			*out = NULL;
		return -EPERM;
	}
	int rc = gx_ctx_new(parent, GX_CTX_CANCEL, out);
	if (rc < 0)
		return rc;
	gx_ctx *c = *out;
	if (c->deadline >= 0 && c->deadline <= deadline)
		return 0; /* the parent's deadline comes first */
	c->deadline = deadline;
	if (c->err)
		return 0; /* born cancelled with its parent */
	if (deadline <= gx_clock_now()) {
		gx_ctx_cancel_tree(c, -ETIMEDOUT, -ETIMEDOUT);
		return 0;
	}
	c->timer.when = deadline;
	if (gx_theap_add(&c->timer) < 0) {
		gx_ctx_release(c);
		*out = NULL;
		return -ENOMEM;
	}
	return 0;
}

int gx_ctx_with_timeout(gx_ctx *parent, int64_t ns, gx_ctx **out)
{
	return gx_ctx_with_deadline(parent, gx_time_after(ns), out);
}

int gx_ctx_with_value(gx_ctx *parent, const void *key, void *value, gx_ctx **out)
{
	int rc = gx_ctx_new(parent, GX_CTX_VALUE, out);
	if (rc == 0) {
		(*out)->key = key;
		(*out)->value = value;
	}
	return rc;
}

int gx_ctx_cancel_cause(gx_ctx *ctx, int cause)
{
	if (!ctx || ctx->kind != GX_CTX_CANCEL || cause > 0)
		return -EINVAL;
	gx_ctx_cancel_tree(ctx, -ECANCELED, cause ? cause : -ECANCELED); /* Go: cancel(nil) */
	return 0;
}

int gx_ctx_cancel(gx_ctx *ctx)
{
	return gx_ctx_cancel_cause(ctx, -ECANCELED);
}

int gx_ctx_err(gx_ctx *ctx)
{
	gx_ctx *o = gx_ctx_owner(ctx);
	return o ? o->err : 0;
}

int gx_ctx_cause(gx_ctx *ctx)
{
	gx_ctx *o = gx_ctx_owner(ctx);
	return o ? o->cause : 0;
}

gx_chan *gx_ctx_done(gx_ctx *ctx)
{
	gx_ctx *o = gx_ctx_owner(ctx);
	return o ? &o->done : NULL;
}

void *gx_ctx_value(gx_ctx *ctx, const void *key)
{
	for (; ctx; ctx = ctx->parent)
		if (ctx->kind == GX_CTX_VALUE && ctx->key == key)
			return ctx->value;
	return NULL;
}

int64_t gx_ctx_deadline(gx_ctx *ctx)
{
	return ctx ? ctx->deadline : -1;
}

void gx_ctx_release(gx_ctx *ctx)
{
	if (!ctx || ctx->kind == GX_CTX_BACKGROUND)
		return;
	if (ctx->kind == GX_CTX_CANCEL)
		gx_ctx_cancel_tree(ctx, -ECANCELED, -ECANCELED);
	gx_ctx_unref(ctx);
}

gx_ctx *gx_ctx_retain(gx_ctx *ctx)
{
	if (ctx && ctx->kind != GX_CTX_BACKGROUND)
		ctx->refs++;
	return ctx;
}

void gx_ctx_put(gx_ctx *ctx)
{
	gx_ctx_unref(ctx);
}

/* ---- the wait core's view (see core/wait.h) ---- */

static int gx_ctx_enlist(gx_ctx *ctx, gx_wq_node *n)
{
	gx_ctx *o = gx_ctx_owner(ctx);
	if (!o)
		return 0; /* can never end: nothing to wait for */
	if (o->err)
		return o->err;
	ctx->refs++; /* keeps ctx and its ancestors (o among them) alive */
	gx_waitq_push(&gx_chan_impl_of(&o->done)->recvq, n);
	return 0;
}

static void gx_ctx_delist(gx_ctx *ctx, gx_wq_node *n)
{
	gx_ctx *o = gx_ctx_owner(ctx);
	if (!o)
		return;
	gx_waitq_unlink(&gx_chan_impl_of(&o->done)->recvq, n);
	gx_ctx_unref(ctx);
}

static int gx_ctx_hook_err(gx_ctx *ctx)
{
	return gx_ctx_err(ctx);
}

void gx_ctx_register_hooks(void)
{
	gx_ctx_hooks h = {.enlist = gx_ctx_enlist, .delist = gx_ctx_delist, .err = gx_ctx_hook_err};
	gx_wait_set_ctx_hooks(&h);
}
