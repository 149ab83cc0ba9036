/*
 * A growable FIFO of fixed-size entries, one array used as a ring: what a
 * completion handler queues and a coroutine takes later (a listener's
 * accepted fds, io/listener.c; a socket's received buffers,
 * io/recv_ms.c). Process-local, no locking: one thread runs it all.
 *
 * Invariants: len <= cap; the entries are at (head + i) % cap for i < len,
 * oldest first; a push onto a full queue grows it to twice its size (to
 * `first` entries the first time), the entries moved in order to the
 * front; a growth that fails (no memory) changes nothing.
 */
#ifndef GX_CORE_FIFO_H
#define GX_CORE_FIFO_H

#include <stddef.h>
#include <stdint.h>

typedef struct gx_fifo {
	char *v;         /* cap entries of esize bytes, NULL until the first push */
	uint32_t esize;  /* bytes per entry */
	uint32_t first;  /* entries of the first allocation */
	uint32_t head, len, cap;
} gx_fifo;

/* An empty queue of entries of esize bytes; nothing is allocated yet. */
static inline void gx_fifo_init(gx_fifo *f, uint32_t esize, uint32_t first)
{
	*f = (gx_fifo){.esize = esize, .first = first};
}

/* The i-th entry from the oldest (i < len). */
static inline void *gx_fifo_at(const gx_fifo *f, uint32_t i)
{
	return f->v + (size_t)((f->head + i) % f->cap) * f->esize;
}

/* Grow a full queue (see the invariants): 0, or -ENOMEM with f as it was. */
int gx_fifo_grow(gx_fifo *f);

/* A new last entry, for the caller to fill in: NULL when the queue was
 * full and could not grow. */
static inline void *gx_fifo_push(gx_fifo *f)
{
	if (f->len == f->cap && gx_fifo_grow(f) < 0)
		return NULL;
	f->len++;
	return gx_fifo_at(f, f->len - 1);
}

/* Drop the oldest entry (len > 0). */
static inline void gx_fifo_drop(gx_fifo *f)
{
	f->head = (f->head + 1) % f->cap;
	f->len--;
}

/* Free the array; the queue is empty (and may be pushed onto) again. */
void gx_fifo_free(gx_fifo *f);

#endif
