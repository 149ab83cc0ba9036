/* examples/kv: a scripted exchange with the real redis-cli; bad RESP (negative, huge and non-numeric lengths, an unterminated array, a 1 GiB length then a close) gets an error or a close and no large allocation; a worker SIGKILLed at each step of a write leaves the shared table consistent with nothing leaked. */
#include "example.h"

#include <errno.h>

/* Run redis-cli -p port ARGS; its output (trimmed) in out. */
static void cli(int port, const char *args, char *out, size_t cap)
{
	char cmd[512];
	snprintf(cmd, sizeof cmd, "redis-cli -p %d %s 2>&1", port, args);
	FILE *p = popen(cmd, "r");
	cr_assert_not_null(p);
	size_t n = fread(out, 1, cap - 1, p);
	pclose(p);
	while (n && (out[n - 1] == '\n' || out[n - 1] == ' '))
		n--;
	out[n] = 0;
}

static void expect_cli(int port, const char *args, const char *want)
{
	char got[1024];
	cli(port, args, got, sizeof got);
	cr_expect_str_eq(got, want, "redis-cli %s", args);
}

Test(kv, a_scripted_exchange_with_redis_cli, .timeout = 60)
{
	cr_assert_eq(system("command -v redis-cli >/dev/null"), 0, "redis-cli is installed (redis-tools)");
	const char *args[] = {"--workers", "2", NULL};
	example e = example_start("kv", args);
	int p = e.port;
	expect_cli(p, "ping", "PONG");
	expect_cli(p, "ping hi", "hi");
	expect_cli(p, "echo 'two words'", "two words");
	expect_cli(p, "set k v", "OK");
	expect_cli(p, "get k", "v");
	expect_cli(p, "get nope", "");
	expect_cli(p, "set n 41", "OK");
	expect_cli(p, "incr n", "42");
	expect_cli(p, "incr fresh", "1");
	expect_cli(p, "incr k", "ERR value is not an integer or out of range");
	expect_cli(p, "set big 9223372036854775807", "OK");
	expect_cli(p, "incr big", "ERR value is not an integer or out of range");
	expect_cli(p, "mset a 1 b 2 c 3", "OK");
	expect_cli(p, "mget a b nope c", "1\n2\n\n3");
	expect_cli(p, "exists a b nope", "2");
	expect_cli(p, "del a b nope", "2");
	expect_cli(p, "exists a b", "0");
	expect_cli(p, "set t v px 150", "OK");
	expect_cli(p, "get t", "v");
	usleep(300000);
	expect_cli(p, "get t", "");
	expect_cli(p, "set e v ex 100", "OK");
	expect_cli(p, "get e", "v");
	expect_cli(p, "set x", "ERR unknown command or wrong arguments 'set'");
	expect_cli(p, "set x v px -1", "ERR syntax error");
	expect_cli(p, "nosuch", "ERR unknown command or wrong arguments 'nosuch'");
	/* every worker sees every key: 20 fresh connections land on both */
	for (int i = 0; i < 20; i++)
		expect_cli(p, "get n", "42");
	/* k, n, fresh, big, c, e: six records, the table and them in use */
	expect_cli(p, "kvcheck", "6\n7\n0");
	example_stop(&e);
}

/* ---- bad input ---- */

static long vm_kib(pid_t pid, const char *field)
{
	char path[64], line[256], want[32];
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	snprintf(want, sizeof want, "%s: %%ld kB", field);
	FILE *f = fopen(path, "r");
	long kib = -1;
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, want, &kib) == 1)
			break;
	if (f)
		fclose(f);
	return kib;
}

/* Send bytes, half-close, read what comes back until the server closes. */
static void exchange(int port, const char *bytes, size_t n, char *out, size_t cap, int *closed)
{
	int fd = example_connect(port);
	cr_assert_eq(send(fd, bytes, n, MSG_NOSIGNAL), (ssize_t)n);
	shutdown(fd, SHUT_WR);
	example_read(fd, out, cap, 5000, closed);
	close(fd);
}

