/*
 * Distributed channels: the messages. A message is an 8-byte header (the
 * sender's worker id, and whether the value is compressed) and the value:
 * inline in the ring slot when it fits (elem_size <= 112), else in a pool
 * chunk handed over through the ring (zero copy), LZ4-compressed when the
 * channel asks for it and it pays.
 *
 * Untrusted input: a message comes from another process. Its length must
 * be exactly what the channel's element size says (or a compressed
 * length that decompresses to exactly that), its chunk must be one the
 * pool knows as handed to a ring, its header flag 0 or 1; anything else
 * is consumed and reported as -EBADMSG, never copied past the caller's
 * element.
 */
#include "par/dchan.h"

#include "gx_build_config.h"

#include <stdlib.h>
#include <string.h>

#include <gonex/chan.h>

#if GX_HAVE_LZ4
#include <lz4.h>
#endif

int gx_dch_put(const gx_dview *vw, gx_ring *r, const void *v, uint64_t *pos)
{
	gx_arena *a = vw->a;
	if (!r)
		return -EBADMSG;
	int32_t hdr[2] = {vw->me, 0}; /* the view was taken by this worker */
	if (vw->elem_size <= GX_DCH_INLINE) {
		const gx_rgeo *g = gx_dch_geo(vw, r);
		return g ? gx_ring_put_hv_g(g, hdr, v, vw->elem_size, pos) : gx_ring_put_hv(r, hdr, v, vw->elem_size, pos);
	}
	size_t room = vw->elem_size;
#if GX_HAVE_LZ4
	if (vw->flags & GX_CHAN_COMPRESS)
		room = (size_t)LZ4_compressBound((int)vw->elem_size);
#endif
	if (GX_DCH_HDR + room > GX_POOL_MAX_CHUNK)
		room = vw->elem_size; /* no room to try: send it as it is */
	int64_t ck = gx_pool_alloc(a, GX_DCH_HDR + room, -1);
	if (ck < 0)
		return (int)ck;
	char *p = gx_arena_ptr(a, (gx_off)ck, GX_DCH_HDR + room);
	size_t len = vw->elem_size;
#if GX_HAVE_LZ4
	if (room > vw->elem_size) {
		int n = LZ4_compress_default(v, p + GX_DCH_HDR, (int)vw->elem_size, (int)room);
		if (n > 0 && (size_t)n < vw->elem_size) {
			hdr[1] = 1; /* compressed: len is the compressed size */
			len = (size_t)n;
		}
	}
#endif
	memcpy(p, hdr, GX_DCH_HDR);
	if (!hdr[1])
		memcpy(p + GX_DCH_HDR, v, vw->elem_size);
	uint64_t at;
	int rc = gx_ring_try_send_at(r, NULL, GX_DCH_HDR + len, (gx_off)ck, pos ? pos : &at);
	if (rc < 0)
		gx_pool_free(a, (gx_off)ck);
	return rc;
}

int gx_dch_take(const gx_dview *vw, gx_ring *r, void *v, int32_t *from)
{
	gx_arena *a = vw->a;
	if (!r)
		return -EBADMSG;
	gx_off ck = 0;
	bool passed = false;
	int32_t hdr[2] = {0, 0};
	ssize_t n;
	if (vw->elem_size <= GX_DCH_INLINE) {
		/* the value straight from the slot into the caller's element
		 * (a scratch one when v is NULL) */
		char scratch[GX_DCH_INLINE];
		const gx_rgeo *g = gx_dch_geo(vw, r);
		n = g ? gx_ring_take_hv_g(g, hdr, v ? v : scratch, vw->elem_size, &ck, &passed)
		      : gx_ring_take_hv(r, hdr, v ? v : scratch, vw->elem_size, &ck, &passed);
		if (passed)
			gx_ec_notify(&vw->d->space, NULL); /* withdrawn places are free again */
		if (n < 0)
			return (int)n;
		if (ck) {
			gx_pool_free(a, ck); /* a chunk for an inline element: garbage */
			return -EBADMSG;
		}
		if ((size_t)n != GX_DCH_HDR + vw->elem_size || hdr[1] != 0)
			return -EBADMSG;
		if (from)
			*from = hdr[0];
		return 0;
	}
	char m[GX_RING_INLINE_MAX];
	n = gx_ring_try_recv_passing(r, m, sizeof m, &ck, &passed);
	if (passed)
		gx_ec_notify(&vw->d->space, NULL); /* withdrawn places are free again */
	if (n < 0)
		return (int)n;
	const char *p = m;
	if (ck) {
		p = (size_t)n >= GX_DCH_HDR ? gx_arena_ptr(a, ck, (size_t)n) : NULL;
		if (p)
			memcpy(hdr, p, GX_DCH_HDR);
		if (!p || (hdr[1] == 0 && (size_t)n != GX_DCH_HDR + vw->elem_size) || (uint32_t)hdr[1] > 1) {
			gx_pool_free(a, ck);
			return -EBADMSG;
		}
	} else if ((size_t)n != GX_DCH_HDR + vw->elem_size) {
		return -EBADMSG;
	}
	if (from)
		memcpy(from, p, 4);
	if (hdr[1] == 1) {
#if GX_HAVE_LZ4
		char *tmp = v ? NULL : malloc(vw->elem_size);
		int got = v || tmp ? LZ4_decompress_safe(p + GX_DCH_HDR, v ? v : tmp, (int)((size_t)n - GX_DCH_HDR),
							 (int)vw->elem_size)
				   : -1;
		free(tmp);
		if (got != (int)vw->elem_size) {
			gx_pool_free(a, ck);
			return -EBADMSG;
		}
#else
		gx_pool_free(a, ck);
		return -EBADMSG;
#endif
	} else if (v && vw->elem_size) {
		memcpy(v, p + GX_DCH_HDR, vw->elem_size);
	}
	if (ck)
		gx_pool_free(a, ck);
	return 0;
}
