/*
 * ring: the bare MPMC ring between two processes.
 *
 * No gx_run here: the ring API works in plain processes (a blocking call
 * sleeps on the futex syscall there). The parent creates two arenas before
 * any fork, one with the default spin budget and one with spin_ns 0, and
 * the rings in them; then it runs each measurement in a fresh pair of
 * children on the two-process harness of floors.c (ring_pair: side 0
 * pinned to the first CPU of the affinity mask, side 1 to the second, a
 * warm-up of a tenth of the timed count between two barriers), and exits 1
 * when a pair fails.
 *
 * Each measurement runs RING_SLICES times, each time in a fresh pair of
 * children, interleaved (floor, figure, floor, figure, ..., then again), so
 * that a slow spell of the VM falls on a figure and its floor alike. A
 * slice passes N values (throughput) or N/10 round trips (spinning); the
 * two sleeping measurements split their N/100 round trips (at least 1000)
 * among the slices instead, as one costs ~40 us on the VM. The RESULT keys
 * say so: rounds= (msgs=) per slice, slices= how many. The measurements,
 * in their order:
 *   floor_cacheline_rtt  one cache line passed back and forth (floors.c)
 *   ring_pingpong_rtt    the same with 8-byte values over two rings, by
 *                        blocking gx_ring_send / gx_ring_recv with the
 *                        default spin budget (they spin, never sleep)
 *   floor_futex_rtt      a futex ping-pong, both sides sleeping every
 *                        round (floors.c)
 *   ring_wake_rtt        ring_pingpong on the spin_ns 0 arena: a receive
 *                        that finds its ring empty sleeps at once (in a
 *                        ping-pong, nearly every one: see sleeps_per_round)
 *   ring_throughput      side 0 sends 1..N in batches (gx_ring_send_batch),
 *                        side 1 receives them (gx_ring_recv_batch) and
 *                        checks their count, sum and sum of squares; timed
 *                        by the consumer from the barrier to the last one
 * Each figure is its BEST slice (the least time per round trip, the most
 * messages per second), not the median: noise on a shared VM only ever adds
 * time, and it is bimodal there (a vCPU that halts costs a VM exit to wake,
 * one kept busy by another task does not), so a median of 5 could still
 * pair a slow figure with a fast floor. The vs_floor ratios are best over
 * best. sleeps_per_round is the ring stats' futex waits entered per round
 * trip over all slices, warm-ups included: ~0 for the spinning ping-pong,
 * 2 when both sides sleep every time (as the futex floor does by design).
 *
 * Batch size: RING_BATCH (256). On the 2-vCPU EPYC VM (capacity 4096, N
 * 20,000,000, best slices over 5 to 10 runs each, a busy machine): batches
 * of 8 gave ~180 Mmsg/s, 16 ~200, 32 and 64 ~230, 128, 256 and 512 ~250 to
 * 280; 256 was the steadiest of the last three. `gx-bench ring N B` reruns
 * the scan.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>

#include <gonex/gonex.h>

#include "bench.h"

#define RING_CAP 4096
#define RING_SLICES 5

static int ring_fail(const char *call, int rc)
{
	fprintf(stderr, "gx-bench: ring: %s: %s\n", call, strerror(-rc));
	return 1;
}

/* A side's first step: take its slot in the arena before the clock runs. */
static int ring_attach(gx_arena *a)
{
	int rc = gx_arena_attach(a);
	return rc < 0 ? ring_fail("gx_arena_attach", rc) : 0;
}

static int ring_detach(gx_arena *a)
{
	int rc = gx_arena_detach(a);
	return rc < 0 ? ring_fail("gx_arena_detach", rc) : 0;
}

/* A ring of RING_CAP 8-byte values in a: 0, or 1 (said). */
static int ring_make(gx_arena *a, gx_ring **r)
{
	int rc = gx_ring_create(a, r, RING_CAP, 8, 0);
	return rc < 0 ? ring_fail("gx_ring_create", rc) : 0;
}

/* -- ring ping-pong (spinning, and sleeping on the spin_ns 0 arena) -- */

typedef struct ring_pp {
	gx_arena *arena;
	gx_ring *ping, *pong;
	ring_count c;
} ring_pp;

