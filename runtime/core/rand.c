/* Seeding the per-process scheduling random source (see rand.h). */
#include "core/rand.h"

#include <sys/random.h>
#include <time.h>
#include <unistd.h>

uint64_t gx_rand_state;

void gx_rand_seed(void)
{
	uint64_t s;
	if (getrandom(&s, sizeof s, GRND_NONBLOCK) != (ssize_t)sizeof s) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		s = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ ((uint64_t)getpid() << 16);
	}
	gx_rand_state = s;
}
