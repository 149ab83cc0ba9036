/* gx_conn: lines and blocks that arrive in pieces, the end of the stream in the middle, lines longer than the buffer, corked writes that go out in one send, idle and read limits, a broken peer, large blocks; gx_sendv sends every byte. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <linux/tcp.h> /* glibc's tcp_info lacks tcpi_data_segs_out */
#include <sys/socket.h>
#include <unistd.h>

#include <gonex/gonex.h>

#define RUN(fn) cr_assert_eq(gx_run(NULL, fn, NULL), 0)

static int sv[2];

/* A peer that sends each piece with a pause between, then closes. */
typedef struct {
	const char *piece[8];
	int64_t pause;
} script;

static void peer(void *arg)
{
	script *s = arg;
	for (int i = 0; i < 8 && s->piece[i]; i++) {
		gx_send(sv[1], s->piece[i], strlen(s->piece[i]), 0, GX_FOREVER);
		gx_sleep(s->pause);
	}
	gx_shutdown(sv[1], SHUT_WR);
}

static gx_conn *open_pair(int type)
{
	cr_assert_eq(socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv), 0);
	gx_conn *c;
	cr_assert_eq(gx_conn_open(&c, sv[0], 16), 0);
	return c;
}

static void close_pair(gx_conn *c)
{
	gx_conn_free(c);
	gx_close(sv[0]);
	gx_close(sv[1]);
}

static void expect_line(gx_conn *c, const char *want)
{
	const char *p;
	ssize_t n = gx_conn_read_until(c, '\n', &p, gx_timeout(5 * GX_SECOND));
	cr_assert_eq(n, (ssize_t)strlen(want), "line \"%s\": %zd", want, n);
	cr_expect_eq(memcmp(p, want, (size_t)n), 0, "line \"%s\"", want);
}

static int lines(void *arg)
{
	(void)arg;
	gx_conn *c = open_pair(SOCK_STREAM);
	script s = {{"a\nbb", "\nccc\n", "dd", "d\ne", "nd"}, GX_MILLISECOND};
	gx_go(peer, &s);
	expect_line(c, "a\n");
	expect_line(c, "bb\n");
	expect_line(c, "ccc\n");
	expect_line(c, "ddd\n");
	const char *p;
	cr_expect_eq(gx_conn_read_until(c, '\n', &p, gx_timeout(5 * GX_SECOND)), -ENODATA,
		     "the stream ended in the middle of a line");
	cr_expect_eq(gx_conn_buffered(c, &p), 3);
	cr_expect_eq(memcmp(p, "end", 3), 0, "what came is still there");
	gx_conn_skip(c, 3);
	cr_expect_eq(gx_conn_read_until(c, '\n', &p, gx_timeout(5 * GX_SECOND)), 0, "then the end");
	close_pair(c);
	return 0;
}

Test(conn, lines_that_arrive_in_pieces)
{
	RUN(lines);
}

static int blocks(void *arg)
{
	(void)arg;
	gx_conn *c = open_pair(SOCK_STREAM);
	script s = {{"0123", "456789abcdef", "ghij"}, GX_MILLISECOND};
	gx_go(peer, &s);
	const char *p;
	cr_assert_eq(gx_conn_read_n(c, 6, &p, GX_FOREVER), 6);
	cr_expect_eq(memcmp(p, "012345", 6), 0);
	cr_assert_eq(gx_conn_read_n(c, 10, &p, GX_FOREVER), 10);
	cr_expect_eq(memcmp(p, "6789abcdef", 10), 0);
	cr_expect_eq(gx_conn_read_n(c, 17, &p, GX_FOREVER), -EMSGSIZE, "more than the buffer holds");
	cr_expect_eq(gx_conn_read_n(c, 5, &p, GX_FOREVER), -ENODATA, "4 bytes, then the end");
	char b[8];
	cr_expect_eq(gx_conn_read(c, b, sizeof b, GX_FOREVER), 4);
	cr_expect_eq(memcmp(b, "ghij", 4), 0);
	cr_expect_eq(gx_conn_read_n(c, 1, &p, GX_FOREVER), 0);
	close_pair(c);
	return 0;
}