/* Side 0 sends 2k+1 on ping, side 1 answers 2k+2 on pong. */
static int pp_rounds(int side, const ring_pp *p, uint64_t *k, long count)
{
	for (long i = 0; i < count; i++, ++*k) {
		uint64_t odd = 2 * *k + 1, v = 0;
		gx_ring *out = side == 0 ? p->ping : p->pong;
		gx_ring *in = side == 0 ? p->pong : p->ping;
		uint64_t want = side == 0 ? odd + 1 : odd;
		int rc;
		ssize_t got;
		if (side == 0 && (rc = gx_ring_send(out, &odd, sizeof odd, GX_FOREVER)) < 0)
			return ring_fail("gx_ring_send", rc);
		if ((got = gx_ring_recv(in, &v, sizeof v, NULL, GX_FOREVER)) < 0)
			return ring_fail("gx_ring_recv", (int)got);
		if (got != sizeof v || v != want) {
			fprintf(stderr, "gx-bench: ring: side %d received %zd bytes, value %llu; expected 8, %llu\n",
				side, got, (unsigned long long)v, (unsigned long long)want);
			return 1;
		}
		v++;
		if (side == 1 && (rc = gx_ring_send(out, &v, sizeof v, GX_FOREVER)) < 0)
			return ring_fail("gx_ring_send", rc);
	}
	return 0;
}

static int pp_side(int side, void *arg)
{
	ring_pp *p = arg;
	uint64_t k = 0;
	if (ring_attach(p->arena))
		return 1;
	ring_barrier(1);
	if (pp_rounds(side, p, &k, p->c.warm))
		return 1;
	ring_barrier(2);
	int64_t t0 = gx_now();
	if (pp_rounds(side, p, &k, p->c.n))
		return 1;
	if (side == 0)
		rctl->ns = gx_now() - t0;
	return ring_detach(p->arena);
}

/* -- ring throughput -- */

typedef struct ring_tp {
	gx_arena *arena;
	gx_ring *r;
	ring_count c;
	size_t batch;
} ring_tp;

/* Send 1..count in batches of up to batch values. */
static int tp_send(gx_ring *r, long count, size_t batch)
{
	uint64_t buf[RING_BATCH_MAX];
	uint64_t next = 1, end = (uint64_t)count + 1;
	while (next < end) {
		size_t k = end - next < batch ? (size_t)(end - next) : batch;
		for (size_t j = 0; j < k; j++)
			buf[j] = next + j;
		int rc = gx_ring_send_batch(r, buf, k, GX_FOREVER);
		if (rc < 0)
			return ring_fail("gx_ring_send_batch", rc);
		if (rc == 0 || (size_t)rc > k) {
			fprintf(stderr, "gx-bench: ring: gx_ring_send_batch of %zu sent %d\n", k, rc);
			return 1;
		}
		next += (uint64_t)rc;
	}
	return 0;
}

/* Receive count values and check that they are 1..count, in any order:
 * their sum and sum of squares (mod 2^64) must match. *t_last (if not
 * NULL) gets the time of the last message, before the check. */
static int tp_recv(gx_ring *r, long count, size_t batch, int64_t *t_last)
{
	uint64_t buf[RING_BATCH_MAX];
	uint64_t want = (uint64_t)count, got = 0, sum = 0, sq = 0;
	while (got < want) {
		size_t k = want - got < batch ? (size_t)(want - got) : batch;
		int rc = gx_ring_recv_batch(r, buf, k, GX_FOREVER);
		if (rc < 0)
			return ring_fail("gx_ring_recv_batch", rc);
		if (rc == 0 || (size_t)rc > k) {
			fprintf(stderr, "gx-bench: ring: gx_ring_recv_batch of %zu received %d\n", k, rc);
			return 1;
		}
		for (int j = 0; j < rc; j++) {
			sum += buf[j];
			sq += buf[j] * buf[j];
		}
		got += (uint64_t)rc;
	}
	if (t_last)
		*t_last = gx_now();
	uint64_t want_sq = 0;
	for (uint64_t v = 1; v <= want; v++)
		want_sq += v * v;
	if (sum != want * (want + 1) / 2 || sq != want_sq) {
		fprintf(stderr,
			"gx-bench: ring: %llu values received, sum %llu (expected %llu), sum of squares %llu "
			"(expected %llu)\n",
			(unsigned long long)got, (unsigned long long)sum, (unsigned long long)(want * (want + 1) / 2),
			(unsigned long long)sq, (unsigned long long)want_sq);
		return 1;
	}
	return 0;
}

