/* Death and garbage: SIGKILL at random and at exact points, then repair: losses only where counted, no chunk leaked; garbage in slots, ring headers, free lists, chunk headers and journals gives errors, never a crash or a hang. */
#include <sys/ptrace.h>

#include "harness.h"

#include "shm/shm.h"

static gx_ring *new_ring(gx_arena *a, uint32_t cap, uint32_t msg)
{
	gx_ring *r = NULL;
	int rc = gx_ring_create(a, &r, cap, msg, 0);
	cr_assert_eq(rc, 0, "gx_ring_create: %s", strerror(-rc));
	return r;
}

static gx_ring_stats stats_of(const gx_ring *r)
{
	gx_ring_stats s;
	cr_assert_eq(gx_ring_stats_get(r, &s), 0);
	return s;
}

/*
 * Chunk headers as pool.c lays them out (runtime/shm/shm.h has the
 * structures; the two constants are runtime/shm/pool.h's, which only the
 * pool files include): a slab's chunk headers
 * start 64 bytes into it, and a chunk id is (slab index << 15 | index in
 * slab) + 1. The garbage tests check that on chunks they own before they
 * rely on it.
 */
#define T_SLAB_HDR 64u
#define T_ID_SHIFT 15

static gx_slab_hdr *slab_of(gx_arena *a, gx_off off, uint64_t *si)
{
	gx_arena_hdr *h = gx_ah(a);
	*si = (off - h->slab_first) / GX_SLAB;
	return (gx_slab_hdr *)((char *)a + h->slab_first + *si * GX_SLAB);
}

static gx_chunk_hdr *chdr_of(gx_arena *a, gx_off off, uint32_t *id)
{
	uint64_t si;
	gx_slab_hdr *s = slab_of(a, off, &si);
	uint64_t i = (off - gx_ah(a)->slab_first - si * GX_SLAB - s->data) / s->size;
	if (id)
		*id = (uint32_t)((si << T_ID_SHIFT) | i) + 1;
	return (gx_chunk_hdr *)((char *)s + T_SLAB_HDR) + i;
}

/* The chunks in use (OWNED or RING), as "kind|slot@offset" for a failure
 * message: which process holds a leaked chunk, and how. Reads the slabs
 * as pool.c lays them out. */
static const char *in_use_chunks(gx_arena *a, char *out, size_t cap)
{
	gx_arena_hdr *h = gx_ah(a);
	size_t n = 0;
	out[0] = '\0';
	for (uint64_t si = 0; si < h->nslabs; si++) {
		gx_slab_hdr *sl = (gx_slab_hdr *)((char *)a + h->slab_first + si * GX_SLAB);
		if (sl->magic != GX_SLAB_MAGIC)
			continue;
		gx_chunk_hdr *ch = (gx_chunk_hdr *)((char *)sl + T_SLAB_HDR);
		for (uint32_t i = 0; i < sl->nchunks && n + 48 < cap; i++) {
			uint32_t st = atomic_load(&ch[i].state);
			uint32_t k = GX_CHUNK_KIND(st);
			if (st == GX_CHUNK_FREE || (k != GX_CHUNK_OWNED && k != GX_CHUNK_RING))
				continue;
			gx_proc *p = &h->proc[GX_CHUNK_SLOT(st) % GX_SHM_MAX_PROCS];
			n += (size_t)snprintf(out + n, cap - n, " %s|slot %u (pid %d)@%#llx", k == GX_CHUNK_RING ? "RING" : "OWNED",
					      GX_CHUNK_SLOT(st), (int)atomic_load(&p->pid),
					      (unsigned long long)(h->slab_first + si * GX_SLAB + sl->data + (uint64_t)i * sl->size));
		}
	}
	return out;
}

/* Fork a child that attaches, signals, then waits to be killed. */
static pid_t attached_child(gx_arena *a, _Atomic int *ready)
{
	pid_t pid = fork_child();
	if (pid == 0) {
		int s = gx_arena_attach(a);
		*ready = s >= 0 ? 1 : -1;
		for (;;)
			pause();
	}
	int64_t end = gx_now() + 10 * GX_SECOND;
	while (*ready == 0 && gx_now() < end)
		nap_us(100);
	cr_assert_eq(*ready, 1, "the child attached");
	return pid;
}

static void kill_reap(pid_t pid)
{
	kill(pid, SIGKILL);
	int st = reap(pid, 10);
	cr_assert(st != -1 && WIFSIGNALED(st), "child %d did not die by the signal", (int)pid);
}

/* ---- repair: who it accepts ---- */

Test(crash, repair_refuses_unknown_and_live_pids, .timeout = 60)
{
	gx_arena *a = new_arena(32 * MiB);
	gx_repair_report rep;
	cr_assert_geq(gx_arena_attach(a), 0);
	cr_expect_eq(gx_arena_repair(a, getpid(), &rep), -EBUSY, "the caller itself is alive");
	cr_expect_eq(gx_arena_repair(a, 0, &rep), 0, "nobody died");
	cr_expect_eq(rep.procs, 0);

	pid_t never = fork_child();
	if (never == 0)
		_exit(0);
	expect_clean_exit(never, 10, "child that never attached");
	cr_expect_eq(gx_arena_repair(a, never, &rep), -ESRCH, "a pid that never held a slot");
	cr_expect_eq(gx_arena_repair(a, 999999999, &rep), -ESRCH);

	_Atomic int *ready = shared_map(4096);
	pid_t live = attached_child(a, ready);
	cr_expect_eq(gx_arena_repair(a, live, &rep), -EBUSY, "still running");
	cr_expect_eq(gx_arena_repair(a, 0, &rep), 0, "pid 0 leaves the living alone");
	kill_reap(live);
	memset(&rep, 0x5a, sizeof rep);
	cr_expect_eq(gx_arena_repair(a, live, &rep), 1);
	cr_expect_eq(rep.procs, 1);
	cr_expect_eq(rep.chunks_freed, 0);
	cr_expect_eq(rep.slots_skipped, 0);
	cr_expect_eq(rep.slots_lost, 0);
	cr_expect_eq(gx_arena_repair(a, live, &rep), -ESRCH, "repaired once");
	gx_arena_info i;
	cr_assert_eq(gx_arena_info_get(a, &i), 0);
	cr_expect_eq(i.procs, 1, "the dead one's slot is free");
	cr_expect_eq(gx_arena_repair(NULL, 0, &rep), -EINVAL);
	munmap((void *)ready, 4096);
	gx_arena_destroy(a);
}

Test(crash, repair_returns_a_dead_process_chunks, .timeout = 60)
{
	gx_arena *a = new_arena_with(8 * MiB, GX_MEM_4K, -1);
	/* how many 1 MiB chunks the arena holds */
	int64_t got[16];
	int n = 0;
	for (int64_t o; (o = gx_pool_alloc(a, GX_POOL_MAX_CHUNK, -1)) > 0 && n < 16;)
		got[n++] = o;
	cr_assert_geq(n, 2);
	for (int k = 0; k < n; k++)
		cr_assert_eq(gx_pool_free(a, (gx_off)got[k]), 0);
	cr_assert_eq(gx_arena_detach(a), 0);

	_Atomic int64_t *box = shared_map(4096);
	box[0] = 0;
	pid_t pid = fork_child();
	if (pid == 0) {
		int64_t mine[16];
		int m = 0;
		for (int64_t o; m < n && (o = gx_pool_alloc(a, GX_POOL_MAX_CHUNK, -1)) > 0;)
			mine[m++] = o;
		CHILD_CHECK(m == n, 2, "took %d of %d", m, n);
		CHILD_CHECK(gx_pool_free(a, (gx_off)mine[0]) == 0, 3, "free into the cache");
		box[0] = 1;
		for (;;)
			pause();
	}
	int64_t end = gx_now() + 10 * GX_SECOND;
	while (box[0] == 0 && gx_now() < end)
		nap_us(100);
	cr_assert_eq(box[0], 1);
	cr_expect_eq(class_sum(a, GX_POOL_CLASSES - 1).in_use, (uint64_t)n - 1);
	kill_reap(pid);
	cr_expect_eq(gx_pool_alloc(a, GX_POOL_MAX_CHUNK, -1), -ENOMEM, "the dead hold every chunk");
	gx_repair_report rep;
	cr_expect_eq(gx_arena_repair(a, pid, &rep), 1);
	cr_expect_eq(rep.procs, 1);
	cr_expect_eq(rep.chunks_freed, (uint64_t)n, "%d owned and one cached", n - 1);
	cr_expect_eq(class_sum(a, GX_POOL_CLASSES - 1).in_use, 0);
	int again = 0;
	for (int64_t o; (o = gx_pool_alloc(a, GX_POOL_MAX_CHUNK, -1)) > 0 && again < 16;)
		again++;
	cr_expect_eq(again, n, "every chunk is back");
	munmap((void *)box, 4096);
	gx_arena_destroy(a);
}

