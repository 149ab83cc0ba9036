/* What was checked stays what is used: a slab header rewritten between its check and its use, a ring header rewritten with a fresh nonce and another message size, a ring table that grows while a receive waits, and a pool's repairing word that names this process or a live one. Each of these crashed, overflowed a caller's buffer, read freed memory or hung before. */
#include "harness.h"

#include "core/testpoint.h"
#include "shm/ring.h"

#include <gonex/coro.h>
#include <gonex/runtime.h>

/* ---- a slab header rewritten between its check and its use ---- */

#if GX_TEST_POINTS
static int rewrites;

static void rewrite_slab(const char *name, void *arg)
{
	if (strcmp(name, "pool.slab.read") != 0 || rewrites++)
		return;
	/* what a peer writes in the window: chunk size 0 (a divisor), a
	 * huge chunk count, data at 0 */
	gx_slab_hdr *s = arg;
	s->size = 0;
	s->nchunks = 0x7fff;
	s->data = 0;
}
#endif

Test(recheck, a_slab_header_rewritten_after_its_check_changes_nothing_this_process_computes, .timeout = 60)
{
#if !GX_TEST_POINTS
	cr_skip_test("built without -Dtest_points=true");
#else
	gx_arena *a = new_arena(32 * MiB);
	int64_t c = gx_pool_alloc(a, 200, -1);
	cr_assert_gt(c, 0);
	rewrites = 0;
	gx_test_point_fn = rewrite_slab;
	int64_t size = gx_pool_chunk_size(a, (gx_off)c);
	gx_test_point_fn = NULL;
	cr_assert_eq(rewrites, 1, "the header was rewritten in the window");
	/* the size as checked, or a refusal when it is looked up again */
	cr_expect(size == 256 || size == -EINVAL, "the size: %lld", (long long)size);
	/* the header is garbage now: the chunk is refused, nothing crashes */
	cr_expect_lt(gx_pool_free(a, (gx_off)c), 0);
	cr_assert_eq(gx_arena_reset(a), 0);
	gx_arena_destroy(a);
#endif
}

/* ---- a ring header rewritten with a fresh nonce ---- */

Test(recheck, a_ring_rewritten_with_a_fresh_nonce_and_another_message_size_is_refused, .timeout = 60)
{
	gx_arena *a = new_arena(32 * MiB);
	gx_ring *r;
	cr_assert_eq(gx_ring_create(a, &r, 64, 8, 0), 0);
	gx_off off = gx_ring_off(r);
	uint64_t v[4] = {1, 2, 3, 4};
	cr_assert_eq(gx_ring_try_send_batch(r, v, 4), 4);
	/* a peer writes a new identity (the nonce) and 120-byte messages in
	 * 128-byte slots, and slot tags that say 120 */
	uint64_t *w = (uint64_t *)r, *slot0 = NULL;
	for (size_t i = 0; i + 1 < 1024 / 8 && !slot0; i++)
		if (w[i] == (1 | (uint64_t)8 << 56) && w[i + 1] == 1)
			slot0 = &w[i];
	cr_assert_not_null(slot0, "slot 0 of the ring");
	r->msg_size = 120;
	r->stride = 128;
	for (uint64_t pos = 0; pos < 4; pos++)
		atomic_store((_Atomic uint64_t *)(slot0 + pos * 2), (pos + 1) | (uint64_t)120 << 56);
	atomic_store(&r->nonce, atomic_load(&r->nonce) + 2);
	struct {
		uint64_t got[4];
		uint64_t canary[64];
	} b;
	memset(b.canary, 0xa5, sizeof b.canary);
	int n = gx_ring_try_recv_batch(r, b.got, 4);
	for (size_t i = 0; i < 64; i++)
		cr_assert_eq(b.canary[i], 0xa5a5a5a5a5a5a5a5ull, "byte %zu past the buffer was written (n %d)", i * 8, n);
	cr_expect_eq(n, -EINVAL, "a known ring whose message size changed is refused: %d", n);
	/* found anew on purpose, it is the ring as it is now */
	cr_expect_eq(gx_ring_at(a, off), r);
	gx_arena_destroy(a);
}

