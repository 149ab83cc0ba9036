/* gx_serve: listeners on IPv4, IPv6 and Unix sockets served by worker processes; a killed worker replaced while the others serve; SIGTERM lets requests in flight finish and cancels what outlasts the drain; SIGHUP restarts every worker without a failed request; workers that keep dying stop the server; accepted sockets carry TCP_NODELAY and SO_BUSY_POLL as configured; bad configurations are refused. */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <gonex/gonex.h>

/* ---- a server in a child process ---- */

typedef struct {
	pid_t pid;
	gx_serve_info info;
} server;

static int ready_pipe = -1;

static void on_ready(const gx_serve_info *info, void *arg)
{
	(void)arg;
	if (write(ready_pipe, info, sizeof *info) != (ssize_t)sizeof *info)
		_exit(90);
}

/* Run gx_serve(cfg, fn) in a child; return once it reports ready. The
 * child exits with gx_serve's result (negative: 100 + errno). */
static server start(gx_serve_config *cfg, gx_serve_fn fn)
{
	int p[2];
	cr_assert_eq(pipe(p), 0);
	server s = {0};
	s.pid = fork();
	cr_assert_geq(s.pid, 0);
	if (s.pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(p[0]);
		ready_pipe = p[1];
		cfg->on_ready = on_ready;
		int rc = gx_serve(cfg, fn, NULL);
		_exit(rc < 0 ? 100 + -rc : rc > 99 ? 99 : rc);
	}
	close(p[1]);
	struct pollfd pf = {.fd = p[0], .events = POLLIN};
	cr_assert_eq(poll(&pf, 1, 20000), 1, "the server never got ready");
	cr_assert_eq(read(p[0], &s.info, sizeof s.info), (ssize_t)sizeof s.info, "the server's ready report");
	close(p[0]);
	return s;
}

/* Send sig (0: none) and return the exit code, waiting at most 30 s. */
static int stop_with(server *s, int sig)
{
	kill(s->pid, sig);
	for (int i = 0; i < 3000; i++) {
		int st;
		if (waitpid(s->pid, &st, WNOHANG) == s->pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 200 + WTERMSIG(st);
		usleep(10000);
	}
	kill(s->pid, SIGKILL);
	waitpid(s->pid, NULL, 0);
	return -1;
}

/* ---- clients (plain blocking sockets) ---- */

static int dial(int family, const char *addr, int port)
{
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct timeval tv = {10, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	int rc;
	if (family == AF_UNIX) {
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		snprintf(sa.sun_path, sizeof sa.sun_path, "%s", addr);
		rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
	} else if (family == AF_INET6) {
		struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};
		inet_pton(AF_INET6, addr, &sa.sin6_addr);
		rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
	} else {
		struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
		inet_pton(AF_INET, addr, &sa.sin_addr);
		rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
	}
	if (rc < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* One exchange on a new connection: send msg, read the reply into out
 * (up to n - 1 bytes, NUL-terminated). The reply's length, or -1. */
static int ask(int family, const char *addr, int port, const char *msg, char *out, size_t n)
{
	int fd = dial(family, addr, port);
	if (fd < 0)
		return -1;
	ssize_t got = -1;
	if (send(fd, msg, strlen(msg), MSG_NOSIGNAL) == (ssize_t)strlen(msg)) {
		shutdown(fd, SHUT_WR);
		size_t at = 0;
		ssize_t r;
		while (at + 1 < n && (r = recv(fd, out + at, n - 1 - at, 0)) > 0)
			at += (size_t)r;
		out[at] = 0;
		got = (ssize_t)at;
	}
	close(fd);
	return (int)got;
}

/* ---- handlers ---- */

/* Reply "<pid> <what came>" once the client has sent everything. */
static void pid_echo(gx_serve_conn *c, void *arg)
{
	(void)arg;
	char in[256];
	size_t at = 0;
	ssize_t r;
	while (at < sizeof in && (r = gx_recv(c->fd, in + at, sizeof in - at, 0, gx_ctx_until(c->ctx))) > 0)
		at += (size_t)r;
	char out[300];
	int n = snprintf(out, sizeof out, "%d %.*s", (int)getpid(), (int)at, in);
	gx_send(c->fd, out, (size_t)n, 0, gx_ctx_until(c->ctx));
}

/* As pid_echo, 300 ms late. */
static void slow_echo(gx_serve_conn *c, void *arg)
{
	gx_sleep(300 * GX_MILLISECOND);
	pid_echo(c, arg);
}

static gx_serve_config config(int workers, const char *listen)
{
	gx_serve_config c;
	gx_serve_config_init(&c);
	c.workers = workers;
	c.pin = 0;
	c.listen[0] = listen;
	return c;
}

/* ---- tests ---- */

Test(serve, ipv4_ipv6_and_unix_listeners_are_served_by_every_worker_process, .timeout = 60)
{
	char path[64];
	snprintf(path, sizeof path, "/tmp/gx-serve-test-%d.sock", (int)getpid());
	char unix_spec[80];
	snprintf(unix_spec, sizeof unix_spec, "unix:%s", path);
	gx_serve_config c = config(2, "127.0.0.1:0");
	c.listen[1] = "[::1]:0";
	c.listen[2] = unix_spec;
	server s = start(&c, pid_echo);
	cr_assert_eq(s.info.workers, 2);
	cr_assert_eq(s.info.nlisten, 3);
	char out[300];
	for (int i = 0; i < 20; i++) {
		cr_expect_gt(ask(AF_INET, "127.0.0.1", s.info.port[0], "v4", out, sizeof out), 0);
		cr_expect(strstr(out, " v4") != NULL, "IPv4 reply: %s", out);
		cr_expect_gt(ask(AF_INET6, "::1", s.info.port[1], "v6", out, sizeof out), 0);
		cr_expect(strstr(out, " v6") != NULL, "IPv6 reply: %s", out);
		cr_expect_gt(ask(AF_UNIX, path, 0, "unix", out, sizeof out), 0);
		cr_expect(strstr(out, " unix") != NULL, "Unix reply: %s", out);
	}
	cr_expect_eq(stop_with(&s, SIGTERM), 0, "a clean drain returns 0");
	cr_expect_neq(access(path, F_OK), 0, "the Unix socket's path is removed");
}

/* The master's children (its workers) now: their count, pids in out. */
static int workers_of(pid_t master, int *out, int max)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)master, (int)master);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	int k = 0;
	for (char *t = strtok(buf, " \n"); t && k < max; t = strtok(NULL, " \n"))
		out[k++] = atoi(t);
	return k;
}

