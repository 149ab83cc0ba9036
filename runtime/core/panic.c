/* Panics and log lines: the two ways the runtime talks on stderr. */
#include "core/panic.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

void gx_write_stderr(const char *s, unsigned long len)
{
	while (len > 0) {
		ssize_t n = write(STDERR_FILENO, s, len);
		if (n <= 0)
			return;
		s += n;
		len -= (unsigned long)n;
	}
}

void gx_panic_at(const char *subsys, const char *file, int line, const char *fmt, ...)
{
	char buf[512];
	int n = snprintf(buf, sizeof buf, "gonex: panic in %s: ", subsys);
	va_list ap;
	va_start(ap, fmt);
	if (n >= 0 && (size_t)n < sizeof buf)
		n += vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < sizeof buf)
		n += snprintf(buf + n, sizeof buf - (size_t)n, " (%s:%d)\n", file, line);
	if (n < 0 || (size_t)n >= sizeof buf)
		n = (int)sizeof buf - 1, buf[n - 1] = '\n';
	gx_write_stderr(buf, (unsigned long)n);
	abort();
}

void gx_log(const char *fmt, ...)
{
	char buf[512];
	int n = snprintf(buf, sizeof buf, "gonex: ");
	va_list ap;
	va_start(ap, fmt);
	n += vsnprintf(buf + n, sizeof buf - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if ((size_t)n > sizeof buf - 2)
		n = (int)sizeof buf - 2;
	buf[n++] = '\n';
	gx_write_stderr(buf, (unsigned long)n);
}
