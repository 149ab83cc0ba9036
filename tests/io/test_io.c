/* I/O operations on the running backend: data, short reads and writes, reset, deadlines, cancellation, shutdown, futex waits. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/futex.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "testing.h"

#define RUN(fn) cr_assert_eq(gx_run(NULL, fn, NULL), 0)

static int count_fds(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	cr_assert_not_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static void pair(int sv[2])
{
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

/* ---- data ---- */

static int roundtrip(void *arg)
{
	(void)arg;
	int sv[2];
	pair(sv);
	cr_expect_eq(gx_send(sv[0], "hello", 5, 0, GX_FOREVER), 5);
	char buf[16] = {0};
	cr_expect_eq(gx_recv(sv[1], buf, 2, 0, GX_FOREVER), 2, "a short read: the buffer is smaller");
	cr_expect_eq(gx_recv(sv[1], buf + 2, sizeof buf - 2, 0, GX_FOREVER), 3);
	cr_expect_str_eq(buf, "hello");
	cr_expect_eq(gx_write(sv[1], "ab", 2, GX_FOREVER), 2);
	cr_expect_eq(gx_read(sv[0], buf, sizeof buf, GX_FOREVER), 2);
	struct iovec out[2] = {{"xy", 2}, {"z", 1}};
	cr_expect_eq(gx_writev(sv[0], out, 2, GX_FOREVER), 3);
	char a[2], b[1];
	struct iovec in[2] = {{a, 2}, {b, 1}};
	cr_expect_eq(gx_readv(sv[1], in, 2, GX_FOREVER), 3);
	cr_expect(a[0] == 'x' && a[1] == 'y' && b[0] == 'z');
	struct msghdr m = {.msg_iov = out, .msg_iovlen = 2};
	cr_expect_eq(gx_sendmsg(sv[1], &m, 0, GX_FOREVER), 3);
	struct msghdr r = {.msg_iov = in, .msg_iovlen = 2};
	cr_expect_eq(gx_recvmsg(sv[0], &r, 0, GX_FOREVER), 3);
	gx_close(sv[0]);
	cr_expect_eq(gx_recv(sv[1], buf, sizeof buf, 0, GX_FOREVER), 0, "end of stream");
	gx_close(sv[1]);
	return 0;
}

Test(io, data_round_trips_and_short_reads)
{
	RUN(roundtrip);
}

#define BIG (4 << 20)
static int pp[2];
static unsigned char *big_in;
static gx_wg drained;
static void drain_pipe(void *arg)
{
	(void)arg;
	size_t got = 0;
	while (got < BIG) {
		ssize_t n = gx_read(pp[0], big_in + got, BIG - got, GX_FOREVER);
		cr_assert_gt(n, 0, "read %zd after %zu bytes", n, got);
		got += (size_t)n;
	}
	gx_wg_done(&drained);
}

static int big_transfers(void *arg)
{
	(void)arg;
	unsigned char *out = malloc(BIG);
	big_in = malloc(BIG);
	for (size_t i = 0; i < BIG; i++)
		out[i] = (unsigned char)(i * 31 + (i >> 12));
	/* a pipe holds 64 KiB: the writes are short, write_all loops */
	cr_assert_eq(pipe2(pp, O_CLOEXEC), 0);
	memset(big_in, 0, BIG);
	gx_wg_add(&drained, 1);
	gx_go(drain_pipe, NULL);
	cr_expect_eq(gx_write_all(pp[1], out, BIG, GX_FOREVER), BIG);
	gx_wg_wait(&drained, GX_FOREVER);
	cr_expect_eq(memcmp(out, big_in, BIG), 0);
	gx_close(pp[0]);
	gx_close(pp[1]);
	/* a socket: send loops on short sends */
	int sv[2];
	pair(sv);
	pp[0] = sv[1];
	memset(big_in, 0, BIG);
	gx_wg_add(&drained, 1);
	gx_go(drain_pipe, NULL);
	cr_expect_eq(gx_send(sv[0], out, BIG, 0, GX_FOREVER), BIG);
	gx_wg_wait(&drained, GX_FOREVER);
	cr_expect_eq(memcmp(out, big_in, BIG), 0);
	gx_close(sv[0]);
	gx_close(sv[1]);
	free(out);
	free(big_in);
	return 0;
}

Test(io, short_writes_and_sends_are_completed)
{
	RUN(big_transfers);
}

/* two coroutines send 256 KiB messages on one socket: never interleaved */
#define MSG (256 << 10)
static int msock;
static void send_msg(void *arg)
{
	unsigned char *m = malloc(MSG);
	memset(m, (int)(intptr_t)arg, MSG);
	cr_expect_eq(gx_send(msock, m, MSG, 0, GX_FOREVER), MSG);
	free(m);
}

static int no_interleave(void *arg)
{
	(void)arg;
	int sv[2];
	pair(sv);
	msock = sv[0];
	gx_go(send_msg, (void *)(intptr_t)'A');
	gx_go(send_msg, (void *)(intptr_t)'B');
	unsigned char *in = malloc(2 * MSG);
	size_t got = 0;
	while (got < 2 * MSG) {
		ssize_t n = gx_recv(sv[1], in + got, 2 * MSG - got, 0, GX_FOREVER);
		cr_assert_gt(n, 0);
		got += (size_t)n;
	}
	cr_expect(in[0] == 'A' || in[0] == 'B');
	for (size_t i = 0; i < 2 * MSG; i++)
		cr_assert_eq(in[i], in[i < MSG ? 0 : MSG], "byte %zu: messages interleaved", i);
	cr_expect_neq(in[0], in[MSG]);
	free(in);
	gx_close(sv[0]);
	gx_close(sv[1]);
	return 0;
}

Test(io, concurrent_sends_never_interleave)
{
	RUN(no_interleave);
}

static int files(void *arg)
{
	(void)arg;
	char path[] = "/tmp/gonex-io-XXXXXX";
	int tmp = mkstemp(path);
	cr_assert_geq(tmp, 0);
	close(tmp);
	int fd = gx_openat(AT_FDCWD, path, O_RDWR | O_TRUNC, 0600, GX_FOREVER);
	cr_assert_geq(fd, 0);
	cr_expect_eq(gx_pwrite(fd, "0123456789", 10, 0, GX_FOREVER), 10);
	cr_expect_eq(gx_pwrite(fd, "AB", 2, 4, GX_FOREVER), 2);
	cr_expect_eq(gx_fsync(fd, GX_FOREVER), 0);
	char buf[11] = {0};
	cr_expect_eq(gx_pread(fd, buf, 10, 0, GX_FOREVER), 10);
	cr_expect_str_eq(buf, "0123AB6789");
	cr_expect_eq(gx_pread(fd, buf, 10, 100, GX_FOREVER), 0, "past the end");
	cr_expect_eq(gx_pread(fd, buf, 10, -1, GX_FOREVER), -EINVAL);
	cr_expect_eq(gx_close(fd), 0);
	cr_expect_eq(gx_openat(AT_FDCWD, "/nonexistent/x", O_RDONLY, 0, GX_FOREVER), -ENOENT);
	cr_expect_eq(gx_read(fd, buf, 1, GX_FOREVER), -EBADF, "closed");
	unlink(path);
	return 0;
}