static int tp_side(int side, void *arg)
{
	ring_tp *t = arg;
	if (ring_attach(t->arena))
		return 1;
	ring_barrier(1);
	if (t->c.warm && side == 0 && tp_send(t->r, t->c.warm, t->batch))
		return 1;
	if (t->c.warm && side == 1 && tp_recv(t->r, t->c.warm, t->batch, NULL))
		return 1;
	ring_barrier(2); /* the warm-up is all received: the ring is empty */
	int64_t t0 = gx_now(), t1;
	if (side == 0)
		return tp_send(t->r, t->c.n, t->batch) || ring_detach(t->arena);
	if (tp_recv(t->r, t->c.n, t->batch, &t1))
		return 1;
	rctl->ns = t1 - t0;
	return ring_detach(t->arena);
}

/* -- the parent -- */

/* Futex waits entered on the given rings so far (0 when stats fail). */
static uint64_t ring_sleeps(gx_ring *a, gx_ring *b)
{
	gx_ring_stats sa, sb;
	if (gx_ring_stats_get(a, &sa) != 0 || (b && gx_ring_stats_get(b, &sb) != 0))
		return 0;
	return sa.sleeps + (b ? sb.sleeps : 0);
}

int bench_ring(long n, size_t batch)
{
	int ret = 1, rc;
	if (two_cpus("ring") < 0)
		return 1;

	rctl = mmap(NULL, sizeof *rctl, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (rctl == MAP_FAILED) {
		fprintf(stderr, "gx-bench: ring: mmap: %s\n", strerror(errno));
		return 1;
	}

	/* Before any fork: every child maps the arenas at the same address. */
	gx_arena *spin_arena, *sleep_arena;
	gx_arena_opts o;
	gx_arena_opts_init(&o);
	if ((rc = gx_arena_create(&spin_arena, &o)) < 0) {
		ring_fail("gx_arena_create", rc);
		goto err_unmap;
	}
	o.spin_ns = 0;
	if ((rc = gx_arena_create(&sleep_arena, &o)) < 0) {
		ring_fail("gx_arena_create (spin_ns 0)", rc);
		goto err_spin_arena;
	}
	gx_arena_info spin_info, sleep_info;
	if ((rc = gx_arena_info_get(spin_arena, &spin_info)) < 0 ||
	    (rc = gx_arena_info_get(sleep_arena, &sleep_info)) < 0) {
		ring_fail("gx_arena_info_get", rc);
		goto err_sleep_arena;
	}
	if (sleep_info.spin_ns != 0) {
		fprintf(stderr, "gx-bench: ring: asked for spin_ns 0, the arena has %lld\n",
			(long long)sleep_info.spin_ns);
		goto err_sleep_arena;
	}

	gx_ring *tp_r, *ping, *pong, *wping, *wpong;
	if (ring_make(spin_arena, &tp_r))
		goto err_sleep_arena;
	if (ring_make(spin_arena, &ping))
		goto err_tp_ring;
	if (ring_make(spin_arena, &pong))
		goto err_ping;
	if (ring_make(sleep_arena, &wping))
		goto err_pong;
	if (ring_make(sleep_arena, &wpong))
		goto err_wping;

	ring_block_chld();

	long wk_total = n / 100 > 1000 ? n / 100 : 1000;
	ring_count cl = ring_rounds(n / 10), fx = ring_rounds(wk_total / RING_SLICES);
	ring_pp pp = {.arena = spin_arena, .ping = ping, .pong = pong, .c = cl};
	ring_pp wk = {.arena = sleep_arena, .ping = wping, .pong = wpong, .c = fx};
	ring_tp tp = {.arena = spin_arena, .r = tp_r, .c = ring_rounds(n), .batch = batch};
	int64_t t_cl[RING_SLICES], t_pp[RING_SLICES], t_fx[RING_SLICES], t_wk[RING_SLICES], t_tp[RING_SLICES];
	uint64_t pp_sleeps = 0, wk_sleeps = 0, tp_sleeps = 0;

	/* The measurements in their order; a figure's futex waits are counted
	 * on its rings (a, and b when not NULL), a floor's are not. */
	const struct {
		const char *name;
		ring_side_fn side;
		void *arg;
		int64_t *t; /* t[i]: slice i */
		gx_ring *a, *b;
		uint64_t *sleeps;
	} m[] = {
		{"floor_cacheline_rtt", cl_side, &cl, t_cl, NULL, NULL, NULL},
		{"ring_pingpong_rtt", pp_side, &pp, t_pp, ping, pong, &pp_sleeps},
		{"floor_futex_rtt", futex_side, &fx, t_fx, NULL, NULL, NULL},
		{"ring_wake_rtt", pp_side, &wk, t_wk, wping, wpong, &wk_sleeps},
		{"ring_throughput", tp_side, &tp, t_tp, tp_r, NULL, &tp_sleeps},
	};
	for (int i = 0; i < RING_SLICES; i++)
		for (size_t k = 0; k < sizeof m / sizeof m[0]; k++) {
			uint64_t s0 = m[k].a ? ring_sleeps(m[k].a, m[k].b) : 0;
			if (ring_pair(m[k].name, m[k].side, m[k].arg))
				goto err_unblock;
			m[k].t[i] = rctl->ns;
			if (m[k].a)
				*m[k].sleeps += ring_sleeps(m[k].a, m[k].b) - s0;
		}

	double cl_rtt = ring_min(t_cl, RING_SLICES) / (double)cl.n;
	double fx_rtt = ring_min(t_fx, RING_SLICES) / (double)fx.n;
	double pp_rtt = ring_min(t_pp, RING_SLICES) / (double)pp.c.n;
	double wk_rtt = ring_min(t_wk, RING_SLICES) / (double)wk.c.n;
	double mmsg = (double)tp.c.n / ring_min(t_tp, RING_SLICES) * 1e3; /* per ns, * 1e9 / 1e6 */
	/* every round trip run, warm-ups included, for sleeps_per_round */
	double all = (double)RING_SLICES * (double)(cl.n + cl.warm);
	double wall = (double)RING_SLICES * (double)(fx.n + fx.warm);
	double wk_spr = (double)wk_sleeps / wall;
	if (wk_spr < 1.5)
		fprintf(stderr,
			"gx-bench: ring: warning: on the spin_ns 0 arena the receives slept %.2f times a round trip, "
			"not 2: ring_wake_rtt is not a wake-up latency\n",
			wk_spr);
	printf("RESULT floor_cacheline_rtt %.1f ns rounds=%ld slices=%d cpus=%d,%d\n", cl_rtt, cl.n, RING_SLICES,
	       ring_cpu[0], ring_cpu[1]);
	printf("RESULT floor_futex_rtt %.1f ns rounds=%ld slices=%d\n", fx_rtt, fx.n, RING_SLICES);
	printf("RESULT ring_throughput %.2f Mmsg/s msgs=%ld slices=%d batch=%zu capacity=%d sleeps=%llu tier=%s\n",
	       mmsg, tp.c.n, RING_SLICES, batch, RING_CAP, (unsigned long long)tp_sleeps, spin_info.tier_name);
	printf("RESULT ring_pingpong_rtt %.1f ns rounds=%ld slices=%d floor_cacheline_rtt=%.1f vs_floor=%.2f "
	       "sleeps_per_round=%.3f spin_ns=%lld\n",
	       pp_rtt, pp.c.n, RING_SLICES, cl_rtt, pp_rtt / cl_rtt, (double)pp_sleeps / all,
	       (long long)spin_info.spin_ns);
	printf("RESULT ring_wake_rtt %.1f ns rounds=%ld slices=%d floor_futex_rtt=%.1f vs_floor=%.2f "
	       "sleeps_per_round=%.2f spin_ns=0\n",
	       wk_rtt, wk.c.n, RING_SLICES, fx_rtt, wk_rtt / fx_rtt, wk_spr);
	ret = 0;

err_unblock:
	ring_unblock_chld();
	gx_ring_destroy(sleep_arena, wpong);
err_wping:
	gx_ring_destroy(sleep_arena, wping);
err_pong:
	gx_ring_destroy(spin_arena, pong);
err_ping:
	gx_ring_destroy(spin_arena, ping);
err_tp_ring:
	gx_ring_destroy(spin_arena, tp_r);
err_sleep_arena:
	gx_arena_destroy(sleep_arena);
err_spin_arena:
	gx_arena_destroy(spin_arena);
err_unmap:
	munmap(rctl, sizeof *rctl);
	return ret;
}
