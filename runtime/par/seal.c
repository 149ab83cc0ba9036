/*
 * Sealed code addresses: what a task record or a breaker in the arena
 * says to call.
 *
 * What: the arena is writable by any process that maps it, and a task
 * record names the function a worker calls. Checking that the address is
 * code of the image is not enough (system() is code of the image). So
 * the address goes into the arena sealed: encrypted with a 64-bit keyed
 * permutation whose key only this run's processes hold. A process that
 * maps the arena and nothing more cannot make the sealed form of an
 * address it chose, even after seeing the sealed forms of others; what it
 * writes opens to a random address, which the image check then refuses
 * (all but about size-of-code / 2^64 of the time).
 *
 * How: a four-round Feistel network on the two 32-bit halves, each round
 * SipHash-2-4 of (round, half) under a 128-bit key from getrandom(2). The
 * key is made by gx_seal_init in the main process before the spawner
 * forks, so every worker has it, and it lives in process memory only.
 * Sealing and opening each keep a one-entry cache: a run of tasks of one
 * function costs a compare on each side; a new function costs four
 * SipHash rounds (well under a microsecond).
 *
 * Rejected: a MAC beside the address (the task record fills its 120-byte
 * ring slot exactly; a tag would need a bigger slot for every task); a
 * fixed XOR mask (one known pair gives the mask away); a table of
 * registered functions (workers fork before functions are submitted).
 */
#include "par/par.h"

#include <sys/random.h>

static uint64_t gx_key[2];
static int gx_keyed;

static inline uint64_t gx_rotl(uint64_t x, int b)
{
	return (x << b) | (x >> (64 - b));
}

#define GX_SIPROUND                                                                                                   \
	do {                                                                                                          \
		v0 += v1;                                                                                             \
		v1 = gx_rotl(v1, 13) ^ v0;                                                                            \
		v0 = gx_rotl(v0, 32);                                                                                 \
		v2 += v3;                                                                                             \
		v3 = gx_rotl(v3, 16) ^ v2;                                                                            \
		v0 += v3;                                                                                             \
		v3 = gx_rotl(v3, 21) ^ v0;                                                                            \
		v2 += v1;                                                                                             \
		v1 = gx_rotl(v1, 17) ^ v2;                                                                            \
		v2 = gx_rotl(v2, 32);                                                                                 \
	} while (0)

/* SipHash-2-4 of one 8-byte message m under gx_key. */
static uint64_t gx_sip(uint64_t m)
{
	uint64_t v0 = gx_key[0] ^ 0x736f6d6570736575ull, v1 = gx_key[1] ^ 0x646f72616e646f6dull;
	uint64_t v2 = gx_key[0] ^ 0x6c7967656e657261ull, v3 = gx_key[1] ^ 0x7465646279746573ull;
	const uint64_t last = (uint64_t)8 << 56; /* the length block of an 8-byte message */
	v3 ^= m;
	GX_SIPROUND;
	GX_SIPROUND;
	v0 ^= m;
	v3 ^= last;
	GX_SIPROUND;
	GX_SIPROUND;
	v0 ^= last;
	v2 ^= 0xff;
	GX_SIPROUND;
	GX_SIPROUND;
	GX_SIPROUND;
	GX_SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

static inline uint32_t gx_round(uint32_t i, uint32_t half)
{
	return (uint32_t)gx_sip((uint64_t)i << 32 | half);
}

int gx_seal_init(void)
{
	if (gx_keyed)
		return 0;
	if (getrandom(gx_key, sizeof gx_key, 0) != (ssize_t)sizeof gx_key)
		return -errno;
	gx_keyed = 1;
	return 0;
}

uint64_t gx_seal_mac(const uint64_t *w, size_t n)
{
	if (!gx_keyed)
		return 0;
	uint64_t h = n;
	for (size_t i = 0; i < n; i++)
		h = gx_sip(h ^ w[i]);
	return h;
}

uint64_t gx_code_seal(uint64_t fn)
{
	static uint64_t plain, sealed;
	if (!gx_keyed || !fn)
		return 0;
	if (fn == plain)
		return sealed;
	uint32_t l = (uint32_t)(fn >> 32), r = (uint32_t)fn;
	for (uint32_t i = 0; i < 4; i++) {
		uint32_t t = l ^ gx_round(i, r);
		l = r;
		r = t;
	}
	plain = fn;
	sealed = (uint64_t)l << 32 | r;
	return sealed;
}

uint64_t gx_code_open(uint64_t code)
{
	static uint64_t plain, sealed;
	if (!gx_keyed || !code)
		return 0;
	if (code == sealed && plain)
		return plain;
	uint32_t l = (uint32_t)(code >> 32), r = (uint32_t)code;
	for (uint32_t i = 4; i-- > 0;) {
		uint32_t t = r ^ gx_round(i, l);
		r = l;
		l = t;
	}
	uint64_t fn = (uint64_t)l << 32 | r;
	if (!gx_par_is_code((const void *)(uintptr_t)fn))
		return 0;
	plain = fn;
	sealed = code;
	return fn;
}
