/*
 * The configuration: defaults, validation, and the GONEX_* overrides.
 *
 * Parsing is strict: the whole value must parse, numbers are decimal with
 * an optional size suffix where the field is a size, and every field has a
 * range. A bad value is reported on one line naming the variable, the value
 * and what is accepted; nothing is changed and -EINVAL comes back. The table
 * below is the one place that names each variable, its field, its default
 * and its range.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/panic.h"

#include <gonex/config.h>
#include <gonex/coro.h>

extern char **environ;

typedef enum { GX_K_SIZE, GX_K_INT, GX_K_BOOL, GX_K_ENUM, GX_K_WEIGHTS } gx_kind;

typedef struct {
	const char *var;
	gx_kind kind;
	size_t off;
	size_t width;          /* sizeof the field */
	long long def;         /* its default (gx_config_init); enums: the index */
	long long min, max;    /* GX_K_SIZE / GX_K_INT, also checked by validate */
	const char *choices[5]; /* GX_K_ENUM, index = value */
} gx_knob;

#define F(f) offsetof(gx_config, f), sizeof(((gx_config *)0)->f)

static const gx_knob gx_knobs[] = {
	{"GONEX_STACK_SIZE", GX_K_SIZE, F(stack_size), 64 * 1024, GX_STACK_MIN, (long long)GX_STACK_MAX, {0}},
	{"GONEX_GUARD", GX_K_ENUM, F(guard), GX_GUARD_AUTO, 0, 2, {"auto", "madvise", "mprotect", 0}},
	{"GONEX_BACKEND", GX_K_ENUM, F(backend), GX_BACKEND_AUTO, 0, 2, {"auto", "uring", "epoll", 0}},
	{"GONEX_RING_ENTRIES", GX_K_INT, F(ring_entries), 256, 1, 32768, {0}},
	{"GONEX_CQ_ENTRIES", GX_K_INT, F(cq_entries), 0, 0, 1048576, {0}},
	{"GONEX_DEFER_TASKRUN", GX_K_BOOL, F(defer_taskrun), 1, 0, 1, {0}},
	{"GONEX_SQPOLL", GX_K_BOOL, F(sqpoll), 0, 0, 1, {0}},
	{"GONEX_SQPOLL_IDLE_MS", GX_K_INT, F(sqpoll_idle_ms), 1000, 0, 60000, {0}},
	{"GONEX_SQPOLL_CPU", GX_K_INT, F(sqpoll_cpu), -1, -1, 4095, {0}},
	{"GONEX_LOG", GX_K_BOOL, F(log), 0, 0, 1, {0}},
	{"GONEX_BUF_COUNT", GX_K_INT, F(buf_count), 1024, 0, 32768, {0}},
	{"GONEX_BUF_SIZE", GX_K_SIZE, F(buf_size), 4096, 512, 1048576, {0}},
	{"GONEX_LOOP_SPIN_NS", GX_K_INT, F(loop_spin_ns), 0, 0, 1000000, {0}},
	{"GONEX_RECV_BUNDLE", GX_K_BOOL, F(recv_bundle), 1, 0, 1, {0}},
	{"GONEX_IOWQ_MAX", GX_K_INT, F(iowq_max), 4, 0, 1024, {0}},
	{"GONEX_FIXED_FILES", GX_K_INT, F(fixed_files), 4096, 0, 65536, {0}},
	{"GONEX_NAPI_BUSY_US", GX_K_INT, F(napi_busy_us), 0, 0, 1000000, {0}},
	{"GONEX_NAPI_PREFER_BUSY", GX_K_BOOL, F(napi_prefer_busy), 0, 0, 1, {0}},
	{"GONEX_SHM_SIZE", GX_K_SIZE, F(shm_size), (long long)64 << 20, (long long)4 << 20, (long long)1 << 40, {0}},
	{"GONEX_HUGEPAGES", GX_K_ENUM, F(hugepages), 0, 0, 3, {"auto", "hugetlb", "thp", "off", 0}},
	{"GONEX_SPIN_NS", GX_K_INT, F(spin_ns), 20000, 0, 1000000000, {0}},
	{"GONEX_WORKERS", GX_K_INT, F(workers), 0, -1, GX_MAX_WORKERS, {0}},
	{"GONEX_WORKERS_MIN", GX_K_INT, F(workers_min), 0, 0, GX_MAX_WORKERS, {0}},
	{"GONEX_WORKERS_MAX", GX_K_INT, F(workers_max), 0, 0, GX_MAX_WORKERS, {0}},
	{"GONEX_WORKER_TIMEOUT_MS", GX_K_INT, F(worker_timeout_ms), 0, 0, 86400000, {0}},
	{"GONEX_AUTO_RESTART", GX_K_BOOL, F(auto_restart), 1, 0, 1, {0}},
	{"GONEX_CPU_AFFINITY", GX_K_BOOL, F(cpu_affinity), 1, 0, 1, {0}},
	{"GONEX_NUMA_AWARE", GX_K_BOOL, F(numa_aware), 1, 0, 1, {0}},
	{"GONEX_POOL_SIZE", GX_K_SIZE, F(pool_size), 0, 0, (long long)1 << 40, {0}},
	{"GONEX_ZERO_COPY", GX_K_BOOL, F(zero_copy), 1, 0, 1, {0}},
	{"GONEX_BALANCE", GX_K_ENUM, F(balance), GX_BALANCE_LEAST_BUSY, 0, 3,
	 {"round-robin", "least-busy", "weighted", "predictive", 0}},
	{"GONEX_WEIGHTS", GX_K_WEIGHTS, F(weights), 0, 0, 0, {0}},
	{"GONEX_WORK_STEALING", GX_K_BOOL, F(work_stealing), 1, 0, 1, {0}},
	{"GONEX_MAIN_HELPS", GX_K_BOOL, F(main_helps), 0, 0, 1, {0}},
	{"GONEX_AUTOSCALING", GX_K_BOOL, F(autoscaling), 0, 0, 1, {0}},
	{"GONEX_CIRCUIT_BREAKER", GX_K_BOOL, F(circuit_breaker), 0, 0, 1, {0}},
	{"GONEX_HEALTH_MONITORING", GX_K_BOOL, F(health_monitoring), 1, 0, 1, {0}},
	{"GONEX_GRACEFUL_DEGRADATION", GX_K_BOOL, F(graceful_degradation), 1, 0, 1, {0}},
	{"GONEX_SHUTDOWN", GX_K_ENUM, F(shutdown), GX_SHUTDOWN_DRAIN, 0, 1, {"drain", "cancel", 0}},
	{"GONEX_RETRY_ATTEMPTS", GX_K_INT, F(retry_attempts), 2, 0, 100, {0}},
	{"GONEX_RESTART_MAX", GX_K_INT, F(restart_max), 5, 1, 1000, {0}},
	{"GONEX_RESTART_WINDOW_MS", GX_K_INT, F(restart_window_ms), 10000, 1, 3600000, {0}},
	{"GONEX_WORKER_MAX_RSS", GX_K_SIZE, F(worker_max_rss), 0, 0, (long long)1 << 40, {0}},
	{"GONEX_STATS", GX_K_BOOL, F(stats), 1, 0, 1, {0}},
	{"GONEX_DUMP_SIGNAL", GX_K_BOOL, F(dump_signal), 0, 0, 1, {0}},
};

