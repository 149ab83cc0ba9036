/* The hook of the test points (core/testpoint.h), in builds that have them. */
#include "core/testpoint.h"

#if GX_TEST_POINTS
gx_test_point_hook gx_test_point_fn;
#endif
