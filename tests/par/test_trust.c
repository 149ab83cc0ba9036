/* Nothing read from the arena picks a process to signal: a peer that writes another pid where the spawner's pid is kept does not make SIGTERM of the main process kill that pid. */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testing.h"

static pid_t victim;

static int scribble_then_term_main(void *arg)
{
	(void)arg;
	gx_arena *a = gx_par_arena(0);
	cr_assert_not_null(a);
	gx_par *p = gx_arena_ptr(a, atomic_load(&gx_ah(a)->runtime_table), sizeof(gx_par));
	cr_assert_not_null(p);
	p->spawner_pid = victim; /* a peer's write */
	raise(SIGTERM);          /* the runtime's handler stops its spawner, then exits 143 */
	return 0;
}

Test(trust, sigterm_never_signals_a_pid_read_from_the_arena, .timeout = 60)
{
	victim = fork();
	cr_assert_geq(victim, 0);
	if (victim == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (;;)
			pause();
	}
	pid_t app = fork();
	cr_assert_geq(app, 0);
	if (app == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		gx_config c;
		gx_config_init(&c);
		c.workers = 1;
		_exit(gx_run(&c, scribble_then_term_main, NULL) == 0 ? 0 : 3);
	}
	int st;
	cr_assert_eq(waitpid(app, &st, 0), app);
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 128 + SIGTERM, "the program ended by its SIGTERM handler");
	struct timespec ts = {0, 100 * 1000 * 1000};
	nanosleep(&ts, NULL);
	int alive = waitpid(victim, &st, WNOHANG) == 0;
	cr_expect(alive, "the pid written into the arena was signalled: %s",
		  alive ? "" : (WIFSIGNALED(st) ? strsignal(WTERMSIG(st)) : "exited"));
	kill(victim, SIGKILL);
	waitpid(victim, &st, 0);
}
