/* Pools: every size class, bad lengths and nodes, validated frees, exhaustion and recovery, counters, frees across processes, disowned chunks that outlive their maker, a multi-process stress. */
#include "harness.h"

#include "shm/shm.h" /* GX_SLAB: slabs are 2 MiB aligned */

/* The first node past the parts placed (when placement happened, there is
 * one part per node placed). */
static int placed_nodes(gx_arena *a)
{
	gx_arena_info i;
	cr_assert_eq(gx_arena_info_get(a, &i), 0);
	return i.numa_nodes;
}

Test(pool, every_class_allocates_and_frees)
{
	gx_arena *a = new_arena(48 * MiB);
	int64_t off[GX_POOL_CLASSES];
	for (int c = 0; c < GX_POOL_CLASSES; c++) {
		size_t len = (size_t)64 << c;
		off[c] = gx_pool_alloc(a, len, -1);
		cr_assert_gt(off[c], 0, "class %d (%zu B): %lld", c, len, (long long)off[c]);
		cr_expect_eq(gx_pool_chunk_size(a, (gx_off)off[c]), (int64_t)len, "class %d", c);
		unsigned char *p = gx_arena_ptr(a, (gx_off)off[c], len);
		cr_assert_not_null(p, "chunk of class %d is in the arena", c);
		memset(p, c + 1, len);
	}
	/* no two chunks overlap: each still holds its own byte */
	for (int c = 0; c < GX_POOL_CLASSES; c++) {
		size_t len = (size_t)64 << c;
		unsigned char *p = gx_arena_ptr(a, (gx_off)off[c], len);
		for (size_t k = 0; k < len; k += 61)
			cr_assert_eq(p[k], c + 1, "class %d byte %zu overwritten", c, k);
		cr_assert_eq(p[len - 1], c + 1);
	}
	for (int c = 0; c < GX_POOL_CLASSES; c++) {
		gx_pool_class_stats s = class_sum(a, c);
		cr_expect_eq(s.chunk_size, (size_t)64 << c);
		cr_expect_eq(s.allocs, 1, "class %d", c);
		cr_expect_eq(s.in_use, 1);
		cr_expect_geq(s.chunks, 1);
		cr_expect_eq(gx_pool_free(a, (gx_off)off[c]), 0, "class %d", c);
		s = class_sum(a, c);
		cr_expect_eq(s.frees, 1);
		cr_expect_eq(s.in_use, 0);
		cr_expect_eq(s.bad_frees, 0);
	}
	/* lengths between classes land in the next class up */
	size_t lens[] = {1, 63, 65, 100, 1000, 4097, 65535, 65537, 700000, GX_POOL_MAX_CHUNK - 1, GX_POOL_MAX_CHUNK};
	for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
		int64_t o = gx_pool_alloc(a, lens[k], -1);
		cr_assert_gt(o, 0, "len %zu: %lld", lens[k], (long long)o);
		int64_t cs = gx_pool_chunk_size(a, (gx_off)o);
		cr_expect_geq(cs, (int64_t)lens[k]);
		cr_expect_eq(cs, (int64_t)64 << class_of(lens[k]), "len %zu got %lld", lens[k], (long long)cs);
		cr_expect_not_null(gx_arena_ptr(a, (gx_off)o, (size_t)cs));
		cr_expect_eq(gx_pool_free(a, (gx_off)o), 0);
	}
	cr_expect_eq(in_use_total(a), 0);
	/* the node's own pool, given explicitly */
	int64_t o = gx_pool_alloc(a, 64, 0);
	cr_expect_gt(o, 0, "node 0 always exists");
	cr_expect_eq(gx_pool_free(a, (gx_off)o), 0);
	gx_arena_destroy(a);
}

