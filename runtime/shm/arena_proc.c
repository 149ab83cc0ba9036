/*
 * The arena's processes: slots, liveness, and repair after a death.
 *
 * Process slots: a process takes a slot (CAS on pid 0 -> its pid) on first
 * use; the slot index is cached per arena and forgotten in a forked child
 * (pthread_atfork), so a child takes its own. The slot holds the claim
 * journals that gx_arena_repair reads after the process died.
 *
 * Invariants:
 *  - a slot's pid is 0 (free) or the pid that took it; its gen changes on
 *    every take, so an owner tag (slot + 1, gen) names one taking of the
 *    slot, never a later process in the same slot;
 *  - a slot is repaired only for a process known dead (a zombie counts as
 *    dead: kill(pid, 0) alone would call it alive), and then freed;
 *  - a pid read from shared memory may be anything: only a positive one is
 *    ever passed to kill.
 *
 * Who writes what: a process writes its own slot (pid, gen, node,
 * journals, cache) and procs_used on attach and detach; a repairer writes
 * a dead process's slot and procs_used, and bumps the arena's death count.
 *
 * Ordering: repair's stores, then the death count bumped with release
 * (gx_arena_wake_all) and FUTEX_WAKE; a sleeper woken by it re-checks its
 * condition with its own acquire loads (wake.c).
 */
#include "shm/shm.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "arch/relax.h"
#include "core/sched.h"
#include "gx_build_config.h"

#include <gonex/coro.h>
#include <gonex/time.h>

#if GX_HAVE_NUMA
#include <numa.h>
#endif

/* ---- process slots ---- */

/* This process's slot in each arena it uses. */
#define GX_SLOT_CACHE 8
static struct {
	gx_arena *a;
	int slot;
} gx_slots[GX_SLOT_CACHE];

gx_slot_hint gx_slot_last;

static pthread_once_t gx_atfork_once = PTHREAD_ONCE_INIT;

static void gx_slots_forget(void)
{
	memset(gx_slots, 0, sizeof gx_slots);
	gx_slot_last.a = NULL;
}

static void gx_atfork_init(void)
{
	pthread_atfork(NULL, NULL, gx_slots_forget);
}

static int gx_my_node(const gx_arena *a)
{
	int node = 0;
#if GX_HAVE_NUMA
	if (gx_geo(a)->numa_placed > 1 && numa_available() >= 0) {
		int cpu = sched_getcpu();
		node = cpu >= 0 ? numa_node_of_cpu(cpu) : 0;
	}
#endif
	if (node < 0 || (uint32_t)node >= gx_geo(a)->nodes)
		node = 0;
	return node;
}

int gx_shm_slot(gx_arena *a)
{
	for (int i = 0; i < GX_SLOT_CACHE; i++)
		if (gx_slots[i].a == a) {
			gx_slot_last.slot = gx_slots[i].slot;
			gx_slot_last.a = a;
			return gx_slots[i].slot;
		}
	return gx_arena_attach(a);
}

void gx_shm_slot_forget(gx_arena *a)
{
	gx_slot_last.a = NULL;
	for (int i = 0; i < GX_SLOT_CACHE; i++)
		if (gx_slots[i].a == a)
			gx_slots[i].a = NULL;
}

