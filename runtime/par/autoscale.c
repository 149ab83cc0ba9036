/*
 * Autoscaling (main process): a coroutine looks every 20 ms at how long
 * tasks waited in the inboxes; three looks in a row over 1 ms add a worker
 * (up to max), fifty looks with every inbox empty and no task started
 * retire the last worker (down to min): hysteresis both ways.
 */
#include "par/par.h"

/* ---- autoscaling ---- */

void gx_autoscale(void *arg)
{
	(void)arg;
	int hot = 0, cold = 0;
	uint64_t last_tasks = 0;
	while (!gx_pl.stopping) {
		if (gx_sleep(20 * GX_MILLISECOND) < 0 || gx_pl.stopping)
			break;
		int active = 0;
		int64_t wait = 0;
		uint64_t depth = 0, tasks = 0;
		for (int i = 0; i < gx_pl.nslots; i++) {
			if (!gx_active(i))
				continue;
			active++;
			int64_t e = atomic_load(&gx_pl.p->w[i].wait_ewma_ns);
			if (e > wait)
				wait = e;
			depth += gx_ring_depth(gx_inbox(i));
			tasks += atomic_load(&gx_pl.p->w[i].tasks);
		}
		hot = (wait > GX_MILLISECOND && depth > 0) ? hot + 1 : 0;
		cold = (depth == 0 && tasks == last_tasks) ? cold + 1 : 0;
		last_tasks = tasks;
		if (hot >= 3 && active < gx_pl.wmax) {
			for (int i = 0; i < gx_pl.nslots; i++) {
				uint32_t st = atomic_load(&gx_pl.p->w[i].state);
				if (st == GX_W_OFF) { /* DEAD ones are the supervisor's */
					atomic_store(&gx_pl.p->w[i].wait_ewma_ns, 0);
					gx_request(i);
					break;
				}
			}
			hot = 0;
		} else if (cold >= 50 && active > gx_pl.wmin) {
			for (int i = gx_pl.nslots - 1; i >= 0; i--)
				if (gx_active(i)) {
					atomic_store(&gx_pl.p->w[i].retired, 1);
					atomic_store(&gx_pl.p->w[i].state, GX_W_DRAIN);
					gx_ring_kick(gx_inbox(i));
					break;
				}
			cold = 0;
		}
		for (int i = 0; i < gx_pl.nslots; i++)
			if (gx_active(i))
				atomic_store(&gx_pl.p->w[i].wait_ewma_ns, atomic_load(&gx_pl.p->w[i].wait_ewma_ns) / 2);
	}
}
