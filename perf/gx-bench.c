/*
 * gx-bench: one binary, one workload per subcommand (see
 * ../shared/BENCHMARKS.md). Each workload prints, last, one line per figure:
 *     RESULT <name> <value> <unit> [key=value ...]
 * Argument errors print usage and exit 2.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gonex/gonex.h>

static void usage(void)
{
	fprintf(stderr,
		"usage: gx-bench WORKLOAD [ARGS]\n"
		"  yield N    two coroutines yield to each other N times each\n"
		"  spawn N    spawn N coroutines (batches of 1024) that mark a WaitGroup done\n"
		"  idle N     N coroutines parked on a channel; resident memory per coroutine\n"
		"  pingpong N two coroutines exchange a value N times over two unbuffered channels\n"
		"  select N   as pingpong, the receiver selects over two channels\n"
		"  config     print what the runtime chose\n"
		"GONEX_* variables tune the runtime (see README.md).\n");
	exit(2);
}

static long parse_count(const char *s)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || v <= 0) {
		fprintf(stderr, "gx-bench: '%s' is not a positive count\n", s);
		usage();
	}
	return v;
}

static long n_arg;

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

static int bench_yield(void *arg)
{
	(void)arg;
	yield_round(n_arg / 10 + 1);
	int64_t t = yield_round(n_arg);
	printf("RESULT yield_switch %.2f ns switches=%ld\n", (double)t / (2.0 * (double)n_arg), 2 * n_arg);
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

static int bench_spawn(void *arg)
{
	(void)arg;
	spawn_round(n_arg / 10 + 1);
	int64_t t = spawn_round(n_arg);
	if (t < 0) {
		fprintf(stderr, "gx-bench: spawn failed\n");
		return 1;
	}
	printf("RESULT spawn_exit %.2f ns coroutines=%ld\n", (double)t / (double)n_arg, n_arg);
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

static int bench_idle(void *arg)
{
	(void)arg;
	gx_runtime_info info;
	gx_info(&info);
	gx_chan *ch;
	if (gx_chan_make(&ch, 0, 0, 0) < 0)
		return 1;
	long before = resident_bytes();
	for (long i = 0; i < n_arg; i++)
		if (gx_go(idle_child, ch) < 0) {
			fprintf(stderr, "gx-bench: spawn %ld failed\n", i);
			return 1;
		}
	while (parked < n_arg)
		gx_yield();
	long after = resident_bytes();
	printf("RESULT idle_rss_per_coroutine %.0f bytes coroutines=%ld stack=%zu guard=%s\n",
	       (double)(after - before) / (double)n_arg, n_arg, info.stack_size, info.guard);
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

static int bench_pingpong_common(int use_select)
{
	pp_t p = {.use_select = use_select};
	if (gx_chan_make(&p.ping, 8, 0, 0) < 0 || gx_chan_make(&p.pong, 8, 0, 0) < 0 ||
	    gx_chan_make(&p.idle, 8, 0, 0) < 0)
		return 1;
	pp_round(&p, n_arg / 10 + 1);
	int64_t t = pp_round(&p, n_arg);
	if (t < 0) {
		fprintf(stderr, "gx-bench: values lost\n");
		return 1;
	}
	printf("RESULT %s %.2f ns rounds=%ld\n", use_select ? "select_rtt" : "pingpong_rtt",
	       (double)t / (double)n_arg, n_arg);
	gx_chan_free(p.ping);
	gx_chan_free(p.pong);
	gx_chan_free(p.idle);
	return 0;
}

static int bench_pingpong(void *arg)
{
	(void)arg;
	return bench_pingpong_common(0);
}

static int bench_select(void *arg)
{
	(void)arg;
	return bench_pingpong_common(1);
}

/* ---- config ---- */

static int bench_config(void *arg)
{
	(void)arg;
	gx_runtime_info i;
	if (gx_info(&i) != 0)
		return 1;
	printf("version        %s\n", gx_version());
	printf("arch           %s\n", i.arch);
	printf("kernel         %s\n", i.kernel);
	printf("backend        %s\n", i.backend);
	printf("ring flags     %s (%#x)\n", i.ring_flags_str, i.ring_flags);
	printf("ring features  %#x\n", i.ring_features);
	printf("sq/cq entries  %u/%u\n", i.sq_entries, i.cq_entries);
	printf("missing        %s\n", i.missing);
	printf("stack size     %zu\n", i.stack_size);
	printf("guard          %s\n", i.guard);
	printf("fp_env         %d\n", i.fp_env);
	printf("sanitize_hooks %d\n", i.sanitize_hooks);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	const char *w = argv[1];
	gx_main_fn fn = NULL;
	if (!strcmp(w, "yield"))
		fn = bench_yield;
	else if (!strcmp(w, "spawn"))
		fn = bench_spawn;
	else if (!strcmp(w, "idle"))
		fn = bench_idle;
	else if (!strcmp(w, "pingpong"))
		fn = bench_pingpong;
	else if (!strcmp(w, "select"))
		fn = bench_select;
	else if (!strcmp(w, "config"))
		fn = bench_config;
	else
		usage();
	if (fn != bench_config) {
		if (argc != 3)
			usage();
		n_arg = parse_count(argv[2]);
	} else if (argc != 2) {
		usage();
	}
	int rc = gx_run(NULL, fn, NULL);
	if (rc == -EINVAL)
		return 2; /* configuration refused; the message is printed */
	if (rc < 0) {
		fprintf(stderr, "gx-bench: gx_run: %s\n", strerror(-rc));
		return 1;
	}
	return rc;
}