#define GX_NKNOBS (sizeof gx_knobs / sizeof gx_knobs[0])

static long long gx_field_get(const gx_config *cfg, const gx_knob *k)
{
	const char *p = (const char *)cfg + k->off;
	switch (k->width) {
	case 4: {
		int32_t v;
		memcpy(&v, p, 4);
		/* unsigned fields never exceed INT32_MAX in range */
		return v;
	}
	case 8: {
		uint64_t v;
		memcpy(&v, p, 8);
		return v > (uint64_t)LLONG_MAX ? LLONG_MAX : (long long)v;
	}
	}
	gx_panic("config", "field width %zu", k->width);
}

static void gx_field_set(gx_config *cfg, const gx_knob *k, long long v)
{
	char *p = (char *)cfg + k->off;
	if (k->width == 4) {
		int32_t x = (int32_t)v;
		memcpy(p, &x, 4);
	} else {
		uint64_t x = (uint64_t)v;
		memcpy(p, &x, 8);
	}
}

void gx_config_init(gx_config *cfg)
{
	memset(cfg, 0, sizeof *cfg); /* weights: "", every worker weighs 1 */
	for (size_t i = 0; i < GX_NKNOBS; i++)
		if (gx_knobs[i].kind != GX_K_WEIGHTS)
			gx_field_set(cfg, &gx_knobs[i], gx_knobs[i].def);
}

/* Decimal integer, optional leading '-', optional size suffix. */
static int gx_parse_num(const char *s, int size_suffix, long long *out)
{
	if (!*s)
		return -1;
	const char *p = s;
	int neg = 0;
	if (*p == '-') {
		neg = 1;
		p++;
	}
	if (*p < '0' || *p > '9')
		return -1;
	unsigned long long v = 0;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (ULLONG_MAX - 9) / 10)
			return -1;
		v = v * 10 + (unsigned)(*p - '0');
	}
	if (*p && size_suffix) {
		unsigned shift = 0;
		switch (*p) {
		case 'k': case 'K': shift = 10; break;
		case 'm': case 'M': shift = 20; break;
		case 'g': case 'G': shift = 30; break;
		default: return -1;
		}
		p++;
		if (strcmp(p, "") && strcmp(p, "iB") && strcmp(p, "B"))
			return -1;
		p += strlen(p);
		if (v > (ULLONG_MAX >> shift))
			return -1;
		v <<= shift;
	}
	if (*p || v > (unsigned long long)LLONG_MAX)
		return -1;
	*out = neg ? -(long long)v : (long long)v;
	return 0;
}

static int gx_parse_bool(const char *s, long long *out)
{
	static const char *t[] = {"1", "true", "yes", "on"}, *f[] = {"0", "false", "no", "off"};
	for (int i = 0; i < 4; i++) {
		if (!strcmp(s, t[i]))
			return *out = 1, 0;
		if (!strcmp(s, f[i]))
			return *out = 0, 0;
	}
	return -1;
}

