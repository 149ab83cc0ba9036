/*
 * Named profiling sections (gonex/stats.h): gx_prof_begin stamps the
 * start; gx_prof_end counts one more run of the section, with its time,
 * in the stats shard of the process that calls it, keyed by the name's
 * address (kind GX_STAT_SECTION, fn 0).
 *
 * Invariants:
 * - a section is measured only when begin found the figures on: in a
 *   coroutine of gx_run, GONEX_STATS on, an arena (gx_par_arena(1) makes
 *   it when there are no workers) and a shard for this process; otherwise
 *   t0 stays 0 and end does nothing;
 * - end counts a gx_prof at most once: it clears t0;
 * - every section run is timed (no sampling, unlike tasks);
 * - only the owning process writes a shard (plain relaxed stores through
 *   gx_stat_add, no read-modify-write; see stats/stats.h).
 *
 * Memory ordering: gx_stat_entry makes and publishes the entry (release on
 * `used`; partner the acquire in snapshot.c); the counts are single
 * relaxed values with no order between them (see snapshot.c).
 *
 * Trusted: name outlives its use (a string literal: sections are keyed by
 * its address; the shard keeps a copy cut to GX_STAT_NAME - 1 bytes).
 * Not trusted: p (NULL, never begun, or already ended: nothing happens).
 */
#include "par/par.h"

#include <stdint.h>

#include "core/sched.h"

#include <gonex/stats.h>
#include <gonex/time.h>

gx_prof gx_prof_begin(const char *name)
{
	gx_prof p = {name, 0};
	if (name && gx_sched_active() && gx_par_cfg()->stats && gx_par_arena(1) && gx_par_shard())
		p.t0 = gx_now();
	return p;
}

void gx_prof_end_err(gx_prof *p, int err)
{
	if (!p || !p->t0 || !p->name)
		return;
	gx_stat_shard *sh = gx_par_shard();
	if (!sh)
		return;
	int64_t ns = gx_now() - p->t0;
	gx_stat_fn *f = gx_stat_entry(sh, GX_STAT_SECTION, 0, (uint64_t)(uintptr_t)p->name, p->name);
	gx_stat_add(&f->count, 1);
	if (err < 0)
		gx_stat_add(&f->errors, 1);
	gx_stat_time(f, ns);
	p->t0 = 0;
}

void gx_prof_end(gx_prof *p)
{
	gx_prof_end_err(p, 0);
}
