/*
 * gonex/conn.h: a buffered connection, so that protocol code stays short.
 *
 *     gx_conn *c;
 *     gx_conn_open(&c, fd, 0);
 *     const char *line;
 *     ssize_t n;
 *     while ((n = gx_conn_read_until(c, '\n', &line, gx_timeout(...))) > 0)
 *         gx_conn_write(c, line, (size_t)n);      // echo each line
 *     gx_conn_free(c);                             // flushes, not closes
 *
 * Reads hand out pointers, not copies: a line or an n-byte block is
 * returned as a pointer that stays valid until the next read call on the
 * same connection. On io_uring, where a stream socket receives into the
 * process's provided buffers (multishot receive), a read that finds its
 * whole answer in one such buffer points into it: no copy at all. What
 * spans buffers is gathered in the connection's own buffer (cap bytes,
 * which bound a line or a block).
 *
 * Writes are corked: gx_conn_write queues bytes in the connection, and
 * they go out in one send when the connection's coroutine is about to
 * wait for input (every read that has to wait flushes first), on
 * gx_conn_flush, when the queue is full, and at gx_conn_free. A
 * request-reply protocol so sends each turn's replies together, however
 * many pipelined requests the turn answered. The send before a read is
 * not waited for: it goes on while the read waits (an error it meets
 * shows at the next write or flush). gx_conn_flush, a full queue and
 * gx_conn_free wait for it; gx_conn_free gives up after 1 s and cancels
 * the rest. While a send is in flight it holds the socket's send turn: a
 * gx_send on the same fd waits for it.
 *
 * Deadlines: each call that may wait takes a gx_until. gx_conn_limits
 * adds two limits of the connection's own: a read that waits with nothing
 * buffered (between messages) waits at most idle_ns; one that waits with
 * part of a message buffered ends read_ns after the application last
 * consumed bytes (so a client that trickles a message byte by byte is cut
 * off too). Either ends the call with -ETIMEDOUT, and gx_conn_timed_out
 * then says so.
 *
 * A connection belongs to one coroutine at a time. Results: as gx_recv and
 * gx_send (-errno), plus the ones named below.
 */
#ifndef GONEX_CONN_H
#define GONEX_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <gonex/api.h>
#include <gonex/time.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gx_conn gx_conn;

/* A connection over the socket fd (which stays the caller's: gx_conn_free
 * does not close it). cap: bytes of the read buffer and of the write
 * queue, 0 for 16 KiB, at most 64 MiB. 0, -EINVAL, -ENOMEM. */
GX_API int gx_conn_open(gx_conn **out, int fd, size_t cap);
/* Flush what is queued (within 1 s), then free c. NULL is a no-op. */
GX_API void gx_conn_free(gx_conn *c);
GX_API int gx_conn_fd(const gx_conn *c);

/* Limits of c's own on every read (0: none). */
GX_API void gx_conn_limits(gx_conn *c, int64_t idle_ns, int64_t read_ns);
/* Did a read end at one of those limits (or at u's deadline)? */
GX_API int gx_conn_timed_out(const gx_conn *c);

/* The bytes up to and including the first delim: their count, *out
 * pointing at them. 0 at the end of the stream with nothing buffered;
 * -ENODATA when the stream ends in the middle of a line (the bytes stay
 * buffered); -ENOBUFS when cap bytes hold no delim (nothing consumed:
 * gx_conn_skip them or close). */
GX_API ssize_t gx_conn_read_until(gx_conn *c, int delim, const char **out, gx_until u);
/* Exactly n bytes (0 < n <= cap), *out pointing at them: n, 0 at the end
 * of the stream with nothing buffered, -ENODATA when it ends before n,
 * -EMSGSIZE for n over cap (read those with gx_conn_read_full). */
GX_API ssize_t gx_conn_read_n(gx_conn *c, size_t n, const char **out, gx_until u);
/* Copy up to len bytes into buf: what is buffered, else one receive. */
GX_API ssize_t gx_conn_read(gx_conn *c, void *buf, size_t len, gx_until u);
/* Copy exactly len bytes into buf (any size): len, 0 at the end of the
 * stream before any byte, -ENODATA when it ends in between. */
GX_API ssize_t gx_conn_read_full(gx_conn *c, void *buf, size_t len, gx_until u);
/* For parsers that look at the bytes themselves (bufio's Peek):
 * gx_conn_buffered shows what has come and not been consumed (no wait):
 * its count, *out pointing at it (a view into a provided buffer when
 * that is where it sits, valid until the next call on c). gx_conn_skip
 * consumes n of those bytes. gx_conn_fill waits for more and gathers
 * them with what was shown into one piece: the count buffered now, 0 at
 * the end of the stream, -ENOBUFS when cap bytes are buffered already. */
GX_API size_t gx_conn_buffered(gx_conn *c, const char **out);
GX_API void gx_conn_skip(gx_conn *c, size_t n);
GX_API ssize_t gx_conn_fill(gx_conn *c, gx_until u);

/* Queue len bytes: len, or the error of an earlier send (then the
 * connection is broken: every later write and flush returns it). A write
 * larger than the queue goes out at once (waiting until u). */
GX_API ssize_t gx_conn_write(gx_conn *c, const void *buf, size_t len, gx_until u);
/* Send what is queued now and wait until it went (with what was in
 * flight): 0 or -errno. */
GX_API int gx_conn_flush(gx_conn *c, gx_until u);
/* Bytes queued or in flight, not yet sent. */
GX_API size_t gx_conn_pending(const gx_conn *c);

#ifdef __cplusplus
}
#endif

#endif
