/*
 * gonex-stat: a running gonex program's figures, live, from outside.
 *
 *   gonex-stat PID              refreshing table (every second) until the
 *                               program ends or Ctrl-C
 *   gonex-stat -i MS PID        refresh every MS milliseconds
 *   gonex-stat -n N PID         N refreshes, then exit
 *   gonex-stat --once PID       one table, no screen clearing
 *   gonex-stat --json PID       one JSON object (gx_stats_json)
 *
 * It finds the program's arena through /proc/PID/fd and maps it
 * read-only (gx_stats_open): the kernel lets only the same user (or root)
 * open another process's file descriptors, so it reaches only those
 * programs. Nothing is written to the program's memory. For a gx_serve
 * server (PID its master or any worker) it shows each worker's
 * connections and bytes too (gx_serve_stats_read); --json is for the
 * runtime's figures only.
 *
 * Exit codes: 0, 1 (the program could not be read), 2 (bad usage).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gonex/gonex.h>

static volatile sig_atomic_t stop;

static void on_int(int sig)
{
	(void)sig;
	stop = 1;
}

static void usage(void)
{
	fprintf(stderr, "usage: gonex-stat [-i MS] [-n COUNT] [--once | --json] PID\n");
	exit(2);
}

/* "12.3 us" style */
static const char *dur(int64_t ns, char *buf, size_t cap)
{
	if (ns < 0)
		snprintf(buf, cap, "-");
	else if (ns < 10000)
		snprintf(buf, cap, "%lld ns", (long long)ns);
	else if (ns < 10000000)
		snprintf(buf, cap, "%.1f us", (double)ns / 1e3);
	else if (ns < 10000000000LL)
		snprintf(buf, cap, "%.1f ms", (double)ns / 1e6);
	else
		snprintf(buf, cap, "%.1f s", (double)ns / 1e9);
	return buf;
}

static const char *wstate(int st)
{
	static const char *n[] = {"off", "starting", "ready", "draining", "dead"};
	return st >= 0 && st <= 4 ? n[st] : "?";
}

static const char *bstate(int st)
{
	return st == GX_BREAKER_OPEN ? "OPEN" : st == GX_BREAKER_HALF_OPEN ? "half-open" : "closed";
}

static void show(const gx_stats *s, const gx_stats *prev, double dt, int pid)
{
	char a[32], b[32], c[32], d[32], e[32];
	printf("gonex-stat: pid %d, %d worker slot%s%s%s\n", pid, s->nworkers, s->nworkers == 1 ? "" : "s",
	       s->degraded ? ", DEGRADED (tasks run in the main process)" : "",
	       s->enabled ? "" : ", figures off (GONEX_STATS=0)");
	if (s->main_tasks)
		printf("main process: %llu task(s) taken from the inboxes to help (GONEX_MAIN_HELPS)\n",
		       (unsigned long long)s->main_tasks);
	printf("\n");
	if (s->nworkers) {
		printf("%-4s %-8s %-9s %4s %6s %10s %9s %7s %7s %8s %7s %6s %7s %9s\n", "wk", "pid", "state", "cpu",
		       "util", "tasks", "tasks/s", "steals", "queued", "running", "wakeup", "restr", "health",
		       "heartbeat");
		for (int i = 0; i < s->nworkers; i++) {
			const gx_stats_worker *w = &s->w[i];
			double rate = prev && dt > 0 && w->tasks >= prev->w[i].tasks
					      ? (double)(w->tasks - prev->w[i].tasks) / dt
					      : 0;
			printf("%-4d %-8d %-9s %4d %5.1f%% %10llu %9.0f %7llu %7llu %8llu %7llu %6llu %7s %9s\n", i,
			       w->pid, wstate(w->state), w->cpu, w->util * 100, (unsigned long long)w->tasks, rate,
			       (unsigned long long)w->steals, (unsigned long long)w->queued,
			       (unsigned long long)w->running, (unsigned long long)w->wakeups,
			       (unsigned long long)w->restarts, w->state != 2 ? "-" : w->healthy ? "ok" : "STALE",
			       dur(w->heartbeat_age_ns, a, sizeof a));
		}
		printf("\n");
	}
	if (s->nfn) {
		printf("%-28s %-7s %10s %8s %7s %6s %6s %10s %10s %10s %10s %10s\n", "function / section", "kind",
		       "count", "errors", "retries", "fallb", "rejct", "p50", "p90", "p99", "p99.9", "max");
		for (int i = 0; i < s->nfn; i++) {
			const gx_stats_fn *f = &s->fn[i];
			printf("%-28.28s %-7s %10llu %8llu %7llu %6llu %6llu %10s %10s %10s %10s %10s\n", f->name,
			       f->kind == GX_STATS_SECTION ? "section" : "task", (unsigned long long)f->count,
			       (unsigned long long)f->errors, (unsigned long long)f->retries,
			       (unsigned long long)f->fallbacks, (unsigned long long)f->rejected,
			       dur(f->p50_ns, a, sizeof a), dur(f->p90_ns, b, sizeof b), dur(f->p99_ns, c, sizeof c),
			       dur(f->p999_ns, d, sizeof d), dur(f->max_ns, e, sizeof e));
		}
		printf("\n");
	}
	if (s->nbreaker) {
		printf("%-28s %-9s %10s %10s %6s %9s %9s %9s\n", "breaker", "state", "successes", "failures", "opens",
		       "rejected", "fallbacks", "last-good");
		for (int i = 0; i < s->nbreaker; i++) {
			const gx_stats_breaker *x = &s->breaker[i];
			printf("%-28.28s %-9s %10llu %10llu %6llu %9llu %9llu %9llu\n", x->name, bstate(x->state),
			       (unsigned long long)x->successes, (unsigned long long)x->failures,
			       (unsigned long long)x->opens, (unsigned long long)x->rejected,
			       (unsigned long long)x->fallbacks, (unsigned long long)x->last_goods);
		}
	}
	fflush(stdout);
}

