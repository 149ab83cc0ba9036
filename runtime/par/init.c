/*
 * Setting the parallel runtime up and taking it down: the process-local
 * state, the tables in the arena, the spawner, booting the workers, gx_run's
 * first coroutine, and the code ranges a task function must lie in.
 */
#include "par/par.h"
#include "par/dchan.h"

#include <link.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "core/config.h"
#include "core/sched.h"

#include <gonex/context.h>
#include <gonex/dump.h>
#include <gonex/io.h>

/* ---- process-local state ---- */

gx_par_local gx_pl = {.me = -1, .pipe_w = -1};

gx_par *gx_par_table(void)
{
	return gx_pl.p;
}

void gx_par_configure(const gx_config *cfg)
{
	gx_pl.cfg = *cfg;
}

const gx_config *gx_par_cfg(void)
{
	return &gx_pl.cfg;
}

gx_stat_shard *gx_par_shard(void)
{
	return gx_pl.shard;
}

int gx_par_enabled(void)
{
	return gx_pl.enabled;
}

int gx_worker_id(void)
{
	return gx_pl.me;
}

int gx_par_in_worker(void)
{
	return gx_pl.me >= 0;
}

int gx_dump_all(void)
{
	if (!gx_sched_active())
		return -EPERM;
	int n = 1;
	if (gx_pl.p && gx_pl.me < 0 && gx_pl.nslots) {
		atomic_fetch_add(&gx_pl.p->dump_seq, 1);
		for (int i = 0; i < gx_pl.nslots; i++) {
			uint32_t st = atomic_load(&gx_pl.p->w[i].state);
			if (st != GX_W_READY && st != GX_W_DRAIN)
				continue;
			gx_ring *in = gx_inbox(i);
			if (in)
				gx_ring_kick(in);
			n++;
		}
	}
	char hdr[64];
	int l = snprintf(hdr, sizeof hdr, "gonex: %s dump\n", gx_pl.me >= 0 ? "worker" : "main process");
	if (write(2, hdr, (size_t)l) < 0)
		return -errno;
	int rc = gx_coro_dump(2);
	return rc < 0 ? rc : n;
}

/* ---- code ranges: a task function must be in executable code ---- */

/* The loaded segments (executable ones for code, all for names), taken
 * once: by gx_par_init before the workers fork, so that nothing loaded
 * later (dlopen), which the workers would not have, is accepted. */
static int gx_phdr_cb(struct dl_phdr_info *info, size_t size, void *data)
{
	(void)size;
	(void)data;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD)
			continue;
		int64_t lo = (int64_t)(info->dlpi_addr + ph->p_vaddr), hi = lo + (int64_t)ph->p_memsz;
		if ((ph->p_flags & PF_X) && gx_pl.ncode < 64) {
			gx_pl.code_lo[gx_pl.ncode] = lo;
			gx_pl.code_hi[gx_pl.ncode] = hi;
			gx_pl.ncode++;
		}
		if ((ph->p_flags & PF_R) && gx_pl.nimg < 128) {
			gx_pl.img_lo[gx_pl.nimg] = lo;
			gx_pl.img_hi[gx_pl.nimg] = hi;
			gx_pl.nimg++;
		}
	}
	return 0;
}

void gx_image_ranges(void)
{
	if (!gx_pl.ncode)
		dl_iterate_phdr(gx_phdr_cb, NULL);
}

int gx_par_is_code(const void *fn)
{
	gx_image_ranges();
	int64_t x = (int64_t)(uintptr_t)fn;
	for (int i = 0; i < gx_pl.ncode; i++)
		if (x >= gx_pl.code_lo[i] && x < gx_pl.code_hi[i])
			return 1;
	return 0;
}

/* A name the workers can read too: a string inside a loaded segment of
 * the program or a library (a string literal), ending there. */
