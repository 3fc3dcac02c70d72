/*
 * Fraud detection, as Flink's DataStream walkthrough (FraudDetector), in event time: per
 * account (key_by account_id), a transaction of less than `small` followed within
 * `window` by one of more than `large` raises an alert. A small transaction sets a flag
 * and a timer `window` later; the next transaction of the account alerts if it is large
 * and in any case clears the flag and deletes the timer; the timer clears the flag.
 *
 * Input: a field account_id and a float field amount (names given by params account and
 * amount); the record's event time is its time. Output (port 0): account_id, small_time,
 * small_amount, large_time, large_amount, with event time large_time.
 *
 * The state is keyed state only (checkpointed by eddy): "flag" holds the small
 * transaction (its time and amount, 16 bytes), "timer" the time of its timer (8 bytes).
 */
#include <eddy/operator.h>
#include <eddy/state.h>

#include <stdlib.h>
#include <string.h>

typedef struct fraud {
	double small, large;
	int64_t window_ms;
	int account, amount; /* input fields */
	ev_state_id flag, timer;
} fraud;

typedef struct small_tx {
	int64_t time;
	double amount;
} small_tx;

static eddy_err fraud_open(ev_op_ctx *ctx, void **state)
{
	fraud *f = calloc(1, sizeof(*f));
	if (f == NULL)
		return EDDY_ENOMEM;
	*state = f;
	f->small = ev_op_param_float(ctx, "small", 1.00);
	f->large = ev_op_param_float(ctx, "large", 500.00);
	f->window_ms = ev_op_param_duration_ms(ctx, "window", 60000);
	const char *account = ev_op_param_str(ctx, "account", "account_id");
	const char *amount = ev_op_param_str(ctx, "amount", "amount");
	const ev_schema *in = ev_op_input_schema(ctx);
	f->account = schema_find(in, account);
	f->amount = schema_find(in, amount);
	if (f->account < 0 || f->amount < 0)
		return ev_op_fail(ctx, "the input has no field '%s'",
		                  f->account < 0 ? account : amount);
	if (in->fields[f->amount].type != EV_FLOAT && in->fields[f->amount].type != EV_INT)
		return ev_op_fail(ctx, "field '%s' is %s; it must be a number", amount,
		                  ev_type_name(in->fields[f->amount].type));
	ev_state *st = ev_op_state(ctx);
	if (st == NULL)
		return ev_op_fail(ctx, "fraud_detector needs key_by (the account)");
	eddy_err err = ev_state_register(
	    st, &(ev_state_desc){.name = "flag", .kind = EV_STATE_VALUE}, &f->flag);
	if (err == EDDY_OK)
		err = ev_state_register(
		    st, &(ev_state_desc){.name = "timer", .kind = EV_STATE_VALUE}, &f->timer);
	if (err != EDDY_OK)
		return ev_op_fail(ctx, "registering state: %s", ev_state_errmsg(st));
	return EDDY_OK;
}

/* clean_up clears the flag and deletes its timer (Flink's cleanUp). */
static eddy_err clean_up(ev_state *st, const fraud *f)
{
	const void *v;
	size_t len;
	eddy_err err = ev_value_get(st, f->timer, &v, &len);
	if (err == EDDY_OK && len == sizeof(int64_t)) {
		int64_t at;
		memcpy(&at, v, sizeof(at));
		err = ev_timer_delete(st, EV_TIME_EVENT, at);
	} else if (err == EDDY_ENOENT) {
		err = EDDY_OK;
	}
	if (err == EDDY_OK)
		err = ev_state_clear(st, f->timer);
	if (err == EDDY_OK)
		err = ev_state_clear(st, f->flag);
	return err;
}

static eddy_err fraud_process(ev_op_ctx *ctx, void *state, const ev_batch *in, uint32_t input)
{
	(void)input;
	fraud *f = state;
	ev_state *st = ev_op_state(ctx);
	for (uint32_t r = 0; r < in->n; r++) {
		eddy_err err = ev_op_key(ctx, in, r);
		if (err != EDDY_OK)
			return ev_op_fail(ctx, "setting the key: %s", eddy_strerror(err));
		ev_val amt = batch_get_val(in, r, (uint32_t)f->amount);
		if (amt.type == EV_NULL)
			continue; /* no amount: not a transaction we can judge */
		double amount = amt.type == EV_INT ? (double)amt.i : amt.f;
		int64_t ts = in->ts[r];
		const void *v;
		size_t len;
		err = ev_value_get(st, f->flag, &v, &len);
		if (err == EDDY_OK && len == sizeof(small_tx)) {
			small_tx s;
			memcpy(&s, v, sizeof(s));
			if (amount > f->large) {
				ev_val out[5] = {
				    batch_get_val(in, r, (uint32_t)f->account),
				    {.type = EV_TIMESTAMP, .i = s.time},
				    {.type = EV_FLOAT, .f = s.amount},
				    {.type = EV_TIMESTAMP, .i = ts},
				    {.type = EV_FLOAT, .f = amount},
				};
				if ((err = ev_op_emit(ctx, 0, out, ts)) != EDDY_OK)
					return err;
			}
			err = clean_up(st, f);
		} else if (err == EDDY_ENOENT) {
			err = EDDY_OK;
		}
		if (err == EDDY_OK && amount < f->small) {
			small_tx s = {.time = ts, .amount = amount};
			int64_t at = ts + f->window_ms;
			if ((err = ev_value_put(st, f->flag, &s, sizeof(s))) == EDDY_OK &&
			    (err = ev_timer_register(st, EV_TIME_EVENT, at)) == EDDY_OK)
				err = ev_value_put(st, f->timer, &at, sizeof(at));
		}
		if (err != EDDY_OK)
			return ev_op_fail(ctx, "keyed state: %s", ev_state_errmsg(st));
	}
	return EDDY_OK;
}

/* fraud_on_timer: a minute passed since the small transaction (its key is current). */
static eddy_err fraud_on_timer(ev_op_ctx *ctx, void *state, const ev_timer *t)
{
	(void)t;
	fraud *f = state;
	ev_state *st = ev_op_state(ctx);
	eddy_err err = ev_state_clear(st, f->timer);
	if (err == EDDY_OK)
		err = ev_state_clear(st, f->flag);
	return err == EDDY_OK ? EDDY_OK : ev_op_fail(ctx, "keyed state: %s", ev_state_errmsg(st));
}

static void fraud_close(ev_op_ctx *ctx, void *state)
{
	(void)ctx;
	free(state);
}

static const ev_op_param fraud_params[] = {
    {"small", EV_PARAM_FLOAT},    {"large", EV_PARAM_FLOAT},   {"window", EV_PARAM_DURATION},
    {"account", EV_PARAM_STRING}, {"amount", EV_PARAM_STRING}, {NULL, 0},
};

EV_OPERATOR_EXPORT const ev_operator fraud_detector = {
    .abi = EV_OPERATOR_ABI,
    .name = "fraud_detector",
    .params = fraud_params,
    .open = fraud_open,
    .process = fraud_process,
    .on_timer = fraud_on_timer,
    .close = fraud_close,
};
