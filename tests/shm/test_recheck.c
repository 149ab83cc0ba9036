/* What was checked stays what is used: a slab header rewritten between its check and its use, and a ring table that grows while a receive waits on one of its rings. The first crashed (SIGFPE), the second read freed memory (ASan), before. */
#include "harness.h"

#include "core/testpoint.h"
#include "shm/shm.h"

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
