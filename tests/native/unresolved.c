/* A library that calls a function eddy does not have (tests/integration/native_sdk.sh):
 * loading it must fail when the plan is built, naming the symbol. */
#include <eddy/operator.h>

eddy_err ev_op_no_such_function(ev_op_ctx *ctx);

static eddy_err process(ev_op_ctx *ctx, void *state, const ev_batch *in, uint32_t input)
{
	(void)state;
	(void)in;
	(void)input;
	return ev_op_no_such_function(ctx);
}

const ev_operator unresolved_op = {
	.abi = EV_OPERATOR_ABI,
	.name = "unresolved",
	.process = process,
};
