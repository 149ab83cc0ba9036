/*
 * The plain epoll loop shared by the baseline servers (httpd-epoll,
 * echo-epoll): what a careful C programmer writes without a runtime.
 * Level-triggered, non-blocking sockets, one connection record each with an
 * input buffer and pending output; a listener, a signalfd for a clean stop.
 * The servers supply on_data(c) which consumes c->in and queues output.
 *
 * Their process model is the one a plain C server has without a runtime:
 * the command line of the example servers (--port, --workers, --cpu),
 * worker processes with SO_REUSEPORT (one listener each), pinning, and a
 * clean stop on SIGINT/SIGTERM. The runtime's servers are under examples/
 * on gx_serve.
 */
#ifndef GX_PERF_EPOLL_BASE_H
#define GX_PERF_EPOLL_BASE_H

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct gx_srv_opts {
	int port;
	int workers;
	int cpu;          /* -1: no pinning; else worker i runs on cpu + i */
	int read_timeout_ms;
	int idle_timeout_ms;
	int worker_index; /* set in each worker */
} gx_srv_opts;

static inline void gx_srv_usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s [--port N] [--workers N] [--cpu N] [--read-timeout MS] [--idle-timeout MS]\n"
		"  --port N          TCP port on 0.0.0.0 (default 8080)\n"
		"  --workers N       processes sharing the port with SO_REUSEPORT (default 1)\n"
		"  --cpu N           pin worker i to CPU N+i\n"
		"  --read-timeout MS close a client that sends part of a request and stalls (default 10000)\n"
		"  --idle-timeout MS close an idle keep-alive connection (default 60000)\n",
		prog);
	exit(2);
}

static inline int gx_srv_int(const char *prog, const char *s, int min, int max)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < min || v > max) {
		fprintf(stderr, "%s: '%s' is not a number in %d..%d\n", prog, s, min, max);
		gx_srv_usage(prog);
	}
	return (int)v;
}

static inline gx_srv_opts gx_srv_parse(int argc, char **argv)
{
	gx_srv_opts o = {.port = 8080, .workers = 1, .cpu = -1, .read_timeout_ms = 10000,
			 .idle_timeout_ms = 60000};
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (i + 1 >= argc)
			gx_srv_usage(argv[0]);
		const char *v = argv[++i];
		if (!strcmp(a, "--port"))
			o.port = gx_srv_int(argv[0], v, 0, 65535);
		else if (!strcmp(a, "--workers"))
			o.workers = gx_srv_int(argv[0], v, 1, 256);
		else if (!strcmp(a, "--cpu"))
			o.cpu = gx_srv_int(argv[0], v, 0, 4095);
		else if (!strcmp(a, "--read-timeout"))
			o.read_timeout_ms = gx_srv_int(argv[0], v, 1, 3600000);
		else if (!strcmp(a, "--idle-timeout"))
			o.idle_timeout_ms = gx_srv_int(argv[0], v, 1, 3600000);
		else
			gx_srv_usage(argv[0]);
	}
	return o;
}

/* A signalfd for SIGINT and SIGTERM (blocked from now on); SIGPIPE ignored. */
static inline int gx_srv_signalfd(void)
{
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGINT);
	sigaddset(&s, SIGTERM);
	sigprocmask(SIG_BLOCK, &s, NULL);
	signal(SIGPIPE, SIG_IGN);
	return signalfd(-1, &s, SFD_CLOEXEC | SFD_NONBLOCK);
}

/*
 * Run serve(opts) in opts.workers processes (this one is worker 0), each
 * pinned when asked. The parent forwards SIGINT/SIGTERM to the others and
 * reaps them; children die with the parent (PR_SET_PDEATHSIG). Returns
 * worker 0's exit status.
 */
