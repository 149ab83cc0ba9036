/* The MPMC ring: order, full and empty, sizes, close, chunk hand-over, batches, deadlines, wake-ups across processes and inside coroutines, stats, a multi-process stress. */
#include <poll.h>

#include "harness.h"

#include "core/testpoint.h"

static gx_ring *new_ring(gx_arena *a, uint32_t cap, uint32_t msg, unsigned flags)
{
	gx_ring *r = NULL;
	int rc = gx_ring_create(a, &r, cap, msg, flags);
	cr_assert_eq(rc, 0, "gx_ring_create(%u, %u): %s", cap, msg, strerror(-rc));
	cr_assert_not_null(r);
	return r;
}

static gx_ring_stats stats_of(const gx_ring *r)
{
	gx_ring_stats s;
	memset(&s, 0x5a, sizeof s);
	cr_assert_eq(gx_ring_stats_get(r, &s), 0);
	return s;
}

static int send_u64(gx_ring *r, uint64_t v)
{
	return gx_ring_try_send(r, &v, sizeof v);
}

static void expect_u64(gx_ring *r, uint64_t want)
{
	uint64_t v = ~want;
	ssize_t n = gx_ring_try_recv(r, &v, sizeof v, NULL);
	cr_assert_eq(n, 8, "receive of %llu: %zd", (unsigned long long)want, n);
	cr_assert_eq(v, want);
}

/* Until the ring's sleeps counter passes n (someone sleeps on its futex),
 * at most bound_s seconds. Used by children before they act. */
static bool wait_sleeps(gx_ring *r, uint64_t n, int bound_s)
{
	int64_t end = gx_now() + (int64_t)bound_s * GX_SECOND;
	gx_ring_stats s;
	while (gx_now() < end) {
		if (gx_ring_stats_get(r, &s) == 0 && s.sleeps > n)
			return true;
		nap_us(100);
	}
	return false;
}

/* ---- single process ---- */

Test(ring, try_send_and_try_recv_keep_fifo_order)
{
	gx_arena *a = new_arena(32 * MiB);
	gx_ring *r = new_ring(a, 8, 16, 0);
	for (uint64_t k = 0; k < 8; k++)
		cr_expect_eq(send_u64(r, 100 + k), 0);
	cr_expect_eq(send_u64(r, 999), -EAGAIN, "full after capacity sends");
	for (uint64_t k = 0; k < 8; k++)
		expect_u64(r, 100 + k);
	uint64_t v;
	cr_expect_eq(gx_ring_try_recv(r, &v, sizeof v, NULL), -EAGAIN, "empty");
	/* positions wrap around the slots many times; lengths are kept */
	uint64_t next = 0, want = 0;
	for (int round = 0; round < 300; round++) {
		int n = 1 + round % 8;
		for (int k = 0; k < n; k++) {
			unsigned char m[16];
			size_t len = 1 + (next % 16);
			memset(m, (int)(next & 0xff), sizeof m);
			cr_assert_eq(gx_ring_try_send(r, m, len), 0, "round %d", round);
			next++;
		}
		for (int k = 0; k < n; k++) {
			unsigned char m[16] = {0};
			ssize_t got = gx_ring_try_recv(r, m, sizeof m, NULL);
			cr_assert_eq(got, (ssize_t)(1 + (want % 16)), "round %d: length", round);
			for (ssize_t j = 0; j < got; j++)
				cr_assert_eq(m[j], want & 0xff, "round %d byte %zd", round, j);
			want++;
		}
	}
	gx_ring_stats s = stats_of(r);
	cr_expect_eq(s.sent, 8 + next);
	cr_expect_eq(s.received, 8 + want);
	cr_expect_eq(s.queued, 0);
	cr_expect_eq(s.sleeps, 0, "nobody ever blocked");
	cr_expect_eq(s.wakes, 0, "no wake-up without a sleeper");
	gx_arena_destroy(a);
}

Test(ring, create_checks_capacity_and_message_size)
{
	gx_arena *a = new_arena(32 * MiB);
	gx_ring *r = (gx_ring *)0x1;
	uint32_t bad_caps[] = {0, 1, 3, 6, 100, 1000, (1u << 24) + 1, 1u << 25, 1u << 31, UINT32_MAX};
	for (size_t k = 0; k < sizeof bad_caps / sizeof bad_caps[0]; k++)
		cr_expect_eq(gx_ring_create(a, &r, bad_caps[k], 8, 0), -EINVAL, "capacity %u", bad_caps[k]);
	/* a ring fits one pool chunk: capacity x slot <= 1 MiB - 768 */
	cr_expect_eq(gx_ring_create(a, &r, 1u << 16, 8, 0), -EINVAL, "65536 slots of 16 bytes: too big");
	cr_expect_eq(gx_ring_create(a, &r, 1u << 24, 8, 0), -EINVAL, "too big");
	cr_expect_eq(gx_ring_create(a, &r, 8192, GX_RING_INLINE_MAX, 0), -EINVAL, "8192 slots of 128 bytes");
	cr_expect_eq(gx_ring_create(a, &r, 8, 8, 0x80), -EINVAL, "unknown flag");
	cr_expect_eq(gx_ring_create(a, &r, 8, 0, 0), -EINVAL, "msg_size 0");
	cr_expect_eq(gx_ring_create(a, &r, 8, GX_RING_INLINE_MAX + 1, 0), -EINVAL, "msg_size over the inline max");
	cr_expect_eq(gx_ring_create(a, NULL, 8, 8, 0), -EINVAL);
	cr_expect_eq(gx_ring_create(NULL, &r, 8, 8, 0), -EINVAL);
	cr_expect_eq(in_use_total(a), 0, "failed creations leave nothing behind");
	cr_expect_eq(gx_ring_create(a, &r, 1u << 15, 8, 0), 0, "the largest ring of 8-byte messages");
	cr_expect_eq(gx_ring_destroy(a, r), 0);
	cr_expect_eq(gx_ring_create(a, &r, 4096, GX_RING_INLINE_MAX, 0), 0, "the largest of 120-byte messages");
	cr_expect_eq(gx_ring_destroy(a, r), 0);
	cr_expect_eq(in_use_total(a), 0);

	/* the limits themselves */
	r = new_ring(a, 2, GX_RING_INLINE_MAX, 0);
	unsigned char big[GX_RING_INLINE_MAX], in[GX_RING_INLINE_MAX + 8];
	for (int k = 0; k < GX_RING_INLINE_MAX; k++)
		big[k] = (unsigned char)(k * 13);
	cr_expect_eq(gx_ring_try_send(r, big, sizeof big), 0);
	cr_expect_eq(gx_ring_try_send(r, big, 1), 0);
	cr_expect_eq(gx_ring_try_send(r, big, 1), -EAGAIN, "capacity 2");
	cr_expect_eq(gx_ring_try_recv(r, in, sizeof in, NULL), GX_RING_INLINE_MAX);
	cr_expect_eq(memcmp(in, big, sizeof big), 0);
	cr_expect_eq(gx_ring_try_recv(r, in, sizeof in, NULL), 1);
	gx_ring_stats s = stats_of(r);
	cr_expect_eq(s.capacity, 2);
	cr_expect_eq(s.msg_size, GX_RING_INLINE_MAX);
	gx_arena_destroy(a);
}

