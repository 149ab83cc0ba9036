/*
 * The shared arena: tiers, NUMA placement, and its life in a process:
 * create, find, destroy, reset. Process slots, liveness and repair are in
 * arena_proc.c.
 *
 * What: one memfd mapped MAP_SHARED before fork. Tiers are tried in order
 * (hugetlb memfd, memfd + MADV_HUGEPAGE checked in smaps, 4 KiB pages);
 * with libnuma and more than zero nodes, the data part is split per node
 * and each part mbind()-ed before anything touches it. The header (offset
 * 0) is written last, after placement.
 *
 * Invariants:
 *  - every bound this process uses (size, slabs, node parts) comes from its
 *    table of geometries (gx_geos), filled by gx_arena_create and inherited
 *    by forked children, never read back from the shared header;
 *  - an arena is in the table from its create to its destroy, at most 16
 *    at a time.
 *
 * Who writes what: only the creator writes the header, once (and
 * gx_arena_reset, which writes it again the same way); the table is this
 * process's own.
 *
 * Ordering: the header's fields, then its magic with release
 * (gx_hdr_write); a reader that sees the magic (acquire) sees the header.
 *
 * Rejected: numa_alloc_onnode (private memory: copy-on-write after fork);
 * MAP_ANONYMOUS|MAP_SHARED (no way to ask for hugetlb through a file we can
 * check; memfd gives the same sharing and a name in /proc/PID/maps).
 */
#include "shm/shm.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/panic.h"
#include "gx_build_config.h"

#include <gonex/config.h>

#if GX_HAVE_NUMA
#include <numa.h>
#include <numaif.h>
#endif

#ifndef MFD_HUGETLB
#define MFD_HUGETLB 0x0004U
#endif

#define GX_HUGE ((size_t)2 << 20)
#define GX_ARENA_MIN ((size_t)4 << 20)
#define GX_ARENA_MAX ((size_t)1 << 40)
#define GX_ARENA_GUARD ((size_t)64 << 10)

static int gx_arena_register(const gx_arena_geo *g);

static const char *const gx_tier_names[] = {"auto", "hugetlb", "thp", "4k"};

void gx_arena_opts_init(gx_arena_opts *o)
{
	if (!o)
		return;
	memset(o, 0, sizeof *o);
	o->tier = GX_MEM_AUTO;
	o->numa = 1;
	o->spin_ns = -1;
}

static void gx_why(char *why, size_t cap, const char *fmt, ...)
{
	size_t n = strlen(why);
	if (n + 3 >= cap)
		return;
	if (n) {
		why[n++] = ';';
		why[n++] = ' ';
		why[n] = 0;
	}
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why + n, cap - n, fmt, ap);
	va_end(ap);
}

/* Map fd (size bytes) at a 2 MiB-aligned address, with GX_ARENA_GUARD
 * bytes of PROT_NONE on both sides: an access just past either end faults
 * at once instead of landing in whatever mapping is next. */
static void *gx_map_aligned(int fd, size_t size)
{
	size_t span = size + GX_HUGE + 2 * GX_ARENA_GUARD;
	char *r = mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (r == MAP_FAILED)
		return NULL;
	char *p = (char *)(((uintptr_t)r + GX_ARENA_GUARD + GX_HUGE - 1) & ~(uintptr_t)(GX_HUGE - 1));
	void *m = mmap(p, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
	if (m == MAP_FAILED) {
		munmap(r, span);
		return NULL;
	}
	char *lo = p - GX_ARENA_GUARD, *hi = p + size + GX_ARENA_GUARD;
	if (lo > r)
		munmap(r, (size_t)(lo - r));
	if (hi < r + span)
		munmap(hi, (size_t)(r + span - hi));
	return p;
}

/* Unmap an arena of size bytes and its guards. */
static int gx_unmap_guarded(char *base, size_t size)
{
	return munmap(base - GX_ARENA_GUARD, size + 2 * GX_ARENA_GUARD) == 0 ? 0 : -errno;
}

/* Sum of the "ShmemPmdMapped:"/"FilePmdMapped:" kB of the mapping at p. */
static long gx_smaps_pmd_kb(void *p)
{
	FILE *f = fopen("/proc/self/smaps", "re");
	if (!f)
		return -1;
	char line[256];
	long kb = 0;
	int in = 0;
	uintptr_t want = (uintptr_t)p;
	while (fgets(line, sizeof line, f)) {
		unsigned long lo, hi;
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
			in = want >= lo && want < hi;
			continue;
		}
		long v;
		if (in && (sscanf(line, "ShmemPmdMapped: %ld kB", &v) == 1 || sscanf(line, "FilePmdMapped: %ld kB", &v) == 1))
			kb += v;
	}
	fclose(f);
	return kb;
}