Test(io, files_openat_pread_pwrite_fsync)
{
	RUN(files);
}

static int polling(void *arg)
{
	(void)arg;
	int p[2];
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	cr_expect_eq(gx_poll(p[0], POLLIN, gx_timeout(2 * GX_MILLISECOND)), -ETIMEDOUT);
	cr_expect(gx_poll(p[1], POLLOUT, GX_FOREVER) & POLLOUT);
	cr_assert_eq(write(p[1], "x", 1), 1);
	cr_expect(gx_poll(p[0], POLLIN, GX_FOREVER) & POLLIN);
	gx_close(p[0]);
	gx_close(p[1]);
	return 0;
}

Test(io, poll_for_readiness)
{
	RUN(polling);
}

/* ---- TCP, deadlines, reset ---- */

static int tcp(void *arg)
{
	(void)arg;
	int l = gx_listen_tcp("127.0.0.1", 0, 16, 0);
	cr_assert_geq(l, 0);
	int port = gx_local_port(l);
	cr_assert_gt(port, 0);
	cr_expect_eq(gx_accept(l, NULL, NULL, 0, gx_timeout(2 * GX_MILLISECOND)), -ETIMEDOUT,
		     "accept deadline");
	int c = gx_dial_tcp("127.0.0.1", (uint16_t)port, gx_timeout(GX_SECOND));
	cr_assert_geq(c, 0);
	struct sockaddr_in peer;
	socklen_t plen = sizeof peer;
	int s = gx_accept(l, (struct sockaddr *)&peer, &plen, 0, GX_FOREVER);
	cr_assert_geq(s, 0, "the listener stays usable after a deadline");
	cr_expect_eq(peer.sin_family, AF_INET);
	char buf[8];
	cr_expect_eq(gx_recv(c, buf, sizeof buf, 0, gx_timeout(2 * GX_MILLISECOND)), -ETIMEDOUT, "recv deadline");
	cr_expect_eq(gx_send(s, "late", 4, 0, GX_FOREVER), 4);
	cr_expect_eq(gx_recv(c, buf, sizeof buf, 0, GX_FOREVER), 4, "the fd stays usable, nothing lost");
	/* peer reset: linger 0 then close sends RST */
	struct linger lg = {1, 0};
	setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	gx_close(s);
	ssize_t r = gx_recv(c, buf, sizeof buf, 0, GX_FOREVER);
	cr_expect_eq(r, -ECONNRESET, "peer reset: %zd", r);
	cr_expect_eq(gx_send(c, "x", 1, 0, GX_FOREVER), -EPIPE, "no SIGPIPE, -EPIPE");
	gx_close(c);
	gx_close(l);
	cr_expect_eq(gx_dial_tcp("127.0.0.1", (uint16_t)port, gx_timeout(GX_SECOND)), -ECONNREFUSED);
	cr_expect_eq(gx_dial_tcp("not-an-address", 80, GX_FOREVER), -EINVAL);
	return 0;
}

Test(io, tcp_accept_connect_deadlines_and_reset)
{
	RUN(tcp);
}

static int connect_deadline(void *arg)
{
	(void)arg;
	/* a listener with a full accept queue drops further SYNs */
	int l = gx_listen_tcp("127.0.0.1", 0, 0, 0);
	cr_assert_geq(l, 0);
	int port = gx_local_port(l);
	int fds[8], n = 0, timed_out = 0;
	for (int i = 0; i < 8 && !timed_out; i++) {
		int c = gx_dial_tcp("127.0.0.1", (uint16_t)port, gx_timeout(50 * GX_MILLISECOND));
		if (c == -ETIMEDOUT)
			timed_out = 1;
		else if (c >= 0)
			fds[n++] = c;
	}
	cr_expect(timed_out, "a connect that cannot complete ends at its deadline");
	for (int i = 0; i < n; i++)
		gx_close(fds[i]);
	gx_close(l);
	return 0;
}

Test(io, connect_deadline)
{
	RUN(connect_deadline);
}

/* ---- cancellation ---- */

static ssize_t blocked_result;
static int blocked_fd;
static void blocked_recv(void *arg)
{
	(void)arg;
	char buf[4];
	blocked_result = gx_recv(blocked_fd, buf, sizeof buf, 0, GX_FOREVER);
}

static int close_cancels(void *arg)
{
	(void)arg;
	int sv[2];
	pair(sv);
	blocked_fd = sv[0];
	blocked_result = 1;
	gx_go(blocked_recv, NULL);
	gx_go(blocked_recv, NULL);
	gx_yield();
	cr_expect_eq(gx_close(sv[0]), 0, "close waits for the in-flight receives");
	gx_yield();
	cr_expect_eq(blocked_result, -ECANCELED);
	gx_close(sv[1]);
	return 0;
}

Test(io, close_cancels_in_flight_operations)
{
	RUN(close_cancels);
}

static gx_ctx *io_ctx;
static void cancel_io_ctx(void *arg)
{
	(void)arg;
	gx_yield();
	gx_ctx_cancel(io_ctx);
}

static int ctx_cancels(void *arg)
{
	(void)arg;
	int sv[2];
	pair(sv);
	gx_ctx_with_cancel(gx_ctx_background(), &io_ctx);
	gx_go(cancel_io_ctx, NULL);
	char buf[4];
	cr_expect_eq(gx_recv(sv[0], buf, sizeof buf, 0, gx_ctx_until(io_ctx)), -ECANCELED);
	gx_ctx_release(io_ctx);
	cr_expect_eq(gx_send(sv[1], "ok", 2, 0, GX_FOREVER), 2);
	cr_expect_eq(gx_recv(sv[0], buf, sizeof buf, 0, GX_FOREVER), 2, "still usable");
	gx_close(sv[0]);
	gx_close(sv[1]);
	return 0;
}

Test(io, context_cancels_an_operation)
{
	RUN(ctx_cancels);
}

#define PAIRS 100
#define PER_FD 100
static int shut_fds[PAIRS][2];
static void recv_forever(void *arg)
{
	char buf[8];
	gx_recv((int)(intptr_t)arg, buf, sizeof buf, 0, GX_FOREVER);
}