Test(pool, bad_lengths_nodes_and_classes_are_refused)
{
	gx_arena *a = new_arena(8 * MiB);
	cr_expect_eq(gx_pool_alloc(a, 0, -1), -EINVAL);
	cr_expect_eq(gx_pool_alloc(a, GX_POOL_MAX_CHUNK + 1, -1), -EINVAL);
	cr_expect_eq(gx_pool_alloc(a, SIZE_MAX, -1), -EINVAL);
	if (placed_nodes(a) > 0)
		cr_expect_eq(gx_pool_alloc(a, 64, placed_nodes(a)), -EINVAL, "node %d of %d", placed_nodes(a),
			     placed_nodes(a));
	cr_expect_eq(gx_pool_alloc(a, 64, GX_SHM_MAX_NODES), -EINVAL);
	cr_expect_eq(gx_pool_alloc(a, 64, -2), -EINVAL);
	cr_expect_eq(gx_pool_alloc(a, 64, 1 << 20), -EINVAL);
	cr_expect_eq(gx_pool_alloc(NULL, 64, -1), -EINVAL);
	cr_expect_eq(in_use_total(a), 0, "nothing was allocated");

	gx_pool_class_stats s;
	cr_expect_eq(gx_pool_stats(a, 0, 0, &s), 0);
	cr_expect_eq(gx_pool_stats(a, 0, GX_POOL_CLASSES, &s), -EINVAL);
	cr_expect_eq(gx_pool_stats(a, 0, -1, &s), -EINVAL);
	cr_expect_eq(gx_pool_stats(a, GX_SHM_MAX_NODES, 0, &s), -EINVAL);
	cr_expect_eq(gx_pool_stats(a, -2, 0, &s), -EINVAL);
	cr_expect_eq(gx_pool_stats(a, 0, 0, NULL), -EINVAL);
	cr_expect_eq(gx_pool_stats(NULL, 0, 0, &s), -EINVAL);
	cr_expect_eq(gx_pool_free(NULL, 4096), -EINVAL);
	cr_expect_eq(gx_pool_chunk_size(NULL, 4096), -EINVAL);
	gx_arena_destroy(a);
}

Test(pool, double_free_is_refused_and_changes_nothing)
{
	gx_arena *a = new_arena(8 * MiB);
	int64_t c = gx_pool_alloc(a, 200, -1);
	cr_assert_gt(c, 0);
	int cls = class_of(200);
	cr_expect_eq(gx_pool_free(a, (gx_off)c), 0);
	cr_expect_eq(gx_pool_chunk_size(a, (gx_off)c), -EINVAL, "a free chunk has no size");
	cr_expect_eq(gx_pool_free(a, (gx_off)c), -EINVAL, "double free");
	cr_expect_eq(gx_pool_free(a, (gx_off)c), -EINVAL, "triple free");
	gx_pool_class_stats s = class_sum(a, cls);
	cr_expect_eq(s.allocs, 1);
	cr_expect_eq(s.frees, 1);
	cr_expect_eq(s.bad_frees, 2);
	cr_expect_eq(s.in_use, 0);
	/* the chunk was not queued twice: the next allocations are distinct */
	int64_t x[8];
	for (int k = 0; k < 8; k++) {
		x[k] = gx_pool_alloc(a, 200, -1);
		cr_assert_gt(x[k], 0);
		for (int j = 0; j < k; j++)
			cr_assert_neq(x[k], x[j], "allocations %d and %d got the same chunk", j, k);
	}
	for (int k = 0; k < 8; k++)
		cr_expect_eq(gx_pool_free(a, (gx_off)x[k]), 0);
	cr_expect_eq(class_sum(a, cls).in_use, 0);
	gx_arena_destroy(a);
}