int gx_in_image(const char *p)
{
	gx_image_ranges();
	int64_t x = (int64_t)(uintptr_t)p;
	for (int i = 0; i < gx_pl.nimg; i++)
		if (x >= gx_pl.img_lo[i] && x < gx_pl.img_hi[i])
			return memchr(p, 0, (size_t)(gx_pl.img_hi[i] - x)) != NULL;
	return 0;
}

/* ---- setting up ---- */

int gx_par_tables(gx_arena *a, int nslots)
{
	/* the future table: an eighth of the arena, 1024..GX_FUT_N slots */
	uint64_t nf = gx_geo(a)->size / 8 / (sizeof(gx_fut) + sizeof(uint32_t));
	gx_pl.nfut = nf < 1024 ? 1024 : nf > GX_FUT_N ? GX_FUT_N : (uint32_t)nf;
	int64_t off = gx_arena_carve(a, sizeof(gx_par));
	int64_t foff = gx_arena_carve(a, (size_t)gx_pl.nfut * sizeof(gx_fut) + (size_t)gx_pl.nfut * sizeof(uint32_t));
	if (off < 0 || foff < 0)
		return -ENOMEM;
	gx_par *p = gx_arena_ptr(a, (gx_off)off, sizeof *p);
	memset(p, 0, sizeof *p);
	p->nslots = (uint32_t)nslots;
	gx_pl.nslots = nslots;
	p->main_pid = (int32_t)getpid();
	p->futs = (gx_off)foff;
	p->fut_next = (gx_off)foff + (gx_off)gx_pl.nfut * sizeof(gx_fut);
	gx_pl.futs = gx_arena_ptr(a, p->futs, (size_t)gx_pl.nfut * sizeof(gx_fut));
	gx_pl.fut_next = gx_arena_ptr(a, p->fut_next, (size_t)gx_pl.nfut * sizeof(uint32_t));
	for (uint32_t i = 0; i < gx_pl.nfut; i++) {
		atomic_store_explicit(&gx_pl.fut_next[i], i + 1 < gx_pl.nfut ? i + 2 : 0, memory_order_relaxed);
		/* generations start at 1: handle 0 (what a refused call
		 * leaves in *out) never names a future */
		atomic_store_explicit(&gx_pl.futs[i].sw, (uint64_t)1 << 32, memory_order_relaxed); /* FREE */
	}
	atomic_store(&p->fut_head, GX_TAG_MAKE(1, 0));
	if (gx_pl.cfg.stats) {
		/* fresh arena memory reads as zeros: nothing to clear */
		int64_t so = gx_arena_carve(a, (size_t)(nslots + 1) * sizeof(gx_stat_shard));
		if (so >= 0) {
			p->shards = gx_pl.shards = (gx_off)so;
			p->nshards = (uint32_t)nslots + 1;
			p->stats_on = 1;
			gx_pl.shard = gx_arena_ptr(a, p->shards, sizeof(gx_stat_shard));
		} else {
			gx_log("stats: no room in the arena for the figures; GONEX_STATS is off");
		}
	}
	/* release: the tables before the magic (pairs with snapshot.c acquire) */
	atomic_store_explicit(&p->magic, GX_PAR_MAGIC, memory_order_release);
	gx_pl.p = p;
	atomic_store(&gx_ah(a)->runtime_table, (uint64_t)off);
	return 0;
}

/* The i-th CPU of the affinity mask, -1 when there are fewer. */
static int gx_nth_cpu(int i)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof set, &set) != 0)
		return -1;
	for (int c = 0, k = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &set) && k++ == i)
			return c;
	return -1;
}

static int gx_ncpus(void)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof set, &set) != 0)
		return 1;
	return CPU_COUNT(&set);
}

/* How many workers to boot (0: none, the runtime stays in this process);
 * sets gx_pl.wmin and gx_pl.wmax, the autoscaler's bounds, around it. */
