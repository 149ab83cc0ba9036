/*
 * The kv example's store: a hash table in a gx arena made by the master
 * before gx_serve forks, so every worker sees every key. One pool chunk
 * of buckets; each heads a chain of records linked by arena offset (every
 * offset read is checked). A bucket's lock word holds the pid inside it;
 * critical sections never wait, so a waiter spins, then yields.
 *
 * A worker SIGKILLed inside a write leaves the table whole and leaks
 * nothing. The writer names in its bucket the record it links (`adding`)
 * and the one it unlinks (`removing`); an 8-byte link store commits. A
 * record is disowned (nobody's: repair leaves it) before it is linked,
 * and owned again before `removing` forgets it. When a worker exits, the
 * master (gx_serve's on_exit) runs kv_recover: in each bucket the dead pid
 * holds, it frees what `adding` and `removing` name that no chain holds,
 * unlocks, then gx_arena_repair frees what the dead worker owned. The
 * steps are numbered as the test's kill points: KV_KILL_POINT=step,n makes
 * a process SIGKILL itself at the n-th time it reaches that step.
 */
#ifndef GX_EXAMPLES_KVSTORE_H
#define GX_EXAMPLES_KVSTORE_H

#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gonex/gonex.h>

#include "flags.h"

#define KV_BUCKETS 32768 /* 32 bytes each: one 1 MiB chunk */
#define KV_MAX_CHAIN 100000

typedef struct kv_bucket {
	_Atomic uint32_t lock; /* pid inside, 0: free */
	uint32_t pad;
	_Atomic gx_off head, adding, removing;
} kv_bucket;

typedef struct kv_rec {
	_Atomic gx_off next;
	int64_t expire; /* CLOCK_MONOTONIC ns (system-wide), 0: never */
	uint32_t klen, vlen;
	char data[];    /* key, then value */
} kv_rec;

#define KV_MAX_VALUE ((1u << 20) - sizeof(kv_rec) - 512)

typedef struct kv_store {
	gx_arena *a;
	kv_bucket *b;
	gx_off table;
	uint32_t me;           /* this process's pid (after fork) */
	int kill_step, kill_n; /* the test's kill point */
} kv_store;

static inline void kv_point(kv_store *s, int step)
{
	if (s->kill_step == step && --s->kill_n == 0)
		raise(SIGKILL);
}

static inline uint64_t kv_hash(const char *k, size_t n)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)k[i]) * 1099511628211ull;
	return h ^ (h >> 29);
}

/* The record at off, checked to lie in the arena whole; NULL if not. */
static inline kv_rec *kv_at(kv_store *s, gx_off off)
{
	kv_rec *r = off ? gx_arena_ptr(s->a, off, sizeof *r) : NULL;
	if (r && (r->klen > KV_MAX_VALUE || r->vlen > KV_MAX_VALUE ||
		  !gx_arena_ptr(s->a, off, sizeof *r + r->klen + r->vlen)))
		return NULL;
	return r;
}

static inline int kv_open(kv_store *s, size_t bytes)
{
	memset(s, 0, sizeof *s);
	gx_arena_opts o;
	gx_arena_opts_init(&o);
	o.size = bytes;
	int rc = gx_arena_create(&s->a, &o);
	if (rc < 0)
		return rc;
	int64_t t = gx_pool_alloc(s->a, KV_BUCKETS * sizeof(kv_bucket), -1);
	if (t < 0 || gx_pool_disown(s->a, (gx_off)t) < 0)
		return t < 0 ? (int)t : -EINVAL;
	s->table = (gx_off)t;
	s->b = memset(gx_arena_ptr(s->a, s->table, KV_BUCKETS * sizeof(kv_bucket)), 0, KV_BUCKETS * sizeof(kv_bucket));
	const char *kp = getenv("KV_KILL_POINT");
	if (kp && sscanf(kp, "%d,%d", &s->kill_step, &s->kill_n) != 2)
		s->kill_step = 0;
	return 0;
}