#if GX_HAVE_NUMA
/* Bind [p, p+len) to node before first touch. 0 or -errno. */
static int gx_place(void *p, size_t len, int node)
{
	unsigned long mask[16] = {0};
	if (node < 0 || node >= (int)(sizeof mask * 8))
		return -EINVAL;
	mask[node / (8 * sizeof(unsigned long))] |= 1ul << (node % (8 * sizeof(unsigned long)));
	if (mbind(p, len, MPOL_BIND, mask, sizeof mask * 8, 0) != 0)
		return -errno;
	return 0;
}
#endif

static int gx_arena_env(gx_arena_opts *o, int *log)
{
	gx_config c;
	gx_config_init(&c);
	int rc = gx_config_from_env(&c);
	if (rc < 0)
		return rc;
	if (!o->size)
		o->size = c.shm_size;
	if (o->tier == GX_MEM_AUTO)
		o->tier = (gx_mem_tier)c.hugepages;
	if (o->spin_ns < 0)
		o->spin_ns = c.spin_ns;
	if (!o->pool_size)
		o->pool_size = c.pool_size;
	*log = c.log;
	return 0;
}

/* What gx_arena_create works out on its way. */
typedef struct {
	gx_arena_opts o;
	size_t size;
	char *base;
	int fd;
	gx_mem_tier tier;
	int nodes, placed;
	uint64_t hdr, nslabs, per;
	char why[200];
	int log, asked;
} gx_mk;

/* The options, with the environment and the defaults applied. */
static int gx_mk_opts(gx_mk *m, const gx_arena_opts *opts)
{
	if (opts)
		m->o = *opts;
	else
		gx_arena_opts_init(&m->o);
	gx_arena_opts *o = &m->o;
	if (o->tier < GX_MEM_AUTO || o->tier > GX_MEM_4K || o->spin_ns > 1000000000)
		return -EINVAL;
	if (o->size && (o->size < GX_ARENA_MIN || o->size > GX_ARENA_MAX))
		return -EINVAL;
	/* a fallback is logged when a tier was asked for, or with GONEX_LOG;
	 * otherwise it is only in gx_arena_info_get's why */
	m->asked = o->tier != GX_MEM_AUTO || getenv("GONEX_HUGEPAGES") != NULL;
	int rc = gx_arena_env(o, &m->log);
	if (rc < 0)
		return rc;
	if (o->size < GX_ARENA_MIN || o->size > GX_ARENA_MAX)
		return -EINVAL;
	if (o->spin_ns < 0)
		o->spin_ns = 0;
	m->size = (o->size + GX_HUGE - 1) & ~(GX_HUGE - 1);
	return 0;
}

/* The best tier that maps: hugetlb memfd, else a plain memfd (THP or 4K
 * is decided after placement). 0 with base and fd, or -errno. */