static int gx_par_count(const gx_config *cfg)
{
	int n = cfg->workers < 0 ? gx_ncpus() : cfg->workers;
	if (n > GX_MAX_WORKERS)
		n = GX_MAX_WORKERS;
	gx_pl.wmin = cfg->workers_min ? cfg->workers_min : n;
	gx_pl.wmax = cfg->workers_max ? cfg->workers_max : n;
	if (gx_pl.wmin > n)
		n = gx_pl.wmin;
	if (gx_pl.wmax < n)
		gx_pl.wmax = n;
	return n;
}

/* Every worker slot up to wmax: its run table, its inbox, its CPU and
 * weight. 0 or -errno (the caller then destroys the arena, and all of
 * this with it). */
static int gx_par_slots_setup(const gx_config *cfg)
{
	int64_t rto = gx_arena_carve(gx_pl.a, (size_t)gx_pl.wmax * sizeof(gx_runtab));
	if (rto < 0)
		return (int)rto;
	for (int i = 0; i < gx_pl.wmax; i++) {
		gx_pl.p->w[i].runtab = (gx_off)rto + (gx_off)i * sizeof(gx_runtab);
		gx_pl.runtab[i] = gx_arena_ptr(gx_pl.a, gx_pl.p->w[i].runtab, sizeof(gx_runtab));
		memset(gx_pl.runtab[i], 0, sizeof(gx_runtab));
		gx_ring *r;
		int rc = gx_ring_create(gx_pl.a, &r, 1024, sizeof(gx_task_rec), 0);
		if (rc < 0)
			return rc;
		gx_wk *w = &gx_pl.p->w[i];
		w->inbox = gx_ring_off(r);
		gx_pl.inbox[i] = r;
		w->cpu = gx_pl.cpu[i] = cfg->cpu_affinity ? gx_nth_cpu(i % gx_ncpus()) : -1;
		w->weight = gx_pl.weight[i] = gx_config_weight(cfg, i);
		gx_pl.pidfd[i] = -1;
		atomic_store(&w->arena_slot, -1);
	}
	return 0;
}

/* Fork the spawner, with a socket from main to it. 0, or -errno with no
 * process and no descriptor left. */
static int gx_spawner_start(void)
{
	int pfd[2];
	/* a socket, not a pipe: main writes with MSG_NOSIGNAL, so a spawner
	 * that died gives -EPIPE rather than SIGPIPE */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pfd) != 0)
		return -errno;
	int parent = getpid();
	fflush(NULL);
	pid_t s = fork();
	if (s < 0) {
		int rc = -errno;
		close(pfd[0]);
		close(pfd[1]);
		return rc;
	}
	if (s == 0) {
		close(pfd[1]);
		gx_pl.spawner_pid = gx_pl.p->spawner_pid = getpid();
		gx_spawner(pfd[0], parent);
	}
	gx_pl.spawner_pid = gx_pl.p->spawner_pid = s;
	close(pfd[0]);
	gx_pl.pipe_w = pfd[1];
	return 0;
}

int gx_par_init(const gx_config *cfg)
{
	gx_pl.cfg = *cfg;
	gx_image_ranges(); /* what the workers will have mapped */
	int rc = gx_seal_init(); /* before any fork: every worker holds the key */
	if (rc < 0)
		return rc;
	int n = gx_par_count(cfg);
	if (n == 0)
		return 0;
	gx_pl.nworkers = n;
	/* more processes than CPUs (the workers at most, and this one):
	 * spinners share (wake.c); the workers inherit it */
	gx_ec_spin_yields = gx_pl.wmax + 1 > gx_ncpus();
	gx_arena_opts o;
	gx_arena_opts_init(&o);
	o.size = cfg->shm_size;
	o.tier = (gx_mem_tier)cfg->hugepages;
	o.numa = cfg->numa_aware;
	o.spin_ns = cfg->spin_ns;
	o.pool_size = cfg->pool_size;
	rc = gx_arena_create(&gx_pl.a, &o);
	if (rc < 0)
		return rc;
	rc = gx_par_tables(gx_pl.a, gx_pl.wmax);
	if (rc < 0)
		goto err_destroy_arena;
	rc = gx_par_slots_setup(cfg);
	if (rc < 0)
		goto err_destroy_arena;
	rc = gx_spawner_start();
	if (rc < 0)
		goto err_destroy_arena;
	gx_pl.enabled = 1;
	gx_par_signals();
	return 0;
err_destroy_arena:
	gx_dch_forget_views();
	gx_ec_spin_yields = false;
	gx_arena_destroy(gx_pl.a);
	gx_pl.a = NULL;
	gx_pl.p = NULL;
	return rc;
}