Test(crash, repair_of_pid_0_takes_every_dead_slot, .timeout = 60)
{
	gx_arena *a = new_arena(32 * MiB);
	_Atomic int *ready = shared_map(4096);
	pid_t pid[3];
	for (int k = 0; k < 3; k++) {
		ready[k] = 0;
		pid[k] = fork_child();
		if (pid[k] == 0) {
			int64_t c = gx_pool_alloc(a, 1000, -1);
			ready[k] = c > 0 ? 1 : -1;
			for (;;)
				pause();
		}
		int64_t end = gx_now() + 10 * GX_SECOND;
		while (ready[k] == 0 && gx_now() < end)
			nap_us(100);
		cr_assert_eq(ready[k], 1);
	}
	kill_reap(pid[0]);
	kill_reap(pid[1]);
	gx_repair_report rep;
	cr_expect_eq(gx_arena_repair(a, 0, &rep), 2, "two dead, one alive");
	cr_expect_eq(rep.procs, 2);
	cr_expect_eq(rep.chunks_freed, 2);
	cr_expect_eq(in_use_total(a), 1, "the living one's chunk stays");
	cr_expect_eq(gx_arena_repair(a, pid[2], &rep), -EBUSY);
	kill_reap(pid[2]);
	cr_expect_eq(gx_arena_repair(a, 0, &rep), 1);
	cr_expect_eq(in_use_total(a), 0);
	munmap((void *)ready, 4096);
	gx_arena_destroy(a);
}

/*
 * Kill-point test for producers. One consumer receives (with a deadline,
 * so it can never block for good) until the ring is closed. 300 times, a
 * producer is forked, sends a random mix of single, batch and chunk
 * messages, and is SIGKILLed after 0-2 ms; the test reaps it and repairs.
 *
 * Every message carries a sequence number that no other send uses. The
 * producer marks each number in shared memory, outside the arena:
 * INFLIGHT before the call, SENT once the call returned it as sent, UNSENT
 * when the call returned without sending it. The consumer counts what it
 * gets per number. At the end:
 *   - nothing is received twice, nothing never sent is received;
 *   - every SENT number was received (no consumer died: nothing may be lost);
 *   - an INFLIGHT number (killed inside the call) was received or not; the
 *     ones not received are the losses, and for every kill the slots repair
 *     skipped are at most those losses (a claimed slot never published is
 *     one lost message; an unclaimed one was never sent);
 *   - the consumer finished once the ring was closed (not stuck on a dead
 *     producer's slot), and every chunk is back in its pool.
 */
#define KP_ITER 300
#define KP_MAX (1u << 22)
#define KP_MAGIC 0x9e3779b97f4a7c15ull

typedef struct kp_msg {
	uint64_t seq, check;
} kp_msg;

enum { KS_NONE, KS_INFLIGHT, KS_SENT, KS_UNSENT };

typedef struct kp_book {
	_Atomic uint64_t next;
	_Atomic uint64_t received, dup, bad, badmsg;
	_Atomic uint8_t state[KP_MAX];
	_Atomic uint8_t got[KP_MAX];
} kp_book;

static kp_msg kp_make(uint64_t s)
{
	kp_msg m = {s, s ^ KP_MAGIC};
	return m;
}

static uint64_t kp_claim(kp_book *b, uint64_t n)
{
	uint64_t s = atomic_fetch_add(&b->next, n);
	if (s + n > KP_MAX)
		for (;;)
			pause(); /* out of numbers: wait for the kill */
	return s;
}

static void kp_producer(gx_arena *a, gx_ring *r, kp_book *b, uint64_t seed)
{
	uint64_t rs = seed;
	gx_until u;
	for (;;) {
		u = gx_timeout(50 * GX_MILLISECOND);
		uint64_t kind = rnd(&rs) % 4;
		if (kind == 0) {
			kp_msg m[8];
			uint64_t n = 1 + rnd(&rs) % 8;
			uint64_t s = kp_claim(b, n);
			for (uint64_t j = 0; j < n; j++) {
				m[j] = kp_make(s + j);
				b->state[s + j] = KS_INFLIGHT;
			}
			int got = gx_ring_send_batch(r, m, n, u);
			if (got == -ETIMEDOUT)
				got = 0;
			CHILD_CHECK(got >= 0 && (uint64_t)got <= n, 2, "send_batch(%llu): %d", (unsigned long long)n, got);
			for (uint64_t j = 0; j < n; j++)
				b->state[s + j] = j < (uint64_t)got ? KS_SENT : KS_UNSENT;
		} else if (kind == 1) {
			uint64_t s = kp_claim(b, 1);
			b->state[s] = KS_INFLIGHT;
			size_t len = sizeof(kp_msg) + rnd(&rs) % 3000;
			int64_t c = gx_pool_alloc(a, len, -1);
			if (c == -ENOMEM) {
				b->state[s] = KS_UNSENT;
				continue;
			}
			CHILD_CHECK(c > 0, 3, "alloc: %lld", (long long)c);
			unsigned char *p = gx_arena_ptr(a, (gx_off)c, len);
			kp_msg m = kp_make(s);
			memcpy(p, &m, sizeof m);
			memset(p + sizeof m, (int)(s & 0xff), len - sizeof m);
			int rc = gx_ring_send_chunk(r, (gx_off)c, len, u);
			if (rc == 0) {
				b->state[s] = KS_SENT;
			} else {
				CHILD_CHECK(rc == -ETIMEDOUT, 4, "send_chunk: %d", rc);
				b->state[s] = KS_UNSENT;
				CHILD_CHECK(gx_pool_free(a, (gx_off)c) == 0, 5, "a chunk not sent stays the sender's");
			}
		} else {
			uint64_t s = kp_claim(b, 1);
			kp_msg m = kp_make(s);
			b->state[s] = KS_INFLIGHT;
			int rc = gx_ring_send(r, &m, sizeof m, u);
			CHILD_CHECK(rc == 0 || rc == -ETIMEDOUT, 6, "send: %d", rc);
			b->state[s] = rc == 0 ? KS_SENT : KS_UNSENT;
		}
	}
}

static void kp_consumer(gx_arena *a, gx_ring *r, kp_book *b)
{
	for (;;) {
		kp_msg m = {0, 0};
		gx_off c = 0;
		ssize_t n = gx_ring_recv(r, &m, sizeof m, &c, gx_timeout(100 * GX_MILLISECOND));
		if (n == -ETIMEDOUT)
			continue;
		if (n == -EPIPE)
			break;
		if (n == -EBADMSG) {
			b->badmsg++;
			continue;
		}
		CHILD_CHECK(n > 0, 10, "recv: %zd", n);
		if (c) {
			unsigned char *p = gx_arena_ptr(a, c, (size_t)n);
			if (!p || (size_t)n < sizeof m) {
				b->bad++;
				continue;
			}
			memcpy(&m, p, sizeof m);
			for (ssize_t j = sizeof m; j < n; j++)
				if (p[j] != (unsigned char)(m.seq & 0xff)) {
					b->bad++;
					break;
				}
			CHILD_CHECK(gx_pool_free(a, c) == 0, 11, "free a received chunk");
		} else if (n != sizeof m) {
			b->bad++;
			continue;
		}
		if (m.check != (m.seq ^ KP_MAGIC) || m.seq >= KP_MAX) {
			b->bad++;
			continue;
		}
		if (atomic_fetch_add(&b->got[m.seq], 1) != 0)
			b->dup++;
		b->received++;
	}
	CHILD_CHECK(gx_arena_detach(a) == 0, 12, "detach");
	_exit(0);
}

typedef struct kill_rec {
	uint64_t start, end, skipped;
} kill_rec;

