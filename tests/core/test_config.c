/* Configuration: defaults, strict GONEX_* parsing, refusal before anything starts, gx_info. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>

#include "testing.h"

static int ran;
static int mark_ran(void *arg)
{
	(void)arg;
	ran = 1;
	return 0;
}

static void expect_refused(const char *var, const char *val)
{
	setenv(var, val, 1);
	ran = 0;
	int rc = gx_run(NULL, mark_ran, NULL);
	unsetenv(var);
	cr_expect_eq(rc, -EINVAL, "%s=%s gave %d", var, val, rc);
	cr_expect_eq(ran, 0, "%s=%s: main must not run", var, val);
}

Test(config, bad_values_are_refused_and_nothing_starts)
{
	expect_refused("GONEX_STACK_SIZE", "abc");
	expect_refused("GONEX_STACK_SIZE", "");
	expect_refused("GONEX_STACK_SIZE", "8K");     /* below 16 KiB */
	expect_refused("GONEX_STACK_SIZE", "2G");     /* above 1 GiB */
	expect_refused("GONEX_STACK_SIZE", "64 K");
	expect_refused("GONEX_STACK_SIZE", "64KB7");
	expect_refused("GONEX_STACK_SIZE", "-64K");
	expect_refused("GONEX_STACK_SIZE", "99999999999999999999999");
	expect_refused("GONEX_RING_ENTRIES", "0");
	expect_refused("GONEX_RING_ENTRIES", "65536");
	expect_refused("GONEX_RING_ENTRIES", "0x100");
	expect_refused("GONEX_RING_ENTRIES", "256K"); /* no suffix on counts */
	expect_refused("GONEX_CQ_ENTRIES", "-1");
	expect_refused("GONEX_BACKEND", "kqueue");
	expect_refused("GONEX_BACKEND", "URING");
	expect_refused("GONEX_GUARD", "none");
	expect_refused("GONEX_DEFER_TASKRUN", "2");
	expect_refused("GONEX_SQPOLL", "maybe");
	expect_refused("GONEX_SQPOLL_IDLE_MS", "60001");
	expect_refused("GONEX_SQPOLL_CPU", "-2");
	expect_refused("GONEX_LOG", " 1");
	expect_refused("GONEX_BUF_COUNT", "1000"); /* not a power of two */
	expect_refused("GONEX_BUF_COUNT", "65536");
	expect_refused("GONEX_BUF_SIZE", "100");
	expect_refused("GONEX_IOWQ_MAX", "-1");
	expect_refused("GONEX_RECV_BUNDLE", "2");
	expect_refused("GONEX_LOOP_SPIN_NS", "1000001");
	expect_refused("GONEX_LOOP_SPIN_NS", "-5");
	expect_refused("GONEX_FIXED_FILES", "65537");
	expect_refused("GONEX_FIXED_FILES", "-1");
	expect_refused("GONEX_NAPI_BUSY_US", "-1");
	expect_refused("GONEX_NAPI_BUSY_US", "1000001");
	expect_refused("GONEX_NAPI_BUSY_US", "50us");
	expect_refused("GONEX_NAPI_PREFER_BUSY", "2");
}

