/* Channels: Go's rules for unbuffered, buffered, nil and closed channels, FIFO, deadlines, stress. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "testing.h"

#define RUN(fn) cr_assert_eq(gx_run(NULL, fn, NULL), 0)

static gx_chan *mk(size_t elem, size_t cap)
{
	gx_chan *c;
	cr_assert_eq(gx_chan_make(&c, elem, cap, 0), 0);
	return c;
}

static void yields(int n)
{
	for (int i = 0; i < n; i++)
		gx_yield();
}

/* ---- creation ---- */

Test(chan, creation_errors)
{
	gx_chan *c = (gx_chan *)1;
	cr_expect_eq(gx_chan_make(NULL, 8, 0, 0), -EINVAL);
	cr_expect_eq(gx_chan_make(&c, GX_CHAN_ELEM_MAX + 1, 0, 0), -EINVAL);
	cr_expect_null(c, "out is cleared on error");
	cr_expect_eq(gx_chan_make(&c, 8, (size_t)GX_CHAN_CAP_MAX + 1, 0), -EINVAL);
	cr_expect_eq(gx_chan_make(&c, 8, 1, 0x80), -EINVAL);
	cr_expect_eq(gx_chan_make(&c, 8, 1, GX_CHAN_DISTRIBUTED), -EPERM, "distributed channels need gx_run");
	gx_chan st0;
	cr_expect_eq(gx_chan_init(&st0, 8, 0, NULL, GX_CHAN_DISTRIBUTED), -ENOTSUP, "caller storage is not shared");
	gx_chan st;
	cr_expect_eq(gx_chan_init(&st, 8, 4, NULL, 0), -EINVAL, "a buffer is needed for cap > 0");
	cr_expect_eq(gx_chan_init(&st, 8, 0, NULL, 0), 0);
	cr_expect_eq(gx_chan_free(&st), -EINVAL, "caller storage is not freed");
	cr_expect_eq(gx_chan_free(NULL), 0);
	cr_expect_eq(gx_chan_make(&c, 8, 4, 0), 0);
	cr_expect_eq(gx_chan_cap(c), 4);
	cr_expect_eq(gx_chan_len(c), 0);
	cr_expect_eq(gx_chan_free(c), 0);
}

/* ---- unbuffered: rendezvous ---- */

static gx_chan *ch;
static int sent_done, got;

static void send_42(void *arg)
{
	(void)arg;
	int v = 42;
	cr_expect_eq(gx_chan_send(ch, &v, GX_FOREVER), 0);
	sent_done = 1;
}

static int rendezvous(void *arg)
{
	(void)arg;
	ch = mk(sizeof(int), 0);
	sent_done = 0;
	gx_go(send_42, NULL);
	yields(5);
	cr_expect_eq(sent_done, 0, "an unbuffered send waits for a receiver");
	cr_expect_eq(gx_chan_len(ch), 0);
	int v = 0;
	bool ok = false;
	cr_expect_eq(gx_chan_recv(ch, &v, &ok, GX_FOREVER), 0);
	cr_expect_eq(v, 42);
	cr_expect(ok);
	yields(1);
	cr_expect_eq(sent_done, 1);
	gx_chan_free(ch);
	return 0;
}

Test(chan, unbuffered_send_completes_only_when_received)
{
	RUN(rendezvous);
}

static void recv_one(void *arg)
{
	(void)arg;
	int v = 0;
	cr_expect_eq(gx_chan_recv(ch, &v, NULL, GX_FOREVER), 0);
	got = v;
}

static int receiver_first(void *arg)
{
	(void)arg;
	ch = mk(sizeof(int), 0);
	got = 0;
	gx_go(recv_one, NULL);
	yields(3);
	cr_expect_eq(got, 0);
	int v = 7;
	cr_expect_eq(gx_chan_try_send(ch, &v), 0, "a waiting receiver makes a try-send succeed");
	yields(1);
	cr_expect_eq(got, 7);
	cr_expect_eq(gx_chan_try_send(ch, &v), -EAGAIN, "no receiver now");
	gx_chan_free(ch);
	return 0;
}

