/* gonex/gonex.h: the whole public API of libgonex-uring. */
#ifndef GONEX_GONEX_H
#define GONEX_GONEX_H

#include <gonex/api.h>
#include <gonex/breaker.h>
#include <gonex/chan.h>
#include <gonex/config.h>
#include <gonex/conn.h>
#include <gonex/context.h>
#include <gonex/dump.h>
#include <gonex/fanout.h>
#include <gonex/io.h>
#include <gonex/parallel.h>
#include <gonex/coro.h>
#include <gonex/runtime.h>
#include <gonex/serve.h>
#include <gonex/shm.h>
#include <gonex/stats.h>
#include <gonex/sync.h>
#include <gonex/time.h>
#include <gonex/timer.h>

#endif
