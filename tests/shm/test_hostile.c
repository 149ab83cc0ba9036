/* A hostile peer: random bytes over the arena's header, a forged size beside a forged ring, garbage in a pool's repairing word (or one that names the waiter itself, or a live process), and a same-user process that maps the arena through /proc/PID/fd and scribbles over it while a runtime works: no crash, no hang, errors at worst. */
#include <dirent.h>
#include <fcntl.h>

#include "harness.h"

#include "shm/ring.h"

/* The bytes of the header after the magic that hold the geometry and the
 * parts (size .. part[]): what the reported crashes scribbled over. */
#define GEO_LO 8u
#define GEO_HI 480u

static void scribble(void *base, size_t lo, size_t hi, uint64_t *seed)
{
	unsigned char *p = base;
	for (size_t i = lo; i < hi; i++)
		p[i] = (unsigned char)rnd(seed);
}

/* Everything a user of the arena does, each call bounded; the results
 * may be errors. Returns how many calls succeeded. */
static int use_arena(gx_arena *a, gx_ring *r)
{
	int ok = 0;
	for (int i = 0; i < 200; i++) {
		int64_t c = gx_pool_alloc(a, (size_t)64 << (i % 10), -1);
		if (c > 0)
			ok += gx_pool_free(a, (gx_off)c) == 0;
	}
	uint64_t v = 42, w[4];
	for (int i = 0; i < 50; i++) {
		ok += gx_ring_try_send(r, &v, 8) == 0;
		ok += gx_ring_try_recv(r, &v, 8, NULL) >= 0;
		ok += gx_ring_try_recv_batch(r, w, 4) >= 0;
		ok += gx_ring_recv(r, &v, 8, NULL, gx_timeout(GX_MILLISECOND)) >= 0;
	}
	gx_repair_report rep;
	ok += gx_arena_repair(a, 0, &rep) >= 0;
	gx_arena_info info;
	ok += gx_arena_info_get(a, &info) == 0;
	gx_pool_class_stats s;
	ok += gx_pool_stats(a, 0, 0, &s) == 0;
	return ok;
}

Test(hostile, random_bytes_over_the_header_geometry_never_crash_alloc_or_repair, .timeout = 120)
{
	for (uint64_t run = 0; run < 10; run++) {
		gx_arena *a = new_arena(32 * MiB);
		gx_ring *r;
		cr_assert_eq(gx_ring_create(a, &r, 64, 8, 0), 0);
		uint64_t seed = seed_from(run, 1);
		scribble(a, GEO_LO, GEO_HI, &seed);
		use_arena(a, r);
		cr_assert_eq(gx_arena_reset(a), 0);
		/* and it is back: a fresh ring and chunk work */
		gx_ring *r2;
		cr_assert_eq(gx_ring_create(a, &r2, 64, 8, 0), 0, "a ring after the reset (run %llu)",
			     (unsigned long long)run);
		uint64_t v = 7;
		cr_expect_eq(gx_ring_try_send(r2, &v, 8), 0);
		v = 0;
		cr_expect_eq(gx_ring_try_recv(r2, &v, 8, NULL), 8);
		cr_expect_eq(v, 7);
		int64_t c = gx_pool_alloc(a, 1000, -1);
		cr_expect_gt(c, 0);
		cr_expect_eq(gx_pool_free(a, (gx_off)c), 0);
		gx_arena_destroy(a);
	}
}