static inline int gx_srv_run(gx_srv_opts o, int (*serve)(gx_srv_opts *))
{
	pid_t kids[256];
	int nk = 0;
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGINT);
	sigaddset(&s, SIGTERM);
	sigprocmask(SIG_BLOCK, &s, NULL); /* before fork: no early death */
	for (int i = 1; i < o.workers; i++) {
		pid_t pid = fork();
		if (pid < 0) {
			perror("fork");
			break;
		}
		if (pid == 0) {
			prctl(PR_SET_PDEATHSIG, SIGTERM);
			o.worker_index = i;
			if (o.cpu >= 0) {
				cpu_set_t c;
				CPU_ZERO(&c);
				CPU_SET(o.cpu + i, &c);
				sched_setaffinity(0, sizeof c, &c);
			}
			_exit(serve(&o));
		}
		kids[nk++] = pid;
	}
	if (o.cpu >= 0) {
		cpu_set_t c;
		CPU_ZERO(&c);
		CPU_SET(o.cpu, &c);
		sched_setaffinity(0, sizeof c, &c);
	}
	o.worker_index = 0;
	int rc = serve(&o);
	for (int i = 0; i < nk; i++)
		kill(kids[i], SIGTERM);
	for (int i = 0; i < nk; i++)
		waitpid(kids[i], NULL, 0);
	return rc;
}


#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>

typedef struct eb_conn {
	int fd;
	size_t in_len, out_len, out_off;
	int close_after; /* close once the output is flushed */
	char in[8192];
	char out[16384];
} eb_conn;

/* Consume c->in (shift what is left), append to c->out; return -1 to close
 * at once. Set c->close_after to close after the output. */
static int eb_on_data(eb_conn *c);

static int eb_listen(int port, int reuseport)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (reuseport)
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 4096) != 0) {
		perror("bind/listen");
		exit(1);
	}
	return fd;
}

static void eb_close(int ep, eb_conn *c)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c);
}

/* Write what is pending; 0 when all of it went, 1 when the socket is full,
 * -1 on error. */
static int eb_flush(eb_conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
		if (n < 0)
			return errno == EAGAIN ? 1 : -1;
		c->out_off += (size_t)n;
	}
	c->out_off = c->out_len = 0;
	return 0;
}

static int eb_serve(gx_srv_opts *o, const char *name)
{
	int lfd = eb_listen(o->port, o->workers > 1);
	int sfd = gx_srv_signalfd();
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	static int sig_tag;
	ev.data.ptr = &sig_tag;
	epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);
	if (o->worker_index == 0)
		fprintf(stderr, "%s: listening on port %d\n", name, o->port);
	struct epoll_event evs[256];
	for (;;) {
		int n = epoll_wait(ep, evs, 256, -1);
		for (int i = 0; i < n; i++) {
			if (evs[i].data.ptr == &sig_tag) {
				close(lfd);
				close(ep);
				return 0;
			}
			if (evs[i].data.ptr == NULL) {
				for (;;) {
					int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
					if (fd < 0)
						break;
					int one = 1;
					setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
					eb_conn *c = calloc(1, sizeof *c);
					c->fd = fd;
					struct epoll_event cev = {.events = EPOLLIN, .data.ptr = c};
					epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
				}
				continue;
			}
			eb_conn *c = evs[i].data.ptr;
			if (evs[i].events & EPOLLOUT) {
				int f = eb_flush(c);
				if (f < 0 || (f == 0 && c->close_after)) {
					eb_close(ep, c);
					continue;
				}
				if (f == 0) {
					struct epoll_event cev = {.events = EPOLLIN, .data.ptr = c};
					epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &cev);
				}
				continue;
			}
			ssize_t r = recv(c->fd, c->in + c->in_len, sizeof c->in - c->in_len, 0);
			if (r <= 0) {
				if (r < 0 && errno == EAGAIN)
					continue;
				eb_close(ep, c);
				continue;
			}
			c->in_len += (size_t)r;
			if (eb_on_data(c) < 0) {
				eb_close(ep, c);
				continue;
			}
			int f = eb_flush(c);
			if (f < 0 || (f == 0 && c->close_after)) {
				eb_close(ep, c);
			} else if (f == 1) {
				struct epoll_event cev = {.events = EPOLLOUT, .data.ptr = c};
				epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &cev);
			}
		}
	}
}

#endif