Test(crash, producers_killed_at_random_points_lose_only_what_repair_counts, .timeout = 240)
{
	gx_arena *a = new_arena(32 * MiB);
	gx_ring *r = new_ring(a, 64, sizeof(kp_msg));
	uint64_t base = in_use_total(a);
	kp_book *b = shared_map(sizeof *b);
	pid_t cons = fork_child();
	if (cons == 0)
		kp_consumer(a, r, b);
	const uint64_t seed = seed_from((uint64_t)gx_now(), (uint64_t)getpid());
	uint64_t rs = seed;
	kill_rec *log = calloc(KP_ITER, sizeof *log);
	uint64_t skipped = 0, chunks_freed = 0;
	int repaired = 0;
	for (int it = 0; it < KP_ITER; it++) {
		uint64_t start = b->next;
		pid_t pid = fork_child();
		if (pid == 0)
			kp_producer(a, r, b, seed_from(seed, (uint64_t)it));
		nap_us((long)(rnd(&rs) % 2001));
		kill(pid, SIGKILL);
		int st = reap(pid, 10);
		char sb[96];
		cr_assert(st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "producer %d (seed %#llx): %s", it,
			  (unsigned long long)seed, status_str(st, sb, sizeof sb));
		gx_repair_report rep;
		int rc = gx_arena_repair(a, pid, &rep);
		cr_assert(rc == 1 || rc == -ESRCH, "repair after kill %d: %d", it, rc);
		if (rc == -ESRCH) /* killed before its first call */
			memset(&rep, 0, sizeof rep);
		else
			repaired++;
		cr_expect_eq(rep.slots_lost, 0, "kill %d: no consumer died, yet %llu lost", it,
			     (unsigned long long)rep.slots_lost);
		uint64_t end = b->next;
		log[it] = (kill_rec){start, end < KP_MAX ? end : KP_MAX, rep.slots_skipped};
		skipped += rep.slots_skipped;
		chunks_freed += rep.chunks_freed;
	}
	cr_expect_eq(gx_ring_close(r), 0);
	cr_assert(expect_clean_exit(cons, 30, "consumer (stuck on a slot of a dead producer?)"));

	const uint64_t total = b->next < KP_MAX ? b->next : KP_MAX;
	uint64_t sent = 0, inflight = 0, inflight_lost = 0;
	for (uint64_t s = 0; s < total; s++) {
		uint8_t st = b->state[s], got = b->got[s];
		cr_assert_leq(got, 1, "seq %llu received %d times (seed %#llx)", (unsigned long long)s, got,
			      (unsigned long long)seed);
		if (st == KS_SENT) {
			sent++;
			cr_assert_eq(got, 1, "seq %llu: its send returned 0, yet it never arrived (seed %#llx)",
				     (unsigned long long)s, (unsigned long long)seed);
		} else if (st == KS_INFLIGHT) {
			inflight++;
			inflight_lost += !got;
		} else {
			cr_assert_eq(got, 0, "seq %llu was never sent (state %d), yet received", (unsigned long long)s, st);
		}
	}
	for (int it = 0; it < KP_ITER; it++) {
		uint64_t lost = 0;
		for (uint64_t s = log[it].start; s < log[it].end; s++)
			lost += b->state[s] == KS_INFLIGHT && !b->got[s];
		cr_expect_leq(log[it].skipped, lost, "kill %d: repair skipped %llu slots, but only %llu messages were lost",
			      it, (unsigned long long)log[it].skipped, (unsigned long long)lost);
	}
	cr_expect_leq(skipped, inflight_lost);
	cr_expect_eq(b->dup, 0);
	cr_expect_eq(b->bad, 0, "a message arrived damaged");
	cr_expect_eq(b->badmsg, 0, "-EBADMSG without any corruption");
	cr_expect_eq(b->received, sent + (inflight - inflight_lost));
	gx_ring_stats s = stats_of(r);
	cr_expect_eq(s.skipped, skipped, "the ring counts what repair skipped");
	cr_expect_eq(s.lost, 0);
	cr_expect_eq(s.corrupt, 0);
	cr_expect_eq(s.queued, 0);
	char held[1024];
	cr_expect_eq(in_use_total(a), base, "chunks leaked (repair gave back %llu); in use:%s",
		     (unsigned long long)chunks_freed, in_use_chunks(a, held, sizeof held));
	cr_expect_gt(sent, 0, "some sends completed");
	cr_expect_gt(repaired, 0, "some producers were killed after attaching");
	cr_log_info("kill-point: %d kills (%d after attaching), %llu sent, %llu in flight (%llu lost), %llu slots skipped, "
		    "%llu chunks returned, seed %#llx",
		    KP_ITER, repaired, (unsigned long long)sent, (unsigned long long)inflight,
		    (unsigned long long)inflight_lost, (unsigned long long)skipped, (unsigned long long)chunks_freed,
		    (unsigned long long)seed);
	free(log);
	munmap(b, sizeof *b);
	gx_arena_destroy(a);
}

/*
 * Kill-point test for consumers. One producer sends 0..N-1 and is never
 * killed; consumers are forked and SIGKILLed mid-receive, one after the
 * other, then a last one drains the ring once it is closed. A consumer
 * receives straight into shared memory outside the arena (a landing
 * area), so a message that reached the consumer before it died is seen
 * by the test even if the consumer never got to count it. Then every
 * message is received at most once, and the ones never received are at
 * most what repair counted as lost.
 */
#define CK_N 100000
#define CK_ITER 100
#define CK_BATCH 8

typedef struct ck_book {
	_Atomic uint64_t landed;
	kp_msg land[CK_N + 2 * CK_BATCH];
	_Atomic uint8_t got[CK_N];
	_Atomic uint8_t sent[CK_N];
} ck_book;

static void ck_producer(gx_arena *a, gx_ring *r, ck_book *b)
{
	for (uint64_t k = 0; k < CK_N;) {
		kp_msg m = kp_make(k);
		int rc = gx_ring_send(r, &m, sizeof m, gx_timeout(100 * GX_MILLISECOND));
		if (rc == -ETIMEDOUT)
			continue;
		CHILD_CHECK(rc == 0, 2, "send %llu: %d", (unsigned long long)k, rc);
		b->sent[k++] = 1;
	}
	CHILD_CHECK(gx_arena_detach(a) == 0, 3, "detach");
	_exit(0);
}

static void ck_consumer(gx_ring *r, ck_book *b, bool batch)
{
	for (;;) {
		uint64_t i = b->landed;
		CHILD_CHECK(i + CK_BATCH <= CK_N + 2 * CK_BATCH, 10, "more messages than were sent");
		gx_until u = gx_timeout(100 * GX_MILLISECOND);
		ssize_t n;
		if (batch) {
			memset(&b->land[i], 0, CK_BATCH * sizeof(kp_msg));
			n = gx_ring_recv_batch(r, &b->land[i], CK_BATCH, u);
			if (n > 0)
				b->landed = i + (uint64_t)n;
		} else {
			memset(&b->land[i], 0, sizeof(kp_msg));
			n = gx_ring_recv(r, &b->land[i], sizeof(kp_msg), NULL, u);
			if (n > 0) {
				CHILD_CHECK(n == sizeof(kp_msg), 11, "recv: %zd bytes", n);
				b->landed = i + 1;
			}
		}
		if (n > 0 || n == -ETIMEDOUT)
			continue;
		CHILD_CHECK(n == -EPIPE, 12, "recv: %zd", n);
		_exit(0);
	}
}

static bool ck_valid(const kp_msg *m)
{
	return m->seq < CK_N && m->check == (m->seq ^ KP_MAGIC);
}

/* Count what the last consumer landed, then clear the landing area. */
static void ck_collect(ck_book *b, uint64_t *garbage, uint64_t *unsaid)
{
	uint64_t n = b->landed;
	for (uint64_t k = 0; k < n; k++) {
		if (!ck_valid(&b->land[k])) {
			(*garbage)++;
			continue;
		}
		b->got[b->land[k].seq]++;
	}
	/* received, but killed before it counted them */
	for (uint64_t k = n; k < n + CK_BATCH; k++)
		if (ck_valid(&b->land[k])) {
			b->got[b->land[k].seq]++;
			(*unsaid)++;
		}
	memset(b->land, 0, (n + CK_BATCH) * sizeof(kp_msg));
	b->landed = 0;
}

Test(crash, consumers_killed_mid_receive_lose_only_what_repair_counts, .timeout = 240)
{
	gx_arena *a = new_arena(32 * MiB);
	gx_ring *r = new_ring(a, 64, sizeof(kp_msg));
	ck_book *b = shared_map(sizeof *b);
	pid_t prod = fork_child();
	if (prod == 0)
		ck_producer(a, r, b);
	const uint64_t seed = seed_from((uint64_t)gx_now(), (uint64_t)getpid());
	uint64_t rs = seed;
	uint64_t lost = 0, garbage = 0, unsaid = 0;
	for (int it = 0; it < CK_ITER; it++) {
		bool batch = it % 2;
		pid_t pid = fork_child();
		if (pid == 0)
			ck_consumer(r, b, batch);
		nap_us((long)(rnd(&rs) % 2001));
		kill(pid, SIGKILL);
		int st = reap(pid, 10);
		char sb[96];
		cr_assert(st != -1 && WIFSIGNALED(st), "consumer %d: %s", it, status_str(st, sb, sizeof sb));
		gx_repair_report rep;
		int rc = gx_arena_repair(a, pid, &rep);
		cr_assert(rc == 1 || rc == -ESRCH, "repair after kill %d: %d", it, rc);
		if (rc == -ESRCH)
			memset(&rep, 0, sizeof rep);
		cr_expect_eq(rep.slots_skipped, 0, "no producer died");
		cr_expect_leq(rep.slots_lost, batch ? CK_BATCH : 1, "kill %d: one call holds at most its batch", it);
		lost += rep.slots_lost;
		ck_collect(b, &garbage, &unsaid);
	}
	/* the ring still works: the next consumer gets everything left */
	pid_t last = fork_child();
	if (last == 0)
		ck_consumer(r, b, false);
	cr_assert(expect_clean_exit(prod, 120, "producer (blocked on a ring a dead consumer left stuck?)"));
	cr_expect_eq(gx_ring_close(r), 0);
	cr_assert(expect_clean_exit(last, 30, "last consumer"));
	ck_collect(b, &garbage, &unsaid);

	uint64_t missing = 0;
	for (uint64_t s = 0; s < CK_N; s++) {
		cr_assert_eq(b->sent[s], 1);
		cr_assert_leq(b->got[s], 1, "seq %llu received %d times (seed %#llx)", (unsigned long long)s, b->got[s],
			      (unsigned long long)seed);
		missing += !b->got[s];
	}
	cr_expect_eq(garbage, 0, "damaged messages");
	cr_expect_leq(missing, lost, "%llu messages never arrived, repair counted %llu lost (seed %#llx)",
		      (unsigned long long)missing, (unsigned long long)lost, (unsigned long long)seed);
	gx_ring_stats s = stats_of(r);
	cr_expect_eq(s.lost, lost);
	cr_expect_eq(s.skipped, 0);
	cr_expect_eq(s.queued, 0);
	cr_log_info("consumer kills: %d, %llu lost by repair's count, %llu missing, %llu received but not yet counted",
		    CK_ITER, (unsigned long long)lost, (unsigned long long)missing, (unsigned long long)unsaid);
	munmap(b, sizeof *b);
	gx_arena_destroy(a);
}

