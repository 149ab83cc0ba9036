/* Stacks: overflow is caught and named, other faults keep their default behaviour. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "arch/scenarios.h"

static void null_entry(void *arg)
{
	/* an unmapped address near NULL, not NULL itself: UBSan would stop a
	 * store to NULL before it faults */
	*(volatile int *)((uintptr_t)arg + 64) = 1;
}

static int null_main(void *arg)
{
	(void)arg;
	gx_go(null_entry, NULL);
	gx_yield();
	return 0;
}

static void expect_overflow_report(const char *guard)
{
	char err[4096];
	int st = gx_scn_run_child(gx_scn_overflow_main, guard, err, sizeof err);
	cr_assert_neq(st, -1);
	cr_expect(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "killed by SIGABRT (status %#x)", st);
	cr_expect(strstr(err, GX_SCN_OVERFLOW_MSG) != NULL, "stderr: %s", err);
}

Test(stack, overflow_is_reported_and_aborts)
{
	expect_overflow_report(NULL);
}

Test(stack, overflow_is_reported_with_mprotect_guards)
{
	expect_overflow_report("mprotect");
}

Test(stack, other_segfaults_keep_default_behaviour)
{
	char err[4096];
	int st = gx_scn_run_child(null_main, NULL, err, sizeof err);
	cr_assert_neq(st, -1);
#if defined(__SANITIZE_ADDRESS__)
	/* the handler that was there before ours is ASan's: it must get the fault */
	cr_expect(strstr(err, "AddressSanitizer: SEGV") != NULL, "status %#x, stderr: %s", st, err);
#else
	cr_expect(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV, "killed by SIGSEGV (status %#x)", st);
#endif
	cr_expect(strstr(err, "overflowed") == NULL, "stderr: %s", err);
}

static int guard_name(void *arg)
{
	gx_runtime_info info;
	cr_assert_eq(gx_info(&info), 0);
	snprintf(arg, 32, "%s", info.guard);
	return 0;
}

Test(stack, guard_kind_is_forced_by_config)
{
	char name[32];
	gx_config c;
	gx_config_init(&c);
	c.guard = GX_GUARD_MPROTECT;
	cr_expect_eq(gx_run(&c, guard_name, name), 0);
	cr_expect_str_eq(name, "mprotect");
	c.guard = GX_GUARD_AUTO;
	cr_expect_eq(gx_run(&c, guard_name, name), 0);
	cr_expect(strcmp(name, "madvise") == 0 || strcmp(name, "mprotect") == 0);
}