Test(ring, message_sizes_are_checked_on_both_sides)
{
	gx_arena *a = new_arena(32 * MiB);
	gx_ring *r = new_ring(a, 4, 16, 0);
	char m[32] = "0123456789abcdefXYZ";
	cr_expect_eq(gx_ring_try_send(r, m, 17), -EMSGSIZE);
	cr_expect_eq(gx_ring_send(r, m, 17, GX_FOREVER), -EMSGSIZE);
	cr_expect_eq(gx_ring_try_send(r, m, 0), -EINVAL, "len 0");
	cr_expect_eq(gx_ring_try_send(r, NULL, 4), -EINVAL);
	cr_expect_eq(gx_ring_try_send(NULL, m, 4), -EINVAL);
	cr_expect_eq(stats_of(r).sent, 0, "refused sends claim nothing");
	cr_expect_eq(gx_ring_try_send(r, m, 16), 0);
	char in[32] = {0};
	cr_expect_eq(gx_ring_try_recv(r, in, 15, NULL), -EMSGSIZE, "buffer too small");
	cr_expect_eq(gx_ring_try_recv(r, in, 15, NULL), -EMSGSIZE, "and the message stays queued");
	cr_expect_eq(gx_ring_try_recv(r, in, 16, NULL), 16);
	cr_expect_eq(memcmp(in, m, 16), 0);
	cr_expect_eq(gx_ring_try_recv(NULL, in, 16, NULL), -EINVAL);
	gx_arena_destroy(a);
}

Test(ring, close_fails_sends_and_drains_receives)
{
	gx_arena *a = new_arena(32 * MiB);
	gx_ring *r = new_ring(a, 8, 8, 0);
	for (uint64_t k = 0; k < 3; k++)
		cr_expect_eq(send_u64(r, k), 0);
	int64_t c = gx_pool_alloc(a, 256, -1);
	cr_assert_gt(c, 0);
	cr_expect_eq(gx_ring_close(r), 0);
	cr_expect_eq(gx_ring_close(r), -EPIPE, "closed twice");
	cr_expect_eq(stats_of(r).closed, 1);
	uint64_t v = 7, vs[4] = {0};
	cr_expect_eq(gx_ring_try_send(r, &v, 8), -EPIPE);
	cr_expect_eq(gx_ring_send(r, &v, 8, GX_FOREVER), -EPIPE);
	cr_expect_eq(gx_ring_try_send_batch(r, vs, 2), -EPIPE);
	cr_expect_eq(gx_ring_send_batch(r, vs, 2, GX_FOREVER), -EPIPE);
	cr_expect_eq(gx_ring_try_send_chunk(r, (gx_off)c, 100), -EPIPE);
	cr_expect_eq(gx_ring_send_chunk(r, (gx_off)c, 100, GX_FOREVER), -EPIPE);
	cr_expect_eq(gx_pool_free(a, (gx_off)c), 0, "a refused chunk stays the caller's");
	expect_u64(r, 0);
	cr_expect_eq(gx_ring_recv_batch(r, vs, 4, GX_FOREVER), 2, "drains what was queued");
	cr_expect_eq(vs[0], 1);
	cr_expect_eq(vs[1], 2);
	cr_expect_eq(gx_ring_try_recv(r, &v, 8, NULL), -EPIPE, "closed and empty");
	cr_expect_eq(gx_ring_recv(r, &v, 8, NULL, GX_FOREVER), -EPIPE, "never blocks once closed");
	cr_expect_eq(gx_ring_try_recv_batch(r, vs, 4), -EPIPE);
	cr_expect_eq(gx_ring_recv_batch(r, vs, 4, GX_FOREVER), -EPIPE);
	cr_expect_eq(gx_ring_close(NULL), -EINVAL);
	gx_arena_destroy(a);
}

/* A close in a send's window, made by a test point (tp_point) inside
 * gx_ring_try_send, followed there by a receive (tp_recv).
 *  - Between the send's look at head and its claim: the claim fails
 *    (closed is the top bit of the word it CASes), so the send reports
 *    -EPIPE and nothing arrives after the close. With closed in a word of
 *    its own the send went through after gx_ring_close had returned, and
 *    a receive that had already reported "closed and empty" was wrong.
 *  - After the claim, before the publish: the message is on its way, so
 *    the receive says -EAGAIN (not -EPIPE); it is taken once published,
 *    then the ring is closed and empty. */
#if GX_TEST_POINTS
static gx_ring *tp_ring;
static const char *tp_point;
static int tp_hits;
static ssize_t tp_recv = 1;

static void close_in_window(const char *name, void *arg)
{
	(void)arg;
	if (strcmp(name, tp_point) != 0 || tp_hits++)
		return;
	cr_expect_eq(gx_ring_close(tp_ring), 0);
	uint64_t v;
	tp_recv = gx_ring_try_recv(tp_ring, &v, 8, NULL);
}

/* A fresh ring in a, and a send of v that meets a close at point: the
 * send's result (the hook ran once). */
static int send_meeting_close(gx_arena *a, const char *point, uint64_t v)
{
	tp_ring = new_ring(a, 8, 8, 0);
	tp_point = point;
	tp_hits = 0;
	gx_test_point_fn = close_in_window;
	int rc = gx_ring_try_send(tp_ring, &v, 8);
	gx_test_point_fn = NULL;
	cr_assert_eq(tp_hits, 1, "the close came at %s", point);
	return rc;
}
#endif