Test(pool, foreign_offsets_are_refused_and_change_nothing)
{
	gx_arena *a = new_arena(16 * MiB);
	gx_arena_info i;
	cr_assert_eq(gx_arena_info_get(a, &i), 0);
	const uint64_t size = i.size;
	int64_t c = gx_pool_alloc(a, 4096, -1);
	int64_t d = gx_pool_alloc(a, 64, -1);
	cr_assert_gt(c, 0);
	cr_assert_gt(d, 0);
	int64_t cs = gx_pool_chunk_size(a, (gx_off)c);
	cr_assert_gt(cs, 0);
	uint64_t before = in_use_total(a);
	gx_off bad[] = {
		0, 1, 8, 64, 4096,               /* the arena header */
		(gx_off)c + 1, (gx_off)c + 64,   /* inside a chunk */
		(gx_off)c + (gx_off)cs / 2,      /* the middle of a chunk */
		(gx_off)c - 1, (gx_off)d + 32,   /* misaligned */
		(gx_off)c & ~(GX_SLAB - 1),      /* its slab's header */
		((gx_off)c & ~(GX_SLAB - 1)) + 64,
		size - GX_SLAB,                  /* a slab never carved */
		size - 64, size, size + 64,      /* the end and beyond */
		size + GX_SLAB, (gx_off)1 << 40, (gx_off)1 << 63, UINT64_MAX, UINT64_MAX - 63,
	};
	for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
		cr_expect_eq(gx_pool_free(a, bad[k]), -EINVAL, "free of offset %#llx", (unsigned long long)bad[k]);
		cr_expect_eq(gx_pool_chunk_size(a, bad[k]), -EINVAL, "size of offset %#llx", (unsigned long long)bad[k]);
	}
	cr_expect_eq(in_use_total(a), before, "no chunk changed hands");
	cr_expect_eq(gx_pool_chunk_size(a, (gx_off)c), cs, "the real chunk is still allocated");
	cr_expect_eq(gx_pool_free(a, (gx_off)c), 0);
	cr_expect_eq(gx_pool_free(a, (gx_off)d), 0);
	cr_expect_eq(in_use_total(a), 0);
	gx_arena_destroy(a);
}

/* Allocate 1 MiB chunks until -ENOMEM; their offsets in out. */
static int fill_up(gx_arena *a, int64_t *out, int max)
{
	int n = 0;
	for (;;) {
		int64_t o = gx_pool_alloc(a, GX_POOL_MAX_CHUNK, -1);
		if (o == -ENOMEM)
			return n;
		cr_assert_gt(o, 0, "alloc %d: %lld", n, (long long)o);
		cr_assert_lt(n, max, "more 1 MiB chunks than the arena holds");
		out[n++] = o;
	}
}

Test(pool, exhaustion_gives_enomem_and_freeing_recovers)
{
	gx_arena *a = new_arena_with(8 * MiB, GX_MEM_4K, -1);
	int64_t got[16];
	int n = fill_up(a, got, 8);
	cr_assert_geq(n, 1, "an 8 MiB arena holds at least one 1 MiB chunk");
	cr_expect_eq(gx_pool_alloc(a, GX_POOL_MAX_CHUNK, -1), -ENOMEM, "still exhausted");
	cr_expect_eq(gx_pool_free(a, (gx_off)got[n - 1]), 0);
	int64_t again = gx_pool_alloc(a, GX_POOL_MAX_CHUNK, -1);
	cr_expect_gt(again, 0, "a freed chunk can be allocated again: %lld", (long long)again);
	got[n - 1] = again;
	for (int k = 0; k < n; k++)
		cr_expect_eq(gx_pool_free(a, (gx_off)got[k]), 0);
	cr_expect_eq(class_sum(a, GX_POOL_CLASSES - 1).in_use, 0);
	/* every chunk came back: the same number fits again, and no more */
	int64_t got2[16];
	cr_expect_eq(fill_up(a, got2, 8), n);
	for (int k = 0; k < n; k++)
		cr_expect_eq(gx_pool_free(a, (gx_off)got2[k]), 0);
	gx_arena_destroy(a);
}