Test(hostile, a_forged_arena_size_and_ring_capacity_never_crash_a_receive, .timeout = 60)
{
	gx_arena *a = new_arena(32 * MiB);
	gx_ring *r;
	cr_assert_eq(gx_ring_create(a, &r, 64, 8, 0), 0);
	uint64_t v = 1;
	cr_assert_eq(gx_ring_try_send(r, &v, 8), 0);
	gx_arena_hdr *h = gx_ah(a);
	h->size = (uint64_t)1 << 40; /* the arena claims a terabyte */
	/* and the ring 16 M slots: its second word is the capacity */
	uint32_t *hdr = (uint32_t *)r;
	hdr[1] = 1u << 24;
	/* and its positions far along: head and tail (128 and 256 bytes in)
	 * name a slot just past the end of the arena (16-byte slots after a
	 * 768-byte header) */
	gx_arena_info info;
	cr_assert_eq(gx_arena_info_get(a, &info), 0);
	uint64_t past = ((uint64_t)((char *)a + info.size - (char *)r) - 768) / 16 + 64;
	uint64_t *pos = (uint64_t *)r;
	pos[128 / 8] = past;
	pos[256 / 8] = past;
	char buf[64];
	uint64_t w[8];
	for (int i = 0; i < 1000; i++) {
		gx_ring_try_recv(r, buf, sizeof buf, NULL);
		gx_ring_try_recv_batch(r, w, 8);
		gx_ring_try_send(r, &v, 8);
	}
	gx_repair_report rep;
	gx_arena_repair(a, 0, &rep);
	cr_assert_eq(gx_arena_reset(a), 0);
	gx_arena_destroy(a);
}

Test(hostile, garbage_in_a_pools_repairing_word_never_hangs_an_allocation, .timeout = 60)
{
	gx_arena *a = new_arena(32 * MiB);
	cr_assert_geq(gx_arena_attach(a), 0);
	gx_arena_hdr *h = gx_ah(a);
	for (int c = 0; c < GX_POOL_CLASSES; c++)
		atomic_store(&h->cls[0][c].repairing, 0xdeadbeefu + (uint32_t)c);
	/* a free that must go to the list (not the cache) opens a journal */
	int64_t got[64];
	for (int i = 0; i < 64; i++)
		got[i] = gx_pool_alloc(a, 100, -1);
	for (int i = 0; i < 64; i++)
		if (got[i] > 0)
			cr_expect_eq(gx_pool_free(a, (gx_off)got[i]), 0);
	int64_t c = gx_pool_alloc(a, 5000, -1);
	cr_expect_gt(c, 0, "an allocation after the garbage: %lld", (long long)c);
	gx_arena_destroy(a);
}

/* ---- a same-user peer through /proc/PID/fd ---- */

/* The arena's memfd in process pid, mapped read-write here: its size in
 * *len, NULL when not found. */
static void *map_foreign_arena(pid_t pid, size_t *len)
{
	char dir[64], path[384], target[256];
	snprintf(dir, sizeof dir, "/proc/%d/fd", (int)pid);
	DIR *d = opendir(dir);
	if (!d)
		return NULL;
	struct dirent *e;
	void *p = NULL;
	while (!p && (e = readdir(d))) {
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		ssize_t n = readlink(path, target, sizeof target - 1);
		if (n <= 0)
			continue;
		target[n] = 0;
		if (!strstr(target, "gonex-arena"))
			continue;
		int fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			continue;
		off_t size = lseek(fd, 0, SEEK_END);
		if (size > 0) {
			p = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
			if (p == MAP_FAILED)
				p = NULL;
			else
				*len = (size_t)size;
		}
		close(fd);
	}
	closedir(d);
	return p;
}

static int t_work(const void *arg, size_t len, gx_task_result *res)
{
	(void)arg;
	(void)len;
	uint64_t x = 1;
	for (int i = 0; i < 1000; i++)
		x = x * 6364136223846793005ull + 1;
	return gx_task_return(res, &x, sizeof x);
}

/* The victim's main: tasks, a distributed channel and pool chunks, each
 * call bounded, for about two seconds. */
