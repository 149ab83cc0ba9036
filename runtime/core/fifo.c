/* The growable FIFO's slow path (see fifo.h). */
#include "core/fifo.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int gx_fifo_grow(gx_fifo *f)
{
	uint32_t cap = f->cap ? f->cap * 2 : f->first;
	char *v = malloc((size_t)cap * f->esize);
	if (!v)
		return -ENOMEM;
	for (uint32_t i = 0; i < f->len; i++)
		memcpy(v + (size_t)i * f->esize, gx_fifo_at(f, i), f->esize);
	free(f->v);
	f->v = v;
	f->head = 0;
	f->cap = cap;
	return 0;
}

void gx_fifo_free(gx_fifo *f)
{
	free(f->v);
	gx_fifo_init(f, f->esize, f->first);
}