Test(chan, waiting_receiver_gets_value_directly)
{
	RUN(receiver_first);
}

/* ---- buffered ---- */

static int buffered(void *arg)
{
	(void)arg;
	gx_chan *c = mk(sizeof(int), 3);
	for (int i = 1; i <= 3; i++)
		cr_expect_eq(gx_chan_try_send(c, &i), 0);
	cr_expect_eq(gx_chan_len(c), 3);
	int four = 4;
	cr_expect_eq(gx_chan_try_send(c, &four), -EAGAIN, "full");
	cr_expect_eq(gx_chan_send(c, &four, gx_timeout(GX_MILLISECOND)), -ETIMEDOUT);
	cr_expect_eq(gx_chan_len(c), 3, "a timed-out send delivers nothing");
	for (int i = 1; i <= 3; i++) {
		int v;
		bool ok;
		cr_expect_eq(gx_chan_try_recv(c, &v, &ok), 0);
		cr_expect_eq(v, i, "FIFO");
		cr_expect(ok);
	}
	int v;
	cr_expect_eq(gx_chan_try_recv(c, &v, NULL), -EAGAIN, "empty");
	/* wrap around the ring several times */
	for (int i = 0; i < 20; i++) {
		cr_assert_eq(gx_chan_try_send(c, &i), 0);
		if (i % 2) {
			int a, b;
			gx_chan_try_recv(c, &a, NULL);
			gx_chan_try_recv(c, &b, NULL);
			cr_expect_eq(b, a + 1);
		}
	}
	gx_chan_free(c);
	return 0;
}

Test(chan, buffered_fifo_len_cap_and_full)
{
	RUN(buffered);
}

/* ---- FIFO of blocked senders and receivers ---- */

static int order[32], norder;

static void send_id(void *arg)
{
	int id = (int)(intptr_t)arg;
	cr_expect_eq(gx_chan_send(ch, &id, GX_FOREVER), 0);
}

static void recv_record(void *arg)
{
	int id = (int)(intptr_t)arg, v;
	cr_expect_eq(gx_chan_recv(ch, &v, NULL, GX_FOREVER), 0);
	order[v] = id;
	norder++;
}

static int blocked_senders_fifo(void *arg)
{
	size_t cap = (size_t)(intptr_t)arg;
	ch = mk(sizeof(int), cap);
	/* spawn and block one at a time so the blocking order is known */
	for (int i = 0; i < 8; i++) {
		gx_go(send_id, (void *)(intptr_t)i);
		gx_yield();
	}
	for (int i = 0; i < 8; i++) {
		int v;
		cr_expect_eq(gx_chan_recv(ch, &v, NULL, GX_FOREVER), 0);
		cr_expect_eq(v, i, "value %d arrived at position %d", v, i);
	}
	yields(2);
	gx_chan_free(ch);
	return 0;
}

Test(chan, blocked_senders_are_served_in_fifo_order)
{
	cr_assert_eq(gx_run(NULL, blocked_senders_fifo, (void *)0), 0);
	cr_assert_eq(gx_run(NULL, blocked_senders_fifo, (void *)3), 0);
}

static int blocked_receivers_fifo(void *arg)
{
	(void)arg;
	ch = mk(sizeof(int), 0);
	norder = 0;
	for (int i = 0; i < 8; i++) {
		gx_go(recv_record, (void *)(intptr_t)i);
		gx_yield();
	}
	for (int i = 0; i < 8; i++)
		cr_expect_eq(gx_chan_send(ch, &i, GX_FOREVER), 0);
	yields(2);
	cr_expect_eq(norder, 8);
	for (int i = 0; i < 8; i++)
		cr_expect_eq(order[i], i, "value %d went to receiver %d", i, order[i]);
	gx_chan_free(ch);
	return 0;
}

Test(chan, blocked_receivers_are_served_in_fifo_order)
{
	RUN(blocked_receivers_fifo);
}

