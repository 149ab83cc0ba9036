/*
 * What Debian's liburing 2.3 lacks and the kernel (6.7+) has: the one place
 * newer io_uring opcodes, flags and SQE layouts are filled in by hand.
 *
 * Every constant is guarded, so a newer liburing or newer kernel headers
 * win and this file shrinks to the helpers. The opcodes are enum constants
 * in liburing's io_uring.h, not macros, so #ifndef cannot see them; that is
 * harmless because <liburing.h> is included first here: a newer header has
 * already declared its enum, and the macro only re-spells the same value.
 * Include this file instead of <liburing.h> wherever a newer feature is
 * used, never before it.
 *
 * Today it holds futex wait (Linux 6.7) and the futex wake opcode's number
 * (no SQE helper: wakes are plain futex(2) calls for now). Buffer-ring
 * setup needs nothing here: liburing 2.3 has io_uring_register_buf_ring and
 * the io_uring_buf_ring structures.
 */
#ifndef GX_IO_URING_COMPAT_H
#define GX_IO_URING_COMPAT_H

#include <liburing.h>
#include <linux/futex.h>
#include <stdint.h>

/* ---- futex (Linux 6.7: io_uring/futex.c) ---- */

#ifndef IORING_OP_FUTEX_WAIT
#define IORING_OP_FUTEX_WAIT 51
#endif
#ifndef IORING_OP_FUTEX_WAKE
#define IORING_OP_FUTEX_WAKE 52
#endif
/* futex2 flags (uapi linux/futex.h, 6.7) */
#ifndef FUTEX2_SIZE_U32
#define FUTEX2_SIZE_U32 0x02
#endif
#ifndef FUTEX2_PRIVATE
#define FUTEX2_PRIVATE 128 /* = FUTEX_PRIVATE_FLAG; never for shared words */
#endif
#ifndef FUTEX_BITSET_MATCH_ANY
#define FUTEX_BITSET_MATCH_ANY 0xffffffffu
#endif

/* IORING_OP_FUTEX_WAIT on the 32-bit word at uaddr: completes with 0 when
 * woken (FUTEX_WAKE whose bitset meets mask), -EAGAIN when *uaddr != val at
 * issue time, -ECANCELED when cancelled. futex2_flags: FUTEX2_SIZE_U32, plus
 * FUTEX2_PRIVATE only for process-private words.
 *
 * The kernel's io_futex_prep reads fd = futex2 flags, addr = uaddr,
 * addr2 = val, addr3 = mask, and refuses (-EINVAL) a non-zero len,
 * futex_flags (the rw_flags slot, named futex_flags in newer headers),
 * buf_index or file_index. io_uring_prep_rw zeroes everything else. */
static inline void gx_prep_futex_wait(struct io_uring_sqe *sqe, uint32_t *uaddr, uint32_t val, uint64_t mask,
				      uint32_t futex2_flags)
{
	io_uring_prep_rw(IORING_OP_FUTEX_WAIT, sqe, (int)futex2_flags, uaddr, 0, (uint64_t)val);
	sqe->rw_flags = 0; /* futex_flags: no io_uring-level futex flags exist */
	sqe->buf_index = 0;
	sqe->file_index = 0;
	sqe->addr3 = mask;
}

/* IORING_OP_FUTEX_WAITV (Linux 6.7): wait on up to 128 futex words at
 * once; woken by a wake on any. The kernel's io_futexv_prep reads addr =
 * the array, len = its count, and refuses (-EINVAL) a non-zero fd,
 * buf_index, file_index, addr2, addr3 or futex_flags. Each entry's flags
 * are futex2 flags (FUTEX2_SIZE_U32; FUTEX2_PRIVATE never for shared
 * words), its __reserved 0. The array must stay put until the CQE. */
#ifndef IORING_OP_FUTEX_WAITV
#define IORING_OP_FUTEX_WAITV 53
#endif

/* v: an array of n struct futex_waitv (gx_futex_waitv, io/op.h) */
static inline void gx_prep_futex_waitv(struct io_uring_sqe *sqe, void *v, uint32_t n)
{
	io_uring_prep_rw(IORING_OP_FUTEX_WAITV, sqe, 0, v, n, 0);
	sqe->rw_flags = 0;
	sqe->buf_index = 0;
	sqe->file_index = 0;
	sqe->addr3 = 0;
}

/* Receive bundles (Linux 6.10): a buffer-select receive with this ioprio
 * bit fills several consecutive buffers of the ring in one go; its CQE
 * names the first buffer, and res counts the bytes of all of them. */
#ifndef IORING_RECVSEND_BUNDLE
#define IORING_RECVSEND_BUNDLE (1U << 4)
#endif
#ifndef IORING_FEAT_RECVSEND_BUNDLE
#define IORING_FEAT_RECVSEND_BUNDLE (1U << 14)
#endif

/* IORING_REGISTER_NAPI (Linux 6.9): busy poll the NAPI instances of the
 * sockets the ring serves, busy_poll_to microseconds per wait. The kernel
 * refuses (-EINVAL) non-zero pad and resv; opcode 0 with op_param 0
 * (6.13+: register, dynamic tracking) is what 6.9-6.12 read as padding. */
#ifndef IORING_REGISTER_NAPI
#define IORING_REGISTER_NAPI 27
#endif

typedef struct {
	uint32_t busy_poll_to;
	uint8_t prefer_busy_poll;
	uint8_t opcode;
	uint8_t pad[2];
	uint32_t op_param;
	uint32_t resv;
} gx_uring_napi;

_Static_assert(sizeof(gx_uring_napi) == 16, "struct io_uring_napi is 16 bytes");

#endif