Test(config, good_values_are_applied)
{
	gx_config c;
	gx_config_init(&c);
	setenv("GONEX_STACK_SIZE", "128K", 1);
	setenv("GONEX_RING_ENTRIES", "64", 1);
	setenv("GONEX_DEFER_TASKRUN", "off", 1);
	setenv("GONEX_SQPOLL_CPU", "-1", 1);
	setenv("GONEX_BACKEND", "epoll", 1);
	setenv("GONEX_NAPI_BUSY_US", "50", 1);
	setenv("GONEX_NAPI_PREFER_BUSY", "yes", 1);
	cr_expect_eq(gx_config_from_env(&c), 0);
	cr_expect_eq(c.napi_busy_us, 50);
	cr_expect_eq(c.napi_prefer_busy, 1);
	unsetenv("GONEX_NAPI_BUSY_US");
	unsetenv("GONEX_NAPI_PREFER_BUSY");
	cr_expect_eq(c.stack_size, 128 * 1024);
	cr_expect_eq(c.ring_entries, 64);
	cr_expect_eq(c.defer_taskrun, 0);
	cr_expect_eq(c.sqpoll_cpu, -1);
	cr_expect_eq(c.backend, GX_BACKEND_EPOLL);
	setenv("GONEX_STACK_SIZE", "1MiB", 1);
	cr_expect_eq(gx_config_from_env(&c), 0);
	cr_expect_eq(c.stack_size, 1024 * 1024);
	/* a bad value leaves the struct as it was */
	setenv("GONEX_RING_ENTRIES", "x", 1);
	cr_expect_eq(gx_config_from_env(&c), -EINVAL);
	cr_expect_eq(c.ring_entries, 64);
	unsetenv("GONEX_STACK_SIZE");
	unsetenv("GONEX_RING_ENTRIES");
	unsetenv("GONEX_DEFER_TASKRUN");
	unsetenv("GONEX_SQPOLL_CPU");
	unsetenv("GONEX_BACKEND");
}

Test(config, bad_struct_fields_are_refused)
{
	gx_config c;
	gx_config_init(&c);
	cr_expect_eq(gx_config_validate(&c), 0);
	c.stack_size = 1000;
	ran = 0;
	cr_expect_eq(gx_run(&c, mark_ran, NULL), -EINVAL);
	gx_config_init(&c);
	c.ring_entries = 0;
	cr_expect_eq(gx_run(&c, mark_ran, NULL), -EINVAL);
	gx_config_init(&c);
	c.backend = (gx_backend_kind)7;
	cr_expect_eq(gx_run(&c, mark_ran, NULL), -EINVAL);
	cr_expect_eq(ran, 0);
	cr_expect_eq(gx_config_validate(NULL), -EINVAL);
	cr_expect_eq(gx_config_from_env(NULL), -EINVAL);
}

static gx_runtime_info info;
static int get_info(void *arg)
{
	(void)arg;
	cr_assert_eq(gx_info(&info), 0);
	cr_expect_eq(gx_info(NULL), -EINVAL);
	return 0;
}

Test(config, info_reports_the_choices)
{
	unsetenv("GONEX_BACKEND"); /* tests/run.sh sets it; this test is about the struct */
	gx_config c;
	gx_config_init(&c);
	c.backend = GX_BACKEND_EPOLL;
	cr_expect_eq(gx_run(&c, get_info, NULL), 0);
	cr_expect_str_eq(info.backend, "epoll");
	cr_expect_eq(info.ring_flags, 0);
	cr_expect_str_eq(info.ring_flags_str, "-");
	cr_expect_eq(info.stack_size, 64 * 1024);

	c.backend = GX_BACKEND_AUTO;
	cr_expect_eq(gx_run(&c, get_info, NULL), 0);
	if (strcmp(info.backend, "io_uring") != 0)
		cr_skip_test("io_uring unavailable here: %s", info.missing);
	cr_expect_gt(info.sq_entries, 0);
	cr_expect_geq(info.cq_entries, info.sq_entries);
	cr_expect_neq(info.ring_flags, 0, "CQSIZE at least");
	cr_expect(strstr(info.ring_flags_str, "CQSIZE") != NULL, "%s", info.ring_flags_str);
}

Test(config, defer_taskrun_off_starts_lower_on_the_ladder)
{
	unsetenv("GONEX_BACKEND");
	gx_config c;
	gx_config_init(&c);
	c.defer_taskrun = 0;
	cr_expect_eq(gx_run(&c, get_info, NULL), 0);
	if (strcmp(info.backend, "io_uring") != 0)
		cr_skip_test("io_uring unavailable here");
	cr_expect(strstr(info.ring_flags_str, "DEFER_TASKRUN") == NULL, "%s", info.ring_flags_str);
}