Test(pool, counters_match_what_ran)
{
	gx_arena *a = new_arena(8 * MiB);
	const int cls = 3; /* 512 B */
	gx_pool_class_stats s0 = class_sum(a, cls);
	int64_t c[10];
	for (int k = 0; k < 10; k++) {
		c[k] = gx_pool_alloc(a, 300 + (size_t)k, -1);
		cr_assert_gt(c[k], 0);
	}
	for (int k = 0; k < 4; k++)
		cr_expect_eq(gx_pool_free(a, (gx_off)c[k]), 0);
	cr_expect_eq(gx_pool_free(a, (gx_off)c[0]), -EINVAL);
	gx_pool_class_stats s = class_sum(a, cls);
	cr_expect_eq(s.chunk_size, 512);
	cr_expect_eq(s.allocs - s0.allocs, 10);
	cr_expect_eq(s.frees - s0.frees, 4);
	cr_expect_eq(s.bad_frees - s0.bad_frees, 1);
	cr_expect_eq(s.in_use - s0.in_use, 6);
	cr_expect_eq(s.in_use, s.allocs - s.frees);
	cr_expect_geq(s.chunks, s.in_use, "carved at least what is in use");
	for (int c2 = 0; c2 < GX_POOL_CLASSES; c2++)
		if (c2 != cls)
			cr_expect_eq(class_sum(a, c2).allocs, class_sum(a, c2).frees, "class %d untouched", c2);
	for (int k = 4; k < 10; k++)
		cr_expect_eq(gx_pool_free(a, (gx_off)c[k]), 0);
	s = class_sum(a, cls);
	cr_expect_eq(s.in_use, s0.in_use);
	cr_expect_eq(s.frees - s0.frees, 10);
	gx_arena_destroy(a);
}

Test(pool, a_chunk_allocated_in_a_child_is_freed_by_the_parent, .timeout = 60)
{
	gx_arena *a = new_arena(8 * MiB);
	_Atomic int64_t *box = shared_map(4096);
	box[0] = 0;
	int gate[2];
	cr_assert_eq(pipe(gate), 0);
	pid_t pid = fork_child();
	if (pid == 0) {
		close(gate[1]);
		int64_t c = gx_pool_alloc(a, 3000, -1);
		CHILD_CHECK(c > 0, 2, "alloc: %lld", (long long)c);
		memset(gx_arena_ptr(a, (gx_off)c, 3000), 'k', 3000);
		box[0] = c;
		char b;
		(void)!read(gate[0], &b, 1); /* the parent freed it */
		CHILD_CHECK(gx_pool_free(a, (gx_off)c) == -EINVAL, 3, "the parent freed it already");
		CHILD_CHECK(gx_arena_detach(a) == 0, 4, "detach");
		_exit(0);
	}
	close(gate[0]);
	int64_t end = gx_now() + 10 * GX_SECOND;
	while (box[0] == 0 && gx_now() < end)
		nap_us(200);
	gx_off c = (gx_off)box[0];
	cr_assert_gt(c, 0);
	char *p = gx_arena_ptr(a, c, 3000);
	cr_assert_not_null(p);
	cr_expect_eq(p[0], 'k');
	cr_expect_eq(p[2999], 'k');
	cr_expect_eq(class_sum(a, class_of(3000)).in_use, 1);
	cr_expect_eq(gx_pool_free(a, c), 0, "a free from another process");
	cr_expect_eq(class_sum(a, class_of(3000)).in_use, 0);
	cr_expect_eq(write(gate[1], "x", 1), 1);
	close(gate[1]);
	expect_clean_exit(pid, 20, "allocating child");
	cr_expect_eq(class_sum(a, class_of(3000)).bad_frees, 1, "the child's late free was counted as bad");
	munmap((void *)box, 4096);
	gx_arena_destroy(a);
}

/* A child allocates two chunks, disowns one and dies: repair frees the
 * owned one and leaves the disowned one, which another process owns and
 * frees. */
