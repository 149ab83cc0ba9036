/*
 * The figures (gonex/stats.h): snapshots of the shards, the workers and
 * the breakers kept in the arena, read in this process or in another
 * program's arena mapped read-only (gonex-stat); profiling sections; the
 * SIGQUIT coroutine dump.
 *
 * A foreign arena is read as untrusted memory: every offset and count is
 * checked against the mapping before use, and strings are cut at their
 * field's end.
 */
#include "par/par.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/panic.h"
#include "core/sched.h"

#include <gonex/coro.h>
#include <gonex/io.h>
#include <gonex/stats.h>
#include <gonex/time.h>

/* ---- reading an arena's figures ---- */

static const void *gx_at(const char *base, uint64_t size, uint64_t off, uint64_t len)
{
	if (off < sizeof(gx_arena_hdr) || off > size || len > size - off)
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

/* Fill out from the arena mapped at base (size bytes). 0 or -EPROTO. */
static int gx_stats_from(const char *base, uint64_t size, gx_stats *out)
{
	const gx_arena_hdr *h = (const gx_arena_hdr *)base;
	if (size < sizeof *h || h->magic != GX_ARENA_MAGIC || h->size != size)
		return -EPROTO;
	uint64_t poff = atomic_load((_Atomic uint64_t *)&h->runtime_table);
	const gx_par *p = gx_at(base, size, poff, sizeof(gx_par));
	if (!p || p->magic != GX_PAR_MAGIC || p->nslots > GX_MAX_WORKERS)
		return -EPROTO;
	memset(out, 0, sizeof *out);
	int64_t now = gx_now();
	out->now_ns = now;
	out->main_pid = p->main_pid;
	out->enabled = p->stats_on != 0;
	out->degraded = atomic_load((_Atomic uint32_t *)&p->degraded) != 0;
	/* counts are read once: the memory may change under us */
	int nslots = (int)p->nslots;
	if (nslots < 0 || nslots > GX_MAX_WORKERS)
		return -EPROTO;
	out->nworkers = nslots;
	for (int i = 0; i < nslots; i++) {
		gx_wk *w = (gx_wk *)&p->w[i];
		gx_stats_worker *o = &out->w[i];
		o->pid = atomic_load(&w->pid);
		o->cpu = w->cpu;
		o->state = (int)atomic_load(&w->state);
		o->tasks = atomic_load(&w->tasks);
		o->steals = atomic_load(&w->steals);
		o->restarts = atomic_load(&w->restarts);
		o->wakeups = atomic_load(&w->wakeups);
		o->running = atomic_load(&w->running);
		const gx_ring *in = gx_at(base, size, w->inbox, GX_RING_HDR);
		o->queued = in ? gx_ring_depth(in) : 0;
		int64_t started = atomic_load(&w->started);
		if (o->state == GX_W_READY || o->state == GX_W_DRAIN) {
			int64_t since = atomic_load(&w->idle_since);
			int64_t idle = atomic_load(&w->idle_ns) + (since && since < now ? now - since : 0);
			int64_t wall = started && started < now ? now - started : 0;
			if (idle > wall)
				idle = wall;
			o->idle_ns = idle;
			o->busy_ns = wall - idle;
			o->util = wall ? (double)o->busy_ns / (double)wall : 0;
		}
		int64_t hb = atomic_load(&w->heartbeat);
		o->heartbeat_age_ns = hb && o->state == GX_W_READY && !atomic_load(&w->hb_rest) ? (now > hb ? now - hb : 0)
											     : -1;
		o->healthy = o->state == GX_W_READY && !atomic_load(&w->unhealthy);
	}
	/* figures: merge every shard's entries by (kind, fn, name) */
	uint32_t nshards = p->nshards;
	if (p->stats_on && nshards && nshards <= GX_MAX_WORKERS + 1) {
		const gx_stat_shard *sh = gx_at(base, size, p->shards, (uint64_t)nshards * sizeof(gx_stat_shard));
		gx_merge *m = sh ? calloc(GX_STATS_FN_MAX, sizeof *m) : NULL;
		if (sh && !m)
			return -ENOMEM;
		for (uint32_t k = 0; sh && k < nshards; k++) {
			uint32_t n = atomic_load((_Atomic uint32_t *)&sh[k].n);
			for (uint32_t j = 0; j < n && j < GX_STAT_FNS; j++) {
				gx_stat_fn *f = (gx_stat_fn *)&sh[k].fn[j];
				if (!atomic_load_explicit(&f->used, memory_order_acquire))
					continue;
				int e = 0;
				while (e < out->nfn && !(m[e].kind == f->kind && m[e].fn == f->fn && m[e].nameptr == f->nameptr))
					e++;
				if (e == out->nfn) {
					if (out->nfn == GX_STATS_FN_MAX)
						continue;
					out->nfn++;
					m[e].kind = f->kind;
					m[e].fn = f->fn;
					m[e].nameptr = f->nameptr;
					gx_name_copy(out->fn[e].name, f->name, sizeof out->fn[e].name);
					out->fn[e].kind = f->kind == GX_STAT_SECTION ? GX_STATS_SECTION : GX_STATS_TASK;
				}
				gx_stats_fn *o = &out->fn[e];
				o->count += atomic_load(&f->count);
				o->errors += atomic_load(&f->errors);
				o->retries += atomic_load(&f->retries);
				o->fallbacks += atomic_load(&f->fallbacks);
				o->rejected += atomic_load(&f->rejected);
				o->timed += atomic_load(&f->timed);
				m[e].sum += atomic_load(&f->sum_ns);
				uint64_t mx = atomic_load(&f->max_ns);
				if ((int64_t)mx > o->max_ns)
					o->max_ns = (int64_t)mx;
				for (int b = 0; b < GX_HIST_N; b++)
					m[e].hist[b] += atomic_load_explicit(&f->hist[b], memory_order_relaxed);
			}
		}
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
		free(m);
	}
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
	return 0;
}

int gx_stats_snapshot(gx_stats *out)
{
	if (!out)
		return -EINVAL;
	gx_arena *a = gx_par_table() ? gx_par_arena(0) : NULL;
	if (!a || !gx_sched_active())
		return -EPERM;
	return gx_stats_from((const char *)a, gx_ah(a)->size, out);
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
		if (h->magic != GX_ARENA_MAGIC || h->size != (uint64_t)st.st_size ||
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

/* ---- JSON ---- */

static void gx_json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static const char *gx_brk_state_name(int st)
{
	return st == GX_BREAKER_OPEN ? "open" : st == GX_BREAKER_HALF_OPEN ? "half-open" : "closed";
}

static const char *gx_w_state_name(int st)
{
	static const char *n[] = {"off", "starting", "ready", "draining", "dead"};
	return st >= 0 && st <= 4 ? n[st] : "?";
}

int gx_stats_json(const gx_stats *s, int fd)
{
	if (!s || fd < 0)
		return -EINVAL;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return -ENOMEM;
	fprintf(f, "{\"now_ns\":%lld,\"main_pid\":%d,\"stats\":%s,\"degraded\":%s,\"workers\":[", (long long)s->now_ns,
		s->main_pid, s->enabled ? "true" : "false", s->degraded ? "true" : "false");
	for (int i = 0; i < s->nworkers && i < GX_MAX_WORKERS; i++) {
		const gx_stats_worker *w = &s->w[i];
		fprintf(f,
			"%s{\"worker\":%d,\"pid\":%d,\"cpu\":%d,\"state\":\"%s\",\"healthy\":%s,\"tasks\":%llu,"
			"\"steals\":%llu,\"restarts\":%llu,\"wakeups\":%llu,\"queued\":%llu,\"running\":%llu,"
			"\"busy_ns\":%lld,\"idle_ns\":%lld,\"util\":%.4f,\"heartbeat_age_ns\":%lld}",
			i ? "," : "", i, w->pid, w->cpu, gx_w_state_name(w->state), w->healthy ? "true" : "false",
			(unsigned long long)w->tasks, (unsigned long long)w->steals, (unsigned long long)w->restarts,
			(unsigned long long)w->wakeups, (unsigned long long)w->queued, (unsigned long long)w->running,
			(long long)w->busy_ns, (long long)w->idle_ns, w->util, (long long)w->heartbeat_age_ns);
	}
	fprintf(f, "],\"functions\":[");
	for (int i = 0; i < s->nfn && i < GX_STATS_FN_MAX; i++) {
		const gx_stats_fn *x = &s->fn[i];
		fprintf(f, "%s{\"name\":", i ? "," : "");
		gx_json_str(f, x->name);
		fprintf(f,
			",\"kind\":\"%s\",\"count\":%llu,\"errors\":%llu,\"retries\":%llu,\"fallbacks\":%llu,"
			"\"rejected\":%llu,\"timed\":%llu,\"mean_ns\":%lld,\"p50_ns\":%lld,\"p90_ns\":%lld,"
			"\"p99_ns\":%lld,\"p999_ns\":%lld,\"max_ns\":%lld}",
			x->kind == GX_STATS_SECTION ? "section" : "task", (unsigned long long)x->count,
			(unsigned long long)x->errors, (unsigned long long)x->retries, (unsigned long long)x->fallbacks,
			(unsigned long long)x->rejected, (unsigned long long)x->timed, (long long)x->mean_ns,
			(long long)x->p50_ns, (long long)x->p90_ns, (long long)x->p99_ns, (long long)x->p999_ns,
			(long long)x->max_ns);
	}
	fprintf(f, "],\"breakers\":[");
	for (int i = 0; i < s->nbreaker && i < GX_STATS_BREAKER_MAX; i++) {
		const gx_stats_breaker *b = &s->breaker[i];
		fprintf(f, "%s{\"name\":", i ? "," : "");
		gx_json_str(f, b->name);
		fprintf(f,
			",\"state\":\"%s\",\"successes\":%llu,\"failures\":%llu,\"opens\":%llu,\"rejected\":%llu,"
			"\"fallbacks\":%llu,\"last_goods\":%llu}",
			gx_brk_state_name(b->state), (unsigned long long)b->successes, (unsigned long long)b->failures,
			(unsigned long long)b->opens, (unsigned long long)b->rejected, (unsigned long long)b->fallbacks,
			(unsigned long long)b->last_goods);
	}
	fprintf(f, "]}\n");
	if (fclose(f) != 0) {
		free(buf);
		return -ENOMEM;
	}
	int rc = 0;
	for (size_t off = 0; off < len;) {
		ssize_t w = write(fd, buf + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			rc = w < 0 ? -errno : -EIO;
			break;
		}
		off += (size_t)w;
	}
	free(buf);
	return rc;
}

/* ---- profiling sections ---- */

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

/* ---- SIGQUIT: dump (GONEX_DUMP_SIGNAL) ---- */

static int gx_quit_fd = -1;
static struct sigaction gx_quit_old;
static int gx_quit_on;

static void gx_on_quit(int sig)
{
	(void)sig;
	int e = errno;
	uint64_t one = 1;
	if (gx_quit_fd >= 0 && write(gx_quit_fd, &one, sizeof one) < 0) {
		/* the counter is saturated: a dump is pending anyway */
	}
	errno = e;
}

static void gx_quit_loop(void *arg)
{
	(void)arg;
	uint64_t v;
	while (gx_quit_fd >= 0 && gx_read(gx_quit_fd, &v, sizeof v, GX_FOREVER) == (ssize_t)sizeof v)
		gx_dump_all();
}

void gx_obs_start(void)
{
	if (!gx_par_cfg()->dump_signal || gx_quit_on)
		return;
	gx_quit_fd = eventfd(0, EFD_CLOEXEC);
	if (gx_quit_fd < 0) {
		gx_log("dump: eventfd: %s; SIGQUIT keeps its default", strerror(errno));
		return;
	}
	struct sigaction sa = {.sa_handler = gx_on_quit};
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	if (sigaction(SIGQUIT, &sa, &gx_quit_old) != 0) {
		close(gx_quit_fd);
		gx_quit_fd = -1;
		return;
	}
	gx_quit_on = 1;
	gx_go_opts o = {.stack_size = 0, .name = "gonex-sigquit"};
	if (gx_go_with(gx_quit_loop, NULL, &o) < 0)
		gx_obs_fini();
}

void gx_obs_fini(void)
{
	if (!gx_quit_on)
		return;
	sigaction(SIGQUIT, &gx_quit_old, NULL);
	close(gx_quit_fd);
	gx_quit_fd = -1;
	gx_quit_on = 0;
}
