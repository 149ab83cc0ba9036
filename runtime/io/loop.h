/* The process's event loop: picks a backend and hands the scheduler its
 * poller. See loop.c. */
#ifndef GX_IO_LOOP_H
#define GX_IO_LOOP_H

#include "io/backend.h"

#include <gonex/runtime.h>

int gx_loop_init(const gx_config *cfg);
void gx_loop_fini(void);
/* The loop of this process (valid between init and fini). */
gx_loop *gx_loop_get(void);
/* Spell ring flags as "A|B|C" ("-" for none). */
void gx_ring_flags_str(uint32_t flags, char *buf, size_t len);

#endif
