/* Lost wake-ups: a process killed after it marked a wake-up as sent and before its FUTEX_WAKE (a seccomp filter kills it exactly there) leaves no sleeper asleep once repair has run, in a thread or in a coroutine; and a receive, which wakes sleeping senders without a fence, is seen by their look as soon as it claimed its place. */
#include "harness.h"

#include "../common/killpoint.h"

#include "core/testpoint.h"
#include "shm/shm.h"

/* Read /proc/PID/stat into buf: the fields after the command name (the
 * state first), NULL when unreadable. */
static char *proc_stat_fields(pid_t pid, char *buf, size_t size)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return NULL;
	size_t n = fread(buf, 1, size - 1, f);
	fclose(f);
	buf[n] = 0;
	char *rp = strrchr(buf, ')');
	return rp && rp[1] == ' ' ? rp + 2 : NULL;
}

/* The state letter of pid from /proc (R, S, Z...), '?' when unreadable. */
static char proc_state(pid_t pid)
{
	char buf[1024], *f = proc_stat_fields(pid, buf, sizeof buf);
	return f ? f[0] : '?';
}

/* Wait until the ring counted a sleep and pid is asleep in the kernel. */
static void wait_asleep(gx_ring *r, pid_t pid, uint64_t sleeps_before)
{
	int64_t end = gx_now() + 10 * GX_SECOND;
	for (;;) {
		gx_ring_stats s;
		cr_assert_eq(gx_ring_stats_get(r, &s), 0);
		if (s.sleeps > sleeps_before && proc_state(pid) == 'S')
			break;
		cr_assert(gx_now() < end, "the sleeper never went to sleep");
		nap_us(500);
	}
	nap_us(20000); /* and stays there: in the futex wait, not on the way */
}

/* Fork the process that will be killed at its FUTEX_WAKE: it runs fn. */
static pid_t doomed_child(void (*fn)(gx_ring *), gx_ring *r)
{
	pid_t pid = fork_child();
	if (pid == 0) {
		if (kp_kill_at_futex_wake() < 0)
			_exit(77);
		fn(r);
		_exit(0); /* it should not get here: it dies in fn */
	}
	return pid;
}

static void expect_status_killed_at_wake(int st)
{
	if (st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 77)
		cr_skip_test("seccomp filters are not allowed here");
	char b[96];
	cr_assert(st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS,
		  "the doomed process died at its FUTEX_WAKE: %s", status_str(st, b, sizeof b));
}

static void expect_killed_at_wake(pid_t pid)
{
	expect_status_killed_at_wake(reap(pid, 10));
}

/* The sleeper must still be asleep: the wake-up was really lost. */
static void expect_still_asleep(pid_t pid)
{
	nap_us(50000);
	int st;
	cr_assert_eq(waitpid(pid, &st, WNOHANG), 0, "the sleeper woke before repair: the kill point missed");
}

static void send_one(gx_ring *r)
{
	uint64_t v = 42;
	gx_ring_try_send(r, &v, 8);
}

static void recv_one(gx_ring *r)
{
	uint64_t v;
	gx_ring_try_recv(r, &v, 8, NULL);
}

static void repair_dead(gx_arena *a, pid_t pid)
{
	gx_repair_report rep;
	int rc = gx_arena_repair(a, pid, &rep);
	cr_assert_eq(rc, 1, "repair of the dead process: %d", rc);
}

Test(wakeup, a_receiver_asleep_in_a_thread_wakes_after_the_sender_died_before_its_wake, .timeout = 60)
{
	gx_arena *a = new_arena(32 * MiB);
	gx_ring *r;
	cr_assert_eq(gx_ring_create(a, &r, 8, 8, 0), 0);
	pid_t sleeper = fork_child();
	if (sleeper == 0) {
		uint64_t v = 0;
		ssize_t n = gx_ring_recv(r, &v, 8, NULL, GX_FOREVER);
		_exit(n == 8 && v == 42 ? 0 : 3);
	}
	wait_asleep(r, sleeper, 0);
	pid_t sender = doomed_child(send_one, r);
	expect_killed_at_wake(sender);
	expect_still_asleep(sleeper);
	repair_dead(a, sender);
	expect_clean_exit(sleeper, 10, "the receiver, after repair");
	gx_arena_destroy(a);
}

