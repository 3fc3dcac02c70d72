/* Helpers shared by the unit tests. */
#ifndef EDDY_TESTS_TEST_UTIL_H
#define EDDY_TESTS_TEST_UTIL_H

#include <unistd.h>

/* wait_until polls cond every millisecond for up to ms milliseconds; it is true if cond
 * became true. For waiting on other threads in tests, never for timing assertions. */
#define wait_until(cond, ms)                                                          \
	({                                                                            \
		int ok_ = 0;                                                          \
		for (int i_ = 0; i_ < (ms); i_++) {                                   \
			if (cond) {                                                   \
				ok_ = 1;                                              \
				break;                                                \
			}                                                             \
			usleep(1000);                                                 \
		}                                                                     \
		ok_ || (cond);                                                        \
	})

#endif
