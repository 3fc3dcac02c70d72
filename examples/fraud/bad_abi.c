/* A library whose operator says another ABI version (tests/integration/bad_jobs.sh):
 * the plan must refuse it before anything runs. */
#include <eddy/operator.h>

static eddy_err nothing(ev_op_ctx *ctx, void *state, const ev_batch *in, uint32_t input)
{
	(void)ctx;
	(void)state;
	(void)in;
	(void)input;
	return EDDY_OK;
}

const ev_operator fraud_detector = {
    .abi = EV_OPERATOR_ABI + 1,
    .name = "from_the_future",
    .process = nothing,
};