/* Wait (10 s at most) until the master has `want` workers, none of them in
 * old[0..nold): true when it does. */
static bool workers_without(pid_t master, int want, const int *old, int nold)
{
	for (int t = 0; t < 1000; t++) {
		int now[16], n = workers_of(master, now, 16), fresh = 0;
		for (int i = 0; i < n; i++) {
			bool known = false;
			for (int k = 0; k < nold; k++)
				known |= now[i] == old[k];
			fresh += !known;
		}
		if (n == want && fresh == want)
			return true;
		usleep(10000);
	}
	return false;
}

static void killed_worker_replaced(int reuseport)
{
	gx_serve_config c = config(2, "127.0.0.1:0");
	c.reuseport = reuseport;
	server s = start(&c, pid_echo);
	int before[16];
	cr_assert_eq(workers_of(s.pid, before, 16), 2, "two workers");
	char out[300];
	int failed = 0;
	for (int i = 0; i < 200; i++) {
		if (i == 50)
			kill(before[0], SIGKILL);
		failed += ask(AF_INET, "127.0.0.1", s.info.port[0], "y", out, sizeof out) <= 0;
	}
	/* a connection the dead worker had accepted dies with it (one client
	 * here, so at most the one in flight and one accepted as it died) */
	cr_expect_leq(failed, 2, "requests failed around the kill: %d of 200", failed);
	cr_expect(workers_without(s.pid, 2, before, 1), "two workers again, the dead one replaced");
	failed = 0;
	for (int i = 0; i < 200; i++)
		failed += ask(AF_INET, "127.0.0.1", s.info.port[0], "y", out, sizeof out) <= 0;
	cr_expect_eq(failed, 0, "requests failed once it was replaced: %d of 200", failed);
	cr_expect_eq(stop_with(&s, SIGTERM), 0);
}

Test(serve, a_killed_worker_is_replaced_and_the_others_keep_serving, .timeout = 60)
{
	killed_worker_replaced(1);
}

Test(serve, a_killed_worker_is_replaced_with_one_shared_socket_too, .timeout = 60)
{
	killed_worker_replaced(0);
}

/* Connections that wait in the kernel's queue of a worker that dies are
 * served by its replacement: the worker is stopped (it accepts nothing),
 * 20 clients connect and send, then it is killed. */
