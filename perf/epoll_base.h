/*
 * The plain epoll loop shared by the baseline servers (httpd-epoll,
 * echo-epoll): what a careful C programmer writes without a runtime.
 * Level-triggered, non-blocking sockets, one connection record each with an
 * input buffer and pending output; a listener, a signalfd for a clean stop.
 * The servers supply on_data(c) which consumes c->in and queues output.
 */
#ifndef GX_PERF_EPOLL_BASE_H
#define GX_PERF_EPOLL_BASE_H

#include "server.h"

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
