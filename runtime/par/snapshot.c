/*
 * The figures (gonex/stats.h) as a snapshot: the workers, the stats shards
 * and the breakers kept in the arena, read from this process's arena
 * (gx_stats_snapshot) or from another program's arena mapped read-only
 * (gx_stats_open / _read / _close, what gonex-stat does).
 *
 * Not trusted: anything in the arena. The same reader serves both cases,
 * so even our own arena is read as if another program (or a bug) had
 * written it: the arena header's magic and size must match the mapping
 * and the table's magic this layout; every offset, with the length
 * behind it, is checked against the mapping (gx_at) before use; every
 * count is capped by its table's size once it is in a local (workers
 * GX_MAX_WORKERS, shards GX_MAX_WORKERS + 1, entries GX_STAT_FNS,
 * breakers GX_BREAKER_MAX); names are cut at their field's end
 * (gx_name_copy reads at most cap - 1 bytes). A header or table that
 * fails a check is -EPROTO; an offset in it that fails one reads as empty
 * (no queue depth, no function figures). Never an access outside the
 * mapping.
 * Trusted: the mapping itself (its size from fstat when foreign), and
 * /proc/PID/fd, which the kernel opens only for the same user or root.
 *
 * Invariants:
 * - a snapshot only reads the arena: no store, no CAS, no futex (a foreign
 *   arena is mapped PROT_READ);
 * - out->nworkers <= GX_MAX_WORKERS, out->nfn <= GX_STATS_FN_MAX,
 *   out->nbreaker <= GX_STATS_BREAKER_MAX;
 * - an entry of a shard is merged only once its `used` flag is seen set,
 *   so its kind, fn, nameptr and name are complete; entries with the same
 *   (kind, fn, nameptr) from several shards are summed into one.
 *
 * Memory ordering (the writers are the runtime's processes, this one
 * included; no lock):
 * - runtime_table: loaded here; partner the store in par.c that publishes
 *   the table after stats_on, nshards and shards are set;
 * - gx_stat_fn.used: acquire here; partner the release store in
 *   gx_stat_entry (stats.c) after kind, fn, nameptr and name;
 * - gx_brk.used == 2: loaded here; partner the store in breaker.c after
 *   the breaker's name and options are set;
 * - counters and histograms are single values read one by one with no
 *   order between them: a value landing mid-read may show in one figure
 *   and not another (a count and its histogram, say); that is accepted.
 *
 * Rejected: asking the owning processes for their figures (DESIGN: one
 * process, or gonex-stat, reads everyone's without asking; a stuck process
 * would not answer).
 */
#include "par/par.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/sched.h"

#include <gonex/stats.h>
#include <gonex/time.h>

/* ---- reading an arena's figures ---- */

/* [off, off + len) of the mapping at base, aligned for what it holds
 * (align, a power of two); NULL when not. */
static const void *gx_at(const char *base, uint64_t size, uint64_t off, uint64_t len, uint64_t align)
{
	if (off < sizeof(gx_arena_hdr) || off > size || len > size - off || off % align)
		return NULL;
	return base + off;
}

typedef struct {
	uint32_t kind;
	uint64_t fn, nameptr;
	uint64_t hist[GX_HIST_N];
	uint64_t sum;
} gx_merge;

static void gx_name_copy(char *dst, const char *src, size_t cap)
{
	size_t l = strnlen(src, cap - 1);
	memcpy(dst, src, l);
	dst[l] = 0;
}

/* The arena header at base and the runtime table it names, both checked
 * against the mapping; NULL when either fails a check. */