static void queued_connections_survive(int reuseport)
{
	gx_serve_config c = config(2, "127.0.0.1:0");
	c.reuseport = reuseport;
	server s = start(&c, pid_echo);
	int w[16];
	cr_assert_eq(workers_of(s.pid, w, 16), 2, "two workers");
	kill(w[0], SIGSTOP);
	usleep(20000);
	int fd[20];
	for (int i = 0; i < 20; i++) {
		fd[i] = dial(AF_INET, "127.0.0.1", s.info.port[0]);
		cr_assert_geq(fd[i], 0);
		cr_assert_eq(send(fd[i], "q", 1, MSG_NOSIGNAL), 1);
		shutdown(fd[i], SHUT_WR);
	}
	usleep(50000);
	kill(w[0], SIGKILL);
	int answered = 0, by_new = 0;
	for (int i = 0; i < 20; i++) {
		char out[64] = {0};
		ssize_t n = recv(fd[i], out, sizeof out - 1, MSG_WAITALL);
		answered += n > 0 && strstr(out, " q") != NULL;
		by_new += n > 0 && atoi(out) != w[0] && atoi(out) != w[1];
		close(fd[i]);
	}
	cr_expect_eq(answered, 20, "connections answered: %d of 20", answered);
	if (reuseport) /* the dead worker's socket had its share of them */
		cr_expect_gt(by_new, 0, "its replacement answered some");
	cr_expect_eq(stop_with(&s, SIGTERM), 0);
}

Test(serve, connections_queued_for_a_worker_that_dies_are_served_by_its_replacement, .timeout = 60)
{
	queued_connections_survive(1);
}

Test(serve, connections_queued_on_a_shared_socket_survive_a_worker_death, .timeout = 60)
{
	queued_connections_survive(0);
}

Test(serve, sigterm_lets_a_request_in_flight_finish, .timeout = 60)
{
	gx_serve_config c = config(1, "127.0.0.1:0");
	server s = start(&c, slow_echo);
	int fd = dial(AF_INET, "127.0.0.1", s.info.port[0]);
	cr_assert_geq(fd, 0);
	cr_assert_eq(send(fd, "late", 4, MSG_NOSIGNAL), 4);
	shutdown(fd, SHUT_WR);
	usleep(50000); /* the worker has it, and sleeps */
	kill(s.pid, SIGTERM);
	char out[64] = {0};
	ssize_t n = recv(fd, out, sizeof out - 1, MSG_WAITALL);
	close(fd);
	cr_expect_gt(n, 0, "the request in flight was answered");
	cr_expect(strstr(out, " late") != NULL, "its reply: %s", out);
	int code = stop_with(&s, 0); /* the drain is under way: just wait */
	cr_expect_eq(code, 0, "nothing was cancelled (exit %d)", code);
}

/* Waits for input until its context is cancelled. */
static void stalls(gx_serve_conn *c, void *arg)
{
	(void)arg;
	char b[16];
	while (gx_recv(c->fd, b, sizeof b, 0, gx_ctx_until(c->ctx)) > 0)
		;
}

Test(serve, a_connection_that_outlasts_the_drain_is_cancelled_and_counted, .timeout = 60)
{
	gx_serve_config c = config(1, "127.0.0.1:0");
	c.drain_ns = 200 * GX_MILLISECOND;
	server s = start(&c, stalls);
	int fd = dial(AF_INET, "127.0.0.1", s.info.port[0]);
	cr_assert_geq(fd, 0);
	usleep(50000);
	cr_expect_eq(stop_with(&s, SIGTERM), 1, "gx_serve returns the one connection it cancelled");
	close(fd);
}

static void sighup_rolls(int reuseport)
{
	gx_serve_config c = config(2, "127.0.0.1:0");
	c.reuseport = reuseport;
	server s = start(&c, pid_echo);
	int before[16];
	cr_assert_eq(workers_of(s.pid, before, 16), 2, "two workers");
	char out[300];
	int failed = 0;
	for (int i = 0; i < 600; i++) {
		if (i == 100 || i == 300)
			kill(s.pid, SIGHUP);
		failed += ask(AF_INET, "127.0.0.1", s.info.port[0], "b", out, sizeof out) <= 0;
	}
	cr_expect_eq(failed, 0, "requests failed across two rolling restarts: %d of 600", failed);
	cr_expect(workers_without(s.pid, 2, before, 2), "every worker was replaced");
	cr_expect_eq(stop_with(&s, SIGTERM), 0);
}

Test(serve, sighup_restarts_every_worker_without_a_failed_request, .timeout = 120)
{
	sighup_rolls(1);
}

Test(serve, sighup_without_a_failed_request_with_one_shared_socket, .timeout = 120)
{
	sighup_rolls(0);
}

