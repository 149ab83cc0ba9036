/*
 * The process's event loop.
 *
 * What: chooses the backend (GONEX_BACKEND, or io_uring first and epoll when
 * io_uring cannot be set up: -ENOSYS under qemu-user or old kernels, -EPERM
 * under seccomp or kernel.io_uring_disabled), registers the scheduler's
 * poller, and prints the one log line (always on a fallback, otherwise when
 * GONEX_LOG=1) naming the backend, kernel, ring flags and missing features.
 *
 * Invariant: between gx_loop_init and gx_loop_fini, L.ops is set and the
 * scheduler's poller points at it.
 */
#include "io/loop.h"

#include <errno.h>
#include <liburing.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "core/panic.h"
#include "core/sched.h"
#include "io/op.h"

static gx_loop L;

gx_loop *gx_loop_get(void)
{
	return &L;
}

void gx_loop_missing(gx_loop *loop, const char *feature)
{
	size_t n = strlen(loop->missing);
	snprintf(loop->missing + n, sizeof loop->missing - n, "%s%s", n ? " " : "", feature);
}

void gx_ring_flags_str(uint32_t flags, char *buf, size_t len)
{
	static const struct {
		uint32_t bit;
		const char *name;
	} names[] = {
		{IORING_SETUP_IOPOLL, "IOPOLL"},
		{IORING_SETUP_SQPOLL, "SQPOLL"},
		{IORING_SETUP_SQ_AFF, "SQ_AFF"},
		{IORING_SETUP_CQSIZE, "CQSIZE"},
		{IORING_SETUP_CLAMP, "CLAMP"},
		{IORING_SETUP_ATTACH_WQ, "ATTACH_WQ"},
		{IORING_SETUP_R_DISABLED, "R_DISABLED"},
		{IORING_SETUP_SUBMIT_ALL, "SUBMIT_ALL"},
		{IORING_SETUP_COOP_TASKRUN, "COOP_TASKRUN"},
		{IORING_SETUP_TASKRUN_FLAG, "TASKRUN_FLAG"},
		{IORING_SETUP_SQE128, "SQE128"},
		{IORING_SETUP_CQE32, "CQE32"},
		{IORING_SETUP_SINGLE_ISSUER, "SINGLE_ISSUER"},
		{IORING_SETUP_DEFER_TASKRUN, "DEFER_TASKRUN"},
	};
	size_t n = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (flags & names[i].bit)
			n += (size_t)snprintf(buf + n, n < len ? len - n : 0, "%s%s", n ? "|" : "",
					      names[i].name);
	if (n == 0)
		snprintf(buf, len, "-");
}

static int gx_loop_poll(void *state, int64_t deadline)
{
	gx_loop *l = state;
	return l->ops->wait(l, deadline);
}

static bool gx_loop_busy(void *state)
{
	gx_loop *l = state;
	return l->ops->busy(l);
}

static void gx_loop_report(int fallback_rc)
{
	struct utsname u;
	if (uname(&u) != 0)
		snprintf(u.release, sizeof u.release, "?");
	char flags[160];
	gx_ring_flags_str(L.ring_flags, flags, sizeof flags);
	if (fallback_rc)
		gx_log("pid %d: io_uring unavailable (%s), using epoll; kernel %s; missing: %s", getpid(),
		       strerror(-fallback_rc), u.release, L.missing[0] ? L.missing : "-");
	else
		gx_log("pid %d: backend %s, kernel %s, ring flags %s, sq %u cq %u, missing: %s", getpid(),
		       L.ops->name, u.release, flags, L.sq_entries, L.cq_entries,
		       L.missing[0] ? L.missing : "-");
}

int gx_loop_init(const gx_config *cfg)
{
	memset(&L, 0, sizeof L);
	int fallback_rc = 0;
	int rc;
	if (cfg->backend == GX_BACKEND_EPOLL) {
		L.ops = &gx_backend_epoll;
		rc = L.ops->create(&L, cfg);
	} else {
		L.ops = &gx_backend_uring;
		rc = L.ops->create(&L, cfg);
		if ((rc == -ENOSYS || rc == -EPERM) && cfg->backend == GX_BACKEND_AUTO) {
			fallback_rc = rc;
			memset(&L, 0, sizeof L);
			gx_loop_missing(&L, "io_uring");
			L.ops = &gx_backend_epoll;
			rc = L.ops->create(&L, cfg);
		} else if (rc < 0 && cfg->backend == GX_BACKEND_URING) {
			gx_log("GONEX_BACKEND=uring: io_uring setup failed: %s", strerror(-rc));
		}
	}
	if (rc < 0) {
		memset(&L, 0, sizeof L);
		return rc;
	}
	if (fallback_rc || cfg->log)
		gx_loop_report(fallback_rc);
	gx_poller p = {.wait = gx_loop_poll, .busy = gx_loop_busy, .state = &L};
	gx_sched_set_poller(&p);
	return 0;
}

void gx_loop_fini(void)
{
	if (L.ops)
		L.ops->destroy(&L);
	gx_fd_table_free();
	memset(&L, 0, sizeof L);
}