static inline kv_bucket *kv_lock(kv_store *s, const char *k, size_t n)
{
	kv_bucket *b = &s->b[kv_hash(k, n) % KV_BUCKETS];
	for (unsigned spin = 0;; spin++) {
		uint32_t free_ = 0;
		if (atomic_compare_exchange_weak_explicit(&b->lock, &free_, s->me, memory_order_acquire,
							  memory_order_relaxed))
			return b;
		if (spin > 100)
			gx_yield(); /* the holder runs elsewhere, or died and the master recovers */
		if (spin > 10000)
			sched_yield();
	}
}

static inline void kv_unlock(kv_bucket *b)
{
	/* release: pairs with kv_lock's acquire */
	atomic_store_explicit(&b->lock, 0, memory_order_release);
}

/* Under b's lock: unlink the record at off (which *link points at), free it. */
static inline void kv_unlink(kv_store *s, kv_bucket *b, _Atomic gx_off *link, gx_off off)
{
	kv_rec *r = kv_at(s, off);
	atomic_store(&b->removing, off);
	atomic_store(link, atomic_load(&r->next)); /* the commit */
	kv_point(s, 6);
	gx_pool_own(s->a, off);
	atomic_store(&b->removing, 0);
	gx_pool_free(s->a, off);
}

/* Under b's lock: the live record of key k (NULL: none) and the link that
 * points at it. An expired record found on the way is deleted. */
static inline kv_rec *kv_find(kv_store *s, kv_bucket *b, const char *k, size_t n, _Atomic gx_off **link)
{
	_Atomic gx_off *l = &b->head;
	for (int i = 0; i < KV_MAX_CHAIN; i++) {
		gx_off off = atomic_load(l);
		kv_rec *r = kv_at(s, off);
		if (!r)
			return NULL;
		if (r->klen == n && memcmp(r->data, k, n) == 0) {
			if (r->expire && r->expire <= gx_now()) {
				kv_unlink(s, b, l, off);
				return NULL;
			}
			*link = l;
			return r;
		}
		l = &r->next;
	}
	return NULL;
}

/* A record for key k, value v (not yet linked), or 0 when out of memory. */
static inline gx_off kv_new(kv_store *s, const char *k, size_t kn, const char *v, size_t vn, int64_t expire)
{
	int64_t off = gx_pool_alloc(s->a, sizeof(kv_rec) + kn + vn, -1);
	kv_rec *r = off > 0 ? gx_arena_ptr(s->a, (gx_off)off, sizeof(kv_rec) + kn + vn) : NULL;
	if (!r)
		return 0;
	r->expire = expire;
	r->klen = (uint32_t)kn;
	r->vlen = (uint32_t)vn;
	memcpy(r->data, k, kn);
	memcpy(r->data + kn, v, vn);
	return (gx_off)off;
}

/* Under b's lock: link the new record at rec in place of old (at *link),
 * or at the head when old is NULL. */
static inline void kv_link(kv_store *s, kv_bucket *b, gx_off rec, kv_rec *old, _Atomic gx_off *link)
{
	kv_rec *r = kv_at(s, rec);
	atomic_store(&b->adding, rec); /* 1: named before anything changes */
	kv_point(s, 1);
	gx_pool_disown(s->a, rec); /* 2: the dead writer's repair must not free it */
	kv_point(s, 2);
	gx_off old_off = old ? atomic_load(link) : 0;
	if (old) {
		atomic_store(&r->next, atomic_load(&old->next));
		atomic_store(&b->removing, old_off); /* 3 */
	} else {
		atomic_store(&r->next, atomic_load(&b->head));
		link = &b->head;
	}
	kv_point(s, 3);
	atomic_store(link, rec); /* 4: the commit */
	kv_point(s, 4);
	atomic_store(&b->adding, 0);
	if (old) {
		gx_pool_own(s->a, old_off); /* 5: repair frees it if we die now */
		kv_point(s, 5);
		atomic_store(&b->removing, 0);
		gx_pool_free(s->a, old_off);
	}
}