static int gx_mk_map(gx_mk *m)
{
	m->fd = -1;
	m->tier = m->o.tier == GX_MEM_AUTO ? GX_MEM_HUGETLB : m->o.tier;
	if (m->tier == GX_MEM_HUGETLB) {
#if GX_HUGEPAGES
		m->fd = memfd_create("gonex-arena", MFD_CLOEXEC | MFD_HUGETLB);
		if (m->fd < 0) {
			gx_why(m->why, sizeof m->why, "hugetlb memfd: %s", strerror(errno));
		} else if (ftruncate(m->fd, (off_t)m->size) != 0) {
			gx_why(m->why, sizeof m->why, "hugetlb ftruncate: %s", strerror(errno));
		} else if (!(m->base = gx_map_aligned(m->fd, m->size))) {
			/* a shared hugetlb mapping reserves its pages here: too
			 * few reserved huge pages fail now, not with SIGBUS later */
			gx_why(m->why, sizeof m->why, "hugetlb: %zu MiB not available (vm.nr_hugepages): %s",
			       m->size >> 20, strerror(errno));
		}
#else
		gx_why(m->why, sizeof m->why, "hugetlb: built with -Dhugepages=false");
#endif
		if (m->base)
			return 0;
		if (m->fd >= 0)
			close(m->fd);
		m->fd = -1;
		m->tier = GX_MEM_THP;
	}
	m->fd = memfd_create("gonex-arena", MFD_CLOEXEC);
	if (m->fd < 0)
		return -errno;
	if (ftruncate(m->fd, (off_t)m->size) != 0 || !(m->base = gx_map_aligned(m->fd, m->size))) {
		int e = errno ? errno : ENOMEM;
		close(m->fd);
		return -e;
	}
	/* the fd stays open while the arena is mapped (closed by destroy):
	 * tools of the same user find the arena through /proc/PID/fd
	 * (gx_stats_open) */
	return 0;
}

/* How many NUMA parts, and the slab layout. -EINVAL when too small. */
static int gx_mk_layout(gx_mk *m)
{
	m->nodes = 1;
#if GX_HAVE_NUMA
	if (m->o.numa && numa_available() >= 0) {
		m->nodes = numa_max_node() + 1;
		if (m->nodes > GX_SHM_MAX_NODES) {
			gx_why(m->why, sizeof m->why, "numa: %d nodes, using %d", m->nodes, GX_SHM_MAX_NODES);
			m->nodes = GX_SHM_MAX_NODES;
		}
		if (m->nodes < 1)
			m->nodes = 1;
	} else if (m->o.numa) {
		gx_why(m->why, sizeof m->why, "numa: not available, nothing placed");
	}
#else
	if (m->o.numa)
		gx_why(m->why, sizeof m->why, "numa: built without libnuma, nothing placed");
#endif
	m->hdr = (sizeof(gx_arena_hdr) + GX_SLAB - 1) & ~(size_t)(GX_SLAB - 1);
	if (m->hdr + GX_SLAB > m->size)
		return -EINVAL;
	m->nslabs = (m->size - m->hdr) / GX_SLAB;
	if ((uint64_t)m->nodes > m->nslabs)
		m->nodes = (int)m->nslabs;
	m->per = m->nslabs / (uint64_t)m->nodes;
	return 0;
}

/* NUMA placement before first touch: the header part with node 0. */
static void gx_mk_place(gx_mk *m)
{
	m->placed = 0;
#if GX_HAVE_NUMA
	if (!m->o.numa || numa_available() < 0)
		return;
	m->placed = m->nodes;
	for (int n = 0; n < m->nodes; n++) {
		size_t from = n == 0 ? 0 : m->hdr + (size_t)(m->per * (uint64_t)n) * GX_SLAB;
		size_t to = n == m->nodes - 1 ? m->size : m->hdr + (size_t)(m->per * (uint64_t)(n + 1)) * GX_SLAB;
		int e = gx_place(m->base + from, to - from, n);
		if (e < 0) {
			gx_why(m->why, sizeof m->why, "numa: mbind node %d: %s", n, strerror(-e));
			m->placed = 0;
			return;
		}
	}
#endif
}

/* THP: keep the tier only when a huge page really backs the mapping. */
static void gx_mk_thp(gx_mk *m)
{
	if (m->tier != GX_MEM_THP)
		return;
	if (madvise(m->base, m->size, MADV_HUGEPAGE) != 0) {
		gx_why(m->why, sizeof m->why, "thp: madvise: %s", strerror(errno));
		m->tier = GX_MEM_4K;
		return;
	}
	/* first touch of the header's first huge page decides */
	memset(m->base, 0, GX_HUGE);
	if (gx_smaps_pmd_kb(m->base) > 0)
		return;
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/shmem_enabled", "re");
	char mode[128] = "?";
	if (f) {
		if (!fgets(mode, sizeof mode, f))
			strcpy(mode, "?");
		fclose(f);
		mode[strcspn(mode, "\n")] = 0;
	}
	gx_why(m->why, sizeof m->why, "thp: no huge page took (shmem_enabled: %s)", mode);
	m->tier = GX_MEM_4K;
}