/* Kills its worker on every connection. */
static void dies(gx_serve_conn *c, void *arg)
{
	(void)c;
	(void)arg;
	_exit(3);
}

Test(serve, workers_that_keep_dying_stop_the_server_past_the_restart_limit, .timeout = 60)
{
	gx_config rt;
	gx_config_init(&rt);
	rt.restart_max = 2;
	rt.restart_window_ms = 60000;
	gx_serve_config c = config(1, "127.0.0.1:0");
	c.runtime = &rt;
	server s = start(&c, dies);
	char out[16];
	for (int i = 0; i < 6; i++) {
		ask(AF_INET, "127.0.0.1", s.info.port[0], "z", out, sizeof out);
		usleep(100000);
	}
	int st;
	int64_t end = gx_now() + 20 * GX_SECOND;
	int code = -1;
	while (gx_now() < end) {
		if (waitpid(s.pid, &st, WNOHANG) == s.pid) {
			code = WIFEXITED(st) ? WEXITSTATUS(st) : -2;
			break;
		}
		usleep(10000);
	}
	cr_expect_eq(code, 100 + ECHILD, "gx_serve returned -ECHILD (exit %d)", code);
	if (code == -1)
		stop_with(&s, SIGKILL);
}

static void never(gx_serve_conn *c, void *arg)
{
	(void)c;
	(void)arg;
}

static int inside_run(void *arg)
{
	(void)arg;
	gx_serve_config c = config(1, "127.0.0.1:0");
	return gx_serve(&c, never, NULL);
}

Test(serve, bad_configurations_are_refused_with_einval, .timeout = 30)
{
	gx_serve_config c = config(1, NULL);
	cr_expect_eq(gx_serve(&c, never, NULL), -EINVAL, "no listener");
	c = config(1, "no-port");
	cr_expect_eq(gx_serve(&c, never, NULL), -EINVAL, "not host:port");
	c = config(1, "127.0.0.1:70000");
	cr_expect_eq(gx_serve(&c, never, NULL), -EINVAL, "port out of range");
	c = config(-1, "127.0.0.1:0");
	cr_expect_eq(gx_serve(&c, never, NULL), -EINVAL, "negative workers");
	c = config(1, "127.0.0.1:0");
	cr_expect_eq(gx_serve(&c, NULL, NULL), -EINVAL, "no handler");
	c.max_conns = 0;
	cr_expect_eq(gx_serve(&c, never, NULL), -EINVAL, "max_conns 0");
	c = config(1, "127.0.0.1:0");
	c.busy_poll_us = -1;
	cr_expect_eq(gx_serve(&c, never, NULL), -EINVAL, "negative busy_poll_us");
	c.busy_poll_us = 1000001;
	cr_expect_eq(gx_serve(&c, never, NULL), -EINVAL, "busy_poll_us too large");
	c.busy_poll_us = 0;
	c.nodelay = 2;
	cr_expect_eq(gx_serve(&c, never, NULL), -EINVAL, "nodelay 2");
	cr_expect_eq(gx_serve(NULL, never, NULL), -EINVAL, "no configuration");
	cr_expect_eq(gx_run(NULL, inside_run, NULL), -EBUSY, "inside gx_run");
}

/* Reply "<TCP_NODELAY> <SO_BUSY_POLL>" as the accepted socket has them. */
static void sockopts(gx_serve_conn *c, void *arg)
{
	(void)arg;
	int nodelay = -1, busy = -1;
	socklen_t l = sizeof nodelay;
	getsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, &l);
	l = sizeof busy;
	getsockopt(c->fd, SOL_SOCKET, SO_BUSY_POLL, &busy, &l);
	char out[32];
	int n = snprintf(out, sizeof out, "%d %d", nodelay != 0, busy);
	gx_send(c->fd, out, (size_t)n, 0, gx_ctx_until(c->ctx));
}

static void expect_sockopts(int nodelay, int busy, const char *want)
{
	gx_serve_config c = config(2, "127.0.0.1:0");
	c.listen[1] = "[::1]:0";
	c.nodelay = nodelay;
	c.busy_poll_us = busy;
	server s = start(&c, sockopts);
	char out[64];
	for (int i = 0; i < 4; i++) {
		cr_expect_gt(ask(AF_INET, "127.0.0.1", s.info.port[0], "", out, sizeof out), 0);
		cr_expect_str_eq(out, want, "IPv4, nodelay %d busy_poll_us %d", nodelay, busy);
		cr_expect_gt(ask(AF_INET6, "::1", s.info.port[1], "", out, sizeof out), 0);
		cr_expect_str_eq(out, want, "IPv6, nodelay %d busy_poll_us %d", nodelay, busy);
	}
	cr_expect_eq(stop_with(&s, SIGTERM), 0);
}