static int many_in_flight(void *arg)
{
	(void)arg;
	for (int i = 0; i < PAIRS; i++) {
		pair(shut_fds[i]);
		for (int k = 0; k < PER_FD; k++)
			cr_assert_geq(gx_go(recv_forever, (void *)(intptr_t)shut_fds[i][0]), 1);
	}
	gx_yield();
	gx_sleep(GX_MILLISECOND); /* let the loop submit them all */
	cr_expect_geq(gx_loop_get()->inflight, PAIRS * PER_FD);
	return 0; /* 10,000 receives in flight: shutdown must cancel them */
}

Test(io, ten_thousand_in_flight_operations_cancelled_at_shutdown, .timeout = 60)
{
	int before = count_fds();
	int64_t t0 = gx_now();
	gx_config c;
	gx_config_init(&c);
	c.stack_size = 16 * 1024;
	c.buf_count = 0; /* one receive SQE each, not one multishot per socket */
	cr_assert_eq(gx_run(&c, many_in_flight, NULL), 0);
	fprintf(stderr, "shutdown with %d operations in flight: %.1f ms (gx_run total)\n", PAIRS * PER_FD,
		(double)(gx_now() - t0) / 1e6);
	for (int i = 0; i < PAIRS; i++) {
		close(shut_fds[i][0]);
		close(shut_fds[i][1]);
	}
	cr_expect_eq(count_fds(), before, "no fd leaked");
}

/* ---- listener ---- */

static int listener_port;
static void dial_and_send(void *arg)
{
	int c = gx_dial_tcp("127.0.0.1", (uint16_t)listener_port, GX_FOREVER);
	cr_assert_geq(c, 0);
	char b = (char)(intptr_t)arg;
	gx_send(c, &b, 1, 0, GX_FOREVER);
	gx_close(c);
}

static int listener(void *arg)
{
	(void)arg;
	int l = gx_listen_tcp("127.0.0.1", 0, 128, 0);
	listener_port = gx_local_port(l);
	gx_listener *ls;
	cr_assert_eq(gx_listener_start(&ls, l), 0);
	for (int i = 0; i < 50; i++)
		gx_go(dial_and_send, (void *)(intptr_t)('a' + i % 26));
	int seen = 0;
	for (int i = 0; i < 50; i++) {
		int s = gx_listener_accept(ls, gx_timeout(5 * GX_SECOND));
		cr_assert_geq(s, 0, "accept %d: %d", i, s);
		char b;
		cr_expect_eq(gx_recv(s, &b, 1, 0, GX_FOREVER), 1);
		seen++;
		gx_close(s);
	}
	cr_expect_eq(seen, 50);
	cr_expect_eq(gx_listener_accept(ls, gx_timeout(2 * GX_MILLISECOND)), -ETIMEDOUT);
	cr_expect_eq(gx_listener_stop(ls), 0);
	gx_close(l);
	return 0;
}

Test(io, listener_accepts_every_connection)
{
	int before = count_fds();
	RUN(listener);
	cr_expect_eq(count_fds(), before, "no fd leaked");
}

/* A listener nobody takes from holds a few accepted connections (16, or
 * what one turn brought) and leaves the rest in the kernel's queue: another process sharing the
 * socket may take them, and they outlive this one. */