/* SET: 0, or -ENOMEM. */
static inline int kv_put(kv_store *s, const char *k, size_t kn, const char *v, size_t vn, int64_t expire)
{
	gx_off rec = kv_new(s, k, kn, v, vn, expire);
	if (!rec)
		return -ENOMEM;
	kv_bucket *b = kv_lock(s, k, kn);
	_Atomic gx_off *link = NULL;
	kv_rec *old = kv_find(s, b, k, kn, &link);
	kv_link(s, b, rec, old, link);
	kv_unlock(b);
	return 0;
}

/* DEL: 1 if the key was there. */
static inline int kv_del(kv_store *s, const char *k, size_t kn)
{
	kv_bucket *b = kv_lock(s, k, kn);
	_Atomic gx_off *link = NULL;
	kv_rec *r = kv_find(s, b, k, kn, &link);
	if (r)
		kv_unlink(s, b, link, atomic_load(link));
	kv_unlock(b);
	return r != NULL;
}

/* GET into out (cap bytes): the value's length (copied if it fits), -1 if none. */
static inline long kv_get(kv_store *s, const char *k, size_t kn, char *out, size_t cap)
{
	kv_bucket *b = kv_lock(s, k, kn);
	_Atomic gx_off *link = NULL;
	kv_rec *r = kv_find(s, b, k, kn, &link);
	long n = r ? (long)r->vlen : -1;
	if (r && out && r->vlen <= cap)
		memcpy(out, r->data + r->klen, r->vlen);
	kv_unlock(b);
	return n;
}

/* INCR: 0 and the new value in *v, -EINVAL (not an integer, or at the
 * top of the range), -ENOMEM. The key keeps its expiry. */
static inline int kv_incr(kv_store *s, const char *k, size_t kn, long long *v)
{
	kv_bucket *b = kv_lock(s, k, kn);
	_Atomic gx_off *link = NULL;
	kv_rec *old = kv_find(s, b, k, kn, &link);
	long long x = 0;
	int rc = old && ex_decimal(old->data + old->klen, old->vlen, LLONG_MIN + 1, LLONG_MAX - 1, &x) < 0 ? -EINVAL : 0;
	char t[24];
	gx_off rec = rc ? 0 : kv_new(s, k, kn, t, (size_t)snprintf(t, sizeof t, "%lld", x + 1), old ? old->expire : 0);
	if (rec) {
		kv_link(s, b, rec, old, link);
		*v = x + 1;
	}
	kv_unlock(b);
	return rc ? rc : rec ? 0 : -ENOMEM;
}

/* In the master, after worker pid exited: finish or undo what it left. */
static inline void kv_recover(kv_store *s, uint32_t pid)
{
	for (uint32_t i = 0; i < KV_BUCKETS; i++) {
		kv_bucket *b = &s->b[i];
		if (atomic_load(&b->lock) != pid)
			continue;
		gx_off pend[2] = {atomic_load(&b->adding), atomic_load(&b->removing)};
		for (int k = 0; k < 2; k++) {
			bool linked = false;
			gx_off off = atomic_load(&b->head);
			for (int j = 0; j < KV_MAX_CHAIN && off && !linked; j++) {
				kv_rec *r = kv_at(s, off);
				linked = off == pend[k];
				off = r ? atomic_load(&r->next) : 0;
			}
			if (pend[k] && !linked) {
				gx_pool_own(s->a, pend[k]); /* fails when the dead one owned it: */
				gx_pool_free(s->a, pend[k]); /* then it is freed as its */
			}
		}
		atomic_store(&b->adding, 0);
		atomic_store(&b->removing, 0);
		kv_unlock(b);
	}
	gx_arena_repair(s->a, (pid_t)pid, NULL);
}

#endif