/* ---- nil channels ---- */

static int nil_blocked;
static void recv_nil_forever(void *arg)
{
	(void)arg;
	nil_blocked = 1;
	gx_chan_recv(NULL, NULL, NULL, GX_FOREVER);
	nil_blocked = 2;
}

static int nil_channel(void *arg)
{
	(void)arg;
	int v = 1;
	cr_expect_eq(gx_chan_send(NULL, &v, gx_timeout(GX_MILLISECOND)), -ETIMEDOUT);
	cr_expect_eq(gx_chan_recv(NULL, &v, NULL, gx_timeout(GX_MILLISECOND)), -ETIMEDOUT);
	cr_expect_eq(gx_chan_try_send(NULL, &v), -EAGAIN);
	cr_expect_eq(gx_chan_try_recv(NULL, &v, NULL), -EAGAIN);
	cr_expect_eq(gx_chan_close(NULL), -EINVAL, "closing a nil channel is an error");
	cr_expect_eq(gx_chan_len(NULL), 0);
	cr_expect_eq(gx_chan_cap(NULL), 0);
	nil_blocked = 0;
	gx_go(recv_nil_forever, NULL);
	yields(3);
	gx_sleep(2 * GX_MILLISECOND);
	yields(3);
	cr_expect_eq(nil_blocked, 1, "a nil-channel receive blocks forever");
	return 0;
}

Test(chan, nil_channel_blocks_forever_and_cannot_be_closed)
{
	RUN(nil_channel);
}

/* ---- close ---- */

static int closed_rules(void *arg)
{
	(void)arg;
	gx_chan *c = mk(sizeof(int), 2);
	int a = 1, b = 2, v;
	bool ok;
	gx_chan_try_send(c, &a);
	gx_chan_try_send(c, &b);
	cr_expect_eq(gx_chan_close(c), 0);
	cr_expect_eq(gx_chan_close(c), -EALREADY, "close of a closed channel is an error");
	cr_expect_eq(gx_chan_send(c, &a, GX_FOREVER), -EPIPE);
	cr_expect_eq(gx_chan_try_send(c, &a), -EPIPE);
	cr_expect_eq(gx_chan_len(c), 2, "a send on a closed channel delivers nothing");
	cr_expect_eq(gx_chan_recv(c, &v, &ok, GX_FOREVER), 0);
	cr_expect(ok && v == 1, "the buffer drains first");
	cr_expect_eq(gx_chan_recv(c, &v, &ok, GX_FOREVER), 0);
	cr_expect(ok && v == 2);
	for (int i = 0; i < 3; i++) {
		v = 99;
		cr_expect_eq(gx_chan_recv(c, &v, &ok, GX_FOREVER), 0, "returns at once");
		cr_expect(!ok);
		cr_expect_eq(v, 0, "zero value");
		v = 99;
		cr_expect_eq(gx_chan_try_recv(c, &v, &ok), 0);
		cr_expect(!ok && v == 0);
	}
	gx_chan_free(c);
	return 0;
}

Test(chan, closed_channel_rules)
{
	RUN(closed_rules);
}

static int woken_recv, woken_send;
static void recv_until_closed(void *arg)
{
	(void)arg;
	long v;
	memset(&v, 0xff, sizeof v);
	bool ok = true;
	cr_expect_eq(gx_chan_recv(ch, &v, &ok, GX_FOREVER), 0);
	cr_expect(!ok);
	cr_expect_eq(v, 0);
	woken_recv++;
}

static void send_until_closed(void *arg)
{
	(void)arg;
	long v = 5;
	cr_expect_eq(gx_chan_send(ch, &v, GX_FOREVER), -EPIPE);
	woken_send++;
}