Test(ring, a_send_that_meets_a_close_before_its_claim_fails_and_leaves_nothing)
{
#if !GX_TEST_POINTS
	cr_skip_test("built without -Dtest_points=true");
#else
	gx_arena *a = new_arena(32 * MiB);
	int rc = send_meeting_close(a, "ring.journal.claim", 5);
	cr_expect_eq(rc, -EPIPE, "the send after the close: %d", rc);
	cr_expect_eq(tp_recv, -EPIPE, "closed and empty inside the window");
	uint64_t v;
	cr_expect_eq(gx_ring_try_recv(tp_ring, &v, 8, NULL), -EPIPE, "nothing came after");
	gx_ring_stats st = stats_of(tp_ring);
	cr_expect_eq(st.sent, 0);
	cr_expect_eq(st.queued, 0);
	gx_arena_destroy(a);
#endif
}

Test(ring, a_close_waits_out_a_claim_made_before_it)
{
#if !GX_TEST_POINTS
	cr_skip_test("built without -Dtest_points=true");
#else
	gx_arena *a = new_arena(32 * MiB);
	int rc = send_meeting_close(a, "ring.send.claimed", 6);
	cr_expect_eq(rc, 0, "claimed before the close: it goes through");
	cr_expect_eq(tp_recv, -EAGAIN, "a claimed message is on its way, not closed and empty: %zd", tp_recv);
	expect_u64(tp_ring, 6);
	uint64_t v = 6;
	cr_expect_eq(gx_ring_try_recv(tp_ring, &v, 8, NULL), -EPIPE);
	cr_expect_eq(gx_ring_send(tp_ring, &v, 8, GX_FOREVER), -EPIPE);
	gx_arena_destroy(a);
#endif
}

/* A closer killed between its two halves (head's bit, then the closed
 * word and the wake-ups): producers already fail, and a receiver asleep
 * on the empty ring must not sleep on for good. Repair finishes the close
 * (the receiver wakes with -EPIPE), and so would the next close. A review
 * found the receiver asleep until its deadline, through repair. */
#if GX_TEST_POINTS
static void die_in_close(const char *name, void *arg)
{
	(void)arg;
	if (strcmp(name, "ring.close.head") == 0)
		raise(SIGKILL);
}
#endif

Test(ring, a_closer_killed_halfway_is_finished_by_repair, .timeout = 60)
{
#if !GX_TEST_POINTS
	cr_skip_test("built without -Dtest_points=true");
#else
	gx_arena *a = new_arena(32 * MiB);
	gx_ring *r = new_ring(a, 8, 8, 0);
	pid_t rx = fork_child();
	if (rx == 0) {
		CHILD_CHECK(gx_arena_attach(a) >= 0, 2, "attach");
		uint64_t v;
		ssize_t got = gx_ring_recv(r, &v, 8, NULL, gx_timeout(30 * GX_SECOND));
		CHILD_CHECK(got == -EPIPE, 3, "the blocked receive: %zd", got);
		_exit(0);
	}
	nap_us(100000); /* asleep on the empty ring */
	pid_t closer = fork_child();
	if (closer == 0) {
		CHILD_CHECK(gx_arena_attach(a) >= 0, 2, "attach");
		gx_test_point_fn = die_in_close;
		gx_ring_close(r);
		_exit(4); /* not reached */
	}
	int st;
	cr_assert_eq(waitpid(closer, &st, 0), closer);
	cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "the closer died in its close");
	uint64_t v = 1;
	cr_expect_eq(gx_ring_try_send(r, &v, 8), -EPIPE, "closed to producers already");
	gx_repair_report rep;
	cr_expect_eq(gx_arena_repair(a, closer, &rep), 1);
	cr_expect_eq(gx_ring_try_recv(r, &v, 8, NULL), -EPIPE, "closed and empty after repair");
	cr_expect_eq(stats_of(r).closed, 1);
	expect_clean_exit(rx, 10, "the receiver");
	cr_expect_eq(gx_ring_close(r), -EPIPE, "closed already");
	gx_arena_destroy(a);
#endif
}

Test(ring, a_chunk_is_handed_over_intact_and_owned_by_the_receiver)
{
	gx_arena *a = new_arena(32 * MiB);
	gx_ring *r = new_ring(a, 2, 8, 0);
	uint64_t base = in_use_total(a);
	int64_t c = gx_pool_alloc(a, 4096, -1);
	cr_assert_gt(c, 0);
	unsigned char *p = gx_arena_ptr(a, (gx_off)c, 4096);
	for (int k = 0; k < 4096; k++)
		p[k] = (unsigned char)(k * 31 + 7);

	/* bad hand-overs change nothing */
	cr_expect_eq(gx_ring_try_send_chunk(r, (gx_off)c, 4097), -EINVAL, "len past the chunk");
	cr_expect_eq(gx_ring_try_send_chunk(r, (gx_off)c + 64, 10), -EINVAL, "not a chunk start");
	cr_expect_eq(gx_ring_try_send_chunk(r, 0, 10), -EINVAL);
	cr_expect_eq(gx_ring_try_send_chunk(r, UINT64_MAX - 7, 10), -EINVAL);
	int64_t freed = gx_pool_alloc(a, 64, -1);
	cr_assert_eq(gx_pool_free(a, (gx_off)freed), 0);
	cr_expect_eq(gx_ring_try_send_chunk(r, (gx_off)freed, 10), -EINVAL, "a free chunk");
	gx_ring *tiny = new_ring(a, 2, 4, 0);
	cr_expect_eq(gx_ring_try_send_chunk(tiny, (gx_off)c, 10), -EINVAL, "chunks need msg_size >= 8");
	cr_expect_eq(stats_of(r).sent, 0);
	cr_expect_eq(stats_of(tiny).sent, 0);
	cr_expect_eq(gx_ring_destroy(a, tiny), 0);

	cr_expect_eq(gx_ring_try_send_chunk(r, (gx_off)c, 3000), 0);
	uint64_t v = 5;
	cr_expect_eq(gx_ring_try_send(r, &v, 8), 0);
	/* full: the chunk stays the caller's */
	int64_t c2 = gx_pool_alloc(a, 100, -1);
	cr_assert_gt(c2, 0);
	cr_expect_eq(gx_ring_try_send_chunk(r, (gx_off)c2, 100), -EAGAIN);
	cr_expect_eq(gx_ring_send_chunk(r, (gx_off)c2, 100, gx_timeout(GX_MILLISECOND)), -ETIMEDOUT);
	cr_expect_eq(gx_pool_free(a, (gx_off)c2), 0);

	char buf[8];
	cr_expect_eq(gx_ring_try_recv(r, buf, sizeof buf, NULL), -EMSGSIZE, "a chunk needs somewhere to go");
	gx_off got = 0;
	cr_expect_eq(gx_ring_try_recv(r, buf, sizeof buf, &got), 3000);
	cr_expect_eq(got, (gx_off)c, "zero copy: the same chunk");
	unsigned char *q = gx_arena_ptr(a, got, 3000);
	cr_assert_not_null(q);
	for (int k = 0; k < 3000; k++)
		cr_assert_eq(q[k], (unsigned char)(k * 31 + 7), "byte %d", k);
	got = 0;
	cr_expect_eq(gx_ring_try_recv(r, buf, sizeof buf, &got), 8, "an inline message with a chunk pointer");
	cr_expect_eq(got, 0, "no chunk for an inline message");
	/* the receiver owns it: it may pass it on, then free it */
	cr_expect_eq(gx_ring_try_send_chunk(r, (gx_off)c, 10), 0);
	got = 0;
	cr_expect_eq(gx_ring_recv(r, buf, sizeof buf, &got, secs(5)), 10);
	cr_expect_eq(got, (gx_off)c);
	cr_expect_eq(gx_pool_free(a, got), 0);
	cr_expect_eq(in_use_total(a), base, "every chunk went back");
	gx_arena_destroy(a);
}