/*
 * Kills at exact points. A child stops itself under ptrace just before one
 * ring call; the test steps it one instruction at a time until the call has
 * done what the point is about (claimed a position, say), SIGKILLs it there
 * and repairs. Where the random kills above land in a window of a few
 * instructions only now and then, these land in it every time.
 */
typedef struct point {
	gx_arena *a;
	gx_ring *r;
	uint64_t sent, received; /* the ring's counters before the call */
	gx_off chunk;
	_Atomic int *slot; /* the child's slot, when it reports it */
} point;

/* In the child: be traced, stop until the test steps us. */
static void stop_for_tracer(void)
{
	if (ptrace(PTRACE_TRACEME, 0, 0, 0) != 0)
		_exit(77);
	raise(SIGSTOP);
}

/* Step pid until at(pt), then SIGKILL and reap it. The steps taken, or -1
 * when ptrace is refused here (the test skips), -2 when the call finished
 * without reaching the point. */
static long step_until(pid_t pid, bool (*at)(point *), point *pt)
{
	int st;
	cr_assert_eq(waitpid(pid, &st, WUNTRACED), pid);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 77)
		return -1;
	cr_assert(WIFSTOPPED(st), "the child stopped for the tracer");
	for (long i = 0; i < 2000000; i++) {
		if (at(pt)) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			return i;
		}
		cr_assert_eq(ptrace(PTRACE_SINGLESTEP, pid, 0, 0), 0, "PTRACE_SINGLESTEP: %s", strerror(errno));
		cr_assert_eq(waitpid(pid, &st, 0), pid);
		if (!WIFSTOPPED(st))
			return -2;
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return -2;
}

static bool head_moved(point *pt)
{
	gx_ring_stats s;
	return gx_ring_stats_get(pt->r, &s) == 0 && s.sent > pt->sent;
}

static bool tail_moved(point *pt)
{
	gx_ring_stats s;
	return gx_ring_stats_get(pt->r, &s) == 0 && s.received > pt->received;
}

enum { P_SEND, P_BATCH, P_CHUNK, P_RECV, P_RECV_BATCH, P_RECV_CHUNK };

static pid_t point_child(point *pt, int what)
{
	pid_t pid = fork_child();
	if (pid != 0)
		return pid;
	gx_arena *a = pt->a;
	int s = gx_arena_attach(a);
	if (pt->slot)
		*pt->slot = s;
	uint64_t v[3] = {100, 101, 102};
	int64_t c = what == P_CHUNK ? gx_pool_alloc(a, 500, -1) : 0;
	if (c > 0)
		memset(gx_arena_ptr(a, (gx_off)c, 500), 'c', 500);
	char buf[64];
	gx_off got = 0;
	stop_for_tracer();
	switch (what) {
	case P_SEND:
		gx_ring_try_send(pt->r, v, 8);
		break;
	case P_BATCH:
		gx_ring_try_send_batch(pt->r, v, 3);
		break;
	case P_CHUNK:
		gx_ring_try_send_chunk(pt->r, (gx_off)c, 500);
		break;
	case P_RECV:
	case P_RECV_CHUNK:
		gx_ring_try_recv(pt->r, buf, sizeof buf, &got);
		break;
	default:
		gx_ring_try_recv_batch(pt->r, buf, 3);
		break;
	}
	_exit(0);
}

static void kill_at(point *pt, int what, bool (*at)(point *), gx_repair_report *rep)
{
	gx_ring_stats s;
	cr_assert_eq(gx_ring_stats_get(pt->r, &s), 0);
	pt->sent = s.sent;
	pt->received = s.received;
	pid_t pid = point_child(pt, what);
	long steps = step_until(pid, at, pt);
	if (steps == -1)
		cr_skip_test("ptrace is not allowed here");
	cr_assert_geq(steps, 0, "the call never reached the point");
	int rc = gx_arena_repair(pt->a, pid, rep);
	cr_assert_eq(rc, 1, "repair: %d", rc);
}

Test(crash, a_producer_killed_between_claim_and_publish_gets_its_slots_skipped, .timeout = 120)
{
	gx_arena *a = new_arena(32 * MiB);
	point pt = {.a = a, .r = new_ring(a, 8, 8)};
	uint64_t base = in_use_total(a);
	gx_repair_report rep;
	uint64_t v, skipped = 0;

	kill_at(&pt, P_SEND, head_moved, &rep);
	cr_expect_eq(rep.slots_skipped, 1, "one slot claimed, never published");
	skipped += rep.slots_skipped;
	v = 7;
	cr_assert_eq(gx_ring_try_send(pt.r, &v, 8), 0);
	v = 0;
	cr_expect_eq(gx_ring_try_recv(pt.r, &v, 8, NULL), 8, "the skipped slot is passed over");
	cr_expect_eq(v, 7);

	kill_at(&pt, P_BATCH, head_moved, &rep);
	cr_expect_eq(rep.slots_skipped, 3, "a batch of three claimed at once");
	skipped += rep.slots_skipped;
	v = 8;
	cr_assert_eq(gx_ring_try_send(pt.r, &v, 8), 0);
	cr_expect_eq(gx_ring_recv(pt.r, &v, 8, NULL, secs(5)), 8);
	cr_expect_eq(v, 8);

	kill_at(&pt, P_CHUNK, head_moved, &rep);
	cr_expect_eq(rep.slots_skipped, 1);
	skipped += rep.slots_skipped;
	cr_expect_eq(in_use_total(a), base, "the chunk it was handing over is back in its pool");
	cr_expect_eq(gx_ring_try_recv(pt.r, &v, 8, NULL), -EAGAIN);

	gx_ring_stats s = stats_of(pt.r);
	cr_expect_eq(s.skipped, skipped);
	cr_expect_eq(s.queued, 0);
	cr_expect_eq(s.lost, 0);
	gx_arena_destroy(a);
}

Test(crash, a_consumer_killed_between_take_and_release_counts_its_slots_lost, .timeout = 120)
{
	gx_arena *a = new_arena(32 * MiB);
	point pt = {.a = a, .r = new_ring(a, 8, 8)};
	uint64_t base = in_use_total(a);
	gx_repair_report rep;
	uint64_t v, lost = 0;
	for (v = 0; v < 6; v++)
		cr_assert_eq(gx_ring_try_send(pt.r, &v, 8), 0);

	kill_at(&pt, P_RECV, tail_moved, &rep);
	cr_expect_eq(rep.slots_lost, 1, "one message taken, never released");
	lost += rep.slots_lost;
	cr_expect_eq(gx_ring_try_recv(pt.r, &v, 8, NULL), 8);
	cr_expect_eq(v, 1, "message 0 is the lost one; the ring goes on");

	kill_at(&pt, P_RECV_BATCH, tail_moved, &rep);
	cr_expect_eq(rep.slots_lost, 3, "a batch of three taken at once");
	lost += rep.slots_lost;
	cr_expect_eq(gx_ring_try_recv(pt.r, &v, 8, NULL), 8);
	cr_expect_eq(v, 5);

	int64_t c = gx_pool_alloc(a, 300, -1);
	cr_assert_gt(c, 0);
	cr_assert_eq(gx_ring_try_send_chunk(pt.r, (gx_off)c, 300), 0);
	kill_at(&pt, P_RECV_CHUNK, tail_moved, &rep);
	cr_expect_eq(rep.slots_lost, 1);
	lost += rep.slots_lost;
	cr_expect_eq(in_use_total(a), base, "the chunk of the lost message is back in its pool");

	v = 9;
	cr_assert_eq(gx_ring_try_send(pt.r, &v, 8), 0);
	cr_expect_eq(gx_ring_try_recv(pt.r, &v, 8, NULL), 8);
	cr_expect_eq(v, 9);
	gx_ring_stats s = stats_of(pt.r);
	cr_expect_eq(s.lost, lost);
	cr_expect_eq(s.skipped, 0);
	cr_expect_eq(s.queued, 0);
	gx_arena_destroy(a);
}

/* The chunk of a refused hand-over (ring full) goes back to its sender in
 * two steps: the journal closes, then the chunk's state returns. Killed in
 * between, the chunk must still come back. */
static bool chunk_refused_journal_closed(point *pt)
{
	int s = *pt->slot;
	if (s < 0 || s >= GX_SHM_MAX_PROCS)
		return false;
	gx_chunk_hdr *h = chdr_of(pt->a, pt->chunk, NULL);
	return atomic_load(&h->state) == (GX_CHUNK_RING | (uint32_t)s) &&
	       atomic_load(&gx_ah(pt->a)->proc[s].rj_kind) == GX_JR_NONE;
}