static int close_wakes_all(void *arg)
{
	(void)arg;
	woken_recv = woken_send = 0;
	ch = mk(sizeof(long), 0);
	for (int i = 0; i < 5; i++)
		gx_go(recv_until_closed, NULL);
	yields(2);
	cr_expect_eq(gx_chan_close(ch), 0);
	yields(2);
	cr_expect_eq(woken_recv, 5, "every blocked receiver wakes with ok == false");
	gx_chan_free(ch);

	ch = mk(sizeof(long), 1);
	long one = 1;
	gx_chan_try_send(ch, &one);
	for (int i = 0; i < 5; i++)
		gx_go(send_until_closed, NULL);
	yields(2);
	cr_expect_eq(gx_chan_close(ch), 0);
	yields(2);
	cr_expect_eq(woken_send, 5, "every blocked sender wakes with -EPIPE");
	long v;
	bool ok;
	cr_expect_eq(gx_chan_recv(ch, &v, &ok, GX_FOREVER), 0);
	cr_expect(ok && v == 1, "only the value buffered before close remains");
	cr_expect_eq(gx_chan_recv(ch, &v, &ok, GX_FOREVER), 0);
	cr_expect(!ok);
	gx_chan_free(ch);
	return 0;
}

Test(chan, close_wakes_every_blocked_receiver_and_sender)
{
	RUN(close_wakes_all);
}

/* ---- deadlines and contexts ---- */

static int deadline_loses_nothing(void *arg)
{
	(void)arg;
	ch = mk(sizeof(int), 0);
	int v = 0;
	int64_t t0 = gx_now();
	cr_expect_eq(gx_chan_recv(ch, &v, NULL, gx_timeout(2 * GX_MILLISECOND)), -ETIMEDOUT);
	cr_expect_geq(gx_now() - t0, 2 * GX_MILLISECOND, "never early");
	cr_expect_eq(gx_chan_recv(ch, &v, NULL, gx_deadline(gx_now() - 1)), -ETIMEDOUT, "past deadline");
	/* a receiver that timed out is not handed a later value */
	norder = 0;
	gx_go(recv_record, (void *)(intptr_t)3);
	gx_yield();
	int one = 1;
	cr_expect_eq(gx_chan_send(ch, &one, GX_FOREVER), 0);
	yields(1);
	cr_expect_eq(norder, 1);
	cr_expect_eq(order[1], 3, "the live receiver got it");
	/* a sender that timed out delivered nothing */
	int s = 77;
	cr_expect_eq(gx_chan_send(ch, &s, gx_timeout(GX_MILLISECOND)), -ETIMEDOUT);
	cr_expect_eq(gx_chan_try_recv(ch, &v, NULL), -EAGAIN);
	gx_chan_free(ch);
	return 0;
}

Test(chan, deadline_ends_a_wait_and_nothing_is_lost)
{
	RUN(deadline_loses_nothing);
}

static gx_ctx *ctx;
static void cancel_later(void *arg)
{
	(void)arg;
	yields(2);
	gx_ctx_cancel(ctx);
}

static int ctx_ends_waits(void *arg)
{
	(void)arg;
	ch = mk(sizeof(int), 0);
	cr_assert_eq(gx_ctx_with_cancel(gx_ctx_background(), &ctx), 0);
	gx_go(cancel_later, NULL);
	int v;
	cr_expect_eq(gx_chan_recv(ch, &v, NULL, gx_ctx_until(ctx)), -ECANCELED);
	cr_expect_eq(gx_chan_send(ch, &v, gx_ctx_until(ctx)), -ECANCELED, "ended context: at once");
	gx_ctx_release(ctx);
	cr_assert_eq(gx_ctx_with_timeout(gx_ctx_background(), 2 * GX_MILLISECOND, &ctx), 0);
	cr_expect_eq(gx_chan_send(ch, &v, gx_ctx_until(ctx)), -ETIMEDOUT);
	gx_ctx_release(ctx);
	gx_chan_free(ch);
	return 0;
}

Test(chan, context_ends_a_wait)
{
	RUN(ctx_ends_waits);
}

static int outside(void *arg)
{
	(void)arg;
	return 0;
}