Test(kv, bad_resp_gets_an_error_or_a_close_and_no_large_allocation, .timeout = 60)
{
	example e = example_start("kv", NULL);
	long size0 = vm_kib(e.worker, "VmSize");
	const char *bad[] = {
		"*1\r\n$-5\r\n",                 /* negative bulk length */
		"*1\r\n$536870913\r\nxx\r\n",    /* beyond 512 MiB */
		"*1\r\n$12ab\r\n",               /* not a number */
		"*x\r\n",                        /* count not a number */
		"*99999999\r\n",                 /* too many arguments */
		"*2\r\n$1073741824\r\n",         /* 1 GiB declared */
		"$3\r\nabc\r\n",                 /* a bulk outside an array: an inline command "$3", then "abc" */
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char out[512];
		int closed;
		exchange(e.port, bad[i], strlen(bad[i]), out, sizeof out, &closed);
		cr_expect(closed, "case %zu: closed", i);
		if (i < 6)
			cr_expect(strncmp(out, "-ERR Protocol error", 19) == 0, "case %zu: %s", i, out);
	}
	/* an unterminated array: the rest never comes, the client closes */
	char out[512];
	int closed;
	exchange(e.port, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n", 19, out, sizeof out, &closed);
	cr_expect(closed);
	cr_expect_eq(out[0], 0, "nothing said to half a command");
	/* a 1 GiB bulk declared, some bytes sent, then a close */
	int fd = example_connect(e.port);
	const char *huge = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1073741824\r\n";
	cr_assert_eq(send(fd, huge, strlen(huge), MSG_NOSIGNAL), (ssize_t)strlen(huge));
	char junk[65536];
	memset(junk, 'j', sizeof junk);
	send(fd, junk, sizeof junk, MSG_NOSIGNAL);
	close(fd);
	usleep(100000);
	long size1 = vm_kib(e.worker, "VmSize"), peak = vm_kib(e.worker, "VmPeak");
	cr_expect_lt(size1 - size0, 64 * 1024, "VmSize grew %ld KiB", size1 - size0);
	cr_expect_lt(peak - size0, 64 * 1024, "VmPeak is %ld KiB above the start", peak - size0);
	char ok[64];
	exchange(e.port, "PING\r\n", 6, ok, sizeof ok, &closed);
	cr_expect_str_eq(ok, "+PONG\r\n", "the server still answers");
	example_stop(&e);
}

/* ---- a worker killed inside a write ---- */

/* One RESP exchange on fd: the reply's first line in out ("" if the
 * connection ended). */
static void ask(int fd, const char *cmd, char *out, size_t cap)
{
	send(fd, cmd, strlen(cmd), MSG_NOSIGNAL);
	size_t n = 0;
	while (n + 1 < cap && recv(fd, out + n, 1, 0) == 1 && out[n] != '\n')
		n++;
	out[n] = 0;
}

static void killed_at(int step, int nth)
{
	char kp[32];
	snprintf(kp, sizeof kp, "%d,%d", step, nth);
	setenv("KV_KILL_POINT", kp, 1);
	example e = example_start("kv", NULL);
	unsetenv("KV_KILL_POINT");
	pid_t first = e.worker;
	int fd = example_connect(e.port);
	struct timeval tv = {5, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	char r[128];
	const char *script[] = {"*3\r\n$3\r\nSET\r\n$2\r\nk1\r\n$2\r\nv1\r\n", "*3\r\n$3\r\nSET\r\n$2\r\nk2\r\n$2\r\nv2\r\n",
				"*3\r\n$3\r\nSET\r\n$2\r\nk1\r\n$3\r\nv1b\r\n", "*2\r\n$3\r\nDEL\r\n$2\r\nk2\r\n"};
	int answered = 0;
	for (int i = 0; i < 4; i++) {
		ask(fd, script[i], r, sizeof r);
		if (!r[0])
			break;
		answered++;
	}
	close(fd);
	cr_expect_lt(answered, 4, "step %d: the worker died inside a write", step);
	for (int t = 0; t < 500 && ((e.worker = example_child(e.pid)) == 0 || e.worker == first); t++)
		usleep(10000);
	cr_assert_neq(e.worker, first, "step %d: replaced", step);
	/* the table after the kill: k1 old or new, k2 there or deleted */
	char got[256];
	cli(e.port, "get k1", got, sizeof got);
	cr_expect(!strcmp(got, "v1") || !strcmp(got, "v1b"), "step %d: k1 is %s", step, got);
	cli(e.port, "get k2", got, sizeof got);
	cr_expect(!strcmp(got, "v2") || !strcmp(got, ""), "step %d: k2 is %s", step, got);
	int recs = 2 - !strcmp(got, "");
	char want[32];
	snprintf(want, sizeof want, "%d\n%d\n0", recs, recs + 1);
	cli(e.port, "kvcheck", got, sizeof got);
	cr_expect_str_eq(got, want, "step %d: records, chunks in use, buckets pending", step);
	cli(e.port, "set k1 after", got, sizeof got);
	cr_expect_str_eq(got, "OK", "step %d: its bucket is writable again", step);
	example_stop(&e);
}

Test(kv, a_worker_killed_at_each_step_of_a_write_leaves_the_table_whole, .timeout = 120)
{
	cr_assert_eq(system("command -v redis-cli >/dev/null"), 0, "redis-cli is installed (redis-tools)");
	for (int step = 1; step <= 4; step++)
		killed_at(step, 3); /* the third SET (it replaces k1) */
	killed_at(5, 1);            /* the first replacing SET, after it owned the old record */
	killed_at(6, 1);            /* the DEL, after its commit */
}