static void show_serve(const gx_serve_stats *s, const gx_serve_stats *prev, double dt)
{
	printf("gx_serve: master %d, %d worker%s\n", s->master_pid, s->workers, s->workers == 1 ? "" : "s");
	printf("%-4s %-8s %4s %10s %9s %8s %10s %8s %9s %12s %12s %6s\n", "wk", "pid", "cpu", "accepted", "conns/s",
	       "active", "closed", "deadline", "cancelled", "bytes-in", "bytes-out", "restr");
	for (int i = 0; i < s->workers; i++) {
		const gx_serve_stats_worker *w = &s->w[i];
		double rate = prev && dt > 0 && w->accepted >= prev->w[i].accepted
				      ? (double)(w->accepted - prev->w[i].accepted) / dt
				      : 0;
		printf("%-4d %-8d %4d %10llu %9.0f %8llu %10llu %8llu %9llu %12llu %12llu %6llu\n", i, w->pid, w->cpu,
		       (unsigned long long)w->accepted, rate, (unsigned long long)w->active,
		       (unsigned long long)w->closed, (unsigned long long)w->deadline,
		       (unsigned long long)w->cancelled, (unsigned long long)w->bytes_in,
		       (unsigned long long)w->bytes_out, (unsigned long long)w->restarts);
	}
	printf("\n");
	fflush(stdout);
}

int main(int argc, char **argv)
{
	long interval_ms = 1000, count = -1;
	int once = 0, json = 0;
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--once"))
			once = 1;
		else if (!strcmp(argv[i], "--json"))
			json = 1;
		else if (!strcmp(argv[i], "-i") && i + 1 < argc)
			interval_ms = strtol(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "-n") && i + 1 < argc)
			count = strtol(argv[++i], NULL, 10);
		else
			usage();
	}
	if (i != argc - 1 || interval_ms < 10 || interval_ms > 3600000)
		usage();
	char *end;
	long pid = strtol(argv[i], &end, 10);
	if (*end || pid <= 0 || pid > 1 << 30)
		usage();
	static gx_serve_stats sv, svprev;
	int serving = gx_serve_stats_read((int)pid, &sv) == 0;
	gx_stats_src *src = NULL;
	int rc = gx_stats_open((int)pid, &src);
	if (rc < 0 && !(serving && !json)) {
		fprintf(stderr, "gonex-stat: pid %ld: %s%s\n", pid, strerror(-rc),
			rc == -ENOENT ? " (no such process, or it runs no gonex runtime)" : "");
		return 1;
	}
	static gx_stats s, prev;
	int have_prev = 0, tty = isatty(1) && !once && !json;
	struct timespec t0, t1;
	signal(SIGINT, on_int);
	signal(SIGTERM, on_int);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = 0;
	for (long k = 0; !stop && (count < 0 || k < count); k++) {
		rc = src ? gx_stats_read(src, &s) : 0;
		if (serving && !json && gx_serve_stats_read((int)pid, &sv) < 0)
			rc = -ESRCH;
		if (rc < 0) {
			if (rc == -ESRCH && k > 0)
				printf("gonex-stat: pid %ld has ended\n", pid);
			else
				fprintf(stderr, "gonex-stat: pid %ld: %s\n", pid, strerror(-rc));
			gx_stats_close(src);
			return rc == -ESRCH && k > 0 ? 0 : 1;
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
		double dt = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
		if (json) {
			rc = gx_stats_json(&s, 1);
			break;
		}
		if (tty)
			printf("\033[H\033[2J");
		else if (k)
			printf("\n");
		if (serving)
			show_serve(&sv, have_prev ? &svprev : NULL, dt);
		if (src)
			show(&s, have_prev ? &prev : NULL, dt, (int)pid);
		if (once)
			break;
		prev = s;
		svprev = sv;
		have_prev = 1;
		t0 = t1;
		struct timespec ts = {interval_ms / 1000, (interval_ms % 1000) * 1000000};
		nanosleep(&ts, NULL);
	}
	gx_stats_close(src);
	return rc < 0 ? 1 : 0;
}