int gx_request(int i)
{
	uint8_t b = (uint8_t)i;
	atomic_store(&gx_pl.p->w[i].state, GX_W_SPAWN);
	return send(gx_pl.pipe_w, &b, 1, MSG_NOSIGNAL) == 1 ? 0 : -errno;
}

typedef struct {
	int want;
} gx_boot_arg;

static bool gx_boot_done(void *arg)
{
	gx_boot_arg *b = arg;
	for (int i = 0; i < b->want; i++) {
		uint32_t st = atomic_load(&gx_pl.p->w[i].state);
		if (st == GX_W_SPAWN)
			return false;
	}
	return true;
}

/* The spawner has no child left: the kernel's word, whatever the slots
 * say (a peer may have scribbled over their states). */
static bool gx_spawner_childless(void)
{
	char path[96], buf[64];
	snprintf(path, sizeof path, "task/%d/children", (int)gx_pl.spawner_pid);
	ssize_t n = gx_proc_read(gx_pl.spawner_pid, path, buf, sizeof buf);
	return n == -ESRCH || (n >= 0 && strspn(buf, " \n") == (size_t)n);
}

/* Every worker process is gone, by main's own account (the spawner's
 * reports and the pidfds), or by the kernel's (the spawner has no child
 * left). The slots' states are not asked: a peer may have written them. */
static bool gx_all_dead(void *arg)
{
	(void)arg;
	for (int i = 0; i < gx_pl.nslots; i++)
		if (gx_pl.spid[i] > 0 && gx_pl.handled[i] != gx_pl.spid[i])
			return gx_spawner_childless();
	return true;
}

int gx_workers(void)
{
	if (!gx_pl.p)
		return 0;
	int n = 0;
	for (int i = 0; i < gx_pl.nslots; i++)
		n += gx_active(i);
	return n;
}

/* ---- gx_run's first coroutine ---- */

static void gx_par_stop(void)
{
	gx_pl.stopping = 1;
	atomic_store(&gx_pl.p->stop, 1);
	gx_ec_notify(&gx_pl.p->events, NULL); /* watchers of idle slots look again */
	for (int i = 0; i < gx_pl.nslots; i++) {
		gx_ring *in = gx_inbox(i);
		if (in)
			gx_ring_close(in);
	}
	/* and every sleeper of the arena looks again, whatever the closes
	 * above could tell (a closed word a peer had set already wakes no one) */
	gx_arena_wake_all(gx_pl.a);
	/* workers drain (or cancel), then exit; the spawner reaps them, the
	 * watchers see them go (one that died just before included) */
	int rc = gx_ec_wait(&gx_pl.local_ev, gx_all_dead, NULL, 0, gx_timeout(30 * GX_SECOND), NULL);
	if (rc < 0)
		gx_log("parallel: workers did not stop within 30 s; killing them");
	/* tasks main took to help (main_helps) end too, as a worker's
	 * running ones do, within the same bound */
	for (int64_t end = gx_time_after(30 * GX_SECOND); gx_pl.helped_running > 0;) {
		if (gx_now() > end) {
			gx_log("parallel: %d task(s) main took did not end within 30 s", gx_pl.helped_running);
			break;
		}
		gx_sleep(GX_MILLISECOND);
	}
	if (gx_pl.stop_ctx) {
		gx_ctx_release(gx_pl.stop_ctx); /* cancels: the watchers leave */
		gx_pl.stop_ctx = NULL;
		/* and they have left (each drops its reference to the context)
		 * before main_fn returns and the scheduler abandons what is left */
		for (int k = 0; k < 10000 && gx_pl.watching > 0; k++)
			gx_yield();
	}
	uint8_t q = 0xff;
	if (send(gx_pl.pipe_w, &q, 1, MSG_NOSIGNAL) != 1)
		gx_log("parallel: spawner pipe: %s", strerror(errno));
}

