/*
 * gx_panic: a broken internal invariant or an impossible kernel answer.
 * Kept in release builds. Prints "gonex: panic in <subsys>: <msg> (file:line)"
 * and aborts. Never for a caller's mistake: those return -errno.
 */
#ifndef GX_CORE_PANIC_H
#define GX_CORE_PANIC_H

#define gx_panic(subsys, ...) gx_panic_at(subsys, __FILE__, __LINE__, __VA_ARGS__)

_Noreturn void gx_panic_at(const char *subsys, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Write a whole buffer to stderr with write(2) only: async-signal-safe. */
void gx_write_stderr(const char *s, unsigned long len);

/* One log line "gonex: ..." on stderr (printf format, newline added). */
void gx_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
