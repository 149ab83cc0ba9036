/*
 * Running an example server (build/examples/NAME) from a test: started
 * with --port 0, its stderr in a file (so that nothing it says later can
 * hit a closed pipe), its port read from "NAME: listening on port N".
 */
#ifndef GX_TESTS_SERVE_EXAMPLE_H
#define GX_TESTS_SERVE_EXAMPLE_H

#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct example {
	pid_t pid;    /* gx_serve's master */
	pid_t worker; /* its first worker */
	int port;
	char log[64];
} example;

/* The first child of pid (a gx_serve master: its worker), 0 if none. */
static inline pid_t example_child(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)pid, (int)pid);
	FILE *f = fopen(path, "r");
	int child = 0;
	if (f) {
		if (fscanf(f, "%d", &child) != 1)
			child = 0;
		fclose(f);
	}
	return child;
}

/* Start examples/name with "--port 0" and args (NULL-terminated). */
static inline example example_start(const char *name, const char *const *args)
{
	example e = {0};
	char exe[PATH_MAX], path[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	cr_assert_gt(n, 0);
	exe[n] = 0;
	snprintf(path, sizeof path, "%s/../examples/%s", dirname(exe), name);
	cr_assert_eq(access(path, X_OK), 0, "examples/%s is built: %s", name, path);
	snprintf(e.log, sizeof e.log, "/tmp/gx-example-%d-%s.log", (int)getpid(), name);
	const char *argv[16] = {name, "--port", "0"};
	int k = 3;
	for (; args && *args && k < 15; args++)
		argv[k++] = *args;
	e.pid = fork();
	cr_assert_geq(e.pid, 0);
	if (e.pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		FILE *log = freopen(e.log, "w", stderr);
		(void)log;
		execv(path, (char *const *)argv);
		_exit(127);
	}
	char want[64];
	snprintf(want, sizeof want, "%s: listening on port %%d", name);
	for (int t = 0; t < 1000 && !e.port; t++) {
		FILE *f = fopen(e.log, "r");
		char line[256];
		while (f && fgets(line, sizeof line, f))
			if (sscanf(line, want, &e.port) == 1)
				break;
		if (f)
			fclose(f);
		if (!e.port)
			usleep(10000);
	}
	cr_assert_gt(e.port, 0, "examples/%s never said its port (log %s)", name, e.log);
	e.worker = example_child(e.pid);
	cr_assert_gt(e.worker, 0, "examples/%s has a worker", name);
	return e;
}

/* SIGTERM; expect a clean exit. */
static inline void example_stop(example *e)
{
	if (e->pid <= 0)
		return;
	kill(e->pid, SIGTERM);
	int st;
	waitpid(e->pid, &st, 0);
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the server stops cleanly on SIGTERM (status %#x)", st);
	unlink(e->log);
	e->pid = 0;
}

static inline int example_connect(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	for (int i = 0; i < 500; i++) {
		/* a fresh socket per try: one whose connect failed stays failed */
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0)
			return fd;
		close(fd);
		usleep(10000);
	}
	cr_assert_fail("cannot connect to port %d", port);
	return -1;
}

/* Read until the peer closes or timeout_ms passes without data: the
 * bytes (NUL-terminated in buf), *closed set when the peer closed. */
static inline size_t example_read(int fd, char *buf, size_t cap, int timeout_ms, int *closed)
{
	size_t n = 0;
	*closed = 0;
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, timeout_ms) <= 0)
			break;
		ssize_t r = read(fd, buf + n, cap - 1 - n);
		if (r <= 0) {
			*closed = 1;
			break;
		}
		n += (size_t)r;
		if (n >= cap - 1)
			break;
	}
	buf[n] = 0;
	return n;
}

/* Entries in /proc/PID/fd. */
static inline int example_fds(pid_t pid)
{
	char d[64];
	snprintf(d, sizeof d, "/proc/%d/fd", (int)pid);
	DIR *dir = opendir(d);
	int n = 0;
	while (dir && readdir(dir))
		n++;
	if (dir)
		closedir(dir);
	return n;
}

#endif
