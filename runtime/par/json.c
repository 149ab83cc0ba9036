/*
 * gx_stats_json (gonex/stats.h): a snapshot of the figures as one JSON
 * object and a newline, what gonex-stat --json prints.
 *
 * Invariants:
 * - the output is one object: {"now_ns", "main_pid", "stats", "degraded",
 *   "workers": [...], "functions": [...], "breakers": [...],
 *   "main_tasks"}; the field names and their order are an interface
 *   (scripts read them): add at the end, do not rename;
 * - an array holds at most its table's size whatever the count says
 *   (GX_MAX_WORKERS, GX_STATS_FN_MAX, GX_STATS_BREAKER_MAX);
 * - strings are escaped: '"' and '\' with a backslash, bytes below 0x20
 *   as \u00XX; other bytes pass as they are;
 * - the object is built in memory (open_memstream) and only then written,
 *   so nothing reaches fd when building fails (-ENOMEM); a failed write
 *   may leave part of it (-errno, or -EIO for a write of 0), EINTR is
 *   retried.
 *
 * Trusted: s is a whole gx_stats, as gx_stats_snapshot or gx_stats_read
 * fill it: its names end with a NUL inside their fields. Not trusted: its
 * counts (capped as above) and its state numbers (an unknown worker state
 * is "?", an unknown breaker state "closed").
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <gonex/breaker.h>
#include <gonex/config.h>
#include <gonex/stats.h>

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

/* Write {"name":<name> and then the rest of the object, fmt and its
 * arguments (which close it). */
__attribute__((format(printf, 3, 4)))
static void gx_json_named(FILE *f, const char *name, const char *fmt, ...)
{
	fputs("{\"name\":", f);
	gx_json_str(f, name);
	va_list ap;
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
}

/* Element i of one of the snapshot's tables, as one JSON object. */
typedef void gx_json_elem(FILE *f, const gx_stats *s, int i);

static void gx_json_worker(FILE *f, const gx_stats *s, int i)
{
	const gx_stats_worker *w = &s->w[i];
	fprintf(f,
		"{\"worker\":%d,\"pid\":%d,\"cpu\":%d,\"state\":\"%s\",\"healthy\":%s,\"tasks\":%llu,"
		"\"steals\":%llu,\"restarts\":%llu,\"wakeups\":%llu,\"queued\":%llu,\"running\":%llu,"
		"\"busy_ns\":%lld,\"idle_ns\":%lld,\"util\":%.4f,\"heartbeat_age_ns\":%lld}",
		i, w->pid, w->cpu, gx_w_state_name(w->state), w->healthy ? "true" : "false",
		(unsigned long long)w->tasks, (unsigned long long)w->steals, (unsigned long long)w->restarts,
		(unsigned long long)w->wakeups, (unsigned long long)w->queued, (unsigned long long)w->running,
		(long long)w->busy_ns, (long long)w->idle_ns, w->util, (long long)w->heartbeat_age_ns);
}

static void gx_json_fn(FILE *f, const gx_stats *s, int i)
{
	const gx_stats_fn *x = &s->fn[i];
	gx_json_named(f, x->name,
		      ",\"kind\":\"%s\",\"count\":%llu,\"errors\":%llu,\"retries\":%llu,\"fallbacks\":%llu,"
		      "\"rejected\":%llu,\"timed\":%llu,\"mean_ns\":%lld,\"p50_ns\":%lld,\"p90_ns\":%lld,"
		      "\"p99_ns\":%lld,\"p999_ns\":%lld,\"max_ns\":%lld}",
		      x->kind == GX_STATS_SECTION ? "section" : "task", (unsigned long long)x->count,
		      (unsigned long long)x->errors, (unsigned long long)x->retries, (unsigned long long)x->fallbacks,
		      (unsigned long long)x->rejected, (unsigned long long)x->timed, (long long)x->mean_ns,
		      (long long)x->p50_ns, (long long)x->p90_ns, (long long)x->p99_ns, (long long)x->p999_ns,
		      (long long)x->max_ns);
}

static void gx_json_breaker(FILE *f, const gx_stats *s, int i)
{
	const gx_stats_breaker *b = &s->breaker[i];
	gx_json_named(f, b->name,
		      ",\"state\":\"%s\",\"successes\":%llu,\"failures\":%llu,\"opens\":%llu,\"rejected\":%llu,"
		      "\"fallbacks\":%llu,\"last_goods\":%llu}",
		      gx_brk_state_name(b->state), (unsigned long long)b->successes, (unsigned long long)b->failures,
		      (unsigned long long)b->opens, (unsigned long long)b->rejected, (unsigned long long)b->fallbacks,
		      (unsigned long long)b->last_goods);
}

/* ,"key":[...]: the first n elements, n as the snapshot says but never
 * more than max, the table's size. */
static void gx_json_array(FILE *f, const char *key, const gx_stats *s, int n, int max, gx_json_elem *put)
{
	fprintf(f, ",\"%s\":[", key);
	for (int i = 0; i < n && i < max; i++) {
		if (i)
			fputc(',', f);
		put(f, s, i);
	}
	fputc(']', f);
}

/* All of buf to fd (EINTR retried): 0, -errno, or -EIO for a write of 0. */
static int gx_json_write(int fd, const char *buf, size_t len)
{
	for (size_t off = 0; off < len;) {
		ssize_t w = write(fd, buf + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		off += (size_t)w;
	}
	return 0;
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
	fprintf(f, "{\"now_ns\":%lld,\"main_pid\":%d,\"stats\":%s,\"degraded\":%s", (long long)s->now_ns, s->main_pid,
		s->enabled ? "true" : "false", s->degraded ? "true" : "false");
	gx_json_array(f, "workers", s, s->nworkers, GX_MAX_WORKERS, gx_json_worker);
	gx_json_array(f, "functions", s, s->nfn, GX_STATS_FN_MAX, gx_json_fn);
	gx_json_array(f, "breakers", s, s->nbreaker, GX_STATS_BREAKER_MAX, gx_json_breaker);
	fprintf(f, ",\"main_tasks\":%llu}\n", (unsigned long long)s->main_tasks);
	if (fclose(f) != 0) {
		free(buf);
		return -ENOMEM;
	}
	int rc = gx_json_write(fd, buf, len);
	free(buf);
	return rc;
}