Test(conn, exact_blocks_across_pieces)
{
	RUN(blocks);
}

static int too_long(void *arg)
{
	(void)arg;
	gx_conn *c = open_pair(SOCK_STREAM);
	script s = {{"0123456789abcdefXYZ\nok\n"}, 0};
	gx_go(peer, &s);
	const char *p;
	cr_expect_eq(gx_conn_read_until(c, '\n', &p, gx_timeout(5 * GX_SECOND)), -ENOBUFS,
		     "no delimiter in the buffer's 16 bytes");
	size_t n = gx_conn_buffered(c, &p);
	cr_expect_eq(n, 16);
	gx_conn_skip(c, n);
	expect_line(c, "XYZ\n");
	expect_line(c, "ok\n");
	close_pair(c);
	return 0;
}

Test(conn, a_line_longer_than_the_buffer_is_refused_and_skipped)
{
	RUN(too_long);
}

/* Corked: on a SOCK_SEQPACKET pair every send is one record, so the
 * peer sees how many sends the writes took. */
static int corked(void *arg)
{
	(void)arg;
	gx_conn *c = open_pair(SOCK_SEQPACKET);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(gx_conn_write(c, "abc", 3, GX_FOREVER), 3);
	cr_expect_eq(gx_conn_pending(c), 9);
	char b[64];
	cr_expect_eq(recv(sv[1], b, sizeof b, MSG_DONTWAIT), -1, "nothing sent before the conn waits");
	gx_send(sv[1], "x\n", 2, 0, GX_FOREVER);
	expect_line(c, "x\n");
	cr_expect_eq(gx_recv(sv[1], b, sizeof b, 0, GX_FOREVER), 9, "one send for three writes");
	cr_expect_eq(gx_conn_write(c, "0123456789", 10, GX_FOREVER), 10);
	cr_expect_eq(gx_conn_write(c, "0123456789", 10, GX_FOREVER), 10, "the full queue went out first");
	cr_expect_eq(gx_recv(sv[1], b, sizeof b, 0, GX_FOREVER), 10);
	cr_expect_eq(gx_conn_flush(c, GX_FOREVER), 0);
	cr_expect_eq(gx_recv(sv[1], b, sizeof b, 0, GX_FOREVER), 10);
	cr_expect_eq(gx_conn_write(c, "0123456789abcdefghij", 20, GX_FOREVER), 20, "larger than the queue");
	cr_expect_eq(gx_recv(sv[1], b, sizeof b, 0, GX_FOREVER), 20, "went out at once");
	close_pair(c);
	return 0;
}

Test(conn, writes_are_corked_until_the_conn_waits)
{
	RUN(corked);
}

/* A pipelined batch over TCP: the peer sends three lines at once, one
 * reply is written per line. The replies leave in one send, when the
 * conn has read the batch and waits: the server socket's TCP_INFO counts
 * one data segment (the multishot path once flushed before every read
 * from a provided buffer, and sent the first reply alone). */
static int batch(void *arg)
{
	(void)arg;
	int l = gx_listen_tcp("127.0.0.1", 0, 8, 0);
	cr_assert_geq(l, 0);
	struct sockaddr_in a;
	socklen_t alen = sizeof a;
	cr_assert_eq(getsockname(l, (struct sockaddr *)&a, &alen), 0);
	int cl = gx_dial_tcp("127.0.0.1", ntohs(a.sin_port), gx_timeout(5 * GX_SECOND));
	cr_assert_geq(cl, 0);
	int fd = gx_accept(l, NULL, NULL, SOCK_CLOEXEC, gx_timeout(5 * GX_SECOND));
	cr_assert_geq(fd, 0);
	int one = 1;
	cr_assert_eq(setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one), 0);
	gx_conn *c;
	cr_assert_eq(gx_conn_open(&c, fd, 64), 0);
	cr_assert_eq(gx_send(cl, "a\nb\nc\n", 6, 0, GX_FOREVER), 6);
	for (int i = 0; i < 3; i++) {
		const char *p;
		cr_assert_eq(gx_conn_read_until(c, '\n', &p, gx_timeout(5 * GX_SECOND)), 2);
		cr_assert_eq(gx_conn_write(c, "x\n", 2, GX_FOREVER), 2);
	}
	const char *p;
	cr_expect_eq(gx_conn_read_until(c, '\n', &p, gx_timeout(50 * GX_MILLISECOND)), -ETIMEDOUT);
	char b[16];
	size_t got = 0;
	while (got < 6) {
		ssize_t n = gx_recv(cl, b + got, sizeof b - got, 0, gx_timeout(5 * GX_SECOND));
		cr_assert_gt(n, 0);
		got += (size_t)n;
	}
	cr_expect_eq(memcmp(b, "x\nx\nx\n", 6), 0);
	struct tcp_info ti;
	socklen_t tlen = sizeof ti;
	cr_assert_eq(getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tlen), 0);
	cr_expect_eq(ti.tcpi_data_segs_out, 1, "three replies, one send: %u data segments", ti.tcpi_data_segs_out);
	gx_conn_free(c);
	gx_close(fd);
	gx_close(cl);
	gx_close(l);
	return 0;
}