int gx_arena_attach(gx_arena *a)
{
	if (!gx_geo(a))
		return -EINVAL;
	pthread_once(&gx_atfork_once, gx_atfork_init);
	for (int i = 0; i < GX_SLOT_CACHE; i++)
		if (gx_slots[i].a == a)
			return gx_slots[i].slot;
	int c = -1;
	for (int i = 0; i < GX_SLOT_CACHE && c < 0; i++)
		if (!gx_slots[i].a)
			c = i;
	if (c < 0)
		return -ENOSPC;
	gx_arena_hdr *h = gx_ah(a);
	int32_t me = (int32_t)getpid();
	for (int s = 0; s < GX_SHM_MAX_PROCS; s++) {
		gx_proc *p = &h->proc[s];
		int32_t zero = 0;
		if (atomic_load_explicit(&p->pid, memory_order_relaxed) != 0 ||
		    !atomic_compare_exchange_strong(&p->pid, &zero, me))
			continue;
		atomic_fetch_add(&p->gen, 1);
		p->node = (uint16_t)gx_my_node(a);
		atomic_store(&p->pj_kind, GX_J_NONE);
		atomic_store(&p->rj_kind, GX_JR_NONE);
		memset(p->cache_n, 0, sizeof p->cache_n);
		atomic_fetch_add(&h->procs_used, 1);
		gx_slots[c].a = a;
		gx_slots[c].slot = s;
		return s;
	}
	return -ENOSPC;
}

int gx_arena_detach(gx_arena *a)
{
	if (!gx_geo(a))
		return -EINVAL;
	for (int i = 0; i < GX_SLOT_CACHE; i++) {
		if (gx_slots[i].a != a)
			continue;
		int s = gx_slots[i].slot;
		gx_slot_last.a = NULL;
		gx_pool_flush_cache(a, s);
		gx_arena_hdr *h = gx_ah(a);
		atomic_fetch_sub(&h->procs_used, 1);
		atomic_store(&h->proc[s].pid, 0);
		gx_slots[i].a = NULL;
		return 0;
	}
	return -ESRCH;
}

/* ---- liveness: /proc, owner tags ---- */

ssize_t gx_proc_read(int32_t pid, const char *name, char *buf, size_t cap)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT || errno == ESRCH ? -ESRCH : -errno;
	ssize_t n = read(fd, buf, cap - 1);
	int e = errno;
	close(fd);
	if (n <= 0)
		return n == 0 || e == ESRCH ? -ESRCH : -e;
	buf[n] = 0;
	return n;
}

int gx_proc_stat(int32_t pid, char *state, int32_t *ppid)
{
	char buf[512];
	ssize_t n = gx_proc_read(pid, "stat", buf, sizeof buf);
	if (n < 0)
		return (int)n;
	/* the name in brackets may hold anything: parse after the last ')' */
	char *rp = strrchr(buf, ')'), st;
	int pp;
	if (!rp || sscanf(rp + 1, " %c %d", &st, &pp) != 2)
		return -EIO;
	*state = st;
	if (ppid)
		*ppid = pp;
	return 0;
}

/* 1 when pid is gone (or a zombie), 0 when it runs. A pid read from
 * shared memory may be anything: only a positive one is looked at (kill
 * with 0 or a negative pid would address a whole group). */
static int gx_pid_dead(pid_t pid)
{
	if (pid <= 0)
		return 1;
	if (kill(pid, 0) != 0)
		return errno == ESRCH;
	char st;
	return gx_proc_stat(pid, &st, NULL) < 0 || st == 'Z' || st == 'X';
}

uint32_t gx_owner_tag(gx_arena *a)
{
	int s = gx_shm_slot(a);
	if (s < 0)
		return 0;
	uint32_t gen = atomic_load_explicit(&gx_ah(a)->proc[s].gen, memory_order_relaxed);
	return (gen & 0xffffu) << 16 | (uint32_t)(s + 1);
}

bool gx_owner_waitable(gx_arena *a, uint32_t tag)
{
	uint32_t s1 = tag & 0xffffu;
	if (s1 == 0 || s1 > GX_SHM_MAX_PROCS)
		return false;
	gx_proc *p = &gx_ah(a)->proc[s1 - 1];
	if ((atomic_load_explicit(&p->gen, memory_order_relaxed) & 0xffffu) != tag >> 16)
		return false; /* the slot was taken again since */
	int32_t pid = atomic_load_explicit(&p->pid, memory_order_relaxed);
	if (pid == (int32_t)getpid())
		return true;
	char st;
	if (pid <= 0 || gx_proc_stat(pid, &st, NULL) < 0)
		return false;
	return st != 'Z' && st != 'X' && st != 'T' && st != 't';
}

