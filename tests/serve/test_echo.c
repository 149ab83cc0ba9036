/* examples/echo: every byte comes back in order, in pieces and pipelined, over several connections at once. */
#include "example.h"

static example E;

static void start(void)
{
	E = example_start("echo", NULL);
}

static void stop(void)
{
	example_stop(&E);
}

TestSuite(echo, .init = start, .fini = stop, .timeout = 60);

Test(echo, every_byte_comes_back_in_order)
{
	enum { N = 4, SIZE = 200000 };
	int fd[N];
	char *out = malloc(SIZE), *in = malloc(SIZE + 2);
	for (int i = 0; i < SIZE; i++)
		out[i] = (char)(i * 7 + i / 251);
	for (int c = 0; c < N; c++)
		fd[c] = example_connect(E.port);
	/* interleave: a piece on each connection in turn, read back as we go */
	size_t sent[N] = {0}, got[N] = {0};
	for (int round = 0; round < 1000; round++) {
		for (int c = 0; c < N; c++) {
			size_t k = (size_t)(round * 131 + c * 17) % 997 + 1;
			if (sent[c] + k > SIZE)
				k = SIZE - sent[c];
			if (k && send(fd[c], out + sent[c], k, MSG_NOSIGNAL) == (ssize_t)k)
				sent[c] += k;
			ssize_t r;
			while ((r = recv(fd[c], in, SIZE, MSG_DONTWAIT)) > 0) {
				cr_assert_eq(memcmp(in, out + got[c], (size_t)r), 0, "connection %d at %zu", c, got[c]);
				got[c] += (size_t)r;
			}
		}
	}
	for (int c = 0; c < N; c++) {
		shutdown(fd[c], SHUT_WR);
		int closed;
		/* room for one byte more than the tail, so the read goes on to see the close */
		size_t r = example_read(fd[c], in, SIZE - got[c] + 2, 5000, &closed);
		cr_expect_eq(memcmp(in, out + got[c], r), 0, "connection %d's tail", c);
		got[c] += r;
		cr_expect(closed, "the server closes after the client's end");
		cr_expect_eq(got[c], sent[c], "connection %d: %zu of %zu bytes came back", c, got[c], sent[c]);
		close(fd[c]);
	}
	free(out);
	free(in);
}