static int listener_holds(void *arg)
{
	(void)arg;
	int l = gx_listen_tcp("127.0.0.1", 0, 128, 0);
	listener_port = gx_local_port(l);
	gx_listener *ls;
	cr_assert_eq(gx_listener_start(&ls, l), 0);
	/* the kernel's multishot accept takes what is queued at once, so
	 * the first wave is held whole; the hold stops the second */
	for (int i = 0; i < 60; i++) {
		gx_go(dial_and_send, (void *)(intptr_t)'h');
		if (i == 19)
			gx_sleep(20 * GX_MILLISECOND);
	}
	gx_sleep(50 * GX_MILLISECOND);
	int plain = 0, s;
	while ((s = accept4(l, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0) {
		plain++;
		close(s);
	}
	int held = 0;
	while ((s = gx_listener_accept(ls, gx_timeout(20 * GX_MILLISECOND))) >= 0) {
		held++;
		gx_close(s);
	}
	cr_expect_eq(plain + held, 60, "every connection once: %d from the kernel, %d held", plain, held);
	cr_expect_geq(plain, 40, "the listener held %d of 60", held);
	cr_expect_eq(gx_listener_stop(ls), 0);
	gx_close(l);
	return 0;
}

Test(io, a_listener_nobody_takes_from_leaves_connections_in_the_kernel)
{
	int before = count_fds();
	RUN(listener_holds);
	cr_expect_eq(count_fds(), before, "no fd leaked");
}

/* A call whose until ended before it started, on a socket with nothing to
 * read: its error at once (the epoll backend once readied the running
 * coroutine when the cancel of the armed op completed at once: a panic). */
static int ended_before(void *arg)
{
	(void)arg;
	int sv[2];
	pair(sv);
	char b[4];
	cr_expect_eq(gx_recv(sv[0], b, sizeof b, 0, gx_deadline(0)), -ETIMEDOUT);
	gx_ctx *c;
	cr_assert_eq(gx_ctx_with_cancel(gx_ctx_background(), &c), 0);
	gx_ctx_cancel(c);
	cr_expect_eq(gx_recv(sv[0], b, sizeof b, 0, gx_ctx_until(c)), -ECANCELED);
	cr_expect_eq(gx_read(sv[0], b, sizeof b, gx_ctx_until(c)), -ECANCELED);
	cr_expect_eq(gx_poll(sv[0], POLLIN, gx_deadline(0)), -ETIMEDOUT);
	gx_ctx_release(c);
	cr_expect_eq(gx_send(sv[1], "ok", 2, 0, GX_FOREVER), 2);
	cr_expect_eq(gx_recv(sv[0], b, sizeof b, 0, gx_timeout(GX_SECOND)), 2, "the socket is still usable");
	gx_close(sv[0]);
	gx_close(sv[1]);
	return 0;
}

Test(io, a_call_whose_until_already_ended_returns_its_error)
{
	RUN(ended_before);
}

/* ---- errors ---- */

Test(io, outside_a_coroutine)
{
	char b;
	cr_expect_eq(gx_read(0, &b, 1, GX_FOREVER), -EPERM);
	cr_expect_eq(gx_accept(0, NULL, NULL, 0, GX_FOREVER), -EPERM);
}

static int bad_fds(void *arg)
{
	(void)arg;
	char b;
	cr_expect_eq(gx_read(-1, &b, 1, GX_FOREVER), -EBADF);
	cr_expect_eq(gx_recv(987654, &b, 1, 0, GX_FOREVER), -EBADF);
	return 0;
}

Test(io, bad_descriptors)
{
	RUN(bad_fds);
}

/* ---- NAPI busy polling ---- */

/* GONEX_NAPI_BUSY_US is either in force (io_uring: IORING_REGISTER_NAPI,
 * epoll: EPIOCSPARAMS, both Linux 6.9+) or listed as missing, never
 * silently dropped; and the loop serves sockets either way. */
static int napi_state(void *arg)
{
	gx_runtime_info i;
	gx_info(&i);
	int in_force = i.napi_busy_us == 50, missing = strstr(i.missing, "NAPI") != NULL;
	cr_expect(in_force != missing, "napi_busy_us %u, missing \"%s\"", i.napi_busy_us, i.missing);
	int sv[2];
	pair(sv);
	gx_send(sv[0], "x", 1, 0, GX_FOREVER);
	char b = 0;
	cr_expect_eq(gx_recv(sv[1], &b, 1, 0, gx_timeout(5 * GX_SECOND)), 1);
	gx_close(sv[0]);
	gx_close(sv[1]);
	*(int *)arg = in_force;
	return 0;
}

Test(io, napi_busy_polling_is_in_force_or_reported_missing)
{
	setenv("GONEX_NAPI_BUSY_US", "50", 1);
	setenv("GONEX_NAPI_PREFER_BUSY", "1", 1);
	int in_force = -1;
	cr_expect_eq(gx_run(NULL, napi_state, &in_force), 0);
	unsetenv("GONEX_NAPI_BUSY_US");
	unsetenv("GONEX_NAPI_PREFER_BUSY");
	struct utsname u;
	int major = 0, minor = 0;
	if (uname(&u) == 0 && sscanf(u.release, "%d.%d", &major, &minor) == 2 &&
	    (major > 6 || (major == 6 && minor >= 9)))
		cr_expect_eq(in_force, 1, "kernel %s has NAPI busy polling on both backends", u.release);
}

/* ---- registered file slots ---- */

static uint32_t fixed_in_use(void)
{
	gx_runtime_info i;
	gx_info(&i);
	return i.fixed_in_use;
}

/* With GONEX_FIXED_FILES=4: six sockets receiving at once take the four
 * slots (io_uring) and all carry their bytes; closing one end still ends
 * the peer's stream (the slot does not keep the socket alive); every slot
 * comes back, and ten more sockets one after another reuse them. */
static int fixed_slots(void *arg)
{
	(void)arg;
	gx_runtime_info i;
	gx_info(&i);
	bool uring = strcmp(i.backend, "io_uring") == 0;
	cr_expect_eq(i.fixed_files, uring ? 4u : 0u);
	int sv[6][2];
	char b[8];
	for (int k = 0; k < 6; k++) {
		pair(sv[k]);
		cr_expect_eq(gx_send(sv[k][0], "ping", 4, 0, GX_FOREVER), 4);
		cr_expect_eq(gx_recv(sv[k][1], b, sizeof b, 0, gx_timeout(5 * GX_SECOND)), 4);
	}
	cr_expect_eq(fixed_in_use(), uring ? 4u : 0u, "the receiving sockets hold every slot");
	for (int k = 0; k < 6; k++) { /* both directions, through a slot or not */
		cr_expect_eq(gx_send(sv[k][1], "pong", 4, 0, GX_FOREVER), 4);
		cr_expect_eq(gx_recv(sv[k][0], b, sizeof b, 0, gx_timeout(5 * GX_SECOND)), 4);
		cr_expect_eq(memcmp(b, "pong", 4), 0);
	}
	for (int k = 0; k < 6; k++) {
		cr_expect_eq(gx_close(sv[k][1]), 0);
		cr_expect_eq(gx_recv(sv[k][0], b, sizeof b, 0, gx_timeout(5 * GX_SECOND)), 0,
			     "the peer of a closed socket sees the end of its stream");
		cr_expect_eq(gx_close(sv[k][0]), 0);
	}
	cr_expect_eq(fixed_in_use(), 0u, "closing gives every slot back");
	for (int k = 0; k < 10; k++) {
		int p[2];
		pair(p);
		cr_expect_eq(gx_send(p[0], "again", 5, 0, GX_FOREVER), 5);
		cr_expect_eq(gx_recv(p[1], b, sizeof b, 0, gx_timeout(5 * GX_SECOND)), 5);
		cr_expect_eq(memcmp(b, "again", 5), 0);
		cr_expect_eq(fixed_in_use(), uring ? 1u : 0u);
		gx_close(p[0]);
		gx_close(p[1]);
	}
	cr_expect_eq(fixed_in_use(), 0u);
	return 0;
}

Test(io, sockets_take_registered_file_slots_and_give_them_back)
{
	setenv("GONEX_FIXED_FILES", "4", 1);
	int fds = count_fds();
	RUN(fixed_slots);
	unsetenv("GONEX_FIXED_FILES");
	cr_expect_eq(count_fds(), fds, "no descriptor left behind");
}

/* ---- reads after a short read ---- */

static int sr_fd[2];

static void sr_late_writer(void *arg)
{
	(void)arg;
	gx_sleep(20 * GX_MILLISECOND);
	cr_expect_eq(gx_send(sr_fd[0], "late", 4, 0, GX_FOREVER), 4);
	gx_sleep(20 * GX_MILLISECOND);
	cr_expect_eq(gx_send(sr_fd[0], "last", 4, 0, GX_FOREVER), 4);
	shutdown(sr_fd[0], SHUT_WR);
}

static int sr_pipe, sr_end;

static void sr_bye(void *arg)
{
	(void)arg;
	gx_sleep(20 * GX_MILLISECOND);
	cr_expect_eq(send(sr_end, "hello", 5, MSG_NOSIGNAL), 5);
	shutdown(sr_end, SHUT_WR);
}

static void sr_pipe_writer(void *arg)
{
	(void)arg;
	gx_sleep(20 * GX_MILLISECOND);
	cr_expect_eq(gx_write(sr_pipe, "z", 1, GX_FOREVER), 1);
	gx_sleep(20 * GX_MILLISECOND);
	gx_close(sr_pipe);
}

/* A read that got fewer bytes than it asked for emptied the socket (the
 * epoll backend then waits for the next event instead of trying): bytes
 * that come later are still read, a short MSG_PEEK leaves them to be read
 * at once, and data followed at once by the peer's end gives the data
 * and then 0, never a wait that does not end. */
static int short_reads(void *arg)
{
	(void)arg;
	char b[64];
	gx_until t = gx_timeout(5 * GX_SECOND);
	pair(sr_fd);
	cr_expect_eq(gx_send(sr_fd[0], "abc", 3, 0, GX_FOREVER), 3);
	cr_expect_eq(gx_recv(sr_fd[1], b, sizeof b, 0, t), 3, "a short read");
	gx_go(sr_late_writer, NULL);
	cr_expect_eq(gx_recv(sr_fd[1], b, sizeof b, 0, t), 4, "bytes that come after it");
	cr_expect_eq(memcmp(b, "late", 4), 0);
	cr_expect_eq(gx_recv(sr_fd[1], b, 2, MSG_PEEK, t), 2, "a peek");
	cr_expect_eq(gx_recv(sr_fd[1], b, sizeof b, MSG_PEEK, t), 4, "a short peek");
	cr_expect_eq(gx_recv(sr_fd[1], b, sizeof b, 0, t), 4, "what the peek left");
	cr_expect_eq(memcmp(b, "last", 4), 0);
	cr_expect_eq(gx_recv(sr_fd[1], b, sizeof b, 0, t), 0, "then the end");
	gx_close(sr_fd[0]);
	gx_close(sr_fd[1]);
	/* data and the end in one event: a waiting read takes part of the
	 * data, a second read the rest (short), the third the end */
	int p[2];
	pair(p);
	sr_end = p[0];
	gx_go(sr_bye, NULL);
	cr_expect_eq(gx_recv(p[1], b, 2, 0, t), 2, "part of the bytes");
	cr_expect_eq(gx_recv(p[1], b, sizeof b, 0, t), 3, "the rest");
	cr_expect_eq(gx_recv(p[1], b, sizeof b, 0, t), 0, "the end behind the bytes");
	gx_close(p[0]);
	gx_close(p[1]);
	/* the same through a pipe */
	int q[2];
	cr_assert_eq(pipe(q), 0);
	cr_expect_eq(gx_write(q[1], "xy", 2, GX_FOREVER), 2);
	cr_expect_eq(gx_read(q[0], b, sizeof b, t), 2);
	sr_pipe = q[1];
	gx_go(sr_pipe_writer, NULL);
	cr_expect_eq(gx_read(q[0], b, sizeof b, t), 1, "a pipe's later byte");
	cr_expect_eq(gx_read(q[0], b, sizeof b, t), 0, "the pipe's end");
	gx_close(q[0]);
	return 0;
}

Test(io, reads_after_a_short_read_see_later_bytes_peeks_and_the_end)
{
	RUN(short_reads);
}

/* ---- the loop's spin before sleeping ---- */

static int spin_fd[2];

static void spin_reader(void *arg)
{
	(void)arg;
	char b[8];
	cr_expect_eq(gx_recv(spin_fd[1], b, sizeof b, 0, gx_timeout(10 * GX_SECOND)), 4);
	cr_expect_eq(gx_send(spin_fd[1], "pong", 4, 0, GX_FOREVER), 4);
}

/* GONEX_LOOP_SPIN_NS=1000000: with a receive in flight and nothing
 * coming, each wait spins at most 1 ms and then sleeps, so 300 ms of
 * waiting costs far less than 300 ms of CPU (a spin that never ended
 * would cost all of it); bytes still arrive and leave. */
static int spin_then_sleep(void *arg)
{
	(void)arg;
	gx_runtime_info i;
	gx_info(&i);
	pair(spin_fd);
	gx_go(spin_reader, NULL);
	gx_yield(); /* the reader parks in its receive */
	struct rusage r0, r1;
	getrusage(RUSAGE_SELF, &r0);
	gx_sleep(300 * GX_MILLISECOND);
	getrusage(RUSAGE_SELF, &r1);
	long us = (r1.ru_utime.tv_sec - r0.ru_utime.tv_sec) * 1000000L + (r1.ru_utime.tv_usec - r0.ru_utime.tv_usec) +
		  (r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) * 1000000L + (r1.ru_stime.tv_usec - r0.ru_stime.tv_usec);
	cr_expect_lt(us, 150000, "300 ms of waiting cost %ld us of CPU (%s)", us, i.backend);
	cr_expect_eq(gx_send(spin_fd[0], "ping", 4, 0, GX_FOREVER), 4);
	char b[8];
	cr_expect_eq(gx_recv(spin_fd[0], b, sizeof b, 0, gx_timeout(10 * GX_SECOND)), 4);
	gx_close(spin_fd[0]);
	gx_close(spin_fd[1]);
	return 0;
}

Test(io, a_spinning_loop_still_sleeps_when_nothing_comes)
{
	setenv("GONEX_LOOP_SPIN_NS", "1000000", 1);
	RUN(spin_then_sleep);
	unsetenv("GONEX_LOOP_SPIN_NS");
}

/* ---- receive bundles ---- */

/* Four streams at once through small ring buffers (512 bytes, 64 of
 * them): senders write 256 KiB each in pieces of up to 8 KiB, the reader
 * takes pieces of random size from each stream in turn. With bundles a
 * completion carries several buffers, which come back to the ring out of
 * order; a buffer mapped to the wrong place in a stream shows up as a
 * wrong byte. Byte i of stream k is (i * 7 + k) & 255. */
#define BUNDLE_STREAMS 4
#define BUNDLE_BYTES (256 * 1024)

static int bundle_fd[BUNDLE_STREAMS][2];

static void bundle_send(void *arg)
{
	int k = (int)(intptr_t)arg;
	unsigned seed = 12345u + (unsigned)k;
	char buf[8192];
	for (size_t at = 0; at < BUNDLE_BYTES;) {
		size_t n = 1 + rand_r(&seed) % sizeof buf;
		if (n > BUNDLE_BYTES - at)
			n = BUNDLE_BYTES - at;
		for (size_t i = 0; i < n; i++)
			buf[i] = (char)(((at + i) * 7 + (size_t)k) & 255);
		cr_assert_eq(gx_send(bundle_fd[k][0], buf, n, 0, gx_timeout(10 * GX_SECOND)), (ssize_t)n);
		at += n;
	}
}

static int bundle_streams(void *arg)
{
	gx_runtime_info i;
	gx_info(&i);
	snprintf(arg, 160, "%s", i.missing);
	for (int k = 0; k < BUNDLE_STREAMS; k++) {
		pair(bundle_fd[k]);
		gx_go(bundle_send, (void *)(intptr_t)k);
	}
	size_t got[BUNDLE_STREAMS] = {0};
	unsigned seed = 777;
	char buf[6000];
	int bad = 0;
	for (int left = BUNDLE_STREAMS; left > 0;) {
		left = 0;
		for (int k = 0; k < BUNDLE_STREAMS; k++) {
			if (got[k] == BUNDLE_BYTES)
				continue;
			left++;
			size_t want = 1 + rand_r(&seed) % sizeof buf;
			ssize_t n = gx_recv(bundle_fd[k][1], buf, want, 0, gx_timeout(10 * GX_SECOND));
			cr_assert_gt(n, 0, "stream %d at %zu: %zd", k, got[k], n);
			for (ssize_t j = 0; j < n; j++)
				if (buf[j] != (char)(((got[k] + (size_t)j) * 7 + (size_t)k) & 255) && bad++ < 3)
					cr_expect_fail("stream %d: wrong byte at %zu", k, got[k] + (size_t)j);
			got[k] += (size_t)n;
		}
	}
	cr_expect_eq(bad, 0);
	for (int k = 0; k < BUNDLE_STREAMS; k++) {
		gx_close(bundle_fd[k][0]);
		gx_close(bundle_fd[k][1]);
	}
	return 0;
}

static void bundles_run(const char *on)
{
	setenv("GONEX_RECV_BUNDLE", on, 1);
	setenv("GONEX_BUF_SIZE", "512", 1);
	setenv("GONEX_BUF_COUNT", "64", 1);
	char missing[160] = "";
	cr_expect_eq(gx_run(NULL, bundle_streams, missing), 0);
	unsetenv("GONEX_RECV_BUNDLE");
	unsetenv("GONEX_BUF_SIZE");
	unsetenv("GONEX_BUF_COUNT");
	struct utsname u;
	int major = 0, minor = 0;
	if (on[0] == '1' && strcmp(getenv("GONEX_BACKEND") ? getenv("GONEX_BACKEND") : "", "epoll") != 0 &&
	    uname(&u) == 0 && sscanf(u.release, "%d.%d", &major, &minor) == 2 &&
	    (major > 6 || (major == 6 && minor >= 10)))
		cr_expect(strstr(missing, "RECVSEND_BUNDLE") == NULL, "kernel %s has bundles: %s", u.release,
			  missing);
}

Test(io, streams_through_receive_bundles_keep_every_byte_in_order, .timeout = 60)
{
	bundles_run("1");
}

Test(io, streams_without_receive_bundles_keep_every_byte_in_order, .timeout = 60)
{
	bundles_run("0");
}

/* ---- automatic fallback where io_uring is really denied ---- */

static int backend_name(void *arg)
{
	gx_runtime_info i;
	gx_info(&i);
	snprintf(arg, 16, "%s", i.backend);
	int sv[2];
	pair(sv);
	gx_send(sv[0], "x", 1, 0, GX_FOREVER);
	char b;
	return gx_recv(sv[1], &b, 1, 0, GX_FOREVER) == 1 ? 0 : 1;
}

Test(io, falls_back_to_epoll_when_seccomp_denies_io_uring)
{
	int out[2];
	cr_assert_eq(pipe(out), 0);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(out[1], 2);
		struct sock_filter f[] = {
			BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
			BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
			BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
			BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		};
		struct sock_fprog prog = {.len = sizeof f / sizeof f[0], .filter = f};
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog))
			_exit(3);
		unsetenv("GONEX_BACKEND");
		char name[16] = "";
		int rc = gx_run(NULL, backend_name, name);
		_exit(rc == 0 && strcmp(name, "epoll") == 0 ? 0 : 1);
	}
	close(out[1]);
	char buf[1024] = {0};
	size_t n = 0;
	ssize_t r;
	while (n < sizeof buf - 1 && (r = read(out[0], buf + n, sizeof buf - 1 - n)) > 0)
		n += (size_t)r;
	close(out[0]);
	int st;
	waitpid(pid, &st, 0);
	cr_assert(WIFEXITED(st), "status %#x", st);
	cr_expect_eq(WEXITSTATUS(st), 0, "ran on epoll (stderr: %s)", buf);
	cr_expect(strstr(buf, "io_uring unavailable (Operation not permitted), using epoll") != NULL,
		  "the fallback is reported: %s", buf);
}