Test(crash, a_producer_killed_while_a_full_ring_hands_its_chunk_back_loses_no_chunk, .timeout = 120)
{
	gx_arena *a = new_arena(32 * MiB);
	_Atomic int *slot = shared_map(4096);
	*slot = -1;
	point pt = {.a = a, .r = new_ring(a, 2, 8), .slot = slot};
	uint64_t v = 1;
	cr_assert_eq(gx_ring_try_send(pt.r, &v, 8), 0);
	cr_assert_eq(gx_ring_try_send(pt.r, &v, 8), 0);
	uint64_t base = in_use_total(a);
	/* the child allocates its chunk and says where */
	pid_t pid = fork_child();
	if (pid == 0) {
		*slot = gx_arena_attach(a);
		int64_t c = gx_pool_alloc(a, 500, -1);
		slot[1] = (int)(c >> 32);
		slot[2] = (int)(c & 0xffffffff);
		stop_for_tracer();
		gx_ring_try_send_chunk(pt.r, (gx_off)c, 500);
		_exit(0);
	}
	int st;
	cr_assert_eq(waitpid(pid, &st, WUNTRACED), pid);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 77)
		cr_skip_test("ptrace is not allowed here");
	cr_assert(WIFSTOPPED(st));
	pt.chunk = (gx_off)(((uint64_t)(uint32_t)slot[1] << 32) | (uint32_t)slot[2]);
	cr_assert_gt(pt.chunk, 0);
	long steps = -2;
	for (long i = 0; i < 2000000; i++) {
		if (chunk_refused_journal_closed(&pt)) {
			steps = i;
			break;
		}
		cr_assert_eq(ptrace(PTRACE_SINGLESTEP, pid, 0, 0), 0);
		cr_assert_eq(waitpid(pid, &st, 0), pid);
		if (!WIFSTOPPED(st))
			break;
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	if (steps < 0)
		cr_skip_test("the hand-back has no such window in this build");
	gx_repair_report rep;
	cr_assert_eq(gx_arena_repair(a, pid, &rep), 1);
	char held[512];
	cr_expect_eq(in_use_total(a), base, "the refused chunk never came back; in use:%s",
		     in_use_chunks(a, held, sizeof held));
	munmap((void *)slot, 4096);
	gx_arena_destroy(a);
}

/* ---- garbage ---- */

/* Errors a call may give on garbage. */
static bool err_ok(long rc)
{
	switch (-rc) {
	case EAGAIN:
	case EBADMSG:
	case EINVAL:
	case EPIPE:
	case EMSGSIZE:
	case ETIMEDOUT:
	case ENOMEM:
	case ENOSPC:
		return true;
	default:
		return false;
	}
}

/*
 * Run fn(a, seed) in a child with a time bound: a crash (a signal, or
 * ASan's report and exit code 1) or a call that never returns (SIGALRM)
 * fails the test.
 */
#define SURVIVE_BOUND_S 20 /* what each scenario needs is well under a second */

static bool survives(void (*fn)(gx_arena *, uint64_t), gx_arena *a, uint64_t seed, const char *what)
{
	pid_t pid = fork_child();
	if (pid == 0) {
		alarm(SURVIVE_BOUND_S);
		fn(a, seed);
		_exit(0);
	}
	int st = reap(pid, SURVIVE_BOUND_S + 10);
	char sb[96];
	bool hung = st == -1 || (WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM);
	bool ok = st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
	cr_expect(ok, "%s (seed %#llx): %s%s", what, (unsigned long long)seed, status_str(st, sb, sizeof sb),
		  hung ? ": a call never returned" : "");
	return ok;
}

/* An inline or chunk message received from a corrupt ring: valid, or an
 * error from the list. */
static void check_recv(gx_arena *a, ssize_t n, gx_off c, size_t cap, const char *what)
{
	if (n < 0) {
		CHILD_CHECK(err_ok(n), 20, "%s: unexpected error %zd", what, n);
		return;
	}
	if (c) {
		int64_t cs = gx_pool_chunk_size(a, c);
		CHILD_CHECK(cs >= n && gx_arena_ptr(a, c, (size_t)n), 21, "%s: chunk %#llx of %lld bytes for %zd", what,
			    (unsigned long long)c, (long long)cs, n);
		CHILD_CHECK(gx_pool_free(a, c) == 0, 22, "%s: a chunk received is the receiver's", what);
		return;
	}
	CHILD_CHECK(n >= 1 && (size_t)n <= cap, 23, "%s: inline length %zd (cap %zu)", what, n, cap);
}

#define RS_CAP 16
#define RS_MSG 32

static void pattern(unsigned char *m, uint64_t k)
{
	for (int j = 0; j < RS_MSG; j++)
		m[j] = (unsigned char)(k * 37 + (uint64_t)j * 11 + 0xa5);
	memcpy(m, "GXRS", 4);
	m[4] = (unsigned char)k;
}

static void exercise_ring(gx_arena *a, gx_ring *r, uint64_t *rs)
{
	unsigned char *buf = malloc(RS_MSG); /* exactly msg_size: ASan sees an overrun */
	unsigned char *bat = malloc(4 * RS_MSG);
	/* the call before the read of c: as arguments of one call their
	 * order is unspecified, and a build that read c first (0) took a
	 * chunk message for an inline one of the chunk's length */
	for (int j = 0; j < RS_CAP + 2; j++) {
		gx_off c = 0;
		ssize_t n = gx_ring_try_recv(r, buf, RS_MSG, &c);
		check_recv(a, n, c, RS_MSG, "try_recv");
	}
	gx_off c = 0;
	ssize_t n = gx_ring_recv(r, buf, RS_MSG, &c, gx_timeout(200 * GX_MICROSECOND));
	check_recv(a, n, c, RS_MSG, "recv");
	int k = gx_ring_try_recv_batch(r, bat, 4);
	CHILD_CHECK((k >= 1 && k <= 4) || err_ok(k), 24, "try_recv_batch: %d", k);
	k = gx_ring_recv_batch(r, bat, 4, gx_timeout(200 * GX_MICROSECOND));
	CHILD_CHECK((k >= 1 && k <= 4) || err_ok(k), 25, "recv_batch: %d", k);
	pattern(buf, rnd(rs));
	int rc = gx_ring_try_send(r, buf, 1 + rnd(rs) % RS_MSG);
	CHILD_CHECK(rc == 0 || err_ok(rc), 26, "try_send: %d", rc);
	rc = gx_ring_send(r, buf, RS_MSG, gx_timeout(200 * GX_MICROSECOND));
	CHILD_CHECK(rc == 0 || err_ok(rc), 27, "send: %d", rc);
	for (int j = 0; j < 4; j++)
		pattern(bat + j * RS_MSG, rnd(rs));
	k = gx_ring_try_send_batch(r, bat, 3);
	CHILD_CHECK((k >= 1 && k <= 3) || err_ok(k), 28, "try_send_batch: %d", k);
	size_t len = 64 + rnd(rs) % 1000;
	int64_t ck = gx_pool_alloc(a, len, -1);
	CHILD_CHECK(ck > 0, 29, "alloc: %lld", (long long)ck);
	rc = gx_ring_try_send_chunk(r, (gx_off)ck, len);
	CHILD_CHECK(rc == 0 || err_ok(rc), 30, "try_send_chunk: %d", rc);
	if (rc != 0)
		CHILD_CHECK(gx_pool_free(a, (gx_off)ck) == 0, 31, "a chunk not sent stays the sender's");
	gx_ring_stats s;
	CHILD_CHECK(gx_ring_stats_get(r, &s) == 0 && s.capacity == RS_CAP && s.msg_size == RS_MSG, 32, "stats");
	free(buf);
	free(bat);
}

/* Where slot payloads sit: the offset of message 0's and 1's payload in
 * the ring (found by content, whatever the layout). */
static bool find_slots(gx_arena *a, gx_ring *r, uint64_t *lo, uint64_t *hi)
{
	gx_off ro = gx_ring_off(r);
	int64_t ext = gx_pool_chunk_size(a, ro);
	if (ext <= 0)
		return false;
	unsigned char *base = gx_arena_ptr(a, ro, (size_t)ext);
	if (!base)
		return false;
	unsigned char m0[RS_MSG], m1[RS_MSG];
	pattern(m0, 0);
	pattern(m1, 1);
	unsigned char *p0 = memmem(base, (size_t)ext, m0, RS_MSG);
	unsigned char *p1 = memmem(base, (size_t)ext, m1, RS_MSG);
	if (!p0 || !p1 || p1 <= p0)
		return false;
	uint64_t stride = (uint64_t)(p1 - p0);
	uint64_t head = stride - RS_MSG; /* a slot's bytes before its payload, at most */
	uint64_t from = (uint64_t)(p0 - base) >= head ? (uint64_t)(p0 - base) - head : 0;
	uint64_t to = (uint64_t)(p0 - base) + RS_CAP * stride;
	if (to > (uint64_t)ext)
		to = (uint64_t)ext;
	*lo = ro + from;
	*hi = ro + to;
	return true;
}