Test(pool, a_disowned_chunk_outlives_its_maker_until_someone_owns_it, .timeout = 60)
{
	gx_arena *a = new_arena(8 * MiB);
	_Atomic int64_t *box = shared_map(4096);
	box[0] = box[1] = 0;
	pid_t pid = fork_child();
	if (pid == 0) {
		int64_t kept = gx_pool_alloc(a, 3000, -1), lost = gx_pool_alloc(a, 3000, -1);
		CHILD_CHECK(kept > 0 && lost > 0, 2, "alloc");
		memset(gx_arena_ptr(a, (gx_off)kept, 3000), 'd', 3000);
		CHILD_CHECK(gx_pool_disown(a, (gx_off)kept) == 0, 3, "disown");
		CHILD_CHECK(gx_pool_disown(a, (gx_off)kept) == -EINVAL, 4, "not ours any more");
		CHILD_CHECK(gx_pool_free(a, (gx_off)kept) == -EINVAL, 5, "a disowned chunk is not freed as owned");
		box[1] = lost;
		box[0] = kept;
		_exit(0); /* no detach: as if killed */
	}
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
	gx_off kept = (gx_off)box[0], lost = (gx_off)box[1];
	cr_expect_eq(class_sum(a, class_of(3000)).in_use, 2);
	cr_expect_geq(gx_arena_repair(a, pid, NULL), 1);
	cr_expect_eq(class_sum(a, class_of(3000)).in_use, 1, "repair freed the owned chunk only");
	cr_expect_eq(gx_pool_chunk_size(a, lost), -EINVAL, "the owned one is free");
	cr_expect_geq(gx_pool_chunk_size(a, kept), 3000, "the disowned one is still allocated");
	char *p = gx_arena_ptr(a, kept, 3000);
	cr_expect(p && p[0] == 'd' && p[2999] == 'd', "with its bytes");
	cr_expect_eq(gx_pool_own(a, kept), 0, "owned by this process now");
	cr_expect_eq(gx_pool_own(a, kept), -EINVAL, "once");
	cr_expect_eq(gx_pool_free(a, kept), 0);
	cr_expect_eq(class_sum(a, class_of(3000)).in_use, 0);
	cr_expect_eq(gx_pool_disown(a, kept), -EINVAL, "a free chunk cannot be disowned");
	cr_expect_eq(gx_pool_own(a, 12345), -EINVAL, "nor something that is not a chunk owned");
	munmap((void *)box, 4096);
	gx_arena_destroy(a);
}

Test(pool, a_detaching_process_gives_its_cache_back, .timeout = 60)
{
	/* a child takes every 1 MiB chunk and frees them all: with its cache
	 * flushed by detach, the parent can take them all again */
	gx_arena *a = new_arena_with(8 * MiB, GX_MEM_4K, -1);
	int64_t got[16];
	int n = fill_up(a, got, 8);
	for (int k = 0; k < n; k++)
		cr_assert_eq(gx_pool_free(a, (gx_off)got[k]), 0);
	cr_assert_eq(gx_arena_detach(a), 0);
	pid_t pid = fork_child();
	if (pid == 0) {
		int64_t mine[16];
		int m = 0;
		int64_t o;
		while ((o = gx_pool_alloc(a, GX_POOL_MAX_CHUNK, -1)) > 0 && m < 16)
			mine[m++] = o;
		CHILD_CHECK(o == -ENOMEM, 2, "alloc: %lld", (long long)o);
		CHILD_CHECK(m == n, 3, "the child got %d chunks, the parent had %d", m, n);
		for (int k = 0; k < m; k++)
			CHILD_CHECK(gx_pool_free(a, (gx_off)mine[k]) == 0, 4, "free");
		CHILD_CHECK(gx_arena_detach(a) == 0, 5, "detach");
		_exit(0);
	}
	expect_clean_exit(pid, 20, "child taking every chunk");
	int64_t again[16];
	cr_expect_eq(fill_up(a, again, 8), n, "every chunk is back in the pool");
	gx_arena_destroy(a);
}