Test(conn, replies_to_a_pipelined_batch_leave_in_one_send)
{
	RUN(batch);
}

static int limits(void *arg)
{
	(void)arg;
	gx_conn *c = open_pair(SOCK_STREAM);
	gx_conn_limits(c, 20 * GX_MILLISECOND, 0);
	const char *p;
	int64_t t0 = gx_now();
	cr_expect_eq(gx_conn_read_until(c, '\n', &p, GX_FOREVER), -ETIMEDOUT, "idle past 20 ms");
	cr_expect_geq(gx_now() - t0, 20 * GX_MILLISECOND);
	cr_expect(gx_conn_timed_out(c));
	close_pair(c);

	c = open_pair(SOCK_STREAM);
	gx_conn_limits(c, 0, 20 * GX_MILLISECOND);
	gx_send(sv[1], "par", 3, 0, GX_FOREVER);
	cr_expect_eq(gx_conn_read_until(c, '\n', &p, GX_FOREVER), -ETIMEDOUT, "stalled mid-line past 20 ms");
	cr_expect(gx_conn_timed_out(c));
	gx_send(sv[1], "t\n", 2, 0, GX_FOREVER);
	expect_line(c, "part\n");
	close_pair(c);
	return 0;
}

Test(conn, idle_and_read_limits_end_a_read)
{
	RUN(limits);
}

static int broken(void *arg)
{
	(void)arg;
	gx_conn *c = open_pair(SOCK_STREAM);
	gx_close(sv[1]);
	cr_expect_eq(gx_conn_write(c, "abc", 3, GX_FOREVER), 3, "queued");
	cr_expect_eq(gx_conn_flush(c, GX_FOREVER), -EPIPE);
	cr_expect_eq(gx_conn_write(c, "abc", 3, GX_FOREVER), -EPIPE, "broken for good");
	cr_expect_eq(gx_conn_flush(c, GX_FOREVER), -EPIPE);
	gx_conn_free(c);
	gx_close(sv[0]);
	return 0;
}

Test(conn, a_peer_that_went_away_breaks_writes)
{
	RUN(broken);
}

/* ---- large blocks and gx_sendv ---- */

#define BIG (1 << 20)

static void big_sender(void *arg)
{
	const char *data = arg;
	struct iovec v[40];
	size_t at = 0;
	for (int i = 0; i < 40; i++) {
		size_t k = i == 39 ? BIG - at : (size_t)(i * 997) % 50000;
		v[i].iov_base = (char *)data + at;
		v[i].iov_len = k;
		at += k;
	}
	cr_expect_eq(gx_sendv(sv[1], v, 40, GX_FOREVER), BIG);
	gx_shutdown(sv[1], SHUT_WR);
}

static int big(void *arg)
{
	(void)arg;
	gx_conn *c = open_pair(SOCK_STREAM);
	char *data = malloc(BIG), *got = malloc(BIG);
	for (size_t i = 0; i < BIG; i++)
		data[i] = (char)(i * 31 + i / 4096);
	gx_go(big_sender, data);
	const char *p;
	cr_assert_eq(gx_conn_read_n(c, 7, &p, GX_FOREVER), 7);
	cr_expect_eq(memcmp(p, data, 7), 0);
	cr_assert_eq(gx_conn_read_full(c, got, BIG - 7, GX_FOREVER), BIG - 7);
	cr_expect_eq(memcmp(got, data + 7, BIG - 7), 0, "every byte in order");
	cr_expect_eq(gx_conn_read_full(c, got, 1, GX_FOREVER), 0);
	free(data);
	free(got);
	close_pair(c);
	return 0;
}