/* ---- the ring table grows while a receive waits ---- */

static gx_arena *grow_arena;
static gx_ring *grow_ring;
static int grow_rc = -1;
static uint64_t grow_got;

static void grow_receiver(void *arg)
{
	(void)arg;
	grow_rc = (int)gx_ring_recv(grow_ring, &grow_got, 8, NULL, gx_timeout(10 * GX_SECOND));
}

static int grow_main(void *arg)
{
	(void)arg;
	gx_go(grow_receiver, NULL);
	gx_yield(); /* the receiver waits, holding its ring's geometry */
	gx_ring *more[600];
	int made = 0;
	/* enough rings that this process's table grows (and moves) twice */
	for (; made < 600; made++)
		if (gx_ring_create(grow_arena, &more[made], 2, 8, 0) < 0)
			break;
	uint64_t v = 99;
	int sent = gx_ring_send(grow_ring, &v, 8, gx_timeout(GX_SECOND));
	for (int i = 0; i < 100 && grow_rc == -1; i++)
		gx_sleep(GX_MILLISECOND);
	for (int i = 0; i < made; i++)
		gx_ring_destroy(grow_arena, more[i]);
	return made == 600 && sent == 0 ? 0 : 1;
}

Test(recheck, a_receive_that_waits_while_the_ring_table_grows_uses_its_own_copy, .timeout = 60)
{
	grow_arena = new_arena(64 * MiB);
	cr_assert_eq(gx_ring_create(grow_arena, &grow_ring, 8, 8, 0), 0);
	gx_config c;
	gx_config_init(&c);
	c.workers = 0;
	cr_assert_eq(gx_run(&c, grow_main, NULL), 0);
	cr_expect_eq(grow_rc, 8, "the receive: %d", grow_rc);
	cr_expect_eq(grow_got, 99);
	gx_arena_destroy(grow_arena);
}

/* ---- a pool's repairing word that names this process, or a live one ---- */

/* Allocate and free through the lists of pool (node 0, class 1): a free
 * that goes to the list opens a journal, which waits on `repairing`. */
static void churn_class_1(gx_arena *a)
{
	int64_t c[32];
	for (int i = 0; i < 32; i++)
		c[i] = gx_pool_alloc(a, 100, -1);
	for (int i = 0; i < 32; i++)
		if (c[i] > 0)
			cr_expect_eq(gx_pool_free(a, (gx_off)c[i]), 0);
}

Test(recheck, a_repairing_word_that_names_this_process_is_taken_over, .timeout = 30)
{
	gx_arena *a = new_arena(32 * MiB);
	cr_assert_geq(gx_arena_attach(a), 0);
	uint32_t me = gx_owner_tag(a);
	cr_assert_neq(me, 0u);
	atomic_store(&gx_ah(a)->cls[0][1].repairing, me);
	churn_class_1(a);
	cr_expect_eq(gx_arena_repair(a, 0, &(gx_repair_report){0}), 0);
	gx_arena_destroy(a);
}

Test(recheck, a_repairing_word_that_names_a_live_running_process_is_taken_over_in_the_end, .timeout = 30)
{
	gx_arena *a = new_arena(32 * MiB);
	_Atomic int *ready = shared_map(4096);
	pid_t owner = fork_child();
	if (owner == 0) {
		/* attaches, then sleeps: alive and running, never repairing */
		int s = gx_arena_attach(a);
		atomic_store(&ready[1], (int)gx_owner_tag(a));
		atomic_store(&ready[0], s >= 0 ? 1 : 2);
		for (;;)
			pause();
	}
	int64_t end = gx_now() + 10 * GX_SECOND;
	while (!atomic_load(&ready[0]) && gx_now() < end)
		nap_us(100);
	cr_assert_eq(atomic_load(&ready[0]), 1);
	cr_assert_geq(gx_arena_attach(a), 0);
	atomic_store(&gx_ah(a)->cls[0][1].repairing, (uint32_t)atomic_load(&ready[1]));
	churn_class_1(a);
	kill(owner, SIGKILL);
	int st;
	waitpid(owner, &st, 0);
	gx_arena_destroy(a);
}
