/*
 * gonex/io.h: I/O that parks the calling coroutine.
 *
 * Straight-line code: `n = gx_recv(fd, buf, len, 0, gx_timeout(...))`. On
 * the io_uring backend each call is one SQE, submitted with everything else
 * the scheduler turn queued; on the epoll backend the call is tried at once
 * and, if it would block, retried when epoll reports the fd ready (the fd
 * is switched to O_NONBLOCK the first time the epoll backend sees it).
 *
 * Results: >= 0 as the matching system call, or -errno. Every call that may
 * wait takes a gx_until: when it ends first, the operation is cancelled and
 * the call returns -ETIMEDOUT (or the context's error) only after the
 * kernel is done with it; if the operation completed anyway, its result is
 * returned (no data is lost), and the fd stays usable. Calls outside a
 * coroutine return -EPERM.
 *
 * On the epoll backend, regular-file I/O (read, write, pread, pwrite,
 * openat, fsync) runs synchronously and may block the process's loop for
 * the duration of the disk access; io_uring runs it asynchronously.
 */
#ifndef GONEX_IO_H
#define GONEX_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <gonex/api.h>
#include <gonex/time.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One read(2)/write(2): may be short. */
GX_API ssize_t gx_read(int fd, void *buf, size_t len, gx_until u);
GX_API ssize_t gx_write(int fd, const void *buf, size_t len, gx_until u);
/* Write all len bytes (looping on short writes): len, or -errno with
 * nothing said about how much was written. */
GX_API ssize_t gx_write_all(int fd, const void *buf, size_t len, gx_until u);
GX_API ssize_t gx_readv(int fd, const struct iovec *iov, int iovcnt, gx_until u);
GX_API ssize_t gx_writev(int fd, const struct iovec *iov, int iovcnt, gx_until u);
GX_API ssize_t gx_pread(int fd, void *buf, size_t len, off_t off, gx_until u);
GX_API ssize_t gx_pwrite(int fd, const void *buf, size_t len, off_t off, gx_until u);

/* recv(2): 0 at end of stream. */
GX_API ssize_t gx_recv(int fd, void *buf, size_t len, int flags, gx_until u);
/* send(2) of all len bytes, looping on short sends; at most one gx_send
 * runs per socket at a time (others wait their turn), so two coroutines'
 * messages never interleave. Returns len or -errno (-EPIPE for a peer that
 * went away: MSG_NOSIGNAL is always set). */
GX_API ssize_t gx_send(int fd, const void *buf, size_t len, int flags, gx_until u);
/* gx_send of every byte of iov[0..iovcnt) (sendmsg(2), looping on short
 * sends, in the same per-socket turn as gx_send): the total, or -errno
 * (-EINVAL for a negative count or a total past SSIZE_MAX). */
GX_API ssize_t gx_sendv(int fd, const struct iovec *iov, int iovcnt, gx_until u);
GX_API ssize_t gx_recvmsg(int fd, struct msghdr *msg, int flags, gx_until u);
GX_API ssize_t gx_sendmsg(int fd, const struct msghdr *msg, int flags, gx_until u);

/* accept4(2) (SOCK_CLOEXEC is added): the new fd. */
GX_API int gx_accept(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags, gx_until u);
/* connect(2): 0 once connected. */
GX_API int gx_connect(int fd, const struct sockaddr *addr, socklen_t addrlen, gx_until u);
/* Wait until fd is ready for events (POLLIN, POLLOUT, ...): the revents. */
GX_API int gx_poll(int fd, short events, gx_until u);
GX_API int gx_shutdown(int fd, int how);
/* Cancel every operation in flight on fd (they return -ECANCELED), wait
 * until the kernel is done with them, then close(2). */
GX_API int gx_close(int fd);
GX_API int gx_openat(int dirfd, const char *path, int flags, mode_t mode, gx_until u);
GX_API int gx_fsync(int fd, gx_until u);

/* ---- socket helpers (no waiting) ---- */

/* socket(2) with SOCK_CLOEXEC | SOCK_NONBLOCK added. */
GX_API int gx_socket(int domain, int type, int protocol);
/* A TCP listener on host:port ("127.0.0.1", "::", NULL for any IPv4),
 * SO_REUSEADDR (and SO_REUSEPORT when reuseport), listen(backlog). The fd,
 * or -errno (-EINVAL for a host that is not a numeric address). */
GX_API int gx_listen_tcp(const char *host, uint16_t port, int backlog, int reuseport);
/* A connected TCP socket to host:port (numeric address), TCP_NODELAY. */
GX_API int gx_dial_tcp(const char *host, uint16_t port, gx_until u);
/* The port a socket is bound to, or -errno. */
GX_API int gx_local_port(int fd);

/* ---- accept loop ---- */

/*
 * A listener that keeps accepting: on io_uring one multishot accept feeds a
 * queue of new connections; on epoll it accepts as readiness arrives.
 * gx_listener_accept takes the next connection (SOCK_CLOEXEC | NONBLOCK).
 */
typedef struct gx_listener gx_listener;
GX_API int gx_listener_start(gx_listener **out, int fd);
GX_API int gx_listener_accept(gx_listener *l, gx_until u);
/* Stop accepting new connections but keep the ones already accepted:
 * gx_listener_accept hands those out, then returns -ECANCELED (a server
 * that drains serves them instead of dropping them). 0, -EPERM outside a
 * coroutine while an accept is in flight. */
GX_API int gx_listener_pause(gx_listener *l);
/* Stop accepting, close the queued connections, free l (not the fd). */
GX_API int gx_listener_stop(gx_listener *l);

#ifdef __cplusplus
}
#endif

#endif
