/*
 * Histogram arithmetic and the per-shard entry table (see stats.h).
 */
#include "stats/stats.h"

#include <string.h>

uint32_t gx_hist_bucket(uint64_t ns)
{
	if (ns < 4)
		return (uint32_t)ns;
	uint32_t e = 63u - (uint32_t)__builtin_clzll(ns); /* >= 2 */
	uint32_t b = 4 + (e - 2) * 4 + (uint32_t)((ns >> (e - 2)) & 3);
	return b < GX_HIST_N ? b : GX_HIST_N - 1;
}

uint64_t gx_hist_value(uint32_t b)
{
	if (b < 4)
		return b;
	uint32_t e = (b - 4) / 4 + 2, m = (b - 4) % 4;
	uint64_t lo = (uint64_t)(4 + m) << (e - 2);
	uint64_t width = (uint64_t)1 << (e - 2);
	return lo + width / 2;
}

uint64_t gx_hist_quantile(const uint64_t *h, uint64_t total, double q)
{
	if (!total)
		return 0;
	uint64_t want = (uint64_t)(q * (double)total + 0.999999);
	if (want < 1)
		want = 1;
	if (want > total)
		want = total;
	uint64_t seen = 0;
	for (uint32_t b = 0; b < GX_HIST_N; b++) {
		seen += h[b];
		if (seen >= want)
			return gx_hist_value(b);
	}
	return gx_hist_value(GX_HIST_N - 1);
}

gx_stat_fn *gx_stat_entry(gx_stat_shard *s, uint32_t kind, uint64_t fn, uint64_t nameptr, const char *name)
{
	uint32_t n = atomic_load_explicit(&s->n, memory_order_relaxed);
	if (n > GX_STAT_FNS)
		n = GX_STAT_FNS;
	for (uint32_t i = 0; i < n; i++) {
		gx_stat_fn *f = &s->fn[i];
		if (f->kind == kind && f->fn == fn && f->nameptr == nameptr)
			return f;
	}
	gx_stat_fn *f = &s->fn[n < GX_STAT_FNS - 1 ? n : GX_STAT_FNS - 1];
	if (n >= GX_STAT_FNS - 1) {
		/* acquire: pairs with the release of used below */
		if (atomic_load_explicit(&f->used, memory_order_acquire))
			return f;
		fn = nameptr = 0;
		name = "(other)";
	}
	f->kind = kind;
	f->fn = fn;
	f->nameptr = nameptr;
	size_t l = name ? strlen(name) : 0;
	if (l > GX_STAT_NAME - 1)
		l = GX_STAT_NAME - 1;
	memcpy(f->name, name ? name : "", l);
	f->name[l] = 0;
	/* release: the entry's fields before used (pairs with readers' acquire) */
	atomic_store_explicit(&f->used, 1, memory_order_release);
	if (n < GX_STAT_FNS)
		/* release: the entry before the count (pairs with snapshot's load of n) */
		atomic_store_explicit(&s->n, n + 1, memory_order_release);
	return f;
}