/* Write the header from the geometry g (the one this process keeps in its
 * table), then the magic with release. */
static void gx_hdr_write(gx_arena_hdr *h, const gx_arena_geo *g)
{
	memset(h, 0, sizeof *h);
	h->size = g->size;
	h->page_size = g->page_size;
	h->tier = g->tier;
	h->nodes = g->nodes;
	h->numa_placed = g->numa_placed;
	h->spin_ns = g->spin_ns;
	snprintf(h->why, sizeof h->why, "%.*s", (int)sizeof h->why - 1, g->why);
	h->slab_first = g->slab_first;
	h->nslabs = g->nslabs;
	h->pool_limit = g->pool_limit;
	for (uint32_t n = 0; n < g->nodes; n++) {
		h->part[n].base = g->part_base[n];
		h->part[n].end = g->part_end[n];
		atomic_store(&h->part[n].next_slab, g->part_base[n]);
	}
	/* release: a reader that sees the magic (acquire) sees the header */
	atomic_store_explicit(&h->magic, GX_ARENA_MAGIC, memory_order_release);
}

int gx_arena_create(gx_arena **out, const gx_arena_opts *opts)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	gx_mk m;
	memset(&m, 0, sizeof m);
	int rc = gx_mk_opts(&m, opts);
	if (rc < 0 || (rc = gx_mk_map(&m)) < 0)
		return rc;
	if ((rc = gx_mk_layout(&m)) < 0) {
		gx_unmap_guarded(m.base, m.size);
		close(m.fd);
		return rc;
	}
	gx_mk_place(&m);
	gx_mk_thp(&m);
	gx_arena_geo g = {.base = m.base, .size = m.size, .slab_first = m.hdr, .nslabs = m.nslabs};
	g.page_size = m.tier == GX_MEM_4K ? 4096 : GX_HUGE;
	g.tier = m.tier;
	g.nodes = (uint32_t)m.nodes;
	g.numa_placed = (uint32_t)m.placed;
	g.pool_limit = m.o.pool_size;
	g.spin_ns = m.o.spin_ns;
	for (int n = 0; n < m.nodes; n++) {
		g.part_base[n] = m.hdr + m.per * (uint64_t)n * GX_SLAB;
		g.part_end[n] = n == m.nodes - 1 ? m.hdr + m.nslabs * GX_SLAB : m.hdr + m.per * (uint64_t)(n + 1) * GX_SLAB;
	}
	g.fd = m.fd;
	_Static_assert(sizeof g.why == sizeof m.why, "why");
	memcpy(g.why, m.why, sizeof g.why);
	gx_hdr_write((gx_arena_hdr *)m.base, &g);
	if (gx_arena_register(&g) < 0) {
		gx_unmap_guarded(m.base, m.size);
		close(m.fd);
		return -EMFILE; /* 16 arenas mapped here already */
	}
	if (m.log || (m.why[0] && m.asked))
		gx_log("arena: %zu MiB, tier %s, %d node(s) placed%s%s", m.size >> 20, gx_tier_names[m.tier], m.placed,
		       m.why[0] ? "; " : "", m.why);
	*out = (gx_arena *)m.base;
	return 0;
}

/* ---- the arenas mapped here ---- */

/* Arenas mapped in this process, with their geometry (a forked child
 * inherits the table, as it inherits the mappings): a ring finds its arena,
 * and every bound is checked, without trusting the shared header. */
#define GX_ARENAS 16
static gx_arena_geo gx_geos[GX_ARENAS];