static const gx_par *gx_stats_table(const char *base, uint64_t size)
{
	const gx_arena_hdr *h = (const gx_arena_hdr *)base;
	/* acquire: pairs with gx_arena_create's release of the magic */
	if (size < sizeof *h || atomic_load_explicit(&h->magic, memory_order_acquire) != GX_ARENA_MAGIC || h->size != size)
		return NULL;
	uint64_t poff = atomic_load((_Atomic uint64_t *)&h->runtime_table);
	const gx_par *p = gx_at(base, size, poff, sizeof(gx_par), _Alignof(gx_par));
	/* acquire: pairs with gx_par_tables' release of the magic */
	if (!p || atomic_load_explicit(&p->magic, memory_order_acquire) != GX_PAR_MAGIC || p->nslots > GX_MAX_WORKERS)
		return NULL;
	return p;
}

/* One worker slot's figures as of now (the snapshot's one clock reading). */
static void gx_stats_worker_from(const char *base, uint64_t size, gx_wk *w, int64_t now, gx_stats_worker *o)
{
	o->pid = atomic_load(&w->pid);
	o->cpu = w->cpu;
	o->state = (int)atomic_load(&w->state);
	o->tasks = atomic_load(&w->tasks);
	o->steals = atomic_load(&w->steals);
	o->restarts = atomic_load(&w->restarts);
	o->wakeups = atomic_load(&w->wakeups);
	o->running = atomic_load(&w->running);
	const gx_ring *in = gx_at(base, size, w->inbox, GX_RING_HDR, 128);
	o->queued = in ? gx_ring_depth(in) : 0;
	/* times another process wrote: each one clamped before it is used,
	 * so that no difference can overflow (now > 0, and each time taken
	 * only when in (0, now)) */
	int64_t started = atomic_load(&w->started);
	if (o->state == GX_W_READY || o->state == GX_W_DRAIN) {
		int64_t wall = started > 0 && started < now ? now - started : 0;
		int64_t idle = atomic_load(&w->idle_ns), since = atomic_load(&w->idle_since);
		idle = idle < 0 ? 0 : idle > wall ? wall : idle;
		if (since > 0 && since < now)
			idle = now - since > wall - idle ? wall : idle + (now - since);
		o->idle_ns = idle;
		o->busy_ns = wall - idle;
		o->util = wall ? (double)o->busy_ns / (double)wall : 0;
	}
	int64_t hb = atomic_load(&w->heartbeat);
	o->heartbeat_age_ns =
		hb && o->state == GX_W_READY && !atomic_load(&w->hb_rest) ? (hb > 0 && now > hb ? now - hb : 0) : -1;
	o->healthy = o->state == GX_W_READY && !atomic_load(&w->unhealthy);
}

/* The index in out->fn (and m) of f's (kind, fn, name), made on first
 * sight; -1 when out->fn is full and f's is not in it. */
static int gx_stats_entry(const gx_stat_fn *f, gx_merge *m, gx_stats *out)
{
	int e = 0;
	while (e < out->nfn && !(m[e].kind == f->kind && m[e].fn == f->fn && m[e].nameptr == f->nameptr))
		e++;
	if (e < out->nfn)
		return e;
	if (out->nfn == GX_STATS_FN_MAX)
		return -1;
	out->nfn++;
	m[e].kind = f->kind;
	m[e].fn = f->fn;
	m[e].nameptr = f->nameptr;
	gx_name_copy(out->fn[e].name, f->name, sizeof out->fn[e].name);
	out->fn[e].kind = f->kind == GX_STAT_SECTION ? GX_STATS_SECTION : GX_STATS_TASK;
	return e;
}

/* Add one shard entry's counters to its merged figures o and sums me. */
static void gx_stats_add(gx_stat_fn *f, gx_merge *me, gx_stats_fn *o)
{
	o->count += atomic_load(&f->count);
	o->errors += atomic_load(&f->errors);
	o->retries += atomic_load(&f->retries);
	o->fallbacks += atomic_load(&f->fallbacks);
	o->rejected += atomic_load(&f->rejected);
	o->timed += atomic_load(&f->timed);
	me->sum += atomic_load(&f->sum_ns);
	uint64_t mx = atomic_load(&f->max_ns);
	if ((int64_t)mx > o->max_ns)
		o->max_ns = (int64_t)mx;
	for (int b = 0; b < GX_HIST_N; b++)
		me->hist[b] += atomic_load_explicit(&f->hist[b], memory_order_relaxed);
}