Test(ring, chunks_cross_processes_and_the_receiver_frees_them, .timeout = 60)
{
	gx_arena *a = new_arena(32 * MiB);
	gx_ring *r = new_ring(a, 4, 8, 0);
	uint64_t base = in_use_total(a);
	enum { N = 200 };
	pid_t pid = fork_child();
	if (pid == 0) {
		for (int k = 0; k < N; k++) {
			size_t len = 100 + (size_t)k * 97;
			int64_t c = gx_pool_alloc(a, len, -1);
			CHILD_CHECK(c > 0, 2, "alloc: %lld", (long long)c);
			unsigned char *p = gx_arena_ptr(a, (gx_off)c, len);
			for (size_t j = 0; j < len; j++)
				p[j] = (unsigned char)(k + j);
			CHILD_CHECK(gx_ring_send_chunk(r, (gx_off)c, len, secs(20)) == 0, 3, "send_chunk %d", k);
		}
		CHILD_CHECK(gx_arena_detach(a) == 0, 4, "detach");
		_exit(0);
	}
	for (int k = 0; k < N; k++) {
		gx_off c = 0;
		size_t len = 100 + (size_t)k * 97;
		ssize_t n = gx_ring_recv(r, NULL, 0, &c, secs(20));
		cr_assert_eq(n, (ssize_t)len, "message %d: %zd", k, n);
		unsigned char *p = gx_arena_ptr(a, c, len);
		cr_assert_not_null(p);
		for (size_t j = 0; j < len; j++)
			cr_assert_eq(p[j], (unsigned char)(k + j), "message %d byte %zu", k, j);
		cr_assert_eq(gx_pool_free(a, c), 0, "the receiver frees the sender's chunk");
	}
	expect_clean_exit(pid, 20, "chunk sender");
	cr_expect_eq(in_use_total(a), base);
	gx_arena_destroy(a);
}

Test(ring, batches_send_and_receive_as_many_as_fit)
{
	gx_arena *a = new_arena(32 * MiB);
	gx_ring *r = new_ring(a, 8, 8, 0);
	uint64_t out[12], in[12];
	for (int k = 0; k < 12; k++)
		out[k] = 1000 + (uint64_t)k;
	cr_expect_eq(gx_ring_try_send_batch(r, out, 12), 8, "as many as fit");
	cr_expect_eq(gx_ring_try_send_batch(r, out, 1), -EAGAIN);
	cr_expect_eq(gx_ring_send_batch(r, out, 3, gx_timeout(GX_MILLISECOND)), -ETIMEDOUT);
	cr_expect_eq(gx_ring_try_recv_batch(r, in, 5), 5);
	for (int k = 0; k < 5; k++)
		cr_expect_eq(in[k], 1000 + (uint64_t)k);
	cr_expect_eq(gx_ring_send_batch(r, out + 8, 4, secs(5)), 4, "room for 5, 4 asked");
	cr_expect_eq(gx_ring_try_recv_batch(r, in, 12), 7, "as many as are queued");
	for (int k = 0; k < 7; k++)
		cr_expect_eq(in[k], 1005 + (uint64_t)k);
	cr_expect_eq(gx_ring_try_recv_batch(r, in, 4), -EAGAIN);
	cr_expect_eq(gx_ring_recv_batch(r, in, 4, gx_timeout(GX_MILLISECOND)), -ETIMEDOUT);
	cr_expect_eq(gx_ring_try_send_batch(NULL, out, 2), -EINVAL);
	cr_expect_eq(gx_ring_try_send_batch(r, NULL, 2), -EINVAL);
	cr_expect_eq(gx_ring_try_recv_batch(r, NULL, 2), -EINVAL);

	/* a chunk message ends a received batch before it */
	int64_t c = gx_pool_alloc(a, 64, -1);
	cr_assert_gt(c, 0);
	cr_expect_eq(gx_ring_try_send_batch(r, out, 2), 2);
	cr_expect_eq(gx_ring_try_send_chunk(r, (gx_off)c, 64), 0);
	cr_expect_eq(gx_ring_try_send_batch(r, out + 2, 1), 1);
	cr_expect_eq(gx_ring_try_recv_batch(r, in, 8), 2);
	cr_expect_eq(gx_ring_try_recv_batch(r, in, 8), -EMSGSIZE, "a chunk first: take it with gx_ring_recv");
	cr_expect_eq(gx_ring_recv_batch(r, in, 8, GX_FOREVER), -EMSGSIZE);
	gx_off got = 0;
	char b[8];
	cr_expect_eq(gx_ring_try_recv(r, b, sizeof b, &got), 64);
	cr_expect_eq(got, (gx_off)c);
	cr_expect_eq(gx_ring_try_recv_batch(r, in, 8), 1);
	cr_expect_eq(in[0], 1002);
	cr_expect_eq(gx_pool_free(a, got), 0);
	gx_ring_stats s = stats_of(r);
	cr_expect_eq(s.sent, s.received);
	cr_expect_eq(s.queued, 0);
	gx_arena_destroy(a);
}

