/*
 * Choosing a worker for a task. Strategies: round-robin (a counter per
 * submitting process), least-busy (queued + running, read from the shared
 * counters), weighted (smooth weighted round-robin, per submitting
 * process), predictive (per-function average run time; each worker's
 * backlog of expected nanoseconds; the earliest expected finish wins).
 */
#include "par/par.h"

/* ---- choosing a worker ---- */

int gx_active(int i)
{
	return atomic_load_explicit(&gx_pl.p->w[i].state, memory_order_relaxed) == GX_W_READY;
}

int gx_par_pick(int64_t cost)
{
	int n = gx_pl.nslots, best = -1;
	switch (gx_pl.cfg.balance) {
	case GX_BALANCE_ROUND_ROBIN:
		for (int k = 0; k < n; k++) {
			int i = (int)(gx_pl.rr++ % (uint32_t)n);
			if (gx_active(i))
				return i;
		}
		return -1;
	case GX_BALANCE_WEIGHTED: {
		/* smooth weighted round-robin (nginx): add each weight, take
		 * the largest, subtract the total from it */
		int64_t total = 0;
		for (int i = 0; i < n; i++) {
			if (!gx_active(i))
				continue;
			int64_t wt = gx_pl.weight[i] > 0 ? gx_pl.weight[i] : 1;
			gx_pl.swrr[i] += wt;
			total += wt;
			if (best < 0 || gx_pl.swrr[i] > gx_pl.swrr[best])
				best = i;
		}
		if (best >= 0)
			gx_pl.swrr[best] -= total;
		return best;
	}
	case GX_BALANCE_PREDICTIVE: {
		int64_t bl = 0;
		for (int i = 0; i < n; i++) {
			if (!gx_active(i))
				continue;
			int64_t b = atomic_load_explicit(&gx_pl.p->w[i].backlog_ns, memory_order_relaxed);
			if (best < 0 || b < bl) {
				best = i;
				bl = b;
			}
		}
		(void)cost;
		return best;
	}
	case GX_BALANCE_LEAST_BUSY:
	default: {
		uint64_t load = 0;
		uint32_t start = gx_pl.rr++; /* ties go round */
		for (int k = 0; k < n; k++) {
			int i = (int)((start + (uint32_t)k) % (uint32_t)n);
			if (!gx_active(i))
				continue;
			gx_ring *in = gx_inbox(i);
			uint64_t l = (in ? gx_ring_depth(in) : 0) +
				     atomic_load_explicit(&gx_pl.p->w[i].running, memory_order_relaxed);
			if (best < 0 || l < load) {
				best = i;
				load = l;
				if (!l)
					break;
			}
		}
		return best;
	}
	}
}

/* A worker is asleep and this inbox has a backlog: nudge a sleeper. */
void gx_nudge_idle(int busy)
{
	if (!gx_pl.cfg.work_stealing || !atomic_load_explicit(&gx_pl.p->idle_workers, memory_order_relaxed))
		return;
	gx_ring *in = gx_inbox(busy);
	if (!in || gx_ring_depth(in) < 2)
		return;
	for (int i = 0; i < gx_pl.nslots; i++)
		if (i != busy && atomic_load(&gx_pl.p->w[i].idle)) {
			gx_ring *o = gx_inbox(i);
			if (o)
				gx_ring_kick(o);
			return;
		}
}

/* ---- predictive: per-function average run time ---- */

void gx_cost_learn(uint64_t fn, int64_t ns)
{
	gx_cost *c = NULL;
	for (uint32_t i = 0, k = (uint32_t)(fn >> 4) % GX_COSTS; i < 8; i++, k = (k + 1) % GX_COSTS) {
		uint64_t cur = atomic_load(&gx_pl.p->cost[k].fn);
		if (cur == fn) {
			c = &gx_pl.p->cost[k];
			break;
		}
		if (!cur) {
			uint64_t z = 0;
			if (atomic_compare_exchange_strong(&gx_pl.p->cost[k].fn, &z, fn) || z == fn) {
				c = &gx_pl.p->cost[k];
				break;
			}
		}
	}
	if (!c)
		return;
	int64_t old = atomic_load(&c->avg_ns);
	atomic_store(&c->avg_ns, old ? old + (ns - old) / 8 : ns);
}

int64_t gx_cost_of(uint64_t fn)
{
	for (uint32_t i = 0, k = (uint32_t)(fn >> 4) % GX_COSTS; i < 8; i++, k = (k + 1) % GX_COSTS) {
		uint64_t cur = atomic_load(&gx_pl.p->cost[k].fn);
		if (cur == fn)
			return atomic_load(&gx_pl.p->cost[k].avg_ns);
		if (!cur)
			break;
	}
	return 0;
}
