/*
 * gx_run: the entry point. Reads the configuration (struct, then GONEX_*
 * overrides), brings the layers up bottom-first (stacks and the overflow
 * handler, scheduler, loop), runs main_fn as the first coroutine, and takes
 * everything down again in reverse, so that gx_run can be called again in the
 * same process. Worker processes join here with the parallel runtime; until
 * then everything runs in the calling process.
 *
 * Invariant: gx_run either returns an error with nothing started (bad
 * configuration, -EBUSY) or starts every layer and stops every layer.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

#include "arch/switch.h"
#include "core/sched.h"
#include "core/stack.h"
#include "core/timer.h"
#include "io/loop.h"
#include "par/par.h"
#include "sync/sync.h"

#include <gonex/runtime.h>

static struct {
	gx_config cfg;
	int running;
} R;

const char *gx_version(void)
{
	return GX_VERSION;
}

typedef struct {
	gx_main_fn fn;
	void *arg;
} gx_par_boot;

static int gx_par_boot_fn(void *arg)
{
	gx_par_boot *b = arg;
	gx_obs_start();
	return gx_par_enabled() ? gx_par_main(b->fn, b->arg) : b->fn(b->arg);
}

int gx_run(const gx_config *cfg_in, gx_main_fn main_fn, void *arg)
{
	gx_config cfg;
	if (cfg_in)
		cfg = *cfg_in;
	else
		gx_config_init(&cfg);
	if (!main_fn)
		return -EINVAL;
	int rc = gx_config_validate(&cfg);
	if (rc < 0)
		return rc;
	rc = gx_config_from_env(&cfg);
	if (rc < 0)
		return rc;
	if (gx_par_in_worker())
		cfg.workers = 0; /* GONEX_WORKERS is the main process's, not a worker's */

	if (R.running)
		return -EBUSY;
	gx_dchan_install();
	gx_par_configure(&cfg);
	/* workers first: the spawner is forked before anything else exists */
	if (cfg.workers != 0) {
		rc = gx_par_init(&cfg);
		if (rc < 0)
			return rc;
	}
	gx_ctx_register_hooks();
	rc = gx_sched_init(&cfg);
	if (rc < 0)
		goto err_par;
	rc = gx_stack_init(cfg.guard);
	if (rc < 0)
		goto err_sched;
	rc = gx_loop_init(&cfg);
	if (rc < 0)
		goto err_stack;
	R.cfg = cfg;
	R.running = 1;

	gx_par_boot b = {main_fn, arg};
	rc = gx_sched_run(gx_par_boot_fn, &b);

	R.running = 0;
	gx_loop_fini();
	gx_obs_fini();
	gx_theap_fini();
err_stack:
	gx_stack_fini();
err_sched:
	gx_sched_fini();
err_par:
	gx_par_fini();
	return rc;
}

int gx_config_get(gx_config *out)
{
	if (!out)
		return -EINVAL;
	if (!R.running)
		return -EPERM;
	*out = R.cfg;
	return 0;
}

int gx_info(gx_runtime_info *out)
{
	if (!out)
		return -EINVAL;
	if (!R.running)
		return -EPERM;
	memset(out, 0, sizeof *out);
	gx_loop *l = gx_loop_get();
	out->arch = GX_ARCH_NAME;
	out->backend = l->ops->name;
	out->guard = gx_stack_guard_name();
	out->ring_flags = l->ring_flags;
	out->ring_features = l->ring_features;
	out->sq_entries = l->sq_entries;
	out->cq_entries = l->cq_entries;
	out->napi_busy_us = l->napi_busy_us;
	out->fixed_files = l->fixed_files;
	out->fixed_in_use = l->fixed_used;
	out->stack_size = R.cfg.stack_size;
	out->fp_env = GX_FP_ENV;
	out->sanitize_hooks = GX_SANITIZE_HOOKS;
	if (l->ring_flags)
		gx_ring_flags_str(l->ring_flags, out->ring_flags_str, sizeof out->ring_flags_str);
	else
		snprintf(out->ring_flags_str, sizeof out->ring_flags_str, "-");
	snprintf(out->missing, sizeof out->missing, "%s", l->missing[0] ? l->missing : "-");
	struct utsname u;
	snprintf(out->kernel, sizeof out->kernel, "%s", uname(&u) == 0 ? u.release : "?");
	return 0;
}