/*
 * Four processes allocate and free chunks of random classes, passing some
 * to each other through a mailbox to be freed by another process. Each
 * chunk carries a stamp (who, which allocation, its length) at both ends,
 * checked before every free: a chunk handed to two owners at once breaks
 * a stamp. Afterwards every chunk is accounted for.
 */
#define STRESS_PROCS 4
#define STRESS_OPS 20000
#define STRESS_LIVE 48
#define MAILBOX 64

typedef struct stamp {
	uint64_t who, len, check;
} stamp;

typedef struct stress_box {
	_Atomic uint64_t mail[MAILBOX];
	_Atomic uint64_t allocs, frees, cross_frees;
	_Atomic uint64_t enomem;
} stress_box;

static void put_stamp(gx_arena *a, gx_off o, size_t len, uint64_t who)
{
	stamp s = {who, len, who ^ len ^ 0x5bd1e995u};
	unsigned char *p = gx_arena_ptr(a, o, len);
	size_t n = len < sizeof s ? len : sizeof s;
	memcpy(p, &s, n);
	if (len >= 2 * sizeof s)
		memcpy(p + len - sizeof s, &s, sizeof s);
}

static bool stamp_ok(gx_arena *a, gx_off o)
{
	int64_t cs = gx_pool_chunk_size(a, o);
	if (cs <= 0)
		return false;
	unsigned char *p = gx_arena_ptr(a, o, (size_t)cs);
	if (!p)
		return false;
	stamp s = {0, 0, 0};
	memcpy(&s, p, (size_t)cs < sizeof s ? (size_t)cs : sizeof s);
	if ((size_t)cs < sizeof s)
		return true; /* 64 B chunks hold a whole stamp; never reached */
	if (s.check != (s.who ^ s.len ^ 0x5bd1e995u) || s.len > (uint64_t)cs)
		return false;
	if (s.len >= 2 * sizeof s) {
		stamp e;
		memcpy(&e, p + s.len - sizeof s, sizeof e);
		if (memcmp(&e, &s, sizeof s) != 0)
			return false;
	}
	return true;
}

static void stress_child(gx_arena *a, stress_box *box, int id)
{
	uint64_t rs = seed_from((uint64_t)id, 77);
	gx_off live[STRESS_LIVE];
	int n = 0;
	for (int op = 0; op < STRESS_OPS; op++) {
		uint64_t r = rnd(&rs);
		if (n < STRESS_LIVE && (n == 0 || r % 3 != 0)) {
			int cls = (int)(rnd(&rs) % 9); /* up to 16 KiB */
			size_t len = ((size_t)64 << cls) - (rnd(&rs) % ((size_t)32 << cls));
			int64_t o = gx_pool_alloc(a, len, -1);
			if (o == -ENOMEM) {
				box->enomem++;
				continue;
			}
			CHILD_CHECK(o > 0, 2, "alloc %zu: %lld", len, (long long)o);
			CHILD_CHECK(gx_pool_chunk_size(a, (gx_off)o) >= (int64_t)len, 3, "chunk too small");
			put_stamp(a, (gx_off)o, len, (uint64_t)id << 32 | (uint64_t)op);
			live[n++] = (gx_off)o;
			box->allocs++;
		} else if (r % 5 == 0) {
			/* hand one to the mailbox, or free one found there */
			_Atomic uint64_t *m = &box->mail[rnd(&rs) % MAILBOX];
			uint64_t got = atomic_exchange(m, 0);
			if (got) {
				CHILD_CHECK(stamp_ok(a, got), 4, "mailbox chunk %#llx: stamp broken", (unsigned long long)got);
				CHILD_CHECK(gx_pool_free(a, got) == 0, 5, "cross free");
				box->frees++;
				box->cross_frees++;
			} else if (n > 0) {
				uint64_t zero = 0;
				if (atomic_compare_exchange_strong(m, &zero, live[n - 1]))
					n--;
			}
		} else {
			int k = (int)(rnd(&rs) % (uint64_t)n);
			CHILD_CHECK(stamp_ok(a, live[k]), 6, "chunk %#llx: stamp broken", (unsigned long long)live[k]);
			CHILD_CHECK(gx_pool_free(a, live[k]) == 0, 7, "free");
			box->frees++;
			live[k] = live[--n];
		}
	}
	for (int k = 0; k < n; k++) {
		CHILD_CHECK(stamp_ok(a, live[k]), 8, "stamp broken at the end");
		CHILD_CHECK(gx_pool_free(a, live[k]) == 0, 9, "free at the end");
		box->frees++;
	}
	CHILD_CHECK(gx_arena_detach(a) == 0, 10, "detach");
	_exit(0);
}

