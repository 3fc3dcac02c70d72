/* Checks that a test binary linking Criterion (nanomsg) and eddy (nng) binds the nn_*
 * symbols to nanomsg, so Criterion's IPC is not silently served by nng's compat API. */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <nng/nng.h>
#include <nng/protocol/pair0/pair.h>
#include <string.h>

Test(link, nn_symbols_come_from_nanomsg)
{
	void *sym = dlsym(RTLD_DEFAULT, "nn_socket");
	cr_assert_not_null(sym, "nn_socket not found at all");
	Dl_info info;
	cr_assert(dladdr(sym, &info) != 0);
	cr_assert(strstr(info.dli_fname, "nanomsg") != NULL,
	          "nn_socket resolves to %s, not libnanomsg: Criterion would talk through nng",
	          info.dli_fname);
}

Test(link, nng_is_linked_and_usable)
{
	nng_socket s;
	cr_assert_eq(nng_pair0_open(&s), 0);
	cr_assert_eq(nng_close(s), 0);
}