Test(ring, deadlines_outside_coroutines)
{
	gx_arena *a = new_arena(32 * MiB);
	gx_ring *r = new_ring(a, 2, 8, 0);
	uint64_t v = 1;
	gx_until u = gx_timeout(3 * GX_MILLISECOND);
	cr_expect_eq(gx_ring_recv(r, &v, 8, NULL, u), -ETIMEDOUT, "empty");
	cr_expect_geq(gx_now(), u.deadline, "not before the deadline");
	cr_expect_eq(gx_ring_recv(r, &v, 8, NULL, gx_deadline(0)), -ETIMEDOUT, "a deadline already past");
	cr_expect_eq(send_u64(r, 1), 0);
	cr_expect_eq(send_u64(r, 2), 0);
	u = gx_timeout(3 * GX_MILLISECOND);
	cr_expect_eq(gx_ring_send(r, &v, 8, u), -ETIMEDOUT, "full");
	cr_expect_geq(gx_now(), u.deadline);
	cr_expect_eq(gx_ring_send(r, &v, 8, gx_deadline(0)), -ETIMEDOUT);
	/* a call that can complete at once completes, whatever the deadline */
	cr_expect_eq(gx_ring_recv(r, &v, 8, NULL, gx_deadline(0)), 8);
	cr_expect_eq(v, 1);
	cr_expect_eq(gx_ring_send(r, &v, 8, gx_deadline(0)), 0);
	cr_expect_eq(gx_ring_recv(r, &v, 8, NULL, GX_FOREVER), 8);
	cr_expect_eq(v, 2);
	gx_arena_destroy(a);
}

Test(ring, stats_count_positions_on_each_side)
{
	gx_arena *a = new_arena(32 * MiB);
	gx_ring *r = new_ring(a, 16, 24, 0);
	gx_ring_stats s = stats_of(r);
	cr_expect_eq(s.capacity, 16);
	cr_expect_eq(s.msg_size, 24);
	cr_expect_eq(s.sent, 0);
	cr_expect_eq(s.received, 0);
	cr_expect_eq(s.closed, 0);
	for (uint64_t k = 0; k < 11; k++)
		send_u64(r, k);
	for (uint64_t k = 0; k < 4; k++)
		expect_u64(r, k);
	s = stats_of(r);
	cr_expect_eq(s.sent, 11);
	cr_expect_eq(s.received, 4);
	cr_expect_eq(s.queued, 7);
	cr_expect_eq(s.skipped, 0);
	cr_expect_eq(s.lost, 0);
	cr_expect_eq(s.corrupt, 0);
	cr_expect_eq(s.sleeps, 0);
	cr_expect_eq(s.wakes, 0);
	cr_expect_eq(gx_ring_stats_get(NULL, &s), -EINVAL);
	cr_expect_eq(gx_ring_stats_get(r, NULL), -EINVAL);
	gx_arena_destroy(a);
}

/* ---- offsets, destroy ---- */

Test(ring, ring_at_and_ring_off_round_trip_and_refuse_garbage, .timeout = 60)
{
	gx_arena *a = new_arena(32 * MiB);
	gx_arena_info i;
	cr_assert_eq(gx_arena_info_get(a, &i), 0);
	uint64_t base = in_use_total(a);
	gx_ring *r = new_ring(a, 16, 8, 0);
	gx_off ro = gx_ring_off(r);
	cr_assert_gt(ro, 0);
	cr_expect_eq(gx_ring_at(a, ro), r);
	cr_expect_eq(gx_arena_ptr(a, ro, 1), (void *)r, "the ring lives in the arena");
	int64_t c = gx_pool_alloc(a, 4096, -1);
	cr_assert_gt(c, 0);
	memset(gx_arena_ptr(a, (gx_off)c, 4096), 0, 4096);
	gx_off bad[] = {0, 1, ro + 8, ro + 64, ro - 64, (gx_off)c, (gx_off)c + 128, i.size - 64, i.size, UINT64_MAX};
	for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
		cr_expect_null(gx_ring_at(a, bad[k]), "offset %#llx is no ring", (unsigned long long)bad[k]);
	cr_expect_eq(gx_ring_off(NULL), 0);

	/* a ring made by a child, found by its offset */
	_Atomic uint64_t *box = shared_map(4096);
	box[0] = 0;
	pid_t pid = fork_child();
	if (pid == 0) {
		gx_ring *cr = NULL;
		CHILD_CHECK(gx_ring_create(a, &cr, 4, 8, 0) == 0, 2, "create in the child");
		uint64_t v = 31337;
		CHILD_CHECK(gx_ring_try_send(cr, &v, 8) == 0, 3, "send");
		box[0] = gx_ring_off(cr);
		CHILD_CHECK(gx_arena_detach(a) == 0, 4, "detach");
		_exit(0);
	}
	expect_clean_exit(pid, 20, "ring-making child");
	gx_ring *cr = gx_ring_at(a, box[0]);
	cr_assert_not_null(cr, "the child's ring at %#llx", (unsigned long long)box[0]);
	expect_u64(cr, 31337);
	cr_expect_eq(gx_ring_destroy(a, cr), 0);

	cr_expect_eq(gx_ring_destroy(a, r), 0);
	cr_expect_null(gx_ring_at(a, ro), "a destroyed ring is gone");
	cr_expect_eq(gx_ring_destroy(a, r), -EINVAL, "destroyed twice");
	static char local[1024];
	cr_expect_eq(gx_ring_destroy(a, (gx_ring *)local), -EINVAL, "not in the arena");
	cr_expect_eq(gx_ring_destroy(a, NULL), -EINVAL);
	cr_expect_eq(gx_ring_destroy(a, (gx_ring *)gx_arena_ptr(a, (gx_off)c, 1)), -EINVAL, "a chunk, not a ring");
	cr_expect_eq(gx_pool_free(a, (gx_off)c), 0);
	cr_expect_eq(in_use_total(a), base, "destroy gave the ring's memory back");
	munmap((void *)box, 4096);
	gx_arena_destroy(a);
}

/* ---- blocking across processes ---- */

