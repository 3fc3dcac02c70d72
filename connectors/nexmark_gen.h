/*
 * The Nexmark event generator: Person, Auction and Bid events as the generator of the
 * nexmark/nexmark repository (nexmark-flink, the suite behind Flink's published Nexmark
 * results) makes them — proportions 1:3:46 by event id, first person and auction id 1000,
 * the "last base-0 id" rules, 1,000 active people, 100 auctions in flight, hot auctions,
 * sellers and bidders, 5 categories from 10, hot channels, prices 10^(6u) × 100, auction
 * lengths from the in-flight horizon, "extra" padding to average sizes of 200/500/100
 * bytes, event time from the event number and the inter-event delay of `tps`.
 *
 * Pure and deterministic: every event is a function of (configuration, seed, its
 * position) alone — randomness comes from a splitmix64 stream seeded per event id, as
 * the Java seeds a Random per event id — so any event can be generated without the ones
 * before it (parallel sources split positions; a checkpoint is a position). No
 * allocation, no global state: any number of threads may call it on their own events.
 * Used by the `connector: nexmark` source (connectors/nexmark.c) and `eddy nexmark-gen`
 * (tools/nexmark_gen.c). Differences from the Java generator: docs/ARCHITECTURE.md.
 */
#ifndef EDDY_CONNECTORS_NEXMARK_GEN_H
#define EDDY_CONNECTORS_NEXMARK_GEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The first event's time: 2015-07-15 00:00:00.000 UTC, Beam Nexmark's fixed BASE_TIME
 * (the nexmark repository takes the wall clock instead; a fixed one makes files
 * reproducible). Epoch ms. */
#define NEXMARK_BASE_TIME_MS 1436918400000LL

/* Event kinds, numbered as the repository's event_type column. */
typedef enum nexmark_kind { NEXMARK_PERSON = 0, NEXMARK_AUCTION = 1, NEXMARK_BID = 2 } nexmark_kind;

/* The configuration. Fill it with nexmark_conf_init, change fields, then call
 * nexmark_conf_check (it derives the hot URLs from the seed). */
typedef struct nexmark_conf {
	uint64_t seed;
	uint64_t events;         /* events in all, 0: unbounded (checked: times stay in
	                          * 4-digit years) */
	int64_t tps;             /* event-time rate, events/s: the inter-event delay is
	                          * 1/tps s (the repository's first-event.rate; 10,000) */
	int64_t base_time_ms;    /* event 0's time (NEXMARK_BASE_TIME_MS) */
	int64_t ooo_group_size;  /* outOfOrderGroupSize: 1 = in order; g > 1 emits every g
	                          * events in a pseudo-random order (as the repository) */
	double delayed_fraction; /* share of auctions and bids whose dateTime lags (0) */
	int64_t max_delay_ms;    /* their lag: 1 .. max_delay_ms (3,000) */
	/* the repository's fixed model (NexmarkConfiguration defaults) */
	uint32_t person_proportion, auction_proportion, bid_proportion;   /* 1, 3, 46 */
	uint32_t hot_auction_ratio, hot_sellers_ratio, hot_bidders_ratio; /* 2, 4, 4 */
	uint32_t num_active_people;                                       /* 1000 */
	uint32_t num_in_flight_auctions;                                  /* 100 */
	uint32_t avg_person_bytes, avg_auction_bytes, avg_bid_bytes;      /* 200, 500, 100 */
	/* derived by nexmark_conf_check */
	uint32_t total_proportion;
	char hot_url[4][64];
	uint8_t hot_url_len[4];
} nexmark_conf;

/* nexmark_conf_init sets every field to the repository's default with the given seed. */
void nexmark_conf_init(nexmark_conf *c, uint64_t seed);

/* nexmark_conf_check validates c and derives its hot URLs. Returns NULL when c is usable,
 * else a static message naming the bad field ("tps must be between 1 and 1000000000").
 * Call it after changing any field and before generating. */
const char *nexmark_conf_check(nexmark_conf *c);

/* A string of an event: p points into the event's buffer or into static text. */
typedef struct nexmark_str {
	const char *p;
	uint32_t len;
} nexmark_str;

/* One event. Only the part of its kind is set. Strings never hold a comma, a quote, CR
 * or LF, and never start or end with a space. */
typedef struct nexmark_event {
	nexmark_kind kind;
	uint64_t id;       /* the event id (the position when ooo_group_size is 1) */
	int64_t date_time; /* event time, epoch ms */
	struct {
		int64_t id;
		nexmark_str name, email_address, credit_card, city, state, extra;
	} person;
	struct {
		int64_t id;
		nexmark_str item_name, description;
		int64_t initial_bid, reserve;
		int64_t expires; /* epoch ms */
		int64_t seller, category;
		nexmark_str extra;
	} auction;
	struct {
		int64_t auction, bidder, price;
		nexmark_str channel, url, extra;
	} bid;
	char buf[1536]; /* the strings' bytes */
	uint32_t used;
} nexmark_event;

/* nexmark_event_id: the id of the event at position n (0-based generation order). */
uint64_t nexmark_event_id(const nexmark_conf *c, uint64_t n);

/* nexmark_kind_of: the kind of the event with id `id` (id % 50: 0 person, 1-3 auction,
 * 4-49 bid with the default proportions). */
nexmark_kind nexmark_kind_of(const nexmark_conf *c, uint64_t id);

/* nexmark_gen fills *e with the event at position n. c must have passed
 * nexmark_conf_check. No allocation; any thread. */
void nexmark_gen(const nexmark_conf *c, uint64_t n, nexmark_event *e);

/* nexmark_ts_format writes ms as "YYYY-MM-DD HH:MM:SS.mmm" (UTC, always 3 fraction
 * digits: the CSV contract's format) into buf (>= 32 bytes); returns the length (23 for
 * years 1000-9999). */
size_t nexmark_ts_format(int64_t ms, char *buf);

#endif