static void scribble_slots(gx_arena *a, uint64_t seed)
{
	uint64_t rs = seed;
	gx_ring *r = NULL;
	CHILD_CHECK(gx_ring_create(a, &r, RS_CAP, RS_MSG, 0) == 0, 2, "create");
	for (uint64_t k = 0; k < RS_CAP; k++) {
		unsigned char m[RS_MSG];
		pattern(m, k);
		CHILD_CHECK(gx_ring_try_send(r, m, RS_MSG) == 0, 3, "fill");
	}
	uint64_t lo, hi;
	CHILD_CHECK(find_slots(a, r, &lo, &hi), 4, "could not find the slots by their contents");
	unsigned char *s = gx_arena_ptr(a, lo, hi - lo);
	const uint64_t size = gx_ah(a)->size;
	for (int round = 0; round < 300; round++) {
		switch (round % 4) {
		case 0: /* everything random */
			for (uint64_t j = 0; j < hi - lo; j++)
				s[j] = (unsigned char)rnd(&rs);
			break;
		case 1: /* a few bytes flipped */
			for (int j = 0, n = 1 + (int)(rnd(&rs) % 8); j < n; j++)
				s[rnd(&rs) % (hi - lo)] ^= (unsigned char)(1u << (rnd(&rs) % 8));
			break;
		case 2: { /* offset-like words */
			const uint64_t words[] = {0, 1, 8, 64, size - 8, size, size + 4096, UINT64_MAX, lo, (uint64_t)1 << 56,
						  ((uint64_t)0x7e << 56) | 1, ((uint64_t)0x7f << 56) | 1, rnd(&rs)};
			for (int j = 0, n = 1 + (int)(rnd(&rs) % 16); j < n; j++) {
				uint64_t w = words[rnd(&rs) % (sizeof words / sizeof words[0])];
				memcpy(s + (rnd(&rs) % ((hi - lo) / 8)) * 8, &w, 8);
			}
			break;
		}
		default: /* no new garbage: real traffic over the old */
			break;
		}
		exercise_ring(a, r, &rs);
	}
	int rc = gx_ring_close(r);
	CHILD_CHECK(rc == 0 || rc == -EPIPE, 5, "close: %d", rc);
	exercise_ring(a, r, &rs);
	gx_repair_report rep;
	CHILD_CHECK(gx_arena_repair(a, 0, &rep) >= 0, 6, "repair");
	rc = gx_ring_destroy(a, r);
	CHILD_CHECK(rc == 0 || rc == -EINVAL, 7, "destroy: %d", rc);
	_exit(0);
}

Test(crash, garbage_in_ring_slots_gives_errors_never_a_crash, .timeout = 120)
{
	gx_arena *a = new_arena(32 * MiB);
	for (uint64_t k = 0; k < 3; k++)
		if (!survives(scribble_slots, a, seed_from((uint64_t)gx_now(), k), "scribbled slots"))
			break;
	gx_arena_destroy(a);
}

/* Garbage chunk offsets in published chunk messages: each such message is
 * consumed with -EBADMSG; the rest of the ring is unharmed. */
static void bad_chunk_offsets(gx_arena *a, uint64_t seed)
{
	(void)seed;
	gx_ring *r = NULL;
	CHILD_CHECK(gx_ring_create(a, &r, 8, 16, 0) == 0, 2, "create");
	gx_off c[6];
	for (int k = 0; k < 6; k++) {
		int64_t o = gx_pool_alloc(a, 256, -1);
		CHILD_CHECK(o > 0, 3, "alloc");
		c[k] = (gx_off)o;
		memset(gx_arena_ptr(a, c[k], 256), k, 256);
	}
	for (int k = 0; k < 5; k++)
		CHILD_CHECK(gx_ring_try_send_chunk(r, c[k], 100 + (size_t)k) == 0, 4, "send chunk %d", k);
	uint64_t tail = 0xfeed;
	CHILD_CHECK(gx_ring_try_send(r, &tail, 8) == 0, 5, "send");
	const uint64_t size = gx_ah(a)->size;
	const gx_off garbage[5] = {0, size + 4096, c[5], c[2] + 1, UINT64_MAX - 63};
	gx_off ro = gx_ring_off(r);
	int64_t ext = gx_pool_chunk_size(a, ro);
	CHILD_CHECK(ext > 0, 6, "ring extent");
	unsigned char *base = gx_arena_ptr(a, ro, (size_t)ext);
	CHILD_CHECK(base != NULL, 6, "ring memory");
	for (int k = 0; k < 5; k++) {
		unsigned char *at = memmem(base, (size_t)ext, &c[k], 8);
		CHILD_CHECK(at != NULL, 7, "chunk offset %d not stored as a 64-bit word in its slot", k);
		memcpy(at, &garbage[k], 8);
	}
	char buf[16];
	for (int k = 0; k < 5; k++) {
		gx_off got = 0;
		ssize_t n = gx_ring_try_recv(r, buf, sizeof buf, &got);
		CHILD_CHECK(n == -EBADMSG, 8, "message %d with chunk offset %#llx: %zd (chunk %#llx)", k,
			    (unsigned long long)garbage[k], n, (unsigned long long)got);
	}
	uint64_t v = 0;
	gx_off got = 0;
	ssize_t n = gx_ring_try_recv(r, &v, 8, &got);
	CHILD_CHECK(n == 8 && v == 0xfeed && got == 0, 9, "the message after them: %zd, %#llx", n, (unsigned long long)v);
	CHILD_CHECK(gx_ring_try_recv(r, &v, 8, &got) == -EAGAIN, 10, "empty");
	gx_ring_stats s;
	CHILD_CHECK(gx_ring_stats_get(r, &s) == 0 && s.corrupt == 5, 11, "corrupt counted: %llu",
		    (unsigned long long)s.corrupt);
	CHILD_CHECK(gx_pool_chunk_size(a, c[5]) == 256, 12, "the chunk named by garbage is still its owner's");
	CHILD_CHECK(gx_pool_free(a, c[5]) == 0, 13, "and its owner frees it");
	unsigned char *p = gx_arena_ptr(a, c[5], 256);
	CHILD_CHECK(p[0] == 5 && p[255] == 5, 14, "contents untouched");
	_exit(0);
}

Test(crash, garbage_chunk_offsets_in_slots_give_ebadmsg, .timeout = 60)
{
	gx_arena *a = new_arena(32 * MiB);
	survives(bad_chunk_offsets, a, 0, "garbage chunk offsets");
	gx_arena_destroy(a);
}

/* The ring's own header: capacity, stride and sizes are lengths read from
 * shared memory too. */
static void scribble_ring_header(gx_arena *a, uint64_t seed)
{
	uint64_t rs = seed;
	for (int round = 0; round < 40; round++) {
		gx_ring *r = NULL;
		CHILD_CHECK(gx_ring_create(a, &r, RS_CAP, RS_MSG, 0) == 0, 2, "create");
		unsigned char m[RS_MSG];
		pattern(m, 0);
		CHILD_CHECK(gx_ring_try_send(r, m, RS_MSG) == 0, 3, "send");
		/* the first 32 bytes: every field but the magic word */
		uint32_t *w = (uint32_t *)r;
		const uint32_t vals[] = {0, 1, 3, 1u << 20, 1u << 30, 0x80000000u, UINT32_MAX, 4096, 121, (uint32_t)rnd(&rs)};
		for (int j = 1; j < 8; j++)
			if (rnd(&rs) % 2)
				w[j] = vals[rnd(&rs) % (sizeof vals / sizeof vals[0])];
		unsigned char buf[RS_MSG];
		gx_off c = 0;
		ssize_t n = gx_ring_try_recv(r, buf, sizeof buf, &c);
		CHILD_CHECK(n == RS_MSG || n < 0, 4, "try_recv: %zd", n);
		n = gx_ring_recv(r, buf, sizeof buf, &c, gx_timeout(100 * GX_MICROSECOND));
		CHILD_CHECK(n <= RS_MSG, 5, "recv: %zd", n);
		int rc = gx_ring_try_send(r, m, RS_MSG);
		CHILD_CHECK(rc == 0 || err_ok(rc), 6, "try_send: %d", rc);
		rc = gx_ring_try_send_batch(r, m, 1);
		CHILD_CHECK(rc == 1 || err_ok(rc), 7, "try_send_batch: %d", rc);
		gx_ring_stats s;
		gx_ring_stats_get(r, &s);
		gx_ring_at(a, gx_arena_off(a, r));
		gx_repair_report rep;
		CHILD_CHECK(gx_arena_repair(a, 0, &rep) >= 0, 8, "repair");
	}
	_exit(0);
}

Test(crash, garbage_in_a_ring_header_gives_errors_never_a_crash, .timeout = 120)
{
	gx_arena *a = new_arena(32 * MiB);
	survives(scribble_ring_header, a, seed_from((uint64_t)gx_now(), 9), "scribbled ring header");
	gx_arena_destroy(a);
}

/* Allocations from a list with garbage: valid chunks in the pools' part
 * of the arena, never one of the live ones, or an error. */
