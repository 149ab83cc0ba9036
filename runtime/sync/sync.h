/* Internal entry points of the sync layer for the layers above it. */
#ifndef GX_SYNC_SYNC_H
#define GX_SYNC_SYNC_H

/* Plug contexts into the wait core (gx_run calls it at start-up). */
void gx_ctx_register_hooks(void);

#endif
