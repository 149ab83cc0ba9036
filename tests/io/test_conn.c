/* gx_conn: lines and blocks that arrive in pieces, the end of the stream in the middle, lines longer than the buffer, corked writes that go out in one send, idle and read limits, a broken peer, large blocks; gx_sendv sends every byte. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
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