Test(pool, multi_process_stress_accounts_for_every_chunk, .timeout = 120)
{
	gx_arena *a = new_arena(32 * MiB);
	stress_box *box = shared_map(sizeof *box);
	pid_t pid[STRESS_PROCS];
	for (int k = 0; k < STRESS_PROCS; k++) {
		pid[k] = fork_child();
		if (pid[k] == 0)
			stress_child(a, box, k);
	}
	for (int k = 0; k < STRESS_PROCS; k++)
		expect_clean_exit(pid[k], 90, "stress process");
	for (int k = 0; k < MAILBOX; k++) {
		uint64_t o = box->mail[k];
		if (o) {
			cr_expect(stamp_ok(a, o), "mailbox chunk %#llx left with a broken stamp", (unsigned long long)o);
			cr_expect_eq(gx_pool_free(a, o), 0);
			box->frees++;
		}
	}
	cr_expect_eq(box->enomem, 0, "a 32 MiB arena holds what the stress keeps live");
	cr_expect_eq(box->allocs, box->frees);
	cr_expect_gt(box->cross_frees, 0, "some chunks were freed by another process");
	uint64_t allocs = 0, frees = 0, bad = 0;
	for (int c = 0; c < GX_POOL_CLASSES; c++) {
		gx_pool_class_stats s = class_sum(a, c);
		cr_expect_eq(s.in_use, 0, "class %d: %llu chunks still in use", c, (unsigned long long)s.in_use);
		allocs += s.allocs;
		frees += s.frees;
		bad += s.bad_frees;
	}
	cr_expect_eq(allocs, box->allocs, "the counters saw every allocation");
	cr_expect_eq(frees, box->frees);
	cr_expect_eq(bad, 0);
	munmap(box, sizeof *box);
	gx_arena_destroy(a);
}

Test(pool, pool_size_caps_what_the_pools_carve)
{
	gx_arena_opts o;
	gx_arena_opts_init(&o);
	o.size = (size_t)32 << 20;
	o.tier = GX_MEM_4K;
	o.pool_size = (size_t)4 << 20; /* two 2 MiB slabs */
	gx_arena *a;
	cr_assert_eq(gx_arena_create(&a, &o), 0);
	/* each class takes a slab of its own: the third class finds none */
	int64_t c0 = gx_pool_alloc(a, 64, -1), c1 = gx_pool_alloc(a, 128, -1);
	cr_expect_gt(c0, 0);
	cr_expect_gt(c1, 0);
	cr_expect_eq(gx_pool_alloc(a, 256, -1), -ENOMEM, "past GONEX_POOL_SIZE");
	/* classes that have a slab go on allocating */
	int64_t c2 = gx_pool_alloc(a, 64, -1);
	cr_expect_gt(c2, 0);
	cr_expect_eq(gx_pool_free(a, (gx_off)c0), 0);
	cr_expect_eq(gx_pool_free(a, (gx_off)c1), 0);
	cr_expect_eq(gx_pool_free(a, (gx_off)c2), 0);
	gx_arena_destroy(a);
}
