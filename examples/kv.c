/*
 * kv: a Redis-protocol (RESP2) server on gx_serve whose store, a hash
 * table in a shared arena (kvstore.h), is seen by every worker process.
 *
 * Commands: PING [msg], ECHO msg, SET key value [EX s | PX ms], GET, DEL
 * key..., EXISTS key..., INCR, MGET key..., MSET key value ..., QUIT, and
 * KVCHECK (records in the table and pool chunks in use: a test's check
 * that nothing leaked). Pipelining: replies are corked until the
 * connection waits. MSET sets each key atomically, not all at once.
 * Values up to about 1 MiB; expired keys are removed when next looked up.
 *
 * Bad input: a count or bulk length that is not a number, negative (but
 * for -1/0 counts, which Redis ignores), or over its limit gets
 * "-ERR Protocol error" and a close; nothing is allocated for a declared
 * length before its bytes come.
 *
 *   build/examples/kv --port 6380 --workers 2
 *   redis-cli -p 6380 set k v
 */
#include "flags.h"
#include "kvstore.h"

#include <ctype.h>
#include <limits.h>
#include <strings.h>

#define KV_MAX_ARGS 4096

static kv_store S;

typedef struct cmd {
	int argc;
	const char *argv[KV_MAX_ARGS];
	size_t len[KV_MAX_ARGS];
	size_t off[KV_MAX_ARGS];
	char *buf; /* the arguments, copied: a read's pointer lives until the next */
	size_t cap, used;
	char *val; /* GET's copy of a value */
	size_t vcap;
} cmd;

static void out(gx_conn *c, const char *s)
{
	gx_conn_write(c, s, strlen(s), GX_FOREVER);
}

static void out_int(gx_conn *c, long long n)
{
	char b[32];
	gx_conn_write(c, b, (size_t)snprintf(b, sizeof b, ":%lld\r\n", n), GX_FOREVER);
}

static void out_bulk(gx_conn *c, const char *p, long n)
{
	char b[32];
	if (n < 0)
		return out(c, "$-1\r\n");
	gx_conn_write(c, b, (size_t)snprintf(b, sizeof b, "$%ld\r\n", n), GX_FOREVER);
	gx_conn_write(c, p, (size_t)n, GX_FOREVER);
	out(c, "\r\n");
}

static int arg_add(cmd *m, const char *p, size_t n)
{
	if (m->argc == KV_MAX_ARGS || n > (64u << 20) - m->used)
		return -1;
	if (m->used + n > m->cap) {
		size_t cap = m->cap ? m->cap : 4096;
		while (cap < m->used + n)
			cap *= 2;
		char *b = realloc(m->buf, cap);
		if (!b)
			return -1;
		m->buf = b;
		m->cap = cap;
	}
	memcpy(m->buf + m->used, p, n);
	m->off[m->argc] = m->used;
	m->len[m->argc++] = n;
	m->used += n;
	return 0;
}

/* One command into m: 1, 0 at the end of the stream (or a broken one),
 * -1 after a protocol error (its reply queued: close). */
static int read_cmd(gx_conn *c, cmd *m, gx_until u)
{
	const char *l;
	ssize_t n;
	long long count = 0, len;
	m->argc = 0;
	m->used = 0;
	while (count <= 0) { /* "*0" and "*-1" are ignored, as Redis does */
		if ((n = gx_conn_read_until(c, '\n', &l, u)) < 2 || l[n - 2] != '\r')
			return n == -ENOBUFS ? (out(c, "-ERR Protocol error: too big inline request\r\n"), -1) : 0;
		if (l[0] != '*') { /* an inline command: words on one line */
			for (ssize_t i = 0, j; i < n - 2; i = j + 1) {
				for (j = i; j < n - 2 && l[j] != ' '; j++)
					;
				if (j > i && arg_add(m, l + i, (size_t)(j - i)) < 0)
					return out(c, "-ERR Protocol error: too many arguments\r\n"), -1;
			}
			count = m->argc;
			continue;
		}
		if (ex_decimal(l + 1, (size_t)n - 3, -1, KV_MAX_ARGS, &count) < 0)
			return out(c, "-ERR Protocol error: invalid multibulk length\r\n"), -1;
	}
	while (m->argc < count) {
		if ((n = gx_conn_read_until(c, '\n', &l, u)) < 2 || l[n - 2] != '\r')
			return n == -ENOBUFS ? (out(c, "-ERR Protocol error: invalid bulk length\r\n"), -1) : 0;
		if (l[0] != '$' || ex_decimal(l + 1, (size_t)n - 3, 0, 512ll << 20, &len) < 0)
			return out(c, "-ERR Protocol error: invalid bulk length\r\n"), -1;
		if (len > (long long)KV_MAX_VALUE)
			return out(c, "-ERR Protocol error: bulk longer than this server takes\r\n"), -1;
		if ((n = gx_conn_read_n(c, (size_t)len + 2, &l, u)) <= 0)
			return 0;
		if (l[len] != '\r' || l[len + 1] != '\n' || arg_add(m, l, (size_t)len) < 0)
			return out(c, "-ERR Protocol error: bad bulk\r\n"), -1;
	}
	for (int i = 0; i < m->argc; i++)
		m->argv[i] = m->buf + m->off[i];
	return 1;
}

static bool is(const cmd *m, int i, const char *w)
{
	return m->len[i] == strlen(w) && strncasecmp(m->argv[i], w, m->len[i]) == 0;
}

static void get(gx_conn *c, cmd *m, int i)
{
	long n;
	while ((n = kv_get(&S, m->argv[i], m->len[i], m->val, m->vcap)) > (long)m->vcap) {
		char *v = realloc(m->val, (size_t)n);
		if (!v)
			return out(c, "-ERR out of memory\r\n");
		m->val = v;
		m->vcap = (size_t)n;
	}
	out_bulk(c, m->val, n);
}