static int victim_main(void *arg)
{
	(void)arg;
	gx_chan *ch = NULL;
	gx_chan_make(&ch, 8, 16, GX_CHAN_DISTRIBUTED);
	int64_t end = gx_now() + 2 * GX_SECOND;
	while (gx_now() < end) {
		gx_future f;
		if (gx_go_parallel(&f, t_work, NULL, 0, NULL) == 0)
			gx_future_get(f, NULL, 0, NULL, gx_timeout(200 * GX_MILLISECOND));
		uint64_t v = 5;
		if (ch) {
			gx_chan_try_send(ch, &v);
			gx_chan_try_recv(ch, &v, NULL);
		}
		gx_sleep(GX_MILLISECOND);
	}
	return 0;
}

Test(hostile, a_peer_scribbling_over_the_header_through_proc_pid_fd_never_crashes_the_runtime, .timeout = 240)
{
	for (uint64_t run = 0; run < 10; run++) {
		pid_t victim = fork_child();
		if (victim == 0) {
			gx_config c;
			gx_config_init(&c);
			c.workers = 2;
			int rc = gx_run(&c, victim_main, NULL);
			_exit(rc == 0 ? 0 : 3);
		}
		pid_t peer = fork_child();
		if (peer == 0) {
			size_t len = 0;
			void *p = NULL;
			for (int i = 0; i < 2000 && !p; i++) {
				p = map_foreign_arena(victim, &len);
				nap_us(1000);
			}
			if (!p)
				_exit(4);
			uint64_t seed = seed_from(run, 2);
			for (int i = 0; i < 1500; i++) {
				scribble(p, GEO_LO, GEO_HI, &seed);
				nap_us(1000);
			}
			_exit(0);
		}
		expect_clean_exit(peer, 30, "the scribbler");
		int st = reap(victim, 60);
		char b[96];
		cr_expect(st != -1 && !WIFSIGNALED(st), "run %llu: the runtime under scribbles: %s",
			  (unsigned long long)run, status_str(st, b, sizeof b));
	}
}

/* A peer's rewrite of ring r (64 x 8 bytes, holding 1..4): 120-byte
 * messages in 128-byte slots, and slot tags that say 120 too; with
 * new_nonce, a fresh identity as well (a ring made anew there). */
static void forge_120_byte_messages(gx_ring *r, bool new_nonce)
{
	uint64_t *w = (uint64_t *)r, *slot0 = NULL;
	/* slot 0: its sequence word (position 1, tag 8) then the value 1;
	 * slots are 16 bytes apart */
	for (size_t i = 0; i + 1 < 1024 / 8 && !slot0; i++)
		if (w[i] == (1 | (uint64_t)8 << 56) && w[i + 1] == 1)
			slot0 = &w[i];
	cr_assert_not_null(slot0, "slot 0 of the ring");
	r->msg_size = 120;
	r->stride = 128;
	for (uint64_t pos = 0; pos < 4; pos++)
		atomic_store((_Atomic uint64_t *)(slot0 + pos * 2), (pos + 1) | (uint64_t)120 << 56);
	if (new_nonce)
		atomic_store(&r->nonce, atomic_load(&r->nonce) + 2);
}

/* A batch receive of 4 into a buffer of 4 x 8 bytes fenced by canaries:
 * its result, after checking that no canary changed. */
static int fenced_batch_receive(gx_ring *r)
{
	struct {
		uint64_t got[4];
		uint64_t canary[64];
	} b;
	memset(b.canary, 0xa5, sizeof b.canary);
	int n = gx_ring_try_recv_batch(r, b.got, 4);
	for (size_t i = 0; i < 64; i++)
		cr_assert_eq(b.canary[i], 0xa5a5a5a5a5a5a5a5ull, "byte %zu past the buffer was written (n %d)", i * 8, n);
	return n;
}

static gx_ring *ring_of_four(gx_arena *a)
{
	gx_ring *r;
	cr_assert_eq(gx_ring_create(a, &r, 64, 8, 0), 0);
	uint64_t v[4] = {1, 2, 3, 4};
	cr_assert_eq(gx_ring_try_send_batch(r, v, 4), 4);
	return r;
}