Test(wakeup, a_sender_asleep_on_a_full_ring_wakes_after_the_receiver_died_before_its_wake, .timeout = 60)
{
	gx_arena *a = new_arena(32 * MiB);
	gx_ring *r;
	cr_assert_eq(gx_ring_create(a, &r, 2, 8, 0), 0);
	uint64_t v = 1;
	cr_assert_eq(gx_ring_try_send(r, &v, 8), 0);
	cr_assert_eq(gx_ring_try_send(r, &v, 8), 0);
	pid_t sleeper = fork_child();
	if (sleeper == 0) {
		uint64_t w = 7;
		_exit(gx_ring_send(r, &w, 8, GX_FOREVER) == 0 ? 0 : 3);
	}
	wait_asleep(r, sleeper, 0);
	pid_t receiver = doomed_child(recv_one, r);
	expect_killed_at_wake(receiver);
	expect_still_asleep(sleeper);
	repair_dead(a, receiver);
	expect_clean_exit(sleeper, 10, "the sender, after repair");
	gx_ring_stats s;
	cr_assert_eq(gx_ring_stats_get(r, &s), 0);
	cr_expect_eq(s.queued, 2, "one taken, one more sent");
	gx_arena_destroy(a);
}

/* A receiver in a coroutine: the loop sleeps on the ring's word and the
 * arena's death count at once (io_uring FUTEX_WAITV), or polls (epoll). */
static gx_ring *co_ring;

static int co_recv_main(void *arg)
{
	(void)arg;
	uint64_t v = 0;
	ssize_t n = gx_ring_recv(co_ring, &v, 8, NULL, GX_FOREVER);
	return n == 8 && v == 42 ? 0 : 3;
}

static void coroutine_receiver(const char *backend)
{
	/* On epoll the receiver polls (timed sleeps): a poll that lands
	 * between the value's publish and the sender's look for sleepers
	 * takes the value, and the sender then owes no wake-up and exits.
	 * Such a round proves nothing either way: run it again. */
	for (int round = 0; round < 5; round++) {
		gx_arena *a = new_arena(32 * MiB);
		cr_assert_eq(gx_ring_create(a, &co_ring, 8, 8, 0), 0);
		pid_t sleeper = fork_child();
		if (sleeper == 0) {
			setenv("GONEX_BACKEND", backend, 1);
			gx_config c;
			gx_config_init(&c);
			c.workers = 0;
			int rc = gx_run(&c, co_recv_main, NULL);
			_exit(rc == 0 ? 0 : 4);
		}
		wait_asleep(co_ring, sleeper, 0);
		pid_t sender = doomed_child(send_one, co_ring);
		int st = reap(sender, 10);
		bool polled_first = st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0 && strcmp(backend, "epoll") == 0;
		if (!polled_first) {
			expect_status_killed_at_wake(st);
			repair_dead(a, sender);
		}
		expect_clean_exit(sleeper, 10, "the coroutine receiver, after repair");
		gx_arena_destroy(a);
		if (!polled_first)
			return;
	}
	cr_assert_fail("in 5 rounds the receiver always polled the value before the sender's wake");
}

Test(wakeup, a_receiver_asleep_in_a_coroutine_on_io_uring_wakes_after_repair, .timeout = 60)
{
	coroutine_receiver("uring");
}

Test(wakeup, a_receiver_asleep_in_a_coroutine_on_epoll_wakes_after_repair, .timeout = 60)
{
	coroutine_receiver("epoll");
}

/* Repair of a process that owed nothing still wakes sleepers only to let
 * them look again: nothing is delivered that was not sent. */
Test(wakeup, a_repair_wakes_sleepers_who_then_go_back_to_sleep, .timeout = 60)
{
	gx_arena *a = new_arena(32 * MiB);
	gx_ring *r;
	cr_assert_eq(gx_ring_create(a, &r, 8, 8, 0), 0);
	pid_t sleeper = fork_child();
	if (sleeper == 0) {
		uint64_t v = 0;
		ssize_t n = gx_ring_recv(r, &v, 8, NULL, GX_FOREVER);
		_exit(n == 8 && v == 9 ? 0 : 3);
	}
	wait_asleep(r, sleeper, 0);
	pid_t idle = fork_child();
	if (idle == 0) {
		gx_arena_attach(a);
		_exit(0);
	}
	expect_clean_exit(idle, 10, "a process that held a slot");
	repair_dead(a, idle);
	wait_asleep(r, sleeper, 1); /* woke, found nothing, slept again */
	uint64_t v = 9;
	cr_assert_eq(gx_ring_try_send(r, &v, 8), 0);
	expect_clean_exit(sleeper, 10, "the receiver");
	gx_arena_destroy(a);
}

