// The public headers from C++ (-std=c++11 -Wpedantic, warnings as errors):
// every header compiles, and the initializer macros have C++ spellings that
// give the same values as C's (checked at run time: exit 0 or 1).
#include <gonex/gonex.h>

#include <cstdio>

static int fail(const char *what)
{
	std::fprintf(stderr, "headers.cc: %s\n", what);
	return 1;
}

int main()
{
	gx_until u = GX_FOREVER;
	if (u.deadline != -1 || u.ctx != 0)
		return fail("GX_FOREVER");
	gx_par_opts o = GX_PAR_OPTS_INIT;
	if (o.worker != -1 || o.weight != 0 || o.name != 0 || o.breaker != 0 || o.until.deadline != -1 || o.until.ctx)
		return fail("GX_PAR_OPTS_INIT");
	gx_breaker_opts b = GX_BREAKER_OPTS_INIT;
	if (b.fn != 0 || b.failures != 5 || b.probes != 1 || b.cooldown != 1000000000 || b.retries != 0 ||
	    b.backoff != 1000000 || b.backoff_max != 100000000 || b.fallback != 0 || b.last_good != 0)
		return fail("GX_BREAKER_OPTS_INIT");
	gx_wg wg = GX_WG_INIT;
	gx_mutex m = GX_MUTEX_INIT;
	gx_rwmutex rw = GX_RWMUTEX_INIT;
	gx_once once = GX_ONCE_INIT;
	gx_cond cond = GX_COND_INIT;
	(void)wg;
	(void)m;
	(void)rw;
	(void)once;
	(void)cond;
	gx_until d = gx_timeout(GX_SECOND);
	(void)d;
	return 0;
}