/* The mean and quantiles of every merged entry, from the summed histograms. */
static void gx_stats_quantiles(const gx_merge *m, gx_stats *out)
{
	for (int e = 0; e < out->nfn; e++) {
		gx_stats_fn *o = &out->fn[e];
		/* the histogram is read after the count: a value landing
		 * in between shows in one and not the other */
		uint64_t total = 0;
		for (int b = 0; b < GX_HIST_N; b++)
			total += m[e].hist[b];
		o->mean_ns = total ? (int64_t)(m[e].sum / total) : 0;
		o->p50_ns = (int64_t)gx_hist_quantile(m[e].hist, total, 0.50);
		o->p90_ns = (int64_t)gx_hist_quantile(m[e].hist, total, 0.90);
		o->p99_ns = (int64_t)gx_hist_quantile(m[e].hist, total, 0.99);
		o->p999_ns = (int64_t)gx_hist_quantile(m[e].hist, total, 0.999);
	}
}

/* Every shard's used entries merged into out->fn by (kind, fn, name).
 * 0, or -ENOMEM for the merge's scratch table. */
static int gx_stats_merge(const char *base, uint64_t size, const gx_par *p, gx_stats *out)
{
	uint32_t nshards = p->nshards;
	if (!p->stats_on || !nshards || nshards > GX_MAX_WORKERS + 1)
		return 0;
	const gx_stat_shard *sh = gx_at(base, size, p->shards, (uint64_t)nshards * sizeof(gx_stat_shard), _Alignof(gx_stat_shard));
	if (!sh)
		return 0;
	gx_merge *m = calloc(GX_STATS_FN_MAX, sizeof *m);
	if (!m)
		return -ENOMEM;
	for (uint32_t k = 0; k < nshards; k++) {
		uint32_t n = atomic_load((_Atomic uint32_t *)&sh[k].n);
		for (uint32_t j = 0; j < n && j < GX_STAT_FNS; j++) {
			gx_stat_fn *f = (gx_stat_fn *)&sh[k].fn[j];
			/* acquire: pairs with gx_stat_entry's release of used (its names first) */
			if (!atomic_load_explicit(&f->used, memory_order_acquire))
				continue;
			int e = gx_stats_entry(f, m, out);
			if (e >= 0)
				gx_stats_add(f, &m[e], &out->fn[e]);
		}
	}
	gx_stats_quantiles(m, out);
	free(m);
	return 0;
}

/* The breakers that are set up (used == 2), up to what out holds. */
static void gx_stats_breakers(const gx_par *p, gx_stats *out)
{
	uint32_t nb = atomic_load((_Atomic uint32_t *)&p->nbrk);
	for (uint32_t i = 0; i < nb && i < GX_BREAKER_MAX && out->nbreaker < GX_STATS_BREAKER_MAX; i++) {
		gx_brk *b = (gx_brk *)&p->brk[i];
		if (atomic_load(&b->used) != 2)
			continue;
		gx_stats_breaker *o = &out->breaker[out->nbreaker++];
		gx_name_copy(o->name, b->name, sizeof o->name);
		o->state = (int)GX_BRK_ST(atomic_load(&b->st));
		o->successes = atomic_load(&b->successes);
		o->failures = atomic_load(&b->fails);
		o->opens = atomic_load(&b->opens);
		o->rejected = atomic_load(&b->rejected);
		o->fallbacks = atomic_load(&b->fallbacks);
		o->last_goods = atomic_load(&b->last_goods);
	}
}

/* Fill out from the arena mapped at base (size bytes). 0, -EPROTO for an
 * arena that fails a check, or -ENOMEM. */