Test(hostile, a_batch_receive_never_writes_past_the_callers_buffer_whatever_the_header_says, .timeout = 60)
{
	gx_arena *a = new_arena(32 * MiB);
	gx_ring *r = ring_of_four(a);
	forge_120_byte_messages(r, false);
	int n = fenced_batch_receive(r);
	cr_expect_lt(n, 0, "120-byte messages on a ring of 8-byte ones are garbage to this process: %d", n);
	gx_arena_destroy(a);
}

Test(hostile, a_ring_rewritten_with_a_fresh_nonce_and_another_message_size_is_refused, .timeout = 60)
{
	gx_arena *a = new_arena(32 * MiB);
	gx_ring *r = ring_of_four(a);
	gx_off off = gx_ring_off(r);
	forge_120_byte_messages(r, true);
	int n = fenced_batch_receive(r);
	cr_expect_eq(n, -EINVAL, "a known ring whose message size changed is refused: %d", n);
	/* found anew on purpose, it is the ring as it is now */
	cr_expect_eq(gx_ring_at(a, off), r);
	gx_arena_destroy(a);
}

/* ---- a pool's repairing word: a stopped owner, this process, a live one ---- */

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

/* A child attached to a, its owner tag in *tag. With repair_and_stop it
 * writes that tag into pool (node 0, class 1)'s repairing word and stops
 * (SIGSTOP); else it sleeps. */
static pid_t owner_child(gx_arena *a, bool repair_and_stop, uint32_t *tag)
{
	_Atomic uint32_t *ready = shared_map(4096);
	pid_t owner = fork_child();
	if (owner == 0) {
		cr_assert_geq(gx_arena_attach(a), 0);
		atomic_store(&ready[1], gx_owner_tag(a));
		if (repair_and_stop)
			atomic_store(&gx_ah(a)->cls[0][1].repairing, atomic_load(&ready[1]));
		atomic_store(&ready[0], 1);
		if (repair_and_stop)
			raise(SIGSTOP);
		for (;;)
			pause();
	}
	int64_t end = gx_now() + 10 * GX_SECOND;
	while (!atomic_load(&ready[0]) && gx_now() < end)
		nap_us(100);
	cr_assert_eq(atomic_load(&ready[0]), 1u);
	*tag = atomic_load(&ready[1]);
	return owner;
}

Test(hostile, a_repairer_that_is_stopped_does_not_hang_allocations, .timeout = 60)
{
	gx_arena *a = new_arena(32 * MiB);
	/* it takes pool (node 0, class 1)'s repairing word as a repairer
	 * would, then stops before letting go */
	uint32_t tag;
	pid_t owner = owner_child(a, true, &tag);
	int st;
	cr_assert_eq(waitpid(owner, &st, WUNTRACED), owner);
	cr_assert(WIFSTOPPED(st), "the repairer stopped");
	/* a free that goes to the list opens a journal on that pool, which
	 * waits for the repairer: it must take over from a stopped one */
	churn_class_1(a);
	kill(owner, SIGKILL);
	waitpid(owner, &st, 0);
	gx_arena_destroy(a);
}

Test(hostile, a_repairing_word_that_names_this_process_is_taken_over, .timeout = 30)
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

Test(hostile, a_repairing_word_that_names_a_live_running_process_is_taken_over_in_the_end, .timeout = 30)
{
	gx_arena *a = new_arena(32 * MiB);
	/* it attaches, then sleeps: alive and running, never repairing */
	uint32_t tag;
	pid_t owner = owner_child(a, false, &tag);
	cr_assert_geq(gx_arena_attach(a), 0);
	atomic_store(&gx_ah(a)->cls[0][1].repairing, tag);
	churn_class_1(a);
	kill(owner, SIGKILL);
	int st;
	waitpid(owner, &st, 0);
	gx_arena_destroy(a);
}
