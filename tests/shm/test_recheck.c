/* What was checked stays what is used: a slab header rewritten between its check and its use, a ring table that grows while a receive waits on one of its rings, and a ring claim being remade while a repairer reads it. Before, the first crashed (SIGFPE), the second read freed memory (ASan), the third left a dead process's slot unrepaired for good. */
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

/* ---- a repairer reads a claim that is being remade ---- */

#if GX_TEST_POINTS
static gx_arena *torn_arena;
static gx_ring *torn_ring;
static int torn_hits;
#define TORN_DEAD (GX_SHM_MAX_PROCS - 1) /* the slot of a process that died */

static void repair_mid_claim(const char *name, void *arg)
{
	(void)arg;
	if (strcmp(name, "ring.journal.claim") != 0 || torn_hits++)
		return;
	gx_repair_report rep;
	memset(&rep, 0, sizeof rep);
	gx_ring_repair_slot(torn_arena, torn_ring, TORN_DEAD, &rep);
}
#endif

Test(recheck, a_claim_being_remade_never_shows_a_repairer_a_torn_pair, .timeout = 60)
{
#if !GX_TEST_POINTS
	cr_skip_test("built without -Dtest_points=true");
#else
	torn_arena = new_arena(32 * MiB);
	cr_assert_geq(gx_arena_attach(torn_arena), 0);
	/* this process's last claim was position 0 (of another ring) */
	gx_ring *other;
	cr_assert_eq(gx_ring_create(torn_arena, &other, 8, 8, 0), 0);
	uint64_t v = 1;
	cr_assert_eq(gx_ring_try_send(other, &v, 8), 0);
	/* a process claimed position 0 of this ring and died before it
	 * published */
	cr_assert_eq(gx_ring_create(torn_arena, &torn_ring, 8, 8, 0), 0);
	gx_proc *dead = &gx_ah(torn_arena)->proc[TORN_DEAD];
	atomic_store(&dead->rj_ring, gx_ring_off(torn_ring));
	atomic_store(&dead->rj_pos, 0);
	atomic_store(&dead->rj_n, 1);
	atomic_store(&dead->rj_kind, GX_JR_SEND);
	atomic_store(&torn_ring->head, 1);
	/* this process claims position 1; its repair runs mid-claim */
	torn_hits = 0;
	gx_test_point_fn = repair_mid_claim;
	v = 2;
	int rc = gx_ring_try_send(torn_ring, &v, 8);
	gx_test_point_fn = NULL;
	cr_assert_eq(rc, 0);
	cr_assert_eq(torn_hits, 1, "the repair ran inside the claim");
	/* the dead claim was skipped, so the value comes out */
	uint64_t got = 0;
	ssize_t n = gx_ring_try_recv(torn_ring, &got, 8, NULL);
	cr_expect_eq(n, 8, "the receive after the repair: %zd (position 0 was left to a live claim)", n);
	cr_expect_eq(got, 2);
	gx_arena_destroy(torn_arena);
#endif
}