static void recv_woken_by_another_process(int64_t spin_ns)
{
	gx_arena *a = new_arena_with(32 * MiB, GX_MEM_AUTO, spin_ns);
	gx_ring *r = new_ring(a, 8, 8, 0);
	pid_t pid = fork_child();
	if (pid == 0) {
		bool slept = wait_sleeps(r, 0, 10);
		uint64_t v = 4242;
		CHILD_CHECK(gx_ring_send(r, &v, 8, secs(10)) == 0, 2, "send");
		_exit(slept ? 0 : 3);
	}
	uint64_t v = 0;
	ssize_t n = gx_ring_recv(r, &v, 8, NULL, secs(30));
	cr_expect_eq(n, 8, "%zd", n);
	cr_expect_eq(v, 4242);
	int st = reap(pid, 20);
	char b[96];
	cr_expect(st != -1 && WIFEXITED(st), "sender: %s", status_str(st, b, sizeof b));
	cr_expect_eq(WEXITSTATUS(st), 0, "the receiver never went to sleep on the futex");
	gx_ring_stats s = stats_of(r);
	cr_expect_geq(s.sleeps, 1);
	cr_expect_geq(s.wakes, 1, "the send woke the sleeper");
	gx_arena_destroy(a);
}

Test(ring, blocking_recv_is_woken_by_another_process_futex_path, .timeout = 60)
{
	recv_woken_by_another_process(0);
}

Test(ring, blocking_recv_is_woken_by_another_process_default_spin, .timeout = 60)
{
	recv_woken_by_another_process(-1);
}

Test(ring, blocking_send_is_woken_by_a_receiver_in_another_process, .timeout = 60)
{
	gx_arena *a = new_arena_with(32 * MiB, GX_MEM_AUTO, 0);
	gx_ring *r = new_ring(a, 2, 8, 0);
	cr_assert_eq(send_u64(r, 1), 0);
	cr_assert_eq(send_u64(r, 2), 0);
	pid_t pid = fork_child();
	if (pid == 0) {
		bool slept = wait_sleeps(r, 0, 10);
		uint64_t v = 0;
		CHILD_CHECK(gx_ring_recv(r, &v, 8, NULL, secs(10)) == 8 && v == 1, 2, "recv %llu", (unsigned long long)v);
		_exit(slept ? 0 : 3);
	}
	cr_expect_eq(send_u64(r, 3), -EAGAIN);
	uint64_t v = 3;
	cr_expect_eq(gx_ring_send(r, &v, 8, secs(30)), 0);
	expect_clean_exit(pid, 20, "receiver (exit 3: the sender never slept)");
	expect_u64(r, 2);
	expect_u64(r, 3);
	gx_arena_destroy(a);
}

Test(ring, close_wakes_sleepers_on_both_sides, .timeout = 60)
{
	gx_arena *a = new_arena_with(32 * MiB, GX_MEM_AUTO, 0);
	gx_ring *empty = new_ring(a, 2, 8, 0);
	gx_ring *full = new_ring(a, 2, 8, 0);
	cr_assert_eq(send_u64(full, 1), 0);
	cr_assert_eq(send_u64(full, 2), 0);
	pid_t rx = fork_child();
	if (rx == 0) {
		uint64_t v;
		ssize_t n = gx_ring_recv(empty, &v, 8, NULL, GX_FOREVER);
		CHILD_CHECK(n == -EPIPE, 2, "recv on a closed ring: %zd", n);
		_exit(0);
	}
	pid_t tx = fork_child();
	if (tx == 0) {
		uint64_t v = 3;
		int n = gx_ring_send(full, &v, 8, GX_FOREVER);
		CHILD_CHECK(n == -EPIPE, 2, "send on a closed ring: %d", n);
		_exit(0);
	}
	cr_expect(wait_sleeps(empty, 0, 10), "the receiver sleeps");
	cr_expect(wait_sleeps(full, 0, 10), "the sender sleeps");
	cr_expect_eq(gx_ring_close(empty), 0);
	cr_expect_eq(gx_ring_close(full), 0);
	expect_clean_exit(rx, 20, "sleeping receiver");
	expect_clean_exit(tx, 20, "sleeping sender");
	gx_arena_destroy(a);
}

Test(ring, nowake_rings_never_sleep, .timeout = 60)
{
	gx_arena *a = new_arena_with(32 * MiB, GX_MEM_AUTO, 0);
	gx_ring *r = new_ring(a, 2, 8, GX_RING_NOWAKE);
	uint64_t v;
	cr_expect_eq(gx_ring_recv(r, &v, 8, NULL, gx_timeout(3 * GX_MILLISECOND)), -ETIMEDOUT);
	pid_t pid = fork_child();
	if (pid == 0) {
		nap_us(2000);
		uint64_t w = 77;
		CHILD_CHECK(gx_ring_send(r, &w, 8, secs(10)) == 0, 2, "send");
		_exit(0);
	}
	cr_expect_eq(gx_ring_recv(r, &v, 8, NULL, secs(20)), 8);
	cr_expect_eq(v, 77);
	expect_clean_exit(pid, 20, "sender");
	gx_ring_stats s = stats_of(r);
	cr_expect_eq(s.sleeps, 0, "GX_RING_NOWAKE: spin and yield only");
	cr_expect_eq(s.wakes, 0);
	gx_arena_destroy(a);
}

/* ---- inside coroutines, on each backend ---- */

static struct {
	gx_ring *r;
	int go_fd;
	volatile int arrived, done, ticks;
	int ticks_while_waiting, done_before_go;
	ssize_t rc;
	uint64_t v;
	char backend[16];
} co;

static void co_waiter(void *arg)
{
	(void)arg;
	co.arrived = 1;
	co.rc = gx_ring_recv(co.r, &co.v, 8, NULL, secs(30));
	co.done = 1;
}

static void co_ticker(void *arg)
{
	(void)arg;
	while (!co.done) {
		co.ticks++;
		gx_sleep(50 * GX_MICROSECOND);
	}
}

static void sleep_until(volatile int *flag, int at_least, int bound_s)
{
	int64_t end = gx_now() + (int64_t)bound_s * GX_SECOND;
	while (*flag < at_least && !co.done && gx_now() < end)
		gx_sleep(100 * GX_MICROSECOND);
}