Test(serve, accepted_sockets_have_nodelay_and_busy_poll_as_configured, .timeout = 60)
{
	expect_sockopts(1, 0, "1 0"); /* the defaults */
	expect_sockopts(0, 0, "0 0");
	expect_sockopts(1, 50, "1 50");
}

/* ---- gx_conn in a server, limits, figures ---- */

/* Echo each line back through the connection's buffered conn. */
static void line_echo(gx_serve_conn *c, void *arg)
{
	(void)arg;
	const char *line;
	ssize_t n;
	while ((n = gx_conn_read_until(c->conn, '\n', &line, gx_ctx_until(c->ctx))) > 0)
		gx_conn_write(c->conn, line, (size_t)n, gx_ctx_until(c->ctx));
}

/* The server's figures summed over its workers. */
static gx_serve_stats_worker totals(pid_t pid)
{
	gx_serve_stats st;
	gx_serve_stats_worker t = {0};
	cr_assert_eq(gx_serve_stats_read(pid, &st), 0, "the server's figures");
	for (int i = 0; i < st.workers; i++) {
		t.accepted += st.w[i].accepted;
		t.active += st.w[i].active;
		t.closed += st.w[i].closed;
		t.deadline += st.w[i].deadline;
		t.bytes_in += st.w[i].bytes_in;
		t.bytes_out += st.w[i].bytes_out;
		t.pid += st.w[i].pid > 0;
	}
	return t;
}

Test(serve, lines_through_gx_conn_are_counted_in_the_figures, .timeout = 60)
{
	gx_serve_config c = config(2, "127.0.0.1:0");
	server s = start(&c, line_echo);
	char out[64];
	for (int i = 0; i < 10; i++) {
		cr_expect_eq(ask(AF_INET, "127.0.0.1", s.info.port[0], "one\ntwo\n", out, sizeof out), 8);
		cr_expect_str_eq(out, "one\ntwo\n");
	}
	gx_serve_stats_worker t = {0};
	for (int i = 0; i < 100 && (t = totals(s.pid)).closed < 10; i++)
		usleep(10000);
	cr_expect_eq(t.pid, 2, "two worker pids");
	cr_expect_eq(t.accepted, 10);
	cr_expect_eq(t.closed, 10);
	cr_expect_eq(t.active, 0);
	cr_expect_eq(t.bytes_in, 80, "bytes in: %llu", (unsigned long long)t.bytes_in);
	cr_expect_eq(t.bytes_out, 80, "bytes out: %llu", (unsigned long long)t.bytes_out);
	cr_expect_eq(t.deadline, 0);
	gx_serve_stats st;
	int workers[16];
	cr_assert_eq(workers_of(s.pid, workers, 16), 2);
	cr_expect_eq(gx_serve_stats_read(workers[0], &st), 0, "a worker's pid finds the figures too");
	cr_expect_eq(st.master_pid, s.pid);
	cr_expect_eq(gx_serve_stats_read(getpid(), &st), -ENOENT, "this process serves nothing");
	cr_expect_eq(stop_with(&s, SIGTERM), 0);
}

Test(serve, idle_and_read_limits_close_connections_and_are_counted, .timeout = 60)
{
	gx_serve_config c = config(1, "127.0.0.1:0");
	c.idle_ns = 100 * GX_MILLISECOND;
	c.read_ns = 100 * GX_MILLISECOND;
	server s = start(&c, line_echo);
	int idle = dial(AF_INET, "127.0.0.1", s.info.port[0]);
	int slow = dial(AF_INET, "127.0.0.1", s.info.port[0]);
	cr_assert(idle >= 0 && slow >= 0);
	cr_assert_eq(send(slow, "half a li", 9, MSG_NOSIGNAL), 9);
	char b[16];
	int64_t t0 = gx_now();
	cr_expect_eq(recv(idle, b, sizeof b, 0), 0, "an idle connection is closed");
	cr_expect_eq(recv(slow, b, sizeof b, 0), 0, "a stalled request is closed");
	cr_expect_lt(gx_now() - t0, 5 * GX_SECOND);
	close(idle);
	close(slow);
	gx_serve_stats_worker t = {0};
	for (int i = 0; i < 100 && (t = totals(s.pid)).closed < 2; i++)
		usleep(10000);
	cr_expect_eq(t.deadline, 2, "both closed by a limit");
	cr_expect_eq(stop_with(&s, SIGTERM), 0);
}