static void set(gx_conn *c, cmd *m)
{
	int64_t expire = 0;
	long long t;
	if (m->argc == 5 && (is(m, 3, "EX") || is(m, 3, "PX")) && ex_decimal(m->argv[4], m->len[4], 1, 1ll << 40, &t) == 0)
		expire = gx_now() + t * (is(m, 3, "EX") ? GX_SECOND : GX_MILLISECOND);
	else if (m->argc != 3)
		return out(c, "-ERR syntax error\r\n");
	if (kv_put(&S, m->argv[1], m->len[1], m->argv[2], m->len[2], expire) < 0)
		return out(c, "-OOM command not allowed when used memory > 'maxmemory'\r\n");
	out(c, "+OK\r\n");
}

static void check(gx_conn *c)
{
	long long recs = 0, chunks = 0, pending = 0;
	for (uint32_t i = 0; i < KV_BUCKETS; i++) {
		kv_bucket *b = &S.b[i];
		pending += atomic_load(&b->lock) || atomic_load(&b->adding) || atomic_load(&b->removing);
		for (gx_off off = atomic_load(&b->head); off && recs < (1ll << 40); recs++)
			off = kv_at(&S, off) ? atomic_load(&kv_at(&S, off)->next) : 0;
	}
	gx_arena_info ai;
	gx_arena_info_get(S.a, &ai);
	for (int node = 0; node < (ai.numa_nodes > 0 ? ai.numa_nodes : 1); node++)
		for (int cls = 0; cls < GX_POOL_CLASSES; cls++) {
			gx_pool_class_stats st;
			if (gx_pool_stats(S.a, node, cls, &st) == 0)
				chunks += (long long)st.in_use;
		}
	char b[96];
	gx_conn_write(c, b, (size_t)snprintf(b, sizeof b, "*3\r\n:%lld\r\n:%lld\r\n:%lld\r\n", recs, chunks, pending),
		      GX_FOREVER);
}

static bool run(gx_conn *c, cmd *m)
{
	int n = m->argc;
	if (n == 0)
		return true;
	if (is(m, 0, "PING") && n <= 2)
		n == 1 ? out(c, "+PONG\r\n") : out_bulk(c, m->argv[1], (long)m->len[1]);
	else if (is(m, 0, "ECHO") && n == 2)
		out_bulk(c, m->argv[1], (long)m->len[1]);
	else if (is(m, 0, "SET") && n >= 3)
		set(c, m);
	else if (is(m, 0, "GET") && n == 2)
		get(c, m, 1);
	else if ((is(m, 0, "DEL") || is(m, 0, "EXISTS")) && n >= 2) {
		long long k = 0;
		for (int i = 1; i < n; i++)
			k += is(m, 0, "DEL") ? kv_del(&S, m->argv[i], m->len[i]) : kv_get(&S, m->argv[i], m->len[i], NULL, 0) >= 0;
		out_int(c, k);
	} else if (is(m, 0, "INCR") && n == 2) {
		long long v;
		int rc = kv_incr(&S, m->argv[1], m->len[1], &v);
		rc == 0 ? out_int(c, v) : out(c, rc == -ENOMEM ? "-OOM out of memory\r\n" : "-ERR value is not an integer or out of range\r\n");
	} else if (is(m, 0, "MGET") && n >= 2) {
		char b[32];
		gx_conn_write(c, b, (size_t)snprintf(b, sizeof b, "*%d\r\n", n - 1), GX_FOREVER);
		for (int i = 1; i < n; i++)
			get(c, m, i);
	} else if (is(m, 0, "MSET") && n >= 3 && n % 2 == 1) {
		int rc = 0;
		for (int i = 1; i < n && rc == 0; i += 2)
			rc = kv_put(&S, m->argv[i], m->len[i], m->argv[i + 1], m->len[i + 1], 0);
		out(c, rc == 0 ? "+OK\r\n" : "-OOM out of memory\r\n");
	} else if (is(m, 0, "KVCHECK") && n == 1)
		check(c);
	else if (is(m, 0, "QUIT") && n == 1)
		return out(c, "+OK\r\n"), false;
	else {
		char b[128];
		gx_conn_write(c, b, (size_t)snprintf(b, sizeof b, "-ERR unknown command or wrong arguments '%.*s'\r\n",
						   (int)(m->len[0] < 64 ? m->len[0] : 64), m->argv[0]), GX_FOREVER);
	}
	return true;
}

static void kv_conn(gx_serve_conn *sc, void *arg)
{
	(void)arg;
	S.me = (uint32_t)getpid(); /* this worker's, for the bucket locks */
	cmd *m = calloc(1, sizeof *m);
	if (!m)
		return;
	while (read_cmd(sc->conn, m, gx_ctx_until(sc->ctx)) > 0 && run(sc->conn, m))
		;
	free(m->buf);
	free(m->val);
	free(m);
}

static void on_exit_(int pid, int worker, int died, void *arg)
{
	(void)worker, (void)died, (void)arg;
	S.kill_step = 0; /* the test's kill point is for the first process only */
	kv_recover(&S, (uint32_t)pid);
}

int main(int argc, char **argv)
{
	ex_opts o;
	ex_parse(&o, "kv", argc, argv);
	int rc = kv_open(&S, (size_t)1 << 30);
	if (rc < 0) {
		fprintf(stderr, "kv: the store's arena: %s\n", strerror(-rc));
		return 1;
	}
	o.cfg.conn_cap = KV_MAX_VALUE + 64;
	o.cfg.on_exit = on_exit_;
	return ex_serve(&o, kv_conn, NULL);
}