/* ---- multishot receive (io_uring; plain receives on epoll) ---- */

static int mixing(void *arg)
{
	(void)arg;
	int sv[2];
	pair(sv);
	gx_send(sv[0], "abcdef", 6, 0, GX_FOREVER);
	char buf[8] = {0};
	cr_expect_eq(gx_recv(sv[1], buf, 2, 0, GX_FOREVER), 2);
	cr_expect_str_eq(buf, "ab");
	cr_expect(gx_poll(sv[1], POLLIN, GX_FOREVER) & POLLIN, "queued bytes are readable");
	char p[2] = {0};
	cr_expect_eq(gx_recv(sv[1], p, 1, MSG_PEEK, GX_FOREVER), 1);
	cr_expect_eq(p[0], 'c', "peek sees the queued bytes in order");
	char c4[4];
	struct iovec v = {c4, 4};
	cr_expect_eq(gx_readv(sv[1], &v, 1, GX_FOREVER), 4, "readv takes what was queued first");
	cr_expect_eq(memcmp(c4, "cdef", 4), 0);
	gx_send(sv[0], "gh", 2, 0, GX_FOREVER);
	memset(buf, 0, sizeof buf);
	cr_expect_eq(gx_recv(sv[1], buf, sizeof buf, 0, GX_FOREVER), 2);
	cr_expect_str_eq(buf, "gh");
	gx_close(sv[0]);
	gx_close(sv[1]);
	return 0;
}