static int co_main(void *arg)
{
	(void)arg;
	gx_runtime_info inf;
	cr_assert_eq(gx_info(&inf), 0);
	snprintf(co.backend, sizeof co.backend, "%s", inf.backend);
	cr_assert_geq(gx_go(co_waiter, NULL), 1);
	cr_assert_geq(gx_go(co_ticker, NULL), 1);
	sleep_until(&co.arrived, 1, 10);
	/* the waiter is in gx_ring_recv; the ticker must keep going */
	int base = co.ticks;
	sleep_until(&co.ticks, base + 50, 10);
	co.ticks_while_waiting = co.ticks - base;
	co.done_before_go = co.done;
	cr_expect_eq(write(co.go_fd, "g", 1), 1);
	int64_t end = gx_now() + 30 * GX_SECOND;
	while (!co.done && gx_now() < end)
		gx_sleep(100 * GX_MICROSECOND);
	return 0;
}

/* Run fn under gx_run on the given backend; skip when it cannot start. */
static void run_on(gx_backend_kind kind, gx_main_fn fn, const char *want)
{
	unsetenv("GONEX_BACKEND");
	gx_config c;
	gx_config_init(&c);
	c.backend = kind;
	int rc = gx_run(&c, fn, NULL);
	if (rc != 0 && kind == GX_BACKEND_URING)
		cr_skip_test("io_uring cannot start here: %s", strerror(-rc));
	cr_assert_eq(rc, 0, "gx_run: %s", strerror(-rc));
	cr_expect_str_eq(co.backend, want);
}

static void coroutine_waits_while_others_run(gx_backend_kind kind, const char *want)
{
	gx_arena *a = new_arena(32 * MiB);
	memset(&co, 0, sizeof co);
	co.r = new_ring(a, 4, 8, 0);
	int gate[2];
	cr_assert_eq(pipe(gate), 0);
	pid_t pid = fork_child();
	if (pid == 0) {
		close(gate[1]);
		struct pollfd p = {.fd = gate[0], .events = POLLIN};
		poll(&p, 1, 15000); /* the go, or give up and send anyway */
		uint64_t v = 99;
		CHILD_CHECK(gx_ring_send(co.r, &v, 8, secs(10)) == 0, 2, "send");
		_exit(0);
	}
	close(gate[0]);
	co.go_fd = gate[1];
	run_on(kind, co_main, want);
	close(gate[1]);
	expect_clean_exit(pid, 20, "sending process");
	cr_expect_eq(co.done_before_go, 0, "the waiter returned before anything was sent (rc %zd)", co.rc);
	cr_expect_geq(co.ticks_while_waiting, 50, "the process stopped while one coroutine waited on the ring");
	cr_expect_eq(co.rc, 8, "%zd", co.rc);
	cr_expect_eq(co.v, 99);
	gx_arena_destroy(a);
}

Test(ring, a_waiting_coroutine_lets_others_run_io_uring, .timeout = 90)
{
	coroutine_waits_while_others_run(GX_BACKEND_URING, "io_uring");
}

Test(ring, a_waiting_coroutine_lets_others_run_epoll, .timeout = 90)
{
	coroutine_waits_while_others_run(GX_BACKEND_EPOLL, "epoll");
}

static struct {
	gx_ring *r;
	int canceller_ran;
} cx;

static void co_cancel(void *arg)
{
	cx.canceller_ran = 1;
	cr_expect_eq(gx_ctx_cancel(arg), 0);
}

static int ctx_main(void *arg)
{
	(void)arg;
	gx_runtime_info inf;
	cr_assert_eq(gx_info(&inf), 0);
	snprintf(co.backend, sizeof co.backend, "%s", inf.backend);
	gx_ctx *c = NULL;
	cr_assert_eq(gx_ctx_with_cancel(gx_ctx_background(), &c), 0);
	cr_assert_geq(gx_go(co_cancel, c), 1);
	uint64_t v = 0;
	cr_expect_eq(gx_ring_recv(cx.r, &v, 8, NULL, gx_ctx_until(c)), -ECANCELED);
	cr_expect_eq(cx.canceller_ran, 1);
	cr_expect_eq(gx_ring_recv(cx.r, &v, 8, NULL, gx_ctx_until(c)), -ECANCELED, "already cancelled");
	gx_ctx_release(c);
	cr_expect_eq(gx_ring_recv(cx.r, &v, 8, NULL, gx_timeout(2 * GX_MILLISECOND)), -ETIMEDOUT);
	/* full: a blocked send ends the same ways */
	uint64_t w = 1;
	cr_expect_eq(gx_ring_try_send(cx.r, &w, 8), 0);
	cr_expect_eq(gx_ring_try_send(cx.r, &w, 8), 0);
	cr_expect_eq(gx_ring_send(cx.r, &w, 8, gx_timeout(2 * GX_MILLISECOND)), -ETIMEDOUT);
	cr_assert_eq(gx_ctx_with_cancel(gx_ctx_background(), &c), 0);
	cx.canceller_ran = 0;
	cr_assert_geq(gx_go(co_cancel, c), 1);
	cr_expect_eq(gx_ring_send(cx.r, &w, 8, gx_ctx_until(c)), -ECANCELED);
	cr_expect_eq(cx.canceller_ran, 1);
	gx_ctx_release(c);
	return 0;
}

static void deadlines_in_coroutines(gx_backend_kind kind, const char *want)
{
	gx_arena *a = new_arena(32 * MiB);
	memset(&cx, 0, sizeof cx);
	cx.r = new_ring(a, 2, 8, 0);
	run_on(kind, ctx_main, want);
	gx_arena_destroy(a);
}

Test(ring, deadlines_and_cancels_in_coroutines_io_uring, .timeout = 60)
{
	deadlines_in_coroutines(GX_BACKEND_URING, "io_uring");
}

Test(ring, deadlines_and_cancels_in_coroutines_epoll, .timeout = 60)
{
	deadlines_in_coroutines(GX_BACKEND_EPOLL, "epoll");
}

/*
 * Three producers, three consumers. Producer p sends k*P + p for k < N, so
 * every value 0 .. P*N-1 is sent once; consumers mark each value they get
 * in a shared table and add it up. Totals must match exactly: every message
 * delivered once, none lost, none duplicated.
 */
#define SP 3
#define SC 3
#define SN 20000
#define SMAX_BATCH 16

enum stress_mode { BLOCKING, BATCHES, CHUNKS };

typedef struct stress_book {
	_Atomic uint64_t sum[SC], count[SC], chunks;
	_Atomic uint8_t hits[SP * SN];
} stress_book;