Test(conn, a_megabyte_sent_by_sendv_arrives_whole)
{
	RUN(big);
}

static int bad_args(void *arg)
{
	(void)arg;
	gx_conn *c;
	cr_expect_eq(gx_conn_open(&c, -1, 0), -EINVAL);
	cr_expect_null(c);
	cr_expect_eq(gx_conn_open(&c, 0, (size_t)1 << 40), -EINVAL);
	cr_expect_eq(gx_conn_open(NULL, 0, 0), -EINVAL);
	cr_expect_eq(gx_conn_read_until(NULL, '\n', NULL, GX_FOREVER), -EINVAL);
	struct iovec v = {NULL, 1};
	cr_expect_eq(gx_sendv(0, &v, -1, GX_FOREVER), -EINVAL);
	gx_conn_free(NULL);
	return 0;
}

Test(conn, bad_arguments)
{
	RUN(bad_args);
}

/* A block of 600,000 bytes read in one piece: the buffer grows to it. */
static int grows(void *arg)
{
	(void)arg;
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	gx_conn *c;
	cr_assert_eq(gx_conn_open(&c, sv[0], BIG), 0);
	char *data = malloc(BIG);
	for (size_t i = 0; i < BIG; i++)
		data[i] = (char)(i * 13 + i / 997);
	gx_go(big_sender, data);
	const char *p;
	cr_assert_eq(gx_conn_read_until(c, data[10], &p, GX_FOREVER), 11, "a short line first");
	cr_assert_eq(gx_conn_read_n(c, 600000, &p, GX_FOREVER), 600000);
	cr_expect_eq(memcmp(p, data + 11, 600000), 0, "in one piece, in order");
	cr_assert_eq(gx_conn_read_n(c, BIG - 600011, &p, GX_FOREVER), BIG - 600011);
	cr_expect_eq(memcmp(p, data + 600011, BIG - 600011), 0, "the rest");
	free(data);
	close_pair(c);
	return 0;
}

Test(conn, a_block_larger_than_the_first_buffer_grows_it)
{
	RUN(grows);
}

/* ---- sends that do not wait ---- */

/* Replies go out while the conn reads on: a peer that asks for 400
 * replies at once and reads them slowly gets every byte, in order, while
 * the conn's sends are short and queue behind one another. */
#define NREP 400
#define REPLEN 3000

static char rep_byte(int i, int j)
{
	return (char)((i * 7 + j) % 251);
}

static void slow_reader(void *arg)
{
	(void)arg;
	static char reqs[2 * NREP]; /* in one send: 400 tiny ones would fill a
				     * Unix socket's budget while the conn
				     * waits for us to read (both stuck) */
	for (int i = 0; i < NREP; i++)
		memcpy(reqs + 2 * i, "r\n", 2);
	gx_send(sv[1], reqs, sizeof reqs, 0, GX_FOREVER);
	static char got[NREP * REPLEN];
	size_t n = 0;
	while (n < sizeof got) {
		ssize_t r = gx_recv(sv[1], got + n, sizeof got - n < 8192 ? sizeof got - n : 8192, 0, GX_FOREVER);
		if (r <= 0)
			break;
		n += (size_t)r;
		if (n % 65536 < 8192)
			gx_sleep(GX_MILLISECOND);
	}
	cr_expect_eq(n, sizeof got, "every byte came: %zu of %zu", n, sizeof got);
	size_t bad = 0;
	for (size_t k = 0; k < n; k++)
		bad += got[k] != rep_byte((int)(k / REPLEN), (int)(k % REPLEN));
	cr_expect_eq(bad, 0, "%zu bytes out of order", bad);
	gx_shutdown(sv[1], SHUT_WR);
}

