/* Stacks: overflow is caught and named, other faults keep their default behaviour. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testing.h"

static volatile int recurse_limit = 1 << 30;
static int recurse(int n)
{
	volatile char pad[256];
	pad[0] = (char)n;
	if (n >= recurse_limit)
		return n;
	return n + recurse(n + 1) + pad[0];
}

static void overflow_entry(void *arg)
{
	(void)arg;
	recurse(0);
}

static int overflow_main(void *arg)
{
	(void)arg;
	gx_go_opts o = {.stack_size = 16 * 1024, .name = "deep-recursion"};
	gx_go_with(overflow_entry, NULL, &o);
	gx_yield();
	return 0;
}

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

/* Run main_fn under gx_run in a child with stderr captured; return the wait
 * status, stderr in buf. */
static int run_child(gx_main_fn main_fn, const char *guard, char *buf, size_t len)
{
	int fds[2];
	cr_assert_eq(pipe(fds), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		dup2(fds[1], 2);
		close(fds[0]);
		if (guard)
			setenv("GONEX_GUARD", guard, 1);
		struct rlimit rl = {0, 0}; /* no core files */
		setrlimit(RLIMIT_CORE, &rl);
		gx_run(NULL, main_fn, NULL);
		_exit(0);
	}
	close(fds[1]);
	size_t n = 0;
	ssize_t r;
	while (n < len - 1 && (r = read(fds[0], buf + n, len - 1 - n)) > 0)
		n += (size_t)r;
	buf[n] = 0;
	close(fds[0]);
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	return st;
}

static void expect_overflow_report(const char *guard)
{
	char err[4096];
	int st = run_child(overflow_main, guard, err, sizeof err);
	cr_expect(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "killed by SIGABRT (status %#x)", st);
	cr_expect(strstr(err, "gonex: coroutine 2 (deep-recursion) overflowed its 16 KiB stack") != NULL,
		  "stderr: %s", err);
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
	int st = run_child(null_main, NULL, err, sizeof err);
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