/* ---- a receive's claim is room for a sleeping sender's look ---- */

/* A receive wakes the senders asleep on a full ring without a fence
 * (gx_ec_notify_claimed): its claim, a seq_cst CAS on tail, stands in.
 * That holds only if a sender's look after registering to sleep counts a
 * place claimed and not yet released as room; the spinner's look (the
 * slot alone) does not. Checked between the claim and the release. */
#if GX_TEST_POINTS
static gx_ring *claim_ring;
static int claim_hits, claim_spin_room, claim_sleeper_room;

static void look_at_claim(const char *name, void *arg)
{
	if (strcmp(name, "ring.recv.claimed") != 0 || arg != claim_ring || claim_hits++)
		return;
	claim_spin_room = gx_ring_has_room(claim_ring);
	claim_sleeper_room = gx_ring_room_claimed(claim_ring);
}
#endif

Test(wakeup, a_receive_that_claimed_its_place_is_room_for_a_sleeping_senders_look, .timeout = 60)
{
#if !GX_TEST_POINTS
	cr_skip_test("built without -Dtest_points=true");
#else
	gx_arena *a = new_arena(32 * MiB);
	cr_assert_geq(gx_arena_attach(a), 0);
	/* a ring of 4 holding 4, and one of 4 slots holding 3 (a channel's
	 * logical capacity): each full, then one receive */
	for (uint32_t lcap = 4; lcap >= 3; lcap--) {
		cr_assert_eq(gx_ring_create_lcap(a, &claim_ring, 4, 8, 0, lcap), 0);
		for (uint64_t v = 0; v < lcap; v++)
			cr_assert_eq(gx_ring_try_send(claim_ring, &v, 8), 0);
		uint64_t v = 99;
		cr_assert_eq(gx_ring_try_send(claim_ring, &v, 8), -EAGAIN, "full at %u", lcap);
		cr_expect_not(gx_ring_room_claimed(claim_ring), "no room and no claim yet (lcap %u)", lcap);
		claim_hits = 0;
		claim_spin_room = claim_sleeper_room = -1;
		gx_test_point_fn = look_at_claim;
		uint64_t got = 99;
		ssize_t n = gx_ring_try_recv(claim_ring, &got, 8, NULL);
		gx_test_point_fn = NULL;
		cr_assert_eq(n, 8);
		cr_expect_eq(got, 0);
		cr_assert_eq(claim_hits, 1, "the receive passed its claim point (lcap %u)", lcap);
		cr_expect_eq(claim_spin_room, 0, "before the release the slot is not free (lcap %u)", lcap);
		cr_expect_eq(claim_sleeper_room, 1, "the sleeper's look counts the claim (lcap %u)", lcap);
		cr_expect(gx_ring_has_room(claim_ring), "after the release the slot is free (lcap %u)", lcap);
		cr_expect_eq(gx_ring_try_send(claim_ring, &v, 8), 0);
		cr_expect_eq(gx_ring_destroy(a, claim_ring), 0);
	}
	gx_arena_destroy(a);
#endif
}

/* ---- a place claimed and never released: the waiting sender naps ---- */

/* CPU ticks (user + system) pid has used, -1 when unreadable. */
static long cpu_ticks(pid_t pid)
{
	char buf[1024], *save = NULL, *f = proc_stat_fields(pid, buf, sizeof buf);
	if (!f)
		return -1;
	long ticks = 0;
	int field = 3; /* the state */
	for (char *tok = strtok_r(f, " ", &save); tok && field <= 15; tok = strtok_r(NULL, " ", &save), field++)
		if (field == 14 || field == 15) /* utime, stime */
			ticks += atol(tok);
	return ticks;
}

/* A ring of two 8-byte slots in a, both full. */
static gx_ring *full_ring_of_two(gx_arena *a)
{
	gx_ring *r = NULL;
	cr_assert_eq(gx_ring_create(a, &r, 2, 8, 0), 0);
	for (uint64_t v = 1; v <= 2; v++)
		cr_assert_eq(gx_ring_try_send(r, &v, 8), 0);
	return r;
}