static void alloc_round(gx_arena *a, const gx_off *live, int nlive, int cls, const char *what)
{
	const gx_arena_hdr *h = gx_ah(a);
	for (int t = 0; t < 3; t++) {
		size_t len = (size_t)64 << cls;
		int64_t o = gx_pool_alloc(a, len, -1);
		if (o < 0) {
			CHILD_CHECK(err_ok(o), 40, "%s: alloc class %d: %lld", what, cls, (long long)o);
			continue;
		}
		CHILD_CHECK((uint64_t)o >= h->slab_first && (uint64_t)o + len <= h->size, 41,
			    "%s: chunk %#llx outside the pools", what, (unsigned long long)o);
		for (int k = 0; k < nlive; k++)
			CHILD_CHECK((gx_off)o != live[k], 42, "%s: handed out live chunk %#llx", what, (unsigned long long)o);
		unsigned char *p = gx_arena_ptr(a, (gx_off)o, len);
		CHILD_CHECK(p != NULL, 43, "%s: no pointer", what);
		p[0] = 0xee;
		p[len - 1] = 0xee;
		int rc = gx_pool_free(a, (gx_off)o);
		CHILD_CHECK(rc == 0 || rc == -EINVAL, 44, "%s: free: %d", what, rc);
	}
}

/* A class with chunks free on its list (the cache flushed) and LIVE chunks
 * allocated, in this (child) process. Returns the slot. */
enum { LIVE = 20, CLS = 1 };

static int spoilable_pool(gx_arena *a, gx_off *live)
{
	int slot = gx_arena_attach(a);
	CHILD_CHECK(slot >= 0, 2, "attach");
	gx_off all[2 * LIVE];
	for (int k = 0; k < 2 * LIVE; k++) {
		int64_t o = gx_pool_alloc(a, 64 << CLS, -1);
		CHILD_CHECK(o > 0, 3, "alloc");
		all[k] = (gx_off)o;
	}
	for (int k = 0; k < LIVE; k++) {
		live[k] = all[2 * k];
		CHILD_CHECK(gx_pool_free(a, all[2 * k + 1]) == 0, 4, "free");
	}
	for (int k = 0; k < LIVE; k++)
		CHILD_CHECK(atomic_load(&chdr_of(a, live[k], NULL)->state) == (GX_CHUNK_OWNED | (uint32_t)slot), 5,
			    "the chunk header layout is not pool.c's any more: update this test");
	CHILD_CHECK(gx_arena_detach(a) == 0, 6, "detach"); /* the cache onto the list */
	slot = gx_arena_attach(a);
	CHILD_CHECK(GX_TAG_IDX(atomic_load(&gx_ah(a)->cls[0][CLS].head)) != 0, 7, "a free list to spoil");
	return slot;
}

static void spoil_heads_states_slabs(gx_arena *a, uint64_t seed)
{
	(void)seed;
	gx_off live[LIVE];
	spoilable_pool(a, live);
	gx_pool_cls *pc = &gx_ah(a)->cls[0][CLS];
	/* head: an id past every slab */
	atomic_store(&pc->head, GX_TAG_MAKE(0xfffffff0u, 77));
	alloc_round(a, live, LIVE, CLS, "head out of range");
	/* head: a live chunk */
	uint32_t id;
	chdr_of(a, live[3], &id);
	atomic_store(&pc->head, GX_TAG_MAKE(id, 78));
	alloc_round(a, live, LIVE, CLS, "head on a live chunk");
	/* a live chunk's state spoiled: its free is refused */
	atomic_store(&chdr_of(a, live[5], NULL)->state, 0x12345678u);
	CHILD_CHECK(gx_pool_free(a, live[5]) == -EINVAL, 11, "free of a chunk with a garbage state");
	CHILD_CHECK(gx_pool_chunk_size(a, live[5]) == -EINVAL, 12, "size of a chunk with a garbage state");
	/* a slab header spoiled: its chunks are not chunks any more */
	uint64_t si;
	gx_slab_hdr *sh = slab_of(a, live[7], &si);
	uint32_t keep = sh->nchunks;
	sh->nchunks = 0xffffffu;
	CHILD_CHECK(gx_pool_free(a, live[7]) == -EINVAL, 13, "free in a slab with a garbage header");
	CHILD_CHECK(gx_pool_chunk_size(a, live[7]) == -EINVAL, 14, "size in a slab with a garbage header");
	alloc_round(a, live, LIVE, CLS, "a slab header spoiled");
	sh->nchunks = keep;
	_exit(0);
}

static void spoil_self_link(gx_arena *a, uint64_t seed)
{
	(void)seed;
	gx_off live[LIVE];
	spoilable_pool(a, live);
	gx_pool_cls *pc = &gx_ah(a)->cls[0][CLS];
	/* a free chunk linked to itself, at the head: popped once, then its
	 * link leads back to it while it is live */
	CHILD_CHECK(gx_pool_free(a, live[LIVE - 1]) == 0, 8, "free");
	CHILD_CHECK(gx_arena_detach(a) == 0, 9, "detach");
	uint32_t fid;
	gx_chunk_hdr *f = chdr_of(a, live[LIVE - 1], &fid);
	CHILD_CHECK(atomic_load(&f->state) == GX_CHUNK_FREE, 10, "a freed chunk is FREE");
	atomic_store(&f->next, fid);
	atomic_store(&pc->head, GX_TAG_MAKE(fid, 79));
	/* the first allocation may take it; it stays allocated */
	int64_t first = gx_pool_alloc(a, 64 << CLS, -1);
	CHILD_CHECK(first > 0 || err_ok(first), 11, "alloc: %lld", (long long)first);
	if (first > 0)
		live[LIVE - 1] = (gx_off)first;
	alloc_round(a, live, first > 0 ? LIVE : LIVE - 1, CLS, "a free chunk linked to itself");
	_exit(0);
}

static void spoil_live_cycle(gx_arena *a, uint64_t seed)
{
	(void)seed;
	gx_off live[LIVE];
	spoilable_pool(a, live);
	gx_pool_cls *pc = &gx_ah(a)->cls[0][CLS];
	uint32_t ia, ib;
	gx_chunk_hdr *ha = chdr_of(a, live[0], &ia), *hb = chdr_of(a, live[1], &ib);
	atomic_store(&ha->next, ib);
	atomic_store(&hb->next, ia);
	atomic_store(&pc->head, GX_TAG_MAKE(ia, 80));
	alloc_round(a, live, LIVE, CLS, "a cycle of live chunks");
	_exit(0);
}

static void spoil_at_random(gx_arena *a, uint64_t seed)
{
	uint64_t rs = seed;
	gx_arena_hdr *h = gx_ah(a);
	gx_off live[LIVE];
	int slot = spoilable_pool(a, live);
	for (int round = 0; round < 300; round++) {
		uint64_t nsl = h->nslabs;
		uint64_t k = rnd(&rs) % 7;
		int node = 0, cls = (int)(rnd(&rs) % GX_POOL_CLASSES);
		gx_pool_cls *q = &h->cls[node][cls];
		if (k == 0) {
			atomic_store(&q->head, rnd(&rs));
		} else if (k == 1) {
			uint32_t gid = (uint32_t)(((rnd(&rs) % (nsl + 1)) << T_ID_SHIFT) | (rnd(&rs) % 1200)) + 1;
			atomic_store(&q->head, GX_TAG_MAKE(gid, rnd(&rs)));
		} else if (k == 2 || k == 3) {
			/* chunk headers of a carved slab: next words, or everything */
			uint64_t s = rnd(&rs) % nsl;
			gx_slab_hdr *sl = (gx_slab_hdr *)((char *)a + h->slab_first + s * GX_SLAB);
			if (sl->magic != GX_SLAB_MAGIC || sl->data <= T_SLAB_HDR || sl->data > GX_SLAB)
				continue;
			gx_chunk_hdr *ch = (gx_chunk_hdr *)((char *)sl + T_SLAB_HDR);
			uint32_t n = (uint32_t)((sl->data - T_SLAB_HDR) / sizeof *ch);
			for (int j = 0, m = 1 + (int)(rnd(&rs) % 32); j < m; j++) {
				gx_chunk_hdr *x = &ch[rnd(&rs) % n];
				if (k == 2)
					atomic_store(&x->next, rnd(&rs) % 4 ? (uint32_t)rnd(&rs) : (uint32_t)(x - ch) + 1);
				else
					memset(x, (int)rnd(&rs), sizeof *x);
			}
		} else if (k == 4) {
			uint64_t s = rnd(&rs) % nsl;
			unsigned char *sl = (unsigned char *)a + h->slab_first + s * GX_SLAB;
			for (int j = 0; j < 4; j++)
				sl[rnd(&rs) % sizeof(gx_slab_hdr)] = (unsigned char)rnd(&rs);
		} else if (k == 5) {
			gx_proc *p = &h->proc[slot >= 0 ? slot : 0];
			p->cache_n[cls] = (uint32_t)(rnd(&rs) % 20);
			for (int j = 0; j < GX_CACHE_PER_CLASS; j++)
				p->cache[cls][j] = (uint32_t)rnd(&rs);
		} else {
			atomic_store(&h->part[node].next_slab,
				     rnd(&rs) % 2 ? rnd(&rs) : h->part[node].base + GX_SLAB * (rnd(&rs) % (nsl + 2)));
		}
		for (int c = 0; c < GX_POOL_CLASSES; c++)
			alloc_round(a, live, 0, c, "random garbage");
		for (int j = 0; j < 8; j++) {
			gx_off o = rnd(&rs) % (h->size + 4096);
			int rc = gx_pool_free(a, o);
			CHILD_CHECK(rc == 0 || rc == -EINVAL, 45, "free(%#llx): %d", (unsigned long long)o, rc);
			int64_t cs = gx_pool_chunk_size(a, o);
			CHILD_CHECK(cs == -EINVAL || (cs >= 64 && cs <= (int64_t)GX_POOL_MAX_CHUNK), 46, "size: %lld",
				    (long long)cs);
		}
		for (int c = 0; c < GX_POOL_CLASSES; c++) {
			gx_pool_class_stats st;
			CHILD_CHECK(gx_pool_stats(a, 0, c, &st) == 0, 47, "stats");
		}
		gx_ring *r = NULL;
		int rc = gx_ring_create(a, &r, 4, 8, 0);
		CHILD_CHECK(rc == 0 || err_ok(rc), 48, "ring create: %d", rc);
		if (rc == 0) {
			uint64_t v = 5;
			CHILD_CHECK(gx_ring_try_send(r, &v, 8) == 0, 49, "send on a new ring");
			CHILD_CHECK(gx_ring_try_recv(r, &v, 8, NULL) == 8 && v == 5, 50, "recv on a new ring");
			gx_ring_destroy(a, r);
		}
		if (round % 20 == 0) {
			/* a dead process with a pool journal open: repair walks the list */
			pid_t g = fork_grandchild();
			if (g == 0) {
				gx_pool_alloc(a, 64, -1);
				_exit(0);
			}
			int st;
			waitpid(g, &st, 0);
			for (int s = 0; s < GX_SHM_MAX_PROCS; s++)
				if (atomic_load(&h->proc[s].pid) == g) {
					atomic_store(&h->proc[s].pj_pool, (uint32_t)(rnd(&rs) % (GX_POOL_CLASSES + 2)));
					atomic_store(&h->proc[s].pj_kind, GX_J_POP);
				}
			gx_repair_report rep;
			rc = gx_arena_repair(a, g, &rep);
			CHILD_CHECK(rc == 1 || rc == -ESRCH, 51, "repair: %d", rc);
		}
	}
	_exit(0);
}