Test(chan, blocking_outside_a_coroutine_is_refused)
{
	gx_chan st;
	int buf[1], v = 1;
	cr_assert_eq(gx_chan_init(&st, sizeof(int), 1, buf, 0), 0);
	cr_expect_eq(gx_chan_send(&st, &v, GX_FOREVER), 0, "completes without blocking");
	cr_expect_eq(gx_chan_send(&st, &v, GX_FOREVER), -EPERM, "would block");
	cr_expect_eq(gx_chan_recv(&st, &v, NULL, GX_FOREVER), 0);
	cr_expect_eq(gx_chan_recv(&st, &v, NULL, GX_FOREVER), -EPERM);
	cr_expect_eq(gx_chan_recv(NULL, &v, NULL, GX_FOREVER), -EPERM);
	RUN(outside);
}

/* ---- element sizes ---- */

typedef struct {
	char bytes[4096];
} big_t;

static void send_big(void *arg)
{
	big_t *b = malloc(sizeof *b);
	for (size_t i = 0; i < sizeof b->bytes; i++)
		b->bytes[i] = (char)(i * 7);
	gx_chan_send(arg, b, GX_FOREVER);
	free(b);
}

static void close_it(void *arg)
{
	gx_chan_close(arg);
}

static int sizes(void *arg)
{
	(void)arg;
	gx_chan *sig = mk(0, 0);
	gx_go(close_it, sig);
	bool ok = true;
	cr_expect_eq(gx_chan_recv(sig, NULL, &ok, GX_FOREVER), 0);
	cr_expect(!ok, "a zero-size channel signals by close");
	gx_chan_free(sig);

	gx_chan *bc = mk(sizeof(big_t), 0);
	gx_go(send_big, bc);
	big_t *b = malloc(sizeof *b);
	cr_expect_eq(gx_chan_recv(bc, b, NULL, GX_FOREVER), 0);
	for (size_t i = 0; i < sizeof b->bytes; i++)
		cr_assert_eq(b->bytes[i], (char)(i * 7));
	free(b);
	gx_chan_free(bc);

	gx_chan *cc = mk(1, 5);
	for (char c = 'a'; c < 'f'; c++)
		gx_chan_try_send(cc, &c);
	char out[6] = {0};
	for (int i = 0; i < 5; i++)
		gx_chan_try_recv(cc, &out[i], NULL);
	cr_expect_str_eq(out, "abcde");
	gx_chan_free(cc);
	return 0;
}

Test(chan, any_element_size)
{
	RUN(sizes);
}

static void block_on(void *arg)
{
	gx_chan_recv(arg, NULL, NULL, GX_FOREVER);
}

static int free_busy(void *arg)
{
	(void)arg;
	gx_chan *c = mk(4, 0);
	gx_go(block_on, c);
	gx_yield();
	cr_expect_eq(gx_chan_free(c), -EBUSY);
	gx_chan_close(c);
	gx_yield();
	cr_expect_eq(gx_chan_free(c), 0);
	return 0;
}

Test(chan, free_with_a_waiter_is_refused)
{
	RUN(free_busy);
}

/* ---- stress: every value exactly once ---- */

#define PRODUCERS 8
#define CONSUMERS 8
#define PER_PRODUCER 5000
static unsigned char seen[PRODUCERS * PER_PRODUCER];
static gx_wg prod_wg, cons_wg;
static long received;

static void producer(void *arg)
{
	int p = (int)(intptr_t)arg;
	for (int i = 0; i < PER_PRODUCER; i++) {
		int v = p * PER_PRODUCER + i;
		cr_assert_eq(gx_chan_send(ch, &v, GX_FOREVER), 0);
		if (gx_rand_below(4) == 0)
			gx_yield();
	}
	gx_wg_done(&prod_wg);
}

static void consumer(void *arg)
{
	(void)arg;
	int v;
	bool ok;
	while (gx_chan_recv(ch, &v, &ok, GX_FOREVER) == 0 && ok) {
		cr_assert(v >= 0 && v < PRODUCERS * PER_PRODUCER);
		seen[v]++;
		received++;
		if (gx_rand_below(3) == 0)
			gx_yield();
	}
	gx_wg_done(&cons_wg);
}