static int replies_in_order(void *arg)
{
	(void)arg;
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	gx_conn *c;
	cr_assert_eq(gx_conn_open(&c, sv[0], 8192), 0);
	gx_go(slow_reader, NULL);
	char rep[REPLEN];
	const char *p;
	for (int i = 0; i < NREP; i++) {
		cr_assert_eq(gx_conn_read_until(c, '\n', &p, GX_FOREVER), 2);
		for (int j = 0; j < REPLEN; j++)
			rep[j] = rep_byte(i, j);
		cr_assert_eq(gx_conn_write(c, rep, REPLEN, GX_FOREVER), REPLEN);
	}
	cr_expect_eq(gx_conn_read_until(c, '\n', &p, GX_FOREVER), 0, "the peer's end, after every reply went");
	cr_expect_eq(gx_conn_pending(c), 0);
	close_pair(c);
	return 0;
}

Test(conn, replies_leave_in_order_while_the_conn_reads_on)
{
	RUN(replies_in_order);
}

/* The conn's send in flight holds the fd's send turn: a gx_send from
 * another coroutine goes after it, never into the middle. */
#define HALF 60000

static void other_sender(void *arg)
{
	(void)arg;
	static char b[HALF];
	memset(b, 'b', sizeof b);
	cr_expect_eq(gx_send(sv[0], b, sizeof b, 0, GX_FOREVER), HALF);
}

static void reader_after(void *arg)
{
	int *ok = arg;
	gx_sleep(20 * GX_MILLISECOND); /* both sends are waiting by now */
	static char got[2 * HALF];
	size_t n = 0;
	ssize_t r;
	while (n < sizeof got && (r = gx_recv(sv[1], got + n, sizeof got - n, 0, GX_FOREVER)) > 0)
		n += (size_t)r;
	cr_assert_eq(n, 2 * HALF);
	size_t a = 0;
	while (a < sizeof got && got[a] == 'a')
		a++;
	size_t b = a;
	while (b < sizeof got && got[b] == 'b')
		b++;
	cr_expect_eq(a, HALF, "the conn's bytes first, whole");
	cr_expect_eq(b, 2 * HALF, "then the other sender's, whole");
	*ok = 1;
	gx_shutdown(sv[1], SHUT_WR);
}

static int turn_kept(void *arg)
{
	(void)arg;
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	int small = 4096;
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
	gx_conn *c;
	cr_assert_eq(gx_conn_open(&c, sv[0], HALF), 0);
	static char a[HALF];
	memset(a, 'a', sizeof a);
	cr_assert_eq(gx_conn_write(c, a, sizeof a, GX_FOREVER), HALF);
	int ok = 0;
	gx_go(reader_after, &ok);
	const char *p;
	/* the read sends the queue on its way and waits: the send stays in
	 * flight (the peer reads only later); meanwhile another sender tries */
	gx_go(other_sender, NULL);
	cr_expect_eq(gx_conn_read_until(c, '\n', &p, GX_FOREVER), 0);
	cr_expect(ok);
	close_pair(c);
	return 0;
}

Test(conn, a_send_in_flight_keeps_the_fds_send_turn)
{
	RUN(turn_kept);
}

/* A peer that never reads: free gives up on the send after its second
 * and returns; nothing stays in flight. */
static int never_reads(void *arg)
{
	(void)arg;
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	gx_conn *c;
	cr_assert_eq(gx_conn_open(&c, sv[0], 1 << 20), 0);
	char *big = calloc(1, 1 << 20);
	cr_assert_eq(gx_conn_write(c, big, 1 << 20, GX_FOREVER), 1 << 20);
	const char *p;
	cr_expect_eq(gx_conn_read_until(c, '\n', &p, gx_timeout(10 * GX_MILLISECOND)), -ETIMEDOUT,
		     "the send went on its way, the read timed out");
	cr_expect_gt(gx_conn_pending(c), 0, "still in flight");
	int64_t t0 = gx_now();
	gx_conn_free(c);
	cr_expect_lt(gx_now() - t0, 5 * GX_SECOND, "free gave up");
	cr_expect_eq(gx_close(sv[0]), 0);
	gx_close(sv[1]);
	free(big);
	return 0;
}

Test(conn, free_gives_up_on_a_peer_that_never_reads)
{
	RUN(never_reads);
}