#if GX_TEST_POINTS
static void stop_at_claim(const char *name, void *arg)
{
	(void)arg;
	if (strcmp(name, "ring.recv.claimed") == 0)
		raise(SIGSTOP);
}
#endif

/* A sender's look after registering counts a place a receiver claimed as
 * room (it is woken without a fence); when that receiver is stopped (or
 * dies) between its claim and its release, the sender waits for the
 * release napping, not spinning a core, and sends once repair has
 * released the dead receiver's claim. A review found it at 80 of 100
 * ticks a second before the naps. */
Test(wakeup, a_sender_waiting_on_a_stopped_receivers_claim_naps, .timeout = 60)
{
#if !GX_TEST_POINTS
	cr_skip_test("built without -Dtest_points=true");
#else
	gx_arena *a = new_arena(32 * MiB);
	gx_ring *r = full_ring_of_two(a);
	pid_t rx = fork_child();
	if (rx == 0) {
		CHILD_CHECK(gx_arena_attach(a) >= 0, 2, "attach");
		gx_test_point_fn = stop_at_claim;
		uint64_t got;
		gx_ring_try_recv(r, &got, 8, NULL);
		_exit(0);
	}
	int st;
	cr_assert_eq(waitpid(rx, &st, WUNTRACED), rx);
	cr_assert(WIFSTOPPED(st), "the receiver stopped at its claim");
	pid_t tx = fork_child();
	if (tx == 0) {
		CHILD_CHECK(gx_arena_attach(a) >= 0, 2, "attach");
		uint64_t w = 7;
		CHILD_CHECK(gx_ring_send(r, &w, 8, gx_timeout(30 * GX_SECOND)) == 0, 3, "the send after repair");
		_exit(0);
	}
	nap_us(300000); /* past the spin and the first naps */
	long hz = sysconf(_SC_CLK_TCK), c0 = cpu_ticks(tx);
	nap_us(1000000);
	long c1 = cpu_ticks(tx);
	cr_assert_geq(c0, 0);
	cr_expect_lt(c1 - c0, hz / 4, "the waiting sender used %ld of %ld ticks in a second", c1 - c0, hz);
	kill(rx, SIGKILL);
	cr_assert_eq(waitpid(rx, &st, 0), rx);
	gx_repair_report rep;
	cr_expect_geq(gx_arena_repair(a, rx, &rep), 0);
	expect_clean_exit(tx, 10, "the sender");
	gx_arena_destroy(a);
#endif
}

/* The sleeper's look for room reads the ring's geometry twice; a ring
 * destroyed and made again at the same place between the two made the
 * second one NULL (a review's crash). Another process remakes the ring
 * under the looks for two seconds. */
Test(wakeup, a_look_for_room_survives_its_ring_being_made_again_under_it, .timeout = 60)
{
	gx_arena *a = new_arena(32 * MiB);
	gx_ring *r = full_ring_of_two(a);
	uint64_t v = 1;
	pid_t looker = fork_child();
	if (looker == 0) {
		CHILD_CHECK(gx_arena_attach(a) >= 0, 2, "attach");
		for (int64_t end = gx_now() + 2 * GX_SECOND; gx_now() < end;)
			for (int i = 0; i < 10000; i++)
				(void)gx_ring_room_claimed(r);
		_exit(0);
	}
	pid_t remaker = fork_child();
	if (remaker == 0) {
		CHILD_CHECK(gx_arena_attach(a) >= 0, 2, "attach");
		for (int64_t end = gx_now() + 2 * GX_SECOND; gx_now() < end;) {
			CHILD_CHECK(gx_ring_destroy(a, r) == 0, 3, "destroy");
			gx_ring *again = NULL;
			CHILD_CHECK(gx_ring_create(a, &again, 2, 8, 0) == 0, 4, "create");
			CHILD_CHECK(again == r, 5, "made again at the same place");
			gx_ring_try_send(again, &v, 8);
			gx_ring_try_send(again, &v, 8);
		}
		_exit(0);
	}
	expect_clean_exit(looker, 20, "the looker");
	expect_clean_exit(remaker, 20, "the remaker");
	gx_arena_destroy(a);
}