static int stress(void *arg)
{
	ch = mk(sizeof(int), (size_t)(intptr_t)arg);
	memset(seen, 0, sizeof seen);
	received = 0;
	gx_wg_add(&prod_wg, PRODUCERS);
	gx_wg_add(&cons_wg, CONSUMERS);
	for (int i = 0; i < CONSUMERS; i++)
		gx_go(consumer, NULL);
	for (int i = 0; i < PRODUCERS; i++)
		gx_go(producer, (void *)(intptr_t)i);
	gx_wg_wait(&prod_wg, GX_FOREVER);
	gx_chan_close(ch);
	gx_wg_wait(&cons_wg, GX_FOREVER);
	cr_expect_eq(received, PRODUCERS * PER_PRODUCER);
	for (int i = 0; i < PRODUCERS * PER_PRODUCER; i++)
		cr_assert_eq(seen[i], 1, "value %d seen %d times", i, seen[i]);
	gx_chan_free(ch);
	return 0;
}

Test(chan, stress_every_value_exactly_once)
{
	cr_assert_eq(gx_run(NULL, stress, (void *)0), 0, "unbuffered");
	cr_assert_eq(gx_run(NULL, stress, (void *)1), 0, "capacity 1");
	cr_assert_eq(gx_run(NULL, stress, (void *)64), 0, "capacity 64");
}

/* ---- caller mistakes and shutdown ---- */

static int null_values(void *arg)
{
	(void)arg;
	gx_chan *c = mk(sizeof(int), 1);
	cr_expect_eq(gx_chan_try_send(c, NULL), -EINVAL, "no value to copy");
	cr_expect_eq(gx_chan_send(c, NULL, GX_FOREVER), -EINVAL);
	gx_case cs[1] = {{.chan = c, .op = GX_SEND, .elem = NULL}};
	cr_expect_eq(gx_select(cs, 1, GX_FOREVER), -EINVAL);
	cr_expect_eq(gx_chan_len(c), 0);
	gx_chan *z = mk(0, 1);
	cr_expect_eq(gx_chan_try_send(z, NULL), 0, "a zero-size value needs no pointer");
	gx_chan_free(c);
	gx_chan_free(z);
	return 0;
}

Test(chan, null_send_value_is_refused)
{
	RUN(null_values);
}

static gx_chan *abandoned_ch;
static gx_ctx *abandoned_ctx;
static void wait_forever(void *arg)
{
	(void)arg;
	int v;
	gx_chan_recv(abandoned_ch, &v, NULL, gx_ctx_until(abandoned_ctx));
}

static void select_forever(void *arg)
{
	(void)arg;
	int v;
	gx_case cs[2] = {{.chan = abandoned_ch, .op = GX_RECV, .elem = &v},
			 {.chan = abandoned_ch, .op = GX_SEND, .elem = &v}};
	gx_select(cs, 2, GX_FOREVER);
}

static int abandon_waiters(void *arg)
{
	(void)arg;
	abandoned_ch = mk(sizeof(int), 0);
	gx_ctx_with_cancel(gx_ctx_background(), &abandoned_ctx);
	gx_go(wait_forever, NULL);
	gx_go(select_forever, NULL);
	gx_yield();
	return 0; /* both stay parked: abandoned when main returns */
}

Test(chan, objects_outlive_coroutines_abandoned_at_shutdown)
{
	RUN(abandon_waiters);
	/* their stacks are gone; nothing may still point into them */
	cr_expect_eq(gx_chan_len(abandoned_ch), 0);
	int v = 1;
	cr_expect_eq(gx_chan_try_send(abandoned_ch, &v), -EAGAIN, "no receiver left in the queue");
	cr_expect_eq(gx_chan_close(abandoned_ch), 0);
	cr_expect_eq(gx_chan_free(abandoned_ch), 0);
	gx_ctx_release(abandoned_ctx); /* also frees it: the waiter's reference was dropped */
}
