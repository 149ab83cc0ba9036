/* A fast per-process random source for scheduling decisions (select's
 * choice, later load balancing): wyrand, as Go's runtime uses. Not for
 * anything secret. Seeded from getrandom(2) at gx_run start. */
#ifndef GX_CORE_RAND_H
#define GX_CORE_RAND_H

#include <stdint.h>

extern uint64_t gx_rand_state;

void gx_rand_seed(void);

static inline uint64_t gx_rand64(void)
{
	gx_rand_state += 0xa0761d6478bd642full;
	__uint128_t m = (__uint128_t)gx_rand_state * (gx_rand_state ^ 0xe7037ed1a0b428dbull);
	return (uint64_t)(m >> 64) ^ (uint64_t)m;
}

/* Uniform in [0, n) for n >= 1 (Lemire's multiply-shift; the bias is below
 * 2^-32 for the n used here). */
static inline uint32_t gx_rand_below(uint32_t n)
{
	return (uint32_t)(((gx_rand64() & 0xffffffffu) * (uint64_t)n) >> 32);
}

#endif