static bool spoiled_pools(void (*fn)(gx_arena *, uint64_t), uint64_t seed, const char *what)
{
	gx_arena *a = new_arena(32 * MiB);
	bool ok = survives(fn, a, seed, what);
	gx_arena_destroy(a);
	return ok;
}

Test(crash, garbage_free_list_heads_chunk_states_and_slab_headers_give_errors, .timeout = 60)
{
	spoiled_pools(spoil_heads_states_slabs, 0, "spoiled heads, states, slab headers");
}

Test(crash, a_free_chunk_linked_to_itself_is_not_handed_out_twice, .timeout = 90)
{
	spoiled_pools(spoil_self_link, 0, "a free chunk linked to itself");
}

Test(crash, a_cycle_of_live_chunks_on_a_free_list_is_not_handed_out, .timeout = 90)
{
	spoiled_pools(spoil_live_cycle, 0, "a cycle of live chunks");
}

Test(crash, random_garbage_in_free_lists_and_chunk_headers_gives_errors_never_a_crash, .timeout = 150)
{
	for (uint64_t k = 0; k < 2; k++)
		if (!spoiled_pools(spoil_at_random, seed_from((uint64_t)gx_now(), k), "random garbage in the pools"))
			break;
}

/* A dead process's journals and the ring registry full of garbage: repair
 * survives them, and the rings that are real keep working. */
static void scribble_journals(gx_arena *a, uint64_t seed)
{
	uint64_t rs = seed;
	gx_arena_hdr *h = gx_ah(a);
	gx_ring *r = NULL;
	CHILD_CHECK(gx_ring_create(a, &r, 8, 16, 0) == 0, 2, "create");
	gx_off ro = gx_ring_off(r);
	for (int round = 0; round < 60; round++) {
		pid_t g = fork_grandchild();
		if (g == 0) {
			int64_t c = gx_pool_alloc(a, 300, -1);
			if (c > 0)
				gx_ring_try_send_chunk(r, (gx_off)c, 10);
			gx_pool_alloc(a, 5000, -1);
			_exit(0);
		}
		int st;
		waitpid(g, &st, 0);
		int s = -1;
		for (int k = 0; k < GX_SHM_MAX_PROCS; k++)
			if (atomic_load(&h->proc[k].pid) == g)
				s = k;
		CHILD_CHECK(s >= 0, 3, "the dead child's slot");
		gx_proc *p = &h->proc[s];
		const uint64_t rings[] = {ro, ro + 8, 0, rnd(&rs), h->size, UINT64_MAX, ro - 64};
		atomic_store(&p->rj_kind, (uint32_t)(rnd(&rs) % 4));
		atomic_store(&p->rj_ring, rings[rnd(&rs) % (sizeof rings / sizeof rings[0])]);
		atomic_store(&p->rj_pos, rnd(&rs) % 3 ? rnd(&rs) : rnd(&rs) % 64);
		atomic_store(&p->rj_n, (uint32_t)(rnd(&rs) % 2 ? rnd(&rs) : rnd(&rs) % 16));
		atomic_store(&p->rj_chunk, rnd(&rs) % 2 ? rnd(&rs) : rnd(&rs) % h->size);
		atomic_store(&p->pj_kind, (uint32_t)(rnd(&rs) % 4));
		atomic_store(&p->pj_pool, (uint32_t)(rnd(&rs) % 2 ? rnd(&rs) : rnd(&rs) % (GX_POOL_CLASSES + 1)));
		atomic_store(&p->pj_chunk, (uint32_t)rnd(&rs));
		for (int c = 0; c < GX_POOL_CLASSES; c++) {
			p->cache_n[c] = (uint32_t)(rnd(&rs) % 3 ? rnd(&rs) % 17 : rnd(&rs));
			for (int j = 0; j < GX_CACHE_PER_CLASS; j++)
				p->cache[c][j] = (uint32_t)rnd(&rs);
		}
		/* and garbage in the ring registry */
		int slotr = (int)(rnd(&rs) % GX_MAX_RINGS);
		uint64_t was = atomic_load(&h->rings[slotr]);
		if (was != ro)
			atomic_store(&h->rings[slotr], rings[rnd(&rs) % (sizeof rings / sizeof rings[0])]);
		gx_repair_report rep;
		int rc = gx_arena_repair(a, g, &rep);
		CHILD_CHECK(rc == 1, 4, "repair of a dead slot with garbage journals: %d", rc);
		CHILD_CHECK(gx_arena_repair(a, 0, &rep) >= 0, 5, "repair of pid 0");
		/* the real ring still works */
		for (;;) {
			char b[16];
			gx_off c = 0;
			ssize_t n = gx_ring_try_recv(r, b, sizeof b, &c);
			if (n == -EAGAIN)
				break;
			check_recv(a, n, c, sizeof b, "drain");
		}
		uint64_t v = (uint64_t)round, w = 0;
		CHILD_CHECK(gx_ring_try_send(r, &v, 8) == 0, 6, "send after repair");
		gx_off c = 0;
		ssize_t n = gx_ring_try_recv(r, &w, 8, &c);
		CHILD_CHECK(n == 8 && w == v, 7, "recv after repair: %zd", n);
	}
	_exit(0);
}

Test(crash, garbage_in_journals_and_the_ring_registry_is_survived_by_repair, .timeout = 120)
{
	gx_arena *a = new_arena(32 * MiB);
	survives(scribble_journals, a, seed_from((uint64_t)gx_now(), 5), "scribbled journals");
	gx_arena_destroy(a);
}

/* A ring made by a process that then dies belongs to everyone: repair of
 * its creator's slot must not hand the ring's chunk back to the pool. */
Test(crash, a_ring_outlives_the_process_that_made_it, .timeout = 60)
{
	gx_arena *a = new_arena(16 * MiB);
	gx_off *shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(shared, MAP_FAILED);
	pid_t c = fork();
	if (c == 0) {
		gx_ring *r;
		if (gx_ring_create(a, &r, 16, 8, 0) != 0)
			_exit(2);
		uint64_t v = 77;
		if (gx_ring_try_send(r, &v, 8) != 0)
			_exit(3);
		shared[0] = gx_ring_off(r);
		raise(SIGKILL);
	}
	int st;
	waitpid(c, &st, 0);
	cr_assert(WIFSIGNALED(st), "the maker died");
	gx_repair_report rep;
	cr_expect_geq(gx_arena_repair(a, c, &rep), 1);
	gx_ring *r = gx_ring_at(a, shared[0]);
	cr_assert_not_null(r, "still a ring");
	cr_expect_gt(gx_pool_chunk_size(a, shared[0]), 0, "its chunk was not freed");
	/* an allocation of its class does not get its memory */
	int64_t o = gx_pool_alloc(a, (size_t)gx_pool_chunk_size(a, shared[0]), -1);
	cr_expect_neq((gx_off)o, shared[0]);
	uint64_t v = 0;
	cr_expect_eq(gx_ring_try_recv(r, &v, 8, NULL), 8);
	cr_expect_eq(v, 77u);
	cr_expect_eq(gx_ring_destroy(a, r), 0);
	munmap(shared, 4096);
	gx_arena_destroy(a);
}