Test(io, receive_kinds_can_be_mixed_in_order)
{
	RUN(mixing);
}

#define STREAM (1 << 20)
static int stream_fd[2];
static unsigned char *stream_out;
static void stream_writer(void *arg)
{
	(void)arg;
	cr_expect_eq(gx_send(stream_fd[0], stream_out, STREAM, 0, GX_FOREVER), STREAM);
	gx_close(stream_fd[0]);
}

static int streaming(void *arg)
{
	int64_t reader_delay = (int64_t)(intptr_t)arg;
	pair(stream_fd);
	stream_out = malloc(STREAM);
	for (size_t i = 0; i < STREAM; i++)
		stream_out[i] = (unsigned char)(i ^ (i >> 9));
	gx_go(stream_writer, NULL);
	unsigned char *in = malloc(STREAM + 1);
	size_t got = 0;
	for (;;) {
		if (reader_delay)
			gx_sleep(reader_delay); /* a slow reader: the queue fills and pauses */
		ssize_t n = gx_recv(stream_fd[1], in + got, STREAM + 1 - got, 0, GX_FOREVER);
		cr_assert_geq(n, 0, "recv: %zd", n);
		if (n == 0)
			break;
		got += (size_t)n;
	}
	cr_expect_eq(got, STREAM);
	cr_expect_eq(memcmp(in, stream_out, STREAM), 0, "every byte, in order");
	gx_close(stream_fd[1]);
	free(in);
	free(stream_out);
	return 0;
}

Test(io, stream_intact_when_ring_buffers_run_out)
{
	gx_config c;
	gx_config_init(&c);
	c.buf_count = 2; /* -ENOBUFS all the time */
	c.buf_size = 512;
	cr_assert_eq(gx_run(&c, streaming, (void *)0), 0);
}

Test(io, stream_intact_with_a_slow_reader)
{
	cr_assert_eq(gx_run(NULL, streaming, (void *)(intptr_t)(200 * GX_MICROSECOND)), 0);
}

