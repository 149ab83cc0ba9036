/*
 * The workloads of one process, each a gx_run main function over the count
 * N that main.c passes in arg: yield, spawn, idle, pingpong and select.
 * Each but idle runs a tenth of N (plus one) first as a warm-up, untimed.
 */
#include <stdio.h>
#include <unistd.h>

#include <gonex/gonex.h>

#include "bench.h"

/* ---- yield ---- */

static void yield_partner(void *arg)
{
	long n = *(long *)arg;
	for (long i = 0; i < n; i++)
		gx_yield();
}

static int64_t yield_round(long n)
{
	gx_go(yield_partner, &n);
	int64_t t0 = gx_now();
	for (long i = 0; i < n; i++)
		gx_yield();
	int64_t t = gx_now() - t0;
	gx_yield(); /* let the partner finish */
	return t;
}

int bench_yield(void *arg)
{
	long n = *(const long *)arg;
	yield_round(n / 10 + 1);
	int64_t t = yield_round(n);
	printf("RESULT yield_switch %.2f ns switches=%ld\n", (double)t / (2.0 * (double)n), 2 * n);
	return 0;
}

/* ---- spawn ---- */

static void spawn_child(void *arg)
{
	gx_wg_done(arg);
}

static int64_t spawn_round(long n)
{
	gx_wg wg = GX_WG_INIT;
	int64_t t0 = gx_now();
	for (long i = 0; i < n;) {
		long b = n - i < 1024 ? n - i : 1024;
		gx_wg_add(&wg, b);
		for (long k = 0; k < b; k++)
			if (gx_go(spawn_child, &wg) < 0)
				return -1;
		i += b;
		gx_wg_wait(&wg, GX_FOREVER);
	}
	return gx_now() - t0;
}

int bench_spawn(void *arg)
{
	long n = *(const long *)arg;
	spawn_round(n / 10 + 1);
	int64_t t = spawn_round(n);
	if (t < 0) {
		fprintf(stderr, "gx-bench: spawn failed\n");
		return 1;
	}
	printf("RESULT spawn_exit %.2f ns coroutines=%ld\n", (double)t / (double)n, n);
	return 0;
}

/* ---- idle ---- */

static long parked;
static void idle_child(void *arg)
{
	parked++;
	gx_chan_recv(arg, NULL, NULL, GX_FOREVER); /* nobody ever sends */
}

static long resident_bytes(void)
{
	long pages = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (!f || fscanf(f, "%ld %ld", &pages, &rss) != 2)
		rss = -1;
	if (f)
		fclose(f);
	return rss * sysconf(_SC_PAGESIZE);
}

int bench_idle(void *arg)
{
	long n = *(const long *)arg;
	gx_runtime_info info;
	gx_info(&info);
	gx_chan *ch;
	if (gx_chan_make(&ch, 0, 0, 0) < 0)
		return 1;
	long before = resident_bytes();
	for (long i = 0; i < n; i++)
		if (gx_go(idle_child, ch) < 0) {
			fprintf(stderr, "gx-bench: spawn %ld failed\n", i);
			return 1;
		}
	while (parked < n)
		gx_yield();
	long after = resident_bytes();
	printf("RESULT idle_rss_per_coroutine %.0f bytes coroutines=%ld stack=%zu guard=%s\n",
	       (double)(after - before) / (double)n, n, info.stack_size, info.guard);
	return 0;
}

/* ---- pingpong and select ---- */

typedef struct {
	gx_chan *ping, *pong, *idle;
	long n;
	int use_select;
} pp_t;

static void pp_echo(void *arg)
{
	pp_t *p = arg;
	uint64_t v;
	gx_case cases[2] = {{.chan = p->ping, .op = GX_RECV, .elem = &v},
			    {.chan = p->idle, .op = GX_RECV, .elem = &v}};
	for (long i = 0; i < p->n; i++) {
		if (p->use_select)
			gx_select(cases, 2, GX_FOREVER);
		else
			gx_chan_recv(p->ping, &v, NULL, GX_FOREVER);
		v++;
		gx_chan_send(p->pong, &v, GX_FOREVER);
	}
}

static int64_t pp_round(pp_t *p, long n)
{
	p->n = n;
	gx_go(pp_echo, p);
	uint64_t v = 0;
	int64_t t0 = gx_now();
	for (long i = 0; i < n; i++) {
		gx_chan_send(p->ping, &v, GX_FOREVER);
		gx_chan_recv(p->pong, &v, NULL, GX_FOREVER);
	}
	int64_t t = gx_now() - t0;
	if (v != (uint64_t)n)
		return -1;
	return t;
}

static int bench_pingpong_common(int use_select, long n)
{
	pp_t p = {.use_select = use_select};
	if (gx_chan_make(&p.ping, 8, 0, 0) < 0 || gx_chan_make(&p.pong, 8, 0, 0) < 0 ||
	    gx_chan_make(&p.idle, 8, 0, 0) < 0)
		return 1;
	pp_round(&p, n / 10 + 1);
	int64_t t = pp_round(&p, n);
	if (t < 0) {
		fprintf(stderr, "gx-bench: values lost\n");
		return 1;
	}
	printf("RESULT %s %.2f ns rounds=%ld\n", use_select ? "select_rtt" : "pingpong_rtt",
	       (double)t / (double)n, n);
	gx_chan_free(p.ping);
	gx_chan_free(p.pong);
	gx_chan_free(p.idle);
	return 0;
}

int bench_pingpong(void *arg)
{
	return bench_pingpong_common(0, *(const long *)arg);
}

int bench_select(void *arg)
{
	return bench_pingpong_common(1, *(const long *)arg);
}
