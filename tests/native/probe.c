/*
 * A probe operator for tests/integration/native_sdk.sh: what the fraud example does not
 * use of the SDK. Input: name (string), k (int). With key_by [name, k]: counts records
 * per key in keyed state and emits (name, k, n) on port 0; the first record of a key
 * registers an event-time timer (its time + 5 s) and a processing-time timer (now +
 * 10 ms), each of which emits (name, k, domain) on the side output "fired", the key
 * decoded with ev_op_key_values. Without key_by it emits (name, k, 0). Param
 * wrong_type: true emits a string into the int field k (the job must fail with a
 * reason). The watermark at the end of input is emitted on "fired" as (end, -1, event).
 */
#include <eddy/operator.h>
#include <eddy/state.h>

#include <stdlib.h>
#include <string.h>

typedef struct probe {
	int fname, fk;
	int fired; /* the port of "fired" */
	bool wrong_type;
	ev_state_id count;
} probe;

static eddy_err probe_open(ev_op_ctx *ctx, void **state)
{
	probe *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return EDDY_ENOMEM;
	*state = p;
	const ev_schema *in = ev_op_input_schema(ctx);
	p->fname = schema_find(in, "name");
	p->fk = schema_find(in, "k");
	p->fired = ev_op_port(ctx, "fired");
	p->wrong_type = ev_op_param_bool(ctx, "wrong_type", false);
	if (p->fname < 0 || p->fk < 0 || p->fired != 1 || ev_op_port(ctx, "nope") != -1 ||
	    ev_op_nports(ctx) != 2 || ev_op_output_schema(ctx, 2) != NULL)
		return ev_op_fail(ctx, "unexpected schemas or ports");
	ev_state *st = ev_op_state(ctx);
	if (st && ev_state_register(st, &(ev_state_desc){.name = "count", .kind = EV_STATE_VALUE},
	                            &p->count) != EDDY_OK)
		return ev_op_fail(ctx, "register: %s", ev_state_errmsg(st));
	return EDDY_OK;
}

static eddy_err probe_process(ev_op_ctx *ctx, void *state, const ev_batch *in, uint32_t input)
{
	(void)input;
	probe *p = state;
	ev_state *st = ev_op_state(ctx);
	for (uint32_t r = 0; r < in->n; r++) {
		ev_val out[3] = {batch_get_val(in, r, (uint32_t)p->fname),
		                 batch_get_val(in, r, (uint32_t)p->fk),
		                 {.type = EV_INT, .i = 0}};
		if (p->wrong_type)
			out[1] = out[0];
		if (st) {
			eddy_err err = ev_op_key(ctx, in, r);
			void *v;
			bool created;
			if (err == EDDY_OK)
				err = ev_value_ref(st, p->count, sizeof(int64_t), &v, &created);
			if (err != EDDY_OK)
				return ev_op_fail(ctx, "state: %s", ev_state_errmsg(st));
			int64_t n;
			memcpy(&n, v, sizeof(n));
			n++;
			memcpy(v, &n, sizeof(n));
			out[2].i = n;
			if (n == 1 &&
			    ((err = ev_timer_register(st, EV_TIME_EVENT, in->ts[r] + 5000)) !=
			         EDDY_OK ||
			     (err = ev_timer_register(st, EV_TIME_PROCESSING,
			                              ev_op_now_ms(ctx) + 10)) != EDDY_OK))
				return ev_op_fail(ctx, "timers: %s", ev_state_errmsg(st));
		}
		eddy_err err = ev_op_emit(ctx, 0, out, in->ts[r]);
		if (err != EDDY_OK)
			return err;
	}
	return EDDY_OK;
}

static eddy_err probe_on_timer(ev_op_ctx *ctx, void *state, const ev_timer *t)
{
	probe *p = state;
	ev_val key[2];
	if (ev_op_key_values(ctx, key, 2) != EDDY_OK || key[0].type != EV_STRING ||
	    key[1].type != EV_INT)
		return ev_op_fail(ctx, "cannot decode the timer's key");
	const char *d = t->domain == EV_TIME_EVENT ? "event" : "processing";
	ev_val out[3] = {key[0], key[1], {.type = EV_STRING, .s = {d, (uint32_t)strlen(d)}}};
	return ev_op_emit(ctx, (uint32_t)p->fired, out, t->domain == EV_TIME_EVENT ? t->time : 0);
}

static eddy_err probe_on_watermark(ev_op_ctx *ctx, void *state, int64_t wm)
{
	probe *p = state;
	if (wm != INT64_MAX || ev_op_watermark(ctx) != wm)
		return EDDY_OK;
	ev_val out[3] = {{.type = EV_STRING, .s = {"end", 3}},
	                 {.type = EV_INT, .i = -1},
	                 {.type = EV_STRING, .s = {"event", 5}}};
	return ev_op_emit(ctx, (uint32_t)p->fired, out, 0);
}

static void probe_close(ev_op_ctx *ctx, void *state)
{
	(void)ctx;
	free(state);
}

EV_OPERATOR_EXPORT const ev_operator probe_op = {
    .abi = EV_OPERATOR_ABI,
    .name = "probe",
    .open = probe_open,
    .process = probe_process,
    .on_timer = probe_on_timer,
    .on_watermark = probe_on_watermark,
    .close = probe_close,
};
