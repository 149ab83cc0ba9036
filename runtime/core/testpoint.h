/*
 * Test points: named places in the runtime where a test can step in, to
 * make a race or a death happen at exactly that place, every time. Built
 * only with -Dtest_points=true (tests/run.sh's test and sanitizer builds);
 * elsewhere GX_TEST_POINT is nothing at all.
 *
 * A test sets gx_test_point_fn before gx_run (so that forked workers
 * inherit it); the runtime calls it with the point's name and an argument
 * the point documents. The hook may do anything the place allows: kill the
 * process (a kill point), or run the competing half of a race.
 */
#ifndef GX_CORE_TESTPOINT_H
#define GX_CORE_TESTPOINT_H

#include "gx_build_config.h"

typedef void (*gx_test_point_hook)(const char *name, void *arg);

#if GX_TEST_POINTS
extern gx_test_point_hook gx_test_point_fn;
#define GX_TEST_POINT(name, arg)                                                                           \
	do {                                                                                               \
		if (gx_test_point_fn)                                                                      \
			gx_test_point_fn(name, arg);                                                       \
	} while (0)
#else
#define GX_TEST_POINT(name, arg) ((void)0)
#endif

#endif