static void gx_knob_reject(const gx_knob *k, const char *val)
{
	char want[128];
	switch (k->kind) {
	case GX_K_SIZE:
		snprintf(want, sizeof want, "a size from %lld to %lld bytes (suffix K, M or G allowed)",
			 k->min, k->max);
		break;
	case GX_K_INT:
		snprintf(want, sizeof want, "an integer from %lld to %lld", k->min, k->max);
		break;
	case GX_K_BOOL:
		snprintf(want, sizeof want, "0 or 1 (also true/false, yes/no, on/off)");
		break;
	case GX_K_WEIGHTS:
		snprintf(want, sizeof want, "comma-separated weights");
		break;
	case GX_K_ENUM:
		snprintf(want, sizeof want, "one of");
		for (int i = 0; k->choices[i]; i++)
			snprintf(want + strlen(want), sizeof want - strlen(want), "%s%s", i ? "|" : " ", k->choices[i]);
		break;
	}
	gx_log("%s=\"%s\" is not valid: expected %s", k->var, val, want);
}

static int gx_knob_parse(const gx_knob *k, const char *val, long long *out)
{
	int rc = -1;
	switch (k->kind) {
	case GX_K_SIZE:
	case GX_K_INT:
		rc = gx_parse_num(val, k->kind == GX_K_SIZE, out);
		if (rc == 0 && (*out < k->min || *out > k->max))
			rc = -1;
		break;
	case GX_K_BOOL:
		rc = gx_parse_bool(val, out);
		break;
	case GX_K_WEIGHTS:
		break;
	case GX_K_ENUM:
		for (long long i = 0; i <= k->max; i++)
			if (!strcmp(val, k->choices[i])) {
				*out = i;
				rc = 0;
			}
		break;
	}
	return rc;
}

/* "w,w,..." with 1 <= w <= 1000, at most GX_MAX_WORKERS of them, or "". */
static int gx_weights_ok(const char *s)
{
	if (strlen(s) >= sizeof(((gx_config *)0)->weights))
		return 0;
	int n = 0;
	while (*s) {
		char *e;
		errno = 0;
		long w = strtol(s, &e, 10);
		if (errno || e == s || w < 1 || w > 1000 || ++n > GX_MAX_WORKERS || (*e && *e != ','))
			return 0;
		s = *e ? e + 1 : e;
		if (*e == ',' && !*s)
			return 0;
	}
	return 1;
}

int gx_config_weight(const gx_config *cfg, int worker)
{
	const char *s = cfg->weights;
	for (int i = 0; *s; i++) {
		char *e;
		long w = strtol(s, &e, 10);
		if (e == s)
			break;
		if (i == worker)
			return (int)w;
		s = *e ? e + 1 : e;
	}
	return 1;
}

int gx_config_from_env(gx_config *cfg)
{
	if (!cfg)
		return -EINVAL;
	gx_config next = *cfg;
	for (size_t i = 0; i < GX_NKNOBS; i++) {
		const gx_knob *k = &gx_knobs[i];
		const char *val = getenv(k->var);
		if (!val)
			continue;
		if (k->kind == GX_K_WEIGHTS) {
			if (!gx_weights_ok(val)) {
				gx_log("%s=\"%s\" is not valid: expected comma-separated weights 1..1000, one per worker",
				       k->var, val);
				return -EINVAL;
			}
			snprintf(next.weights, sizeof next.weights, "%s", val);
			continue;
		}
		long long v;
		if (gx_knob_parse(k, val, &v) != 0 ||
		    (k->off == offsetof(gx_config, buf_count) && (v & (v - 1)))) {
			gx_knob_reject(k, val);
			return -EINVAL;
		}
		gx_field_set(&next, k, v);
	}
	for (char **e = environ; e && *e; e++) {
		if (strncmp(*e, "GONEX_", 6))
			continue;
		size_t len = strcspn(*e, "=");
		int known = 0;
		for (size_t i = 0; i < GX_NKNOBS && !known; i++)
			known = strlen(gx_knobs[i].var) == len && !strncmp(gx_knobs[i].var, *e, len);
		if (!known)
			gx_log("warning: unknown variable %.*s ignored", (int)len, *e);
	}
	*cfg = next;
	return 0;
}

int gx_config_validate(const gx_config *cfg)
{
	if (!cfg)
		return -EINVAL;
	for (size_t i = 0; i < GX_NKNOBS; i++) {
		const gx_knob *k = &gx_knobs[i];
		if (k->kind == GX_K_WEIGHTS) {
			if (!memchr(cfg->weights, 0, sizeof cfg->weights) || !gx_weights_ok(cfg->weights)) {
				gx_log("config field weights: expected comma-separated weights 1..1000");
				return -EINVAL;
			}
			continue;
		}
		long long v = gx_field_get(cfg, k);
		if (v < k->min || v > k->max || (k->off == offsetof(gx_config, buf_count) && (v & (v - 1)))) {
			gx_log("config field for %s is %lld: expected %lld..%lld", k->var, v, k->min, k->max);
			return -EINVAL;
		}
	}
	return 0;
}