Test(io, stream_intact_without_a_buffer_ring)
{
	gx_config c;
	gx_config_init(&c);
	c.buf_count = 0;
	cr_assert_eq(gx_run(&c, streaming, (void *)0), 0);
}

static int stop_result = 1;
static gx_listener *stop_ls;
static void accept_blocked(void *arg)
{
	(void)arg;
	stop_result = gx_listener_accept(stop_ls, GX_FOREVER);
}

static int listener_stop_wakes(void *arg)
{
	(void)arg;
	int l = gx_listen_tcp("127.0.0.1", 0, 16, 0);
	cr_assert_eq(gx_listener_start(&stop_ls, l), 0);
	gx_go(accept_blocked, NULL);
	gx_yield();
	gx_sleep(GX_MILLISECOND);
	cr_expect_eq(gx_listener_stop(stop_ls), 0);
	for (int i = 0; i < 10 && stop_result == 1; i++)
		gx_sleep(GX_MILLISECOND);
	cr_expect_eq(stop_result, -ECANCELED, "a blocked accept ends with the listener");
	gx_close(l);
	return 0;
}

Test(io, listener_stop_wakes_a_blocked_accept)
{
	RUN(listener_stop_wakes);
}

/* ---- futex waits (io_uring FUTEX_WAIT; -EOPNOTSUPP on epoll) ---- */

/* What a futex test's main saw, for the test body (a skip cannot be taken
 * from inside a coroutine). */
static struct {
	char backend[16];
	char kernel[65];
	bool unsupported; /* io_uring without IORING_OP_FUTEX_WAIT */
} FX;

/* A word in MAP_SHARED memory, as the shared arena's futex words are. */
static _Atomic uint32_t *shared_word(void)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(p, MAP_FAILED);
	return p;
}

/* Record the backend; on epoll check the refusal. True when the caller
 * goes on with io_uring futex waits: on io_uring, a wait on a value the
 * word does not hold returns at once, 0 where the kernel has the opcode. */
static bool futex_begin(_Atomic uint32_t *w)
{
	gx_runtime_info i;
	gx_info(&i);
	snprintf(FX.backend, sizeof FX.backend, "%s", i.backend);
	snprintf(FX.kernel, sizeof FX.kernel, "%s", i.kernel);
	uint32_t other = atomic_load(w) + 1;
	int rc = gx_io_futex_wait(w, other, gx_timeout(10 * GX_SECOND));
	if (strcmp(i.backend, "io_uring") != 0) {
		cr_expect_eq(rc, -EOPNOTSUPP, "epoll has no futex waits: %d", rc);
		cr_expect_eq(gx_io_futex_wait(w, other - 1, GX_FOREVER), -EOPNOTSUPP, "nor a parked one");
		cr_expect_eq(gx_loop_get()->inflight, 0);
		return false;
	}
	if (rc == -EOPNOTSUPP) {
		FX.unsupported = true;
		cr_expect_eq(gx_io_futex_wait(w, other - 1, GX_FOREVER), -EOPNOTSUPP, "later calls fail fast");
		return false;
	}
	cr_expect_eq(rc, 0, "value mismatch: 0 at once, the caller re-checks");
	return true;
}

static void futex_end(void)
{
	if (FX.unsupported)
		cr_skip_test("io_uring here lacks IORING_OP_FUTEX_WAIT (Linux 6.7+), kernel %s", FX.kernel);
}

/* The waiter parks; another coroutine of the same process runs meanwhile
 * and, only once the wait is in flight, tells a child process through a
 * pipe to set the word and FUTEX_WAKE it (shared, not private). The pipe
 * write goes into the SQ after the futex wait, so the kernel has queued
 * the waiter before the child can read: the child's wake must find it. */
static struct {
	_Atomic uint32_t *word;
	int go_fd;
	int rc;
	int ran;       /* steps the other coroutine made */
	int ran_seen;  /* ... when the wait returned */
	bool returned;
	gx_wg wg;
} XW = {.rc = 1};

static void xw_waiter(void *arg)
{
	(void)arg;
	XW.rc = gx_io_futex_wait(XW.word, 0, gx_timeout(10 * GX_SECOND));
	XW.ran_seen = XW.ran;
	XW.returned = true;
	gx_wg_done(&XW.wg);
}

static void xw_other(void *arg)
{
	(void)arg;
	while (gx_loop_get()->inflight == 0 && !XW.returned)
		gx_yield();
	XW.ran++; /* the waiter is parked and this process still runs */
	cr_expect_eq(gx_write(XW.go_fd, "w", 1, GX_FOREVER), 1);
	XW.ran++;
	gx_wg_done(&XW.wg);
}

static int cross_process_wake(void *arg)
{
	(void)arg;
	if (!futex_begin(XW.word))
		return 0;
	gx_wg_add(&XW.wg, 2);
	gx_go(xw_waiter, NULL);
	gx_go(xw_other, NULL);
	cr_expect_eq(gx_wg_wait(&XW.wg, GX_FOREVER), 0);
	cr_expect_eq(XW.rc, 0, "woken: %d", XW.rc);
	cr_expect_gt(XW.ran_seen, 0, "another coroutine ran while the wait was parked");
	cr_expect_eq(atomic_load(XW.word), 1);
	cr_expect_eq(gx_loop_get()->inflight, 0);
	return 0;
}

/* End a forked child with code by exec, not _exit: under valgrind
 * (--trace-children) a copy of the Criterion runner that exits reports the
 * runner's own blocks as leaks. */
static void child_exit(int code)
{
	char c[2] = {(char)('0' + code), '\0'};
	execl("/bin/sh", "sh", "-c", "exit $0", c, (char *)NULL);
	_exit(code);
}

Test(io, futex_wait_woken_by_another_process)
{
	XW.word = shared_word();
	int p[2];
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		close(p[1]);
		char b;
		if (read(p[0], &b, 1) != 1)
			child_exit(3); /* never asked */
		atomic_store(XW.word, 1);
		long n = syscall(SYS_futex, XW.word, FUTEX_WAKE, 1, NULL, NULL, 0);
		child_exit(n == 1 ? 0 : n == 0 ? 1 : 2);
	}
	close(p[0]);
	XW.go_fd = p[1];
	RUN(cross_process_wake);
	close(p[1]); /* a child never asked reads end of file */
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st), "status %#x", st);
	futex_end();
	if (strcmp(FX.backend, "io_uring") == 0)
		cr_expect_eq(WEXITSTATUS(st), 0, "the child's FUTEX_WAKE woke one waiter (exit %d: 1 = none)",
			     WEXITSTATUS(st));
	else
		cr_expect_eq(WEXITSTATUS(st), 3, "epoll: the child is never asked to wake");
	munmap((void *)XW.word, 4096);
}

