/*
 * config: what the runtime chose under the current environment (GONEX_*
 * variables, the kernel, the CPUs), one "key value" line each, printed
 * from inside gx_run. The arena line comes from a throwaway arena made as
 * gx_run with workers would make it; the CPU pinning line predicts where
 * each worker goes (worker w on the (w mod count)-th allowed CPU).
 */
#include <sched.h>
#include <stdio.h>
#include <string.h>

#include <gonex/gonex.h>

#include "bench.h"

/* The CPUs of this process's affinity mask, as "0-3,6". */
static void cpu_list(char *buf, size_t cap)
{
	cpu_set_t set;
	buf[0] = 0;
	if (sched_getaffinity(0, sizeof set, &set) != 0) {
		snprintf(buf, cap, "?");
		return;
	}
	size_t l = 0;
	for (int c = 0; c < CPU_SETSIZE && l + 16 < cap; c++) {
		if (!CPU_ISSET(c, &set))
			continue;
		int e = c;
		while (e + 1 < CPU_SETSIZE && CPU_ISSET(e + 1, &set))
			e++;
		l += (size_t)snprintf(buf + l, cap - l, "%s%d", l ? "," : "", c);
		if (e > c)
			l += (size_t)snprintf(buf + l, cap - l, "-%d", e);
		c = e;
	}
}

static const char *on_off(int v)
{
	return v ? "on" : "off";
}

int bench_config(void *arg)
{
	(void)arg;
	gx_runtime_info i;
	gx_config c;
	if (gx_info(&i) != 0 || gx_config_get(&c) != 0)
		return 1;
	static const char *bal[] = {"round-robin", "least-busy", "weighted", "predictive"};
	static const char *tiers[] = {"auto", "hugetlb", "thp", "off"};
	char cpus[256];
	cpu_list(cpus, sizeof cpus);
	int ncpu = 0;
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof set, &set) == 0)
		ncpu = CPU_COUNT(&set);
	printf("version        %s\n", gx_version());
	printf("arch           %s\n", i.arch);
	printf("kernel         %s\n", i.kernel);
	printf("cpus           %d allowed (%s)\n", ncpu, cpus);
	printf("backend        %s\n", i.backend);
	printf("ring flags     %s (%#x)\n", i.ring_flags_str, i.ring_flags);
	printf("ring features  %#x\n", i.ring_features);
	printf("sq/cq entries  %u/%u (asked %u/%u)\n", i.sq_entries, i.cq_entries, c.ring_entries, c.cq_entries);
	printf("defer_taskrun  asked %s, %s\n", on_off(c.defer_taskrun),
	       strstr(i.ring_flags_str, "DEFER_TASKRUN") ? "in force" : "not in force");
	printf("sqpoll         asked %s, %s; idle %u ms; cpu %d\n", on_off(c.sqpoll),
	       strstr(i.ring_flags_str, "SQPOLL") ? "in force" : "not in force", c.sqpoll_idle_ms, c.sqpoll_cpu);
	printf("buffer ring    %u x %u bytes, bundles asked %s\n", c.buf_count, c.buf_size, on_off(c.recv_bundle));
	printf("napi busy poll asked %u us%s, %u us in force\n", c.napi_busy_us,
	       c.napi_prefer_busy ? " (prefer busy)" : "", i.napi_busy_us);
	printf("fixed files    %u slots (asked %u)\n", i.fixed_files, c.fixed_files);
	printf("missing        %s\n", i.missing);
	printf("stack size     %zu\n", i.stack_size);
	printf("guard          %s\n", i.guard);
	printf("fp_env         %d\n", i.fp_env);
	printf("sanitize_hooks %d\n", i.sanitize_hooks);
	/* the memory tier: an arena made as gx_run with workers would */
	gx_arena_opts o;
	gx_arena_opts_init(&o);
	o.size = c.shm_size;
	o.tier = (gx_mem_tier)c.hugepages;
	o.numa = c.numa_aware;
	o.spin_ns = c.spin_ns;
	gx_arena *a;
	gx_arena_info ai;
	if (gx_arena_create(&a, &o) == 0) {
		if (gx_arena_info_get(a, &ai) == 0) {
			printf("arena          %zu MiB, tier %s (asked %s), page %zu KiB\n", (size_t)(ai.size >> 20),
			       ai.tier_name, c.hugepages >= 0 && c.hugepages <= 3 ? tiers[c.hugepages] : "?",
			       (size_t)(ai.page_size >> 10));
			printf("numa nodes     %d placed (numa_aware %s)\n", ai.numa_nodes, on_off(c.numa_aware));
			printf("arena why      %s\n", ai.why[0] ? ai.why : "-");
		}
		gx_arena_destroy(a);
	} else {
		printf("arena          could not be made with these settings\n");
	}
	printf("spin budget    %lld ns\n", (long long)c.spin_ns);
	int nw = c.workers < 0 ? ncpu : c.workers;
	printf("workers        %d (GONEX_WORKERS=%d; min %d, max %d, autoscaling %s)\n", nw, c.workers,
	       c.workers_min ? c.workers_min : nw, c.workers_max ? c.workers_max : nw, on_off(c.autoscaling));
	printf("cpu pinning    %s", on_off(c.cpu_affinity));
	if (c.cpu_affinity && nw > 0) {
		printf(":");
		for (int w = 0, k = 0; w < nw && w < 16; w++) {
			/* worker w takes the (w mod count)-th allowed CPU */
			int cpu = -1;
			for (int x = 0, seen = 0; x < CPU_SETSIZE; x++)
				if (CPU_ISSET(x, &set) && seen++ == w % (ncpu ? ncpu : 1)) {
					cpu = x;
					break;
				}
			printf("%s w%d->cpu%d", k++ ? "," : "", w, cpu);
		}
	}
	printf("\n");
	printf("balance        %s, stealing %s%s%s\n", c.balance >= 0 && c.balance <= 3 ? bal[c.balance] : "?",
	       on_off(c.work_stealing), c.weights[0] ? ", weights " : "", c.weights);
	printf("fault          restart %s (max %u in %u ms), retries %u, timeout %u ms, max rss %zu, "
	       "breakers %s, health %s, degradation %s\n",
	       on_off(c.auto_restart), c.restart_max, c.restart_window_ms, c.retry_attempts, c.worker_timeout_ms,
	       c.worker_max_rss, on_off(c.circuit_breaker), on_off(c.health_monitoring),
	       on_off(c.graceful_degradation));
	printf("stats          %s, dump on SIGQUIT %s\n", on_off(c.stats), on_off(c.dump_signal));
	return 0;
}
