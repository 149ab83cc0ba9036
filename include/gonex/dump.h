/*
 * gonex/dump.h: the coroutine dump, what every coroutine of the runtime
 * is doing and where it is parked, without a debugger.
 */
#ifndef GONEX_DUMP_H
#define GONEX_DUMP_H

#include <gonex/api.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Coroutine dump: every coroutine of this process, one block each:
 *
 *     coroutine 12 "handler" parked: chan receive
 *       #0 0x5581c0a1b2c3 gx_chan_recv+0x93 (libgonex-uring.so.0+0x1b2c3)
 *       ...
 *
 * id, name, state (running, runnable, parked), what a parked one waits on,
 * and a backtrace of where it is parked (frame pointers; module offsets
 * resolve with addr2line -e MODULE). Returns the number of coroutines
 * written, -EPERM outside gx_run, -errno from write.
 */
GX_API int gx_coro_dump(int fd);

/*
 * Ask every process of the runtime to dump its coroutines to its stderr:
 * this one now, each worker as soon as its loop runs (a worker stuck in a
 * task that never yields dumps when it comes back). GONEX_DUMP_SIGNAL=1
 * does the same on SIGQUIT to the main process (or only that process,
 * when sent to a worker). Returns the number of processes asked, -EPERM
 * outside gx_run.
 */
GX_API int gx_dump_all(void);

#ifdef __cplusplus
}
#endif

#endif
