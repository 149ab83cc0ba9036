/*
 * The HTTP/1.1 request scanner shared by perf/httpd (on the runtime) and
 * perf/httpd-epoll (the plain epoll baseline), so both do the same work.
 *
 * gx_http_next looks at the bytes buffered for a connection and says what
 * the first request in them asks for. Only what the benchmark server needs:
 * GET and HEAD of any path ("/" answers 200, anything else 404), keep-alive
 * (HTTP/1.1 default, "Connection: close", HTTP/1.0 "keep-alive"). A request
 * body is refused (400): these servers never read one. Headers are limited
 * to GX_HTTP_MAX_HEADER bytes (431 beyond).
 */
#ifndef GX_PERF_HTTP_H
#define GX_PERF_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

#define GX_HTTP_MAX_HEADER 8192

enum gx_http_verdict {
	GX_HTTP_NEED_MORE, /* no complete request yet */
	GX_HTTP_OK,        /* GET/HEAD / : 200 */
	GX_HTTP_NOT_FOUND, /* GET/HEAD of another path: 404 */
	GX_HTTP_BAD,       /* malformed: 400 and close */
	GX_HTTP_TOO_LARGE, /* headers over the limit: 431 and close */
};

typedef struct gx_http_req {
	size_t len;      /* bytes of this request (headers included) */
	bool head;       /* HEAD: no body in the answer */
	bool keep_alive;
} gx_http_req;

static inline const char *gx_http_find_end(const char *p, size_t n)
{
	/* "\r\n\r\n": scan for '\n' with memchr, check around it */
	const char *end = p + n;
	const char *q = p;
	while (q < end && (q = memchr(q, '\n', (size_t)(end - q))) != NULL) {
		if (q + 2 < end && q[1] == '\r' && q[2] == '\n')
			return q + 3;
		if (q + 1 < end && q[1] == '\n') /* bare LF LF, tolerated */
			return q + 2;
		q++;
	}
	return NULL;
}

static inline bool gx_http_token_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
	       c == '_' || c == '.' || c == '!' || c == '#' || c == '$' || c == '%' || c == '&' ||
	       c == '\'' || c == '*' || c == '+' || c == '^' || c == '`' || c == '|' || c == '~';
}

/* Does the header block [h, e) carry name: value (value compared without
 * case, as a token in a comma list)? */
static inline bool gx_http_header_has(const char *h, const char *e, const char *name, const char *value)
{
	size_t nl = strlen(name), vl = strlen(value);
	while (h < e) {
		const char *eol = memchr(h, '\n', (size_t)(e - h));
		if (!eol)
			eol = e;
		if ((size_t)(eol - h) > nl && strncasecmp(h, name, nl) == 0 && h[nl] == ':') {
			const char *v = h + nl + 1;
			while (v + vl <= eol) {
				while (v < eol && (*v == ' ' || *v == '\t' || *v == ','))
					v++;
				if (v + vl <= eol && strncasecmp(v, value, vl) == 0)
					return true;
				while (v < eol && *v != ',')
					v++;
			}
		}
		h = eol + 1;
	}
	return false;
}

static inline enum gx_http_verdict gx_http_next(const char *p, size_t n, gx_http_req *r)
{
	r->len = 0;
	r->head = false;
	r->keep_alive = false;
	const char *end = gx_http_find_end(p, n < GX_HTTP_MAX_HEADER ? n : GX_HTTP_MAX_HEADER);
	if (!end) {
		if (n >= GX_HTTP_MAX_HEADER)
			return GX_HTTP_TOO_LARGE;
		/* an obviously broken request line need not wait for more */
		for (size_t i = 0; i < n && p[i] != ' '; i++)
			if (!gx_http_token_char(p[i]))
				return GX_HTTP_BAD;
		return GX_HTTP_NEED_MORE;
	}
	r->len = (size_t)(end - p);
	const char *eol = memchr(p, '\n', r->len);
	const char *line_end = eol > p && eol[-1] == '\r' ? eol - 1 : eol;
	/* METHOD SP TARGET SP HTTP/1.x */
	const char *sp1 = memchr(p, ' ', (size_t)(line_end - p));
	if (!sp1 || sp1 == p)
		return GX_HTTP_BAD;
	for (const char *c = p; c < sp1; c++)
		if (!gx_http_token_char(*c))
			return GX_HTTP_BAD;
	const char *target = sp1 + 1;
	const char *sp2 = memchr(target, ' ', (size_t)(line_end - target));
	if (!sp2 || sp2 == target || *target != '/')
		return GX_HTTP_BAD;
	const char *ver = sp2 + 1;
	if (line_end - ver != 8 || memcmp(ver, "HTTP/1.", 7) != 0 || (ver[7] != '0' && ver[7] != '1'))
		return GX_HTTP_BAD;
	for (const char *c = target; c < sp2; c++)
		if ((unsigned char)*c <= ' ' || *c == 0x7f)
			return GX_HTTP_BAD;
	bool http11 = ver[7] == '1';
	const char *hdr = eol + 1;
	if (gx_http_header_has(hdr, end, "Content-Length", "") &&
	    !gx_http_header_has(hdr, end, "Content-Length", "0"))
		return GX_HTTP_BAD;
	if (gx_http_header_has(hdr, end, "Transfer-Encoding", ""))
		return GX_HTTP_BAD;
	size_t ml = (size_t)(sp1 - p);
	if (ml == 3 && memcmp(p, "GET", 3) == 0)
		r->head = false;
	else if (ml == 4 && memcmp(p, "HEAD", 4) == 0)
		r->head = true;
	else
		return GX_HTTP_BAD;
	r->keep_alive = http11 ? !gx_http_header_has(hdr, end, "Connection", "close")
			       : gx_http_header_has(hdr, end, "Connection", "keep-alive");
	return sp2 - target == 1 ? GX_HTTP_OK : GX_HTTP_NOT_FOUND;
}

#define GX_HTTP_200 \
	"HTTP/1.1 200 OK\r\nServer: gonex\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!"
#define GX_HTTP_200_HEAD_LEN (sizeof GX_HTTP_200 - 1 - 13)
#define GX_HTTP_200_CLOSE \
	"HTTP/1.1 200 OK\r\nServer: gonex\r\nContent-Type: text/plain\r\nContent-Length: 13\r\nConnection: close\r\n\r\nHello, World!"
#define GX_HTTP_404 \
	"HTTP/1.1 404 Not Found\r\nServer: gonex\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\nNot Found\n"
#define GX_HTTP_400 \
	"HTTP/1.1 400 Bad Request\r\nServer: gonex\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
#define GX_HTTP_431 \
	"HTTP/1.1 431 Request Header Fields Too Large\r\nServer: gonex\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"

/* Append the answer to r (a verdict of OK or NOT_FOUND) to out; returns
 * the bytes added. out must have room for sizeof GX_HTTP_200_CLOSE. */
static inline size_t gx_http_answer(enum gx_http_verdict v, const gx_http_req *r, char *out)
{
	const char *s;
	size_t n;
	if (v == GX_HTTP_OK) {
		s = r->keep_alive ? GX_HTTP_200 : GX_HTTP_200_CLOSE;
		n = r->keep_alive ? sizeof GX_HTTP_200 - 1 : sizeof GX_HTTP_200_CLOSE - 1;
		if (r->head)
			n -= 13;
	} else {
		s = GX_HTTP_404;
		n = sizeof GX_HTTP_404 - 1;
		if (r->head)
			n -= 10;
	}
	memcpy(out, s, n);
	return n;
}

#endif