static int gx_stats_from(const char *base, uint64_t size, gx_stats *out)
{
	const gx_par *p = gx_stats_table(base, size);
	if (!p)
		return -EPROTO;
	memset(out, 0, sizeof *out);
	int64_t now = gx_now();
	out->now_ns = now;
	out->main_pid = p->main_pid;
	out->main_tasks = atomic_load_explicit(&p->main_helped, memory_order_relaxed);
	out->enabled = p->stats_on != 0;
	out->degraded = atomic_load((_Atomic uint32_t *)&p->degraded) != 0;
	/* counts are read once: the memory may change under us */
	int nslots = (int)p->nslots;
	if (nslots < 0 || nslots > GX_MAX_WORKERS)
		return -EPROTO;
	out->nworkers = nslots;
	for (int i = 0; i < nslots; i++)
		gx_stats_worker_from(base, size, (gx_wk *)&p->w[i], now, &out->w[i]);
	int rc = gx_stats_merge(base, size, p, out);
	if (rc < 0)
		return rc;
	gx_stats_breakers(p, out);
	return 0;
}

int gx_stats_snapshot(gx_stats *out)
{
	if (!out)
		return -EINVAL;
	gx_arena *a = gx_par_table() ? gx_par_arena(0) : NULL;
	if (!a || !gx_sched_active())
		return -EPERM;
	return gx_stats_from((const char *)a, gx_geo(a)->size, out);
}

/* ---- another program's arena ---- */

struct gx_stats_src {
	int pid;
	char *base;
	uint64_t size;
};

int gx_stats_open(int pid, gx_stats_src **out)
{
	if (!out || pid <= 0)
		return -EINVAL;
	*out = NULL;
	char dir[64];
	snprintf(dir, sizeof dir, "/proc/%d/fd", pid);
	DIR *d = opendir(dir);
	if (!d)
		return errno == ENOENT ? -ENOENT : -errno;
	int rc = -ENOENT;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char path[320], link[256];
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		ssize_t l = readlink(path, link, sizeof link - 1);
		if (l <= 0)
			continue;
		link[l] = 0;
		if (strncmp(link, "/memfd:gonex-arena", 18) != 0)
			continue;
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			rc = -errno;
			continue;
		}
		struct stat st;
		char *base = MAP_FAILED;
		if (fstat(fd, &st) == 0 && st.st_size >= (off_t)sizeof(gx_arena_hdr))
			base = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
		close(fd);
		if (base == MAP_FAILED) {
			rc = -ENOMEM;
			continue;
		}
		const gx_arena_hdr *h = (const gx_arena_hdr *)base;
		/* acquire: pairs with gx_arena_create's release of the magic */
		if (atomic_load_explicit(&h->magic, memory_order_acquire) != GX_ARENA_MAGIC || h->size != (uint64_t)st.st_size ||
		    !atomic_load((_Atomic uint64_t *)&h->runtime_table)) {
			munmap(base, (size_t)st.st_size);
			rc = -EPROTO;
			continue; /* an arena of gx_arena_create, not of a runtime */
		}
		gx_stats_src *s = malloc(sizeof *s);
		if (!s) {
			munmap(base, (size_t)st.st_size);
			rc = -ENOMEM;
			break;
		}
		s->pid = pid;
		s->base = base;
		s->size = (uint64_t)st.st_size;
		*out = s;
		rc = 0;
		break;
	}
	closedir(d);
	return rc;
}

int gx_stats_read(gx_stats_src *src, gx_stats *out)
{
	if (!src || !out)
		return -EINVAL;
	if (kill(src->pid, 0) != 0 && errno == ESRCH)
		return -ESRCH;
	return gx_stats_from(src->base, src->size, out);
}

void gx_stats_close(gx_stats_src *src)
{
	if (!src)
		return;
	munmap(src->base, src->size);
	free(src);
}