static void stress_producer(gx_arena *a, gx_ring *r, int id, enum stress_mode mode)
{
	uint64_t rs = seed_from((uint64_t)id, 3);
	for (uint64_t k = 0; k < SN;) {
		if (mode == BATCHES) {
			uint64_t vals[SMAX_BATCH];
			size_t n = 1 + rnd(&rs) % SMAX_BATCH;
			if (n > SN - k)
				n = SN - k;
			for (size_t j = 0; j < n; j++)
				vals[j] = (k + j) * SP + (uint64_t)id;
			int got = gx_ring_send_batch(r, vals, n, secs(30));
			CHILD_CHECK(got >= 1 && (size_t)got <= n, 2, "send_batch(%zu): %d", n, got);
			k += (uint64_t)got;
			continue;
		}
		uint64_t v = k * SP + (uint64_t)id;
		if (mode == CHUNKS && k % 7 == 0) {
			size_t len = 8 + rnd(&rs) % 2000;
			int64_t c = gx_pool_alloc(a, len, -1);
			CHILD_CHECK(c > 0, 3, "alloc: %lld", (long long)c);
			unsigned char *p = gx_arena_ptr(a, (gx_off)c, len);
			memcpy(p, &v, 8);
			memset(p + 8, (int)(v & 0xff), len - 8);
			int rc = gx_ring_send_chunk(r, (gx_off)c, len, secs(30));
			CHILD_CHECK(rc == 0, 4, "send_chunk: %d", rc);
		} else {
			int rc = gx_ring_send(r, &v, 8, secs(30));
			CHILD_CHECK(rc == 0, 5, "send: %d", rc);
		}
		k++;
	}
	CHILD_CHECK(gx_arena_detach(a) == 0, 6, "detach");
	_exit(0);
}

static void take(stress_book *b, int id, uint64_t v)
{
	CHILD_CHECK(v < SP * SN, 20, "value %llu was never sent", (unsigned long long)v);
	uint8_t before = atomic_fetch_add(&b->hits[v], 1);
	CHILD_CHECK(before == 0, 21, "value %llu received twice", (unsigned long long)v);
	b->sum[id] += v;
	b->count[id]++;
}

static void stress_consumer(gx_arena *a, gx_ring *r, stress_book *b, int id, enum stress_mode mode)
{
	for (;;) {
		if (mode == BATCHES) {
			uint64_t vals[SMAX_BATCH];
			int got = gx_ring_recv_batch(r, vals, SMAX_BATCH, secs(30));
			if (got == -EPIPE)
				break;
			CHILD_CHECK(got >= 1 && got <= SMAX_BATCH, 10, "recv_batch: %d", got);
			for (int j = 0; j < got; j++)
				take(b, id, vals[j]);
			continue;
		}
		uint64_t v = 0;
		gx_off c = 0;
		ssize_t n = gx_ring_recv(r, &v, 8, mode == CHUNKS ? &c : NULL, secs(30));
		if (n == -EPIPE)
			break;
		if (c) {
			unsigned char *p = gx_arena_ptr(a, c, (size_t)n);
			CHILD_CHECK(n >= 8 && p, 11, "chunk message of %zd bytes at %#llx", n, (unsigned long long)c);
			memcpy(&v, p, 8);
			for (ssize_t j = 8; j < n; j++)
				CHILD_CHECK(p[j] == (unsigned char)(v & 0xff), 12, "chunk byte %zd", j);
			CHILD_CHECK(gx_pool_free(a, c) == 0, 13, "free a received chunk");
			b->chunks++;
		} else {
			CHILD_CHECK(n == 8, 14, "recv: %zd", n);
		}
		take(b, id, v);
	}
	CHILD_CHECK(gx_arena_detach(a) == 0, 15, "detach");
	_exit(0);
}

static void stress(enum stress_mode mode, int64_t spin_ns)
{
	gx_arena *a = new_arena_with(32 * MiB, GX_MEM_AUTO, spin_ns);
	gx_ring *r = new_ring(a, 64, 8, 0);
	uint64_t base = in_use_total(a);
	stress_book *b = shared_map(sizeof *b);
	pid_t prod[SP], cons[SC];
	for (int k = 0; k < SC; k++) {
		cons[k] = fork_child();
		if (cons[k] == 0)
			stress_consumer(a, r, b, k, mode);
	}
	for (int k = 0; k < SP; k++) {
		prod[k] = fork_child();
		if (prod[k] == 0)
			stress_producer(a, r, k, mode);
	}
	bool ok = true;
	for (int k = 0; k < SP; k++)
		ok &= expect_clean_exit(prod[k], 90, "producer");
	cr_expect_eq(gx_ring_close(r), 0);
	for (int k = 0; k < SC; k++)
		ok &= expect_clean_exit(cons[k], 30, "consumer");
	cr_assert(ok);
	uint64_t count = 0, sum = 0;
	for (int k = 0; k < SC; k++) {
		count += b->count[k];
		sum += b->sum[k];
	}
	const uint64_t total = (uint64_t)SP * SN;
	cr_expect_eq(count, total, "messages received");
	cr_expect_eq(sum, total * (total - 1) / 2, "sum of the values received");
	for (uint64_t v = 0; v < total; v++)
		cr_assert_eq(b->hits[v], 1, "value %llu received %d times", (unsigned long long)v, b->hits[v]);
	if (mode == CHUNKS)
		cr_expect_geq(b->chunks, SP * (SN / 7), "chunk messages went through");
	gx_ring_stats s = stats_of(r);
	cr_expect_eq(s.sent, total);
	cr_expect_eq(s.received, total);
	cr_expect_eq(s.queued, 0);
	cr_expect_eq(s.skipped + s.lost + s.corrupt, 0);
	cr_expect_eq(in_use_total(a), base, "every chunk freed by its receiver");
	munmap(b, sizeof *b);
	gx_arena_destroy(a);
}

Test(ring, stress_3x3_blocking_every_message_exactly_once, .timeout = 150)
{
	stress(BLOCKING, -1);
}

Test(ring, stress_3x3_batches_every_message_exactly_once, .timeout = 150)
{
	stress(BATCHES, -1);
}

Test(ring, stress_3x3_chunks_on_the_futex_path_every_message_exactly_once, .timeout = 150)
{
	stress(CHUNKS, 0);
}
