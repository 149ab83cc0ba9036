/*
 * echo-load: the load generator for the echo servers. C connections each
 * send a SIZE-byte message and wait for it to come back, then send the next
 * (ping-pong), for DURATION seconds after a warm-up. One thread, epoll.
 * Prints, last:
 *   RESULT echo_msgs_per_s <n> msg/s conns=C size=S
 *   RESULT echo_p50 <us> us
 *   RESULT echo_p99 <us> us
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct {
	int fd;
	size_t got;
	int64_t sent_at;
} lc;

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void usage(void)
{
	fprintf(stderr, "usage: echo-load --port N [--conns N] [--size N] [--duration S] [--warmup S] [--cpu N]\n");
	exit(2);
}

static long arg_num(const char *s, long min, long max)
{
	char *e;
	errno = 0;
	long v = strtol(s, &e, 10);
	if (errno || *e || e == s || v < min || v > max)
		usage();
	return v;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	long port = -1, conns = 16, size = 64, duration = 5, warmup = 1, cpu = -1;
	for (int i = 1; i < argc; i++) {
		if (i + 1 >= argc)
			usage();
		const char *a = argv[i], *v = argv[++i];
		if (!strcmp(a, "--port"))
			port = arg_num(v, 1, 65535);
		else if (!strcmp(a, "--conns"))
			conns = arg_num(v, 1, 100000);
		else if (!strcmp(a, "--size"))
			size = arg_num(v, 1, 65536);
		else if (!strcmp(a, "--duration"))
			duration = arg_num(v, 1, 3600);
		else if (!strcmp(a, "--warmup"))
			warmup = arg_num(v, 0, 3600);
		else if (!strcmp(a, "--cpu"))
			cpu = arg_num(v, 0, 4095);
		else
			usage();
	}
	if (port < 0)
		usage();
	if (cpu >= 0) {
		cpu_set_t c;
		CPU_ZERO(&c);
		CPU_SET(cpu, &c);
		sched_setaffinity(0, sizeof c, &c);
	}
	char *msg = malloc((size_t)size), *buf = malloc((size_t)size);
	memset(msg, 'x', (size_t)size);
	lc *cs = calloc((size_t)conns, sizeof *cs);
	int ep = epoll_create1(0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	for (long i = 0; i < conns; i++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
			perror("echo-load: connect");
			return 1;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		cs[i].fd = fd;
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &cs[i]};
		epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
	}
	size_t cap = 1 << 20, nlat = 0;
	uint32_t *lat = malloc(cap * sizeof *lat);
	int64_t start = now_ns(), measure_from = start + warmup * 1000000000LL,
		end = measure_from + duration * 1000000000LL;
	uint64_t msgs = 0;
	for (long i = 0; i < conns; i++) {
		cs[i].sent_at = now_ns();
		if (send(cs[i].fd, msg, (size_t)size, MSG_NOSIGNAL) != size) {
			perror("echo-load: send");
			return 1;
		}
	}
	struct epoll_event evs[256];
	int64_t t;
	while ((t = now_ns()) < end) {
		int n = epoll_wait(ep, evs, 256, 100);
		for (int k = 0; k < n; k++) {
			lc *c = evs[k].data.ptr;
			ssize_t r = recv(c->fd, buf, (size_t)size - c->got, 0);
			if (r <= 0) {
				fprintf(stderr, "echo-load: connection lost\n");
				return 1;
			}
			c->got += (size_t)r;
			if (c->got < (size_t)size)
				continue;
			int64_t done = now_ns();
			if (done >= measure_from && done < end) {
				msgs++;
				if (nlat == cap) {
					cap *= 2;
					lat = realloc(lat, cap * sizeof *lat);
				}
				int64_t d = done - c->sent_at;
				lat[nlat++] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
			}
			c->got = 0;
			c->sent_at = done;
			if (send(c->fd, msg, (size_t)size, MSG_NOSIGNAL) != size) {
				perror("echo-load: send");
				return 1;
			}
		}
	}
	qsort(lat, nlat, sizeof *lat, cmp_u32);
	double secs = (double)(end - measure_from) / 1e9;
	double p50 = nlat ? lat[nlat / 2] / 1e3 : 0, p99 = nlat ? lat[(size_t)((double)nlat * 0.99)] / 1e3 : 0;
	printf("RESULT echo_msgs_per_s %.0f msg/s conns=%ld size=%ld\n", (double)msgs / secs, conns, size);
	printf("RESULT echo_p50 %.1f us\n", p50);
	printf("RESULT echo_p99 %.1f us\n", p99);
	return 0;
}