/* Main's own view of the workers, before any is asked for: the reader of
 * the spawner's reports and a watcher per slot. -errno when the stop
 * context cannot be made. */
static int gx_watchers_start(void)
{
	int self = gx_pidfd_open(getpid());
	if (self >= 0)
		close(self);
	/* without pidfds the spawner's reports alone tell of deaths */
	atomic_store(&gx_pl.p->pidfd_watch, self >= 0);
	int rc = gx_ctx_with_cancel(gx_ctx_background(), &gx_pl.stop_ctx);
	if (rc < 0)
		return rc;
	gx_go(gx_reports, NULL);
	for (int i = 0; self >= 0 && i < gx_pl.nslots; i++)
		gx_go(gx_watch, (void *)(intptr_t)i);
	return 0;
}

int gx_par_main(int (*main_fn)(void *), void *arg)
{
	gx_boot_arg b = {.want = gx_pl.nworkers};
	int rc = gx_watchers_start();
	if (rc < 0)
		return rc;
	for (int i = 0; i < gx_pl.nworkers; i++)
		gx_request(i);
	rc = gx_ec_wait(&gx_pl.p->events, gx_boot_done, &b, 0, gx_timeout(30 * GX_SECOND), NULL);
	if (rc < 0 || gx_workers() < gx_pl.nworkers) {
		gx_log("parallel: %d of %d workers started", gx_workers(), gx_pl.nworkers);
		if (!gx_workers()) {
			gx_par_stop();
			return -ECHILD;
		}
	}
	if (gx_pl.cfg.autoscaling && gx_pl.wmax > gx_pl.wmin)
		gx_go(gx_autoscale, NULL);
	if (gx_pl.cfg.worker_timeout_ms || gx_pl.cfg.worker_max_rss || gx_pl.cfg.health_monitoring)
		gx_go(gx_watchdog, NULL);
	rc = main_fn(arg);
	gx_par_stop();
	return rc;
}

void gx_par_fini(void)
{
	if (gx_pl.enabled) {
		gx_par_signals_reset(); /* before the spawner's pid can be reused */
		if (gx_pl.pipe_w >= 0)
			close(gx_pl.pipe_w); /* the spawner sees EOF if the quit byte was lost */
		int st;
		while (waitpid(gx_pl.spawner_pid, &st, 0) < 0 && errno == EINTR)
			;
		gx_pl.pipe_w = -1;
		gx_pl.enabled = 0;
	}
	if (gx_pl.a && gx_pl.me < 0) {
		gx_dch_forget_views();
		gx_ec_spin_yields = false;
		gx_arena_destroy(gx_pl.a);
		gx_pl.a = NULL;
		gx_pl.p = NULL;
		gx_pl.futs = NULL;
	}
	gx_pl.shard = NULL;
	gx_pl.shards = 0;
	memset(gx_pl.spid, 0, sizeof gx_pl.spid);
	memset(gx_pl.handled, 0, sizeof gx_pl.handled);
	gx_pl.stopping = 0;
	gx_pl.nworkers = 0;
	gx_pl.degraded = 0;
	gx_pl.nrestart = 0;
	gx_requeue_fini();
	gx_task_spares_fini();
	gx_pl.helped_running = 0;
}