int gx_owner_held;

bool gx_owner_take_over(gx_arena *a, const gx_spin *sp, uint32_t tag)
{
	if (!gx_owner_waitable(a, tag))
		return true;
	if (tag == gx_owner_tag(a) && gx_owner_held == 0)
		return true;
	return sp->since && gx_now() - sp->since >= GX_OWNER_PATIENCE;
}

bool gx_spin_pause(gx_spin *s)
{
	if (s->n++ < 256) {
		gx_cpu_relax();
		return false;
	}
	if (gx_co_current())
		gx_yield();
	else
		sched_yield();
	int64_t now = gx_now();
	if (s->next_look == 0) {
		s->since = now;
		s->next_look = now + GX_MILLISECOND;
		return false;
	}
	if (now < s->next_look)
		return false;
	s->next_look = now + GX_MILLISECOND;
	return true;
}

int gx_slot_alive(gx_arena *a, int s)
{
	int32_t pid = atomic_load(&gx_ah(a)->proc[s].pid);
	return pid > 0 && (pid == (int32_t)getpid() || !gx_pid_dead(pid));
}

/* ---- repair ---- */

static void gx_repair_one(gx_arena *a, int s, gx_repair_report *rep)
{
	gx_arena_hdr *h = gx_ah(a);
	for (int i = 0; i < GX_MAX_RINGS; i++) {
		uint64_t off = atomic_load(&h->rings[i]);
		if (!off)
			continue;
		gx_ring *r = gx_ring_at(a, off);
		if (r)
			gx_ring_repair_slot(a, r, s, rep);
	}
	rep->chunks_freed += gx_pool_repair_slot(a, s, &rep->garbage);
	gx_proc *p = &h->proc[s];
	atomic_store(&p->pj_kind, GX_J_NONE);
	atomic_store(&p->rj_kind, GX_JR_NONE);
	atomic_fetch_sub(&h->procs_used, 1);
	atomic_store(&p->pid, 0);
	rep->procs++;
	/* last: whatever wake-up the dead one owed (it may have died between
	 * a publish and its FUTEX_WAKE) is given to every sleeper now */
	gx_arena_wake_all(a);
}

void gx_arena_wake_all(gx_arena *a)
{
	if (!gx_geo(a))
		return;
	gx_arena_hdr *h = gx_ah(a);
	/* release: a sleeper woken by the bump (its futex value no longer
	 * matches, or the wake) sees every repair store made before it */
	atomic_fetch_add_explicit(&h->deaths, 1, memory_order_release);
	syscall(SYS_futex, &h->deaths, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

int gx_arena_repair_slot(gx_arena *a, int s, int32_t pid, gx_repair_report *rep)
{
	if (!gx_geo(a) || s < 0 || s >= GX_SHM_MAX_PROCS || pid <= 0)
		return 0;
	gx_repair_report local;
	if (!rep)
		rep = &local;
	memset(rep, 0, sizeof *rep);
	if (atomic_load(&gx_ah(a)->proc[s].pid) != pid)
		return 0;
	gx_repair_one(a, s, rep);
	return 1;
}

int gx_arena_repair(gx_arena *a, pid_t pid, gx_repair_report *rep)
{
	if (!gx_geo(a) || pid < 0)
		return -EINVAL;
	gx_repair_report local;
	if (!rep)
		rep = &local;
	memset(rep, 0, sizeof *rep);
	gx_arena_hdr *h = gx_ah(a);
	int found = 0;
	for (int s = 0; s < GX_SHM_MAX_PROCS; s++) {
		int32_t p = atomic_load(&h->proc[s].pid);
		if (!p || (pid && p != pid))
			continue;
		if (p == (int32_t)getpid() || !gx_pid_dead(p)) {
			if (pid)
				return -EBUSY;
			continue;
		}
		gx_repair_one(a, s, rep);
		found++;
	}
	if (!found && pid)
		return -ESRCH;
	return found;
}