const gx_arena_geo *gx_geo(const gx_arena *a)
{
	for (int i = 0; i < GX_ARENAS; i++)
		if (gx_geos[i].base == (const char *)a && a)
			return &gx_geos[i];
	return NULL;
}

/* Keep the geometry g of the arena gx_arena_create just made (the same it
 * wrote into the header; nothing is read back from there). 0, or -ENOSPC
 * when 16 arenas are mapped. */
static int gx_arena_register(const gx_arena_geo *g)
{
	for (int i = 0; i < GX_ARENAS; i++) {
		if (gx_geos[i].base)
			continue;
		gx_geos[i] = *g;
		return 0;
	}
	return -ENOSPC;
}

gx_arena *gx_arena_of(const void *p)
{
	uintptr_t q = (uintptr_t)p;
	for (int i = 0; i < GX_ARENAS; i++) {
		const gx_arena_geo *g = &gx_geos[i];
		if (g->base && q >= (uintptr_t)g->base && q - (uintptr_t)g->base < g->size)
			return (gx_arena *)g->base;
	}
	return NULL;
}

int gx_arena_destroy(gx_arena *a)
{
	gx_arena_geo *g = (gx_arena_geo *)gx_geo(a);
	if (!g)
		return -EINVAL;
	gx_arena_detach(a); /* -ESRCH when this process never used it */
	gx_shm_slot_forget(a);
	if (g->fd >= 0)
		close(g->fd);
	size_t size = g->size;
	memset(g, 0, sizeof *g);
	return gx_unmap_guarded((char *)a, size);
}

int gx_arena_info_get(const gx_arena *a, gx_arena_info *out)
{
	const gx_arena_geo *g = gx_geo(a);
	if (!g || !out)
		return -EINVAL;
	memset(out, 0, sizeof *out);
	out->size = g->size;
	out->tier = (gx_mem_tier)g->tier;
	out->tier_name = g->tier <= GX_MEM_4K ? gx_tier_names[g->tier] : "?";
	out->page_size = g->page_size;
	out->numa_nodes = (int)g->numa_placed;
	out->spin_ns = g->spin_ns;
	uint32_t used = 0;
	for (int i = 0; i < GX_SHM_MAX_PROCS; i++)
		used += atomic_load_explicit(&gx_ah(a)->proc[i].pid, memory_order_relaxed) != 0;
	out->procs = used;
	snprintf(out->why, sizeof out->why, "%.*s", (int)sizeof g->why - 1, g->why);
	return 0;
}

void *gx_arena_ptr(const gx_arena *a, gx_off off, size_t len)
{
	return gx_aptr(a, off, len);
}

gx_off gx_arena_off(const gx_arena *a, const void *p)
{
	const gx_arena_geo *g = gx_geo(a);
	if (!g || !p)
		return 0;
	uintptr_t b = (uintptr_t)a, q = (uintptr_t)p;
	if (q < b + sizeof(gx_arena_hdr) || q - b >= g->size)
		return 0;
	return q - b;
}

int gx_arena_reset(gx_arena *a)
{
	gx_arena_geo *g = (gx_arena_geo *)gx_geo(a);
	if (!g)
		return -EINVAL;
	gx_arena_hdr *h = gx_ah(a);
	gx_ring_forget_all(a); /* before the registry goes */
	/* forget every slab carved so far (their magic, read with acquire,
	 * is what makes a chunk or a ring findable) */
	for (uint32_t n = 0; n < g->nodes; n++) {
		uint64_t end = atomic_load(&h->part[n].next_slab);
		end = end < g->part_base[n] ? g->part_base[n] : end > g->part_end[n] ? g->part_end[n] : end;
		for (uint64_t off = g->part_base[n]; off < end; off += GX_SLAB)
			atomic_store_explicit(&((gx_slab_hdr *)(g->base + off))->magic, 0, memory_order_relaxed);
	}
	uint32_t deaths = atomic_load(&h->deaths);
	gx_hdr_write(h, g);
	gx_shm_slot_forget(a);
	atomic_store(&h->deaths, deaths);
	gx_arena_wake_all(a); /* anyone asleep in it looks again (and finds nothing) */
	return 0;
}
