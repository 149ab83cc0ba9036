/*
 * Socket helpers (gonex/io.h): make, listen, dial, ask for the port.
 *
 * What: thin wrappers over socket(2), setsockopt, bind and listen for the
 * common TCP cases, and a dial that connects through gx_connect (op.c), so
 * it waits the way every operation does. Addresses are numeric (IPv4 or
 * IPv6, parsed with inet_pton); an empty or NULL host is any IPv4 address.
 *
 * Invariants: every socket made here has SOCK_CLOEXEC and SOCK_NONBLOCK;
 * a call that fails after making its socket closes it before returning
 * -errno, so no fd leaks.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gonex/io.h>

int gx_socket(int domain, int type, int protocol)
{
	int fd = socket(domain, type | SOCK_CLOEXEC | SOCK_NONBLOCK, protocol);
	return fd >= 0 ? fd : -errno;
}

static int gx_sockaddr_parse(const char *host, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
	memset(ss, 0, sizeof *ss);
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	if (!host || !*host) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons(port);
		in4->sin_addr.s_addr = htonl(INADDR_ANY);
		*len = sizeof *in4;
		return 0;
	}
	if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons(port);
		*len = sizeof *in4;
		return 0;
	}
	if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		*len = sizeof *in6;
		return 0;
	}
	return -EINVAL;
}

/* A TCP socket of host's family, its address in *ss: the fd or -errno. */
static int gx_tcp_socket(const char *host, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
	int rc = gx_sockaddr_parse(host, port, ss, len);
	return rc < 0 ? rc : gx_socket(ss->ss_family, SOCK_STREAM, 0);
}

int gx_listen_tcp(const char *host, uint16_t port, int backlog, int reuseport)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd = gx_tcp_socket(host, port, &ss, &len), rc;
	if (fd < 0)
		return fd;
	int one = 1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
	    (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) ||
	    bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, backlog) != 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	return fd;
}

int gx_dial_tcp(const char *host, uint16_t port, gx_until u)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd = gx_tcp_socket(host, port, &ss, &len);
	if (fd < 0)
		return fd;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	int rc = gx_connect(fd, (struct sockaddr *)&ss, len, u);
	if (rc < 0) {
		gx_close(fd);
		return rc;
	}
	return fd;
}

int gx_local_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
		return -errno;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return -EAFNOSUPPORT;
}
