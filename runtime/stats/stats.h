/*
 * Counters and latency histograms in plain memory (layer 2: no runtime
 * calls). The parallel runtime puts one shard per process in the arena
 * (the main process and each worker slot) and only that process writes
 * it, so updates are plain relaxed loads and stores, no read-modify-write;
 * any other process (or gonex-stat) reads every shard and sums.
 *
 * Histogram: log-linear buckets, four per power of two (at most 19% wide),
 * from 0 to 2^42 ns (73 minutes); longer values land in the last bucket.
 */
#ifndef GX_STATS_STATS_H
#define GX_STATS_STATS_H

#include <stdatomic.h>
#include <stdint.h>

#define GX_HIST_N 168
#define GX_STAT_FNS 64 /* per shard; the last entry collects the overflow */
#define GX_STAT_NAME 32

enum { GX_STAT_TASK = 1, GX_STAT_SECTION = 2 };

typedef struct gx_stat_fn {
	_Atomic uint32_t used; /* set last, after fn, name and kind */
	uint32_t kind;
	uint64_t fn;           /* task function (0 for a section) */
	uint64_t nameptr;      /* the name's address in the program image */
	char name[GX_STAT_NAME];
	_Atomic uint64_t count, errors, retries, fallbacks, rejected;
	_Atomic uint64_t timed, sum_ns, max_ns;
	_Atomic uint64_t hist[GX_HIST_N];
} gx_stat_fn;

typedef struct gx_stat_shard {
	_Atomic uint32_t n;   /* entries used */
	uint32_t tick;        /* sampling counter (owner only) */
	gx_stat_fn fn[GX_STAT_FNS];
} gx_stat_shard;

/* Bucket of a value in ns, and the value a bucket stands for (its middle). */
uint32_t gx_hist_bucket(uint64_t ns);
uint64_t gx_hist_value(uint32_t b);
/* The q-quantile (0 < q <= 1) of a histogram holding total values; 0 when
 * empty. */
uint64_t gx_hist_quantile(const uint64_t *h, uint64_t total, double q);

/* The shard's entry for (kind, fn, nameptr), made when missing with the
 * given display name (cut to GX_STAT_NAME - 1). When the shard is full:
 * its last entry, named "(other)". Owner process only. */
gx_stat_fn *gx_stat_entry(gx_stat_shard *s, uint32_t kind, uint64_t fn, uint64_t nameptr, const char *name);

/* Owner only: one more event; ns < 0 when it was not timed. */
static inline void gx_stat_add(_Atomic uint64_t *c, uint64_t v)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v, memory_order_relaxed);
}

static inline void gx_stat_time(gx_stat_fn *f, int64_t ns)
{
	if (ns < 0)
		return;
	gx_stat_add(&f->timed, 1);
	gx_stat_add(&f->sum_ns, (uint64_t)ns);
	if ((uint64_t)ns > atomic_load_explicit(&f->max_ns, memory_order_relaxed))
		atomic_store_explicit(&f->max_ns, (uint64_t)ns, memory_order_relaxed);
	gx_stat_add(&f->hist[gx_hist_bucket((uint64_t)ns)], 1);
}

/* Should the owner time this event? Always for slow entries (a mean of
 * 2 us or more, where two clock reads cost under 2%), and for the first
 * 64 of each entry; else one in 128 (the histogram is then a sample; the
 * counts stay exact). Two clock reads are ~40 ns here: timing every
 * 100 ns task would cost 40%, one in 128 costs under 0.5%. */
static inline int gx_stat_sample(gx_stat_shard *s, const gx_stat_fn *f)
{
	uint64_t t = atomic_load_explicit(&f->timed, memory_order_relaxed);
	if (t < 64 || atomic_load_explicit(&f->sum_ns, memory_order_relaxed) >= t * 2000)
		return 1;
	return (++s->tick & 127) == 0;
}

#endif