/* Return once every op armed before the call is in the kernel: a poll
 * armed now queues behind them, and io_uring issues SQEs in order. */
static void wait_submitted(void)
{
	int p[2];
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	cr_expect(gx_poll(p[1], POLLOUT, GX_FOREVER) & POLLOUT);
	gx_close(p[0]);
	gx_close(p[1]);
}

/* A wake from this process once the wait is in the kernel. */
static long local_woken = -1;
static void local_wake(void *arg)
{
	_Atomic uint32_t *w = arg;
	while (gx_loop_get()->inflight == 0)
		gx_yield();
	wait_submitted();
	atomic_store(w, 7);
	local_woken = syscall(SYS_futex, w, FUTEX_WAKE, 1, NULL, NULL, 0);
}

static int futex_ends(void *arg)
{
	_Atomic uint32_t *w = arg;
	atomic_store(w, 5);
	if (!futex_begin(w))
		return 0;
	cr_expect_eq(gx_io_futex_wait(w, 5, gx_timeout(2 * GX_MILLISECOND)), -ETIMEDOUT);
	cr_expect_eq(gx_loop_get()->inflight, 0, "the cancelled wait completed before the call returned");
	gx_ctx_with_cancel(gx_ctx_background(), &io_ctx);
	gx_go(cancel_io_ctx, NULL);
	cr_expect_eq(gx_io_futex_wait(w, 5, gx_ctx_until(io_ctx)), -ECANCELED);
	gx_ctx_release(io_ctx);
	cr_expect_eq(gx_loop_get()->inflight, 0);
	cr_expect_eq(gx_io_futex_wait(w, 6, gx_timeout(10 * GX_SECOND)), 0, "the word is not 6: at once");
	/* the word stays usable: a real wake still reaches a new wait */
	gx_go(local_wake, (void *)w);
	cr_expect_eq(gx_io_futex_wait(w, 5, gx_timeout(10 * GX_SECOND)), 0);
	cr_expect_eq(local_woken, 1, "the wake found the waiter: %ld", local_woken);
	cr_expect_eq(gx_loop_get()->inflight, 0);
	return 0;
}

Test(io, futex_wait_deadline_context_and_mismatch)
{
	_Atomic uint32_t *w = shared_word();
	int before = count_fds();
	cr_assert_eq(gx_run(NULL, futex_ends, (void *)w), 0);
	futex_end();
	cr_expect_eq(count_fds(), before, "no fd leaked");
	munmap((void *)w, 4096);
}

static bool forever_returned;
static void futex_forever(void *arg)
{
	gx_io_futex_wait(arg, 0, GX_FOREVER);
	forever_returned = true;
}

static int futex_parked_at_exit(void *arg)
{
	if (!futex_begin(arg))
		return 0;
	gx_go(futex_forever, arg);
	while (gx_loop_get()->inflight == 0)
		gx_yield();
	wait_submitted(); /* the kernel holds it */
	cr_expect_eq(gx_loop_get()->inflight, 1);
	cr_expect_not(forever_returned);
	return 0; /* shutdown must cancel it and wait for its completion */
}

Test(io, futex_wait_parked_at_shutdown_is_cancelled)
{
	_Atomic uint32_t *w = shared_word();
	cr_assert_eq(gx_run(NULL, futex_parked_at_exit, (void *)w), 0);
	futex_end();
	munmap((void *)w, 4096);
}

static int futex_bad_input(void *arg)
{
	_Atomic uint32_t *w = arg;
	cr_expect_eq(gx_io_futex_wait(NULL, 0, GX_FOREVER), -EFAULT);
	cr_expect_eq(gx_io_futex_wait((_Atomic uint32_t *)((char *)w + 1), 0, GX_FOREVER), -EINVAL,
		     "misaligned");
	futex_begin(w); /* and a misaligned word did not mark the opcode unknown */
	return 0;
}

Test(io, futex_wait_bad_input)
{
	_Atomic uint32_t *w = shared_word();
	cr_expect_eq(gx_io_futex_wait(w, 0, GX_FOREVER), -EPERM, "outside a coroutine");
	cr_assert_eq(gx_run(NULL, futex_bad_input, (void *)w), 0);
	futex_end();
	munmap((void *)w, 4096);
}

/* ---- regressions ---- */

static int turn_fd;
static ssize_t turn_res[2] = {1, 1};
static void big_sender(void *arg)
{
	int i = (int)(intptr_t)arg;
	static char big[8 << 20];
	turn_res[i] = gx_send(turn_fd, big, sizeof big, 0, GX_FOREVER);
}

static int close_with_queued_senders(void *arg)
{
	(void)arg;
	int sv[2];
	pair(sv);
	turn_fd = sv[0];
	gx_go(big_sender, (void *)0); /* holds the turn, blocks: nobody reads */
	gx_go(big_sender, (void *)1); /* waits for the turn */
	gx_yield();
	gx_sleep(GX_MILLISECOND);
	cr_expect_eq(gx_close(sv[0]), 0);
	for (int i = 0; i < 20 && (turn_res[0] == 1 || turn_res[1] == 1); i++)
		gx_sleep(GX_MILLISECOND);
	cr_expect_eq(turn_res[0], -ECANCELED, "the sender in flight");
	cr_expect_eq(turn_res[1], -ECANCELED, "the sender waiting for its turn");
	gx_close(sv[1]);
	return 0;
}

Test(io, close_ends_senders_waiting_for_their_turn)
{
	RUN(close_with_queued_senders);
}

static int stop_fd;
static ssize_t stop_recv_res = 1;
static void waiting_receiver(void *arg)
{
	(void)arg;
	char b[8];
	stop_recv_res = gx_recv(stop_fd, b, sizeof b, 0, GX_FOREVER);
}

static int poll_while_receiving(void *arg)
{
	(void)arg;
	int sv[2];
	pair(sv);
	stop_fd = sv[1];
	gx_go(waiting_receiver, NULL);
	gx_yield();
	gx_sleep(GX_MILLISECOND);
	/* a poll stops the multishot; the waiting receiver must not re-arm it */
	cr_expect_eq(gx_poll(sv[1], POLLIN, gx_timeout(20 * GX_MILLISECOND)), -ETIMEDOUT,
		     "the poll ends at its deadline");
	cr_expect_eq(gx_send(sv[0], "hello", 5, 0, GX_FOREVER), 5);
	for (int i = 0; i < 50 && stop_recv_res == 1; i++)
		gx_sleep(GX_MILLISECOND);
	cr_expect_eq(stop_recv_res, 5, "the receiver still gets the bytes");
	gx_close(sv[0]);
	gx_close(sv[1]);
	return 0;
}

Test(io, poll_while_a_receiver_waits)
{
	RUN(poll_while_receiving);
}
