/* The Nexmark event generator (connectors/nexmark_gen.h). The rules are the nexmark
 * repository's (nexmark-flink/.../generator: GeneratorConfig, PersonGenerator,
 * AuctionGenerator, BidGenerator, PriceGenerator, StringsGenerator), written anew. */
#include "nexmark_gen.h"

#include <assert.h>
#include <math.h>
#include <string.h>

#define FIRST_PERSON_ID 1000
#define FIRST_AUCTION_ID 1000
#define FIRST_CATEGORY_ID 10
#define NUM_CATEGORIES 5
#define PERSON_ID_LEAD 10
#define AUCTION_ID_LEAD 10
#define HOT_AUCTION_RATIO 100 /* hot auctions/sellers/bidders: the first of a block of 100 */
#define HOT_SELLER_RATIO 100
#define HOT_BIDDER_RATIO 100
#define HOT_CHANNELS_RATIO 2
#define CHANNELS_NUMBER 10000
#define MIN_STRING_LENGTH 3

static const char *const us_states[] = {"AZ", "CA", "ID", "OR", "WA", "WY"};
static const char *const us_cities[] = {"Phoenix",  "Los Angeles", "San Francisco", "Boise",
                                        "Portland", "Bend",        "Redmond",       "Seattle",
                                        "Kent",     "Cheyenne"};
static const char *const first_names[] = {"Peter", "Paul",  "Luke",  "John",   "Saul",  "Vicky",
                                          "Kate",  "Julie", "Sarah", "Deiter", "Walter"};
static const char *const last_names[] = {"Shultz", "Abrams", "Spencer", "White", "Bartels",
                                         "Walton", "Smith",  "Jones",   "Noris"};
static const char *const hot_channels[] = {"Google", "Facebook", "Baidu", "Apple"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---- randomness: splitmix64 (Steele, Lea, Flood), one stream per event ---- */

typedef struct rng {
	uint64_t s;
} rng;

static inline uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static inline uint64_t next64(rng *r)
{
	r->s += 0x9e3779b97f4a7c15ull;
	return mix64(r->s);
}

/* rand_below: uniform in [0, n), n >= 1 (Lemire's multiply-shift on 32 bits; n < 2^31
 * as the Java's nextInt, else a 64-bit modulo as its LongGenerator). */
static inline int64_t rand_below(rng *r, int64_t n)
{
	assert(n >= 1);
	uint64_t x = next64(r);
	if (n < 0x7fffffff)
		return (int64_t)(((x >> 32) * (uint64_t)n) >> 32);
	return (int64_t)(x % (uint64_t)n);
}

/* rand_double: uniform in [0, 1), 53 bits. */
static inline double rand_double(rng *r)
{
	return (double)(next64(r) >> 11) * 0x1.0p-53;
}

/* stream: the stream of (seed, what, key): `what` separates the uses of one key. */
static inline rng stream(uint64_t seed, uint64_t what, uint64_t key)
{
	rng r = {mix64(mix64(seed ^ 0x6e65786d61726bull) + what * 0x9e3779b97f4a7c15ull) ^
	         mix64(key + 0x632be59bd9b4e019ull)};
	return r;
}

enum { STREAM_EVENT = 1, STREAM_DELAY, STREAM_HOT_URL, STREAM_CHANNEL };

/* ---- the configuration ---- */

void nexmark_conf_init(nexmark_conf *c, uint64_t seed)
{
	memset(c, 0, sizeof(*c));
	c->seed = seed;
	c->tps = 10000;
	c->base_time_ms = NEXMARK_BASE_TIME_MS;
	c->ooo_group_size = 1;
	c->delayed_fraction = 0;
	c->max_delay_ms = 3000;
	c->person_proportion = 1;
	c->auction_proportion = 3;
	c->bid_proportion = 46;
	c->hot_auction_ratio = 2;
	c->hot_sellers_ratio = 4;
	c->hot_bidders_ratio = 4;
	c->num_active_people = 1000;
	c->num_in_flight_auctions = 100;
	c->avg_person_bytes = 200;
	c->avg_auction_bytes = 500;
	c->avg_bid_bytes = 100;
}

/* out: append bytes to the event's buffer and return them as a string. */
static nexmark_str put(nexmark_event *e, const char *p, size_t len)
{
	assert(e->used + len <= sizeof(e->buf));
	memcpy(e->buf + e->used, p, len);
	nexmark_str s = {e->buf + e->used, (uint32_t)len};
	e->used += (uint32_t)len;
	return s;
}

/* next_string: StringsGenerator.nextString: 3 .. max_len - 1 characters, each a
 * lowercase letter or (1 in 13) `special`, trimmed of spaces. A string that trims to
 * nothing becomes one letter (the Java would give an empty string: a CSV null). Writes
 * into dst (>= max_len bytes); returns the length. */
static size_t next_string(rng *r, int max_len, char special, char *dst)
{
	int len = MIN_STRING_LENGTH + (int)rand_below(r, max_len - MIN_STRING_LENGTH);
	for (int i = 0; i < len; i++) {
		uint64_t x = next64(r);
		dst[i] = ((x >> 32) * 13 >> 32) == 0 ? special
		                                     : (char)('a' + ((x & 0xffffffffu) * 26 >> 32));
	}
	size_t a = 0, b = (size_t)len;
	if (special == ' ') {
		while (a < b && dst[a] == ' ')
			a++;
		while (b > a && dst[b - 1] == ' ')
			b--;
	}
	if (a == b) {
		dst[0] = (char)('a' + rand_below(r, 26));
		return 1;
	}
	memmove(dst, dst + a, b - a);
	return b - a;
}

static nexmark_str put_string(nexmark_event *e, rng *r, int max_len)
{
	assert(e->used + (size_t)max_len <= sizeof(e->buf));
	char *dst = e->buf + e->used;
	size_t n = next_string(r, max_len, ' ', dst);
	e->used += (uint32_t)n;
	return (nexmark_str){dst, (uint32_t)n};
}

/* next_extra: StringsGenerator.nextExtra: lowercase letters such that current + length
 * is on average `avg`: avg - current ± 20%. */
static nexmark_str put_extra(nexmark_event *e, rng *r, int current, int avg)
{
	if (current > avg)
		return (nexmark_str){e->buf + e->used, 0};
	int want = avg - current;
	int delta = (int)lround(want * 0.2);
	int len = want - delta + (delta == 0 ? 0 : (int)rand_below(r, 2 * delta));
	assert(e->used + (size_t)len + 12 <= sizeof(e->buf));
	char *dst = e->buf + e->used;
	/* whole groups of 12 letters (the last one's surplus is overwritten later): 6 from
	 * each 32-bit half of a draw, each the top of v × 26 (26^6 < 2^32), one
	 * multiplication per letter */
	for (int i = 0; i < len; i += 12) {
		uint64_t x = next64(r);
		uint64_t v = x >> 32, w = x & 0xffffffffu;
		for (int k = 0; k < 6; k++) {
			v *= 26;
			w *= 26;
			dst[i + k] = (char)('a' + (v >> 32));
			dst[i + 6 + k] = (char)('a' + (w >> 32));
			v &= 0xffffffffu;
			w &= 0xffffffffu;
		}
	}
	e->used += (uint32_t)len;
	return (nexmark_str){dst, (uint32_t)len};
}

/* base_url: BidGenerator.getBaseUrl: https://www.nexmark.com/x/y/z/item.htm?query=1 with
 * three 3-4 character parts of letters and '_'. Returns the length written to dst
 * (>= 64 bytes; at most 55). */
static size_t base_url(rng *r, char *dst)
{
	static const char head[] = "https://www.nexmark.com/";
	static const char tail[] = "item.htm?query=1";
	size_t n = sizeof(head) - 1;
	memcpy(dst, head, n);
	for (int i = 0; i < 3; i++) {
		n += next_string(r, 5, '_', dst + n);
		dst[n++] = '/';
	}
	memcpy(dst + n, tail, sizeof(tail) - 1);
	return n + sizeof(tail) - 1;
}

static int64_t timestamp_for(const nexmark_conf *c, uint64_t n);

const char *nexmark_conf_check(nexmark_conf *c)
{
	if (c->tps < 1 || c->tps > 1000000000)
		return "tps must be between 1 and 1000000000 events per second";
	if (c->ooo_group_size < 1 || c->ooo_group_size > 1000000000)
		return "out_of_order_group_size must be between 1 and 1000000000";
	if (c->ooo_group_size % 953 == 0)
		return "out_of_order_group_size must not be a multiple of 953 (the order within a "
		       "group is event number × 953 modulo the size)";
	if (!(c->delayed_fraction >= 0 && c->delayed_fraction <= 1))
		return "delayed_fraction must be between 0 and 1";
	if (c->max_delay_ms < 1 || c->max_delay_ms > 86400000)
		return "max_delay must be between 1 ms and 1 day";
	if (c->base_time_ms < 0 || c->base_time_ms > 253402300799999LL / 2)
		return "base time out of range";
	if (c->person_proportion < 1 || c->auction_proportion < 1 || c->bid_proportion < 1 ||
	    c->person_proportion + c->auction_proportion + c->bid_proportion > 1000)
		return "proportions must be positive, at most 1000 in all";
	if (c->hot_auction_ratio < 1 || c->hot_sellers_ratio < 1 || c->hot_bidders_ratio < 1 ||
	    c->num_active_people < 1 || c->num_in_flight_auctions < 1)
		return "hot ratios, active people and auctions in flight must be positive";
	if (c->avg_person_bytes > 1000 || c->avg_auction_bytes > 1000 || c->avg_bid_bytes > 1000)
		return "average sizes must be at most 1000 bytes";
	c->total_proportion = c->person_proportion + c->auction_proportion + c->bid_proportion;
	if (c->events > 0 && timestamp_for(c, nexmark_event_id(c, c->events) + 1) >
	                         253402300799999LL - c->max_delay_ms)
		return "the events' times would pass the year 9999: raise tps or lower events";
	for (int i = 0; i < 4; i++) {
		rng r = stream(c->seed, STREAM_HOT_URL, (uint64_t)i);
		c->hot_url_len[i] = (uint8_t)base_url(&r, c->hot_url[i]);
	}
	return NULL;
}

/* ---- ids and time (GeneratorConfig) ---- */

uint64_t nexmark_event_id(const nexmark_conf *c, uint64_t n)
{
	uint64_t g = (uint64_t)c->ooo_group_size;
	if (g == 1)
		return n;
	return n / g * g + (n % g) * 953 % g;
}

nexmark_kind nexmark_kind_of(const nexmark_conf *c, uint64_t id)
{
	uint64_t rem = id % c->total_proportion;
	if (rem < c->person_proportion)
		return NEXMARK_PERSON;
	if (rem < c->person_proportion + c->auction_proportion)
		return NEXMARK_AUCTION;
	return NEXMARK_BID;
}

/* timestamp_for: baseTime + event number × inter-event delay (1/tps s), in whole ms:
 * floor(n × 1000 / tps), without overflow. */
static int64_t timestamp_for(const nexmark_conf *c, uint64_t n)
{
	uint64_t tps = (uint64_t)c->tps;
	return c->base_time_ms + (int64_t)((n / tps) * 1000 + (n % tps) * 1000 / tps);
}

/* last_person: PersonGenerator.lastBase0PersonId: the newest person id (base 0) at
 * event id `id`; the current one when it is a person. */
static int64_t last_person(const nexmark_conf *c, uint64_t id)
{
	int64_t epoch = (int64_t)(id / c->total_proportion);
	int64_t offset = (int64_t)(id % c->total_proportion);
	if (offset >= (int64_t)c->person_proportion)
		offset = c->person_proportion - 1;
	return epoch * c->person_proportion + offset;
}

/* last_auction: AuctionGenerator.lastBase0AuctionId (-1 before the first auction). */
static int64_t last_auction(const nexmark_conf *c, uint64_t id)
{
	int64_t epoch = (int64_t)(id / c->total_proportion);
	int64_t offset = (int64_t)(id % c->total_proportion);
	if (offset < (int64_t)c->person_proportion) {
		epoch--;
		offset = c->auction_proportion - 1;
	} else if (offset >= (int64_t)(c->person_proportion + c->auction_proportion)) {
		offset = c->auction_proportion - 1;
	} else {
		offset -= c->person_proportion;
	}
	return epoch * c->auction_proportion + offset;
}

/* next_person: PersonGenerator.nextBase0PersonId: one of the active people, or up to
 * PERSON_ID_LEAD not generated yet. */
static int64_t next_person(const nexmark_conf *c, uint64_t id, rng *r)
{
	int64_t people = last_person(c, id) + 1;
	int64_t active = people < (int64_t)c->num_active_people ? people : c->num_active_people;
	return people - active + rand_below(r, active + PERSON_ID_LEAD);
}

/* next_auction: AuctionGenerator.nextBase0AuctionId: one of the auctions in flight, or
 * up to AUCTION_ID_LEAD not generated yet. */
static int64_t next_auction(const nexmark_conf *c, uint64_t id, rng *r)
{
	int64_t max = last_auction(c, id);
	int64_t min = max - (int64_t)c->num_in_flight_auctions;
	if (min < 0)
		min = 0;
	return min + rand_below(r, max - min + 1 + AUCTION_ID_LEAD);
}

/* next_price: PriceGenerator.nextPrice: round(10^(6u) × 100), 100 .. 10^8 (10^(6u)
 * computed as e^(6u ln 10): exp is cheaper than pow). */
static int64_t next_price(rng *r)
{
	return (int64_t)floor(exp(rand_double(r) * 13.815510557964274) * 100.0 + 0.5);
}

/* ---- the events ---- */

static void gen_person(const nexmark_conf *c, nexmark_event *e, rng *r)
{
	e->person.id = last_person(c, e->id) + FIRST_PERSON_ID;
	char tmp[32];
	const char *f = first_names[rand_below(r, COUNT(first_names))];
	const char *l = last_names[rand_below(r, COUNT(last_names))];
	size_t fl = strlen(f), ll = strlen(l);
	memcpy(tmp, f, fl);
	tmp[fl] = ' ';
	memcpy(tmp + fl + 1, l, ll);
	e->person.name = put(e, tmp, fl + 1 + ll);
	size_t n = next_string(r, 7, ' ', tmp);
	tmp[n++] = '@';
	n += next_string(r, 5, ' ', tmp + n);
	memcpy(tmp + n, ".com", 4);
	e->person.email_address = put(e, tmp, n + 4);
	for (int i = 0; i < 4; i++) {
		int d = (int)rand_below(r, 10000);
		char *p = tmp + i * 5;
		p[0] = (char)('0' + d / 1000);
		p[1] = (char)('0' + d / 100 % 10);
		p[2] = (char)('0' + d / 10 % 10);
		p[3] = (char)('0' + d % 10);
		p[4] = ' ';
	}
	e->person.credit_card = put(e, tmp, 19);
	const char *city = us_cities[rand_below(r, COUNT(us_cities))];
	const char *state = us_states[rand_below(r, COUNT(us_states))];
	e->person.city = (nexmark_str){city, (uint32_t)strlen(city)};
	e->person.state = (nexmark_str){state, 2};
	int size = 8 + (int)(e->person.name.len + e->person.email_address.len +
	                     e->person.credit_card.len + e->person.city.len + 2);
	e->person.extra = put_extra(e, r, size, (int)c->avg_person_bytes);
}

static void gen_auction(const nexmark_conf *c, nexmark_event *e, rng *r)
{
	e->auction.id = last_auction(c, e->id) + FIRST_AUCTION_ID;
	int64_t seller;
	if (rand_below(r, c->hot_sellers_ratio) > 0) /* the first person of the newest 100 */
		seller = last_person(c, e->id) / HOT_SELLER_RATIO * HOT_SELLER_RATIO;
	else
		seller = next_person(c, e->id, r);
	e->auction.seller = seller + FIRST_PERSON_ID;
	e->auction.category = FIRST_CATEGORY_ID + rand_below(r, NUM_CATEGORIES);
	e->auction.initial_bid = next_price(r);
	/* AuctionGenerator.nextAuctionLengthMs: on average the time until the auction
	 * num_in_flight_auctions ahead is generated */
	uint64_t number = e->id;
	uint64_t ahead =
	    (uint64_t)c->num_in_flight_auctions * c->total_proportion / c->auction_proportion;
	int64_t horizon = timestamp_for(c, number + ahead) - timestamp_for(c, number);
	e->auction.expires = e->date_time + 1 + rand_below(r, horizon * 2 > 1 ? horizon * 2 : 1);
	e->auction.item_name = put_string(e, r, 20);
	e->auction.description = put_string(e, r, 100);
	e->auction.reserve = e->auction.initial_bid + next_price(r);
	int size = 8 + (int)(e->auction.item_name.len + e->auction.description.len) + 5 * 8;
	e->auction.extra = put_extra(e, r, size, (int)c->avg_auction_bytes);
}

/* Integer.reverse, then Math.abs of the int (which leaves INT_MIN as it is). */
static int32_t java_abs_reverse(uint32_t v)
{
	uint32_t x = 0;
	for (int i = 0; i < 32; i++, v >>= 1)
		x = (x << 1) | (v & 1);
	int32_t s = (int32_t)x;
	return s < 0 && s != INT32_MIN ? -s : s;
}

static void gen_bid(const nexmark_conf *c, nexmark_event *e, rng *r)
{
	int64_t auction;
	if (rand_below(r, c->hot_auction_ratio) > 0) /* the first auction of the newest 100 */
		auction = last_auction(c, e->id) / HOT_AUCTION_RATIO * HOT_AUCTION_RATIO;
	else
		auction = next_auction(c, e->id, r);
	e->bid.auction = auction + FIRST_AUCTION_ID;
	int64_t bidder;
	if (rand_below(r, c->hot_bidders_ratio) > 0) /* the second person of the newest 100 */
		bidder = last_person(c, e->id) / HOT_BIDDER_RATIO * HOT_BIDDER_RATIO + 1;
	else
		bidder = next_person(c, e->id, r);
	e->bid.bidder = bidder + FIRST_PERSON_ID;
	e->bid.price = next_price(r);
	if (rand_below(r, HOT_CHANNELS_RATIO) > 0) {
		int i = (int)rand_below(r, COUNT(hot_channels));
		e->bid.channel = (nexmark_str){hot_channels[i], (uint32_t)strlen(hot_channels[i])};
		e->bid.url = (nexmark_str){c->hot_url[i], c->hot_url_len[i]};
	} else {
		/* channel-N and its URL, the same for every bid of channel N (the Java caches
		 * them), 9 in 10 with &channel_id= */
		uint32_t ch = (uint32_t)rand_below(r, CHANNELS_NUMBER);
		char tmp[96];
		int n = 8;
		memcpy(tmp, "channel-", 8);
		char digits[12];
		int k = 0;
		uint32_t v = ch;
		do
			digits[k++] = (char)('0' + v % 10);
		while ((v /= 10) != 0);
		while (k > 0)
			tmp[n++] = digits[--k];
		e->bid.channel = put(e, tmp, (size_t)n);
		rng cr = stream(c->seed, STREAM_CHANNEL, ch);
		size_t u = base_url(&cr, tmp);
		if (rand_below(&cr, 10) > 0) {
			memcpy(tmp + u, "&channel_id=", 12);
			u += 12;
			int32_t id = java_abs_reverse(ch);
			int64_t w = id;
			if (w < 0) {
				tmp[u++] = '-';
				w = -w;
			}
			k = 0;
			do
				digits[k++] = (char)('0' + w % 10);
			while ((w /= 10) != 0);
			while (k > 0)
				tmp[u++] = digits[--k];
		}
		e->bid.url = put(e, tmp, u);
	}
	e->bid.extra = put_extra(e, r, 8 + 8 + 8 + 8, (int)c->avg_bid_bytes);
}

void nexmark_gen(const nexmark_conf *c, uint64_t n, nexmark_event *e)
{
	e->used = 0;
	e->id = nexmark_event_id(c, n);
	e->kind = nexmark_kind_of(c, e->id);
	e->date_time = timestamp_for(c, e->id);
	if (c->delayed_fraction > 0 && e->kind != NEXMARK_PERSON) {
		/* an occasional delay: the event arrives up to max_delay late, so its event
		 * time lags the events around it */
		rng d = stream(c->seed, STREAM_DELAY, e->id);
		if (rand_double(&d) < c->delayed_fraction)
			e->date_time -= 1 + rand_below(&d, c->max_delay_ms);
	}
	rng r = stream(c->seed, STREAM_EVENT, e->id);
	switch (e->kind) {
	case NEXMARK_PERSON: gen_person(c, e, &r); break;
	case NEXMARK_AUCTION: gen_auction(c, e, &r); break;
	case NEXMARK_BID: gen_bid(c, e, &r); break;
	}
}

size_t nexmark_ts_format(int64_t ms, char *buf)
{
	int64_t days = ms >= 0 ? ms / 86400000 : -((-ms + 86399999) / 86400000);
	int64_t rem = ms - days * 86400000;
	/* civil from days (Howard Hinnant) */
	int64_t z = days + 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t y = (int64_t)yoe + era * 400;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	unsigned d = doy - (153 * mp + 2) / 5 + 1;
	unsigned m = mp < 10 ? mp + 3 : mp - 9;
	y += m <= 2;
	unsigned h = (unsigned)(rem / 3600000), mi = (unsigned)(rem / 60000 % 60),
	         s = (unsigned)(rem / 1000 % 60), f = (unsigned)(rem % 1000);
	if (y > 9999) /* nexmark_conf_check keeps bounded streams below; unbounded ones
	               * would need 8,000 years of event time at tps 1 */
		y = 9999;
	unsigned yy = (unsigned)y;
	char *p = buf;
	p[0] = (char)('0' + yy / 1000);
	p[1] = (char)('0' + yy / 100 % 10);
	p[2] = (char)('0' + yy / 10 % 10);
	p[3] = (char)('0' + yy % 10);
	p[4] = '-';
	p[5] = (char)('0' + m / 10);
	p[6] = (char)('0' + m % 10);
	p[7] = '-';
	p[8] = (char)('0' + d / 10);
	p[9] = (char)('0' + d % 10);
	p[10] = ' ';
	p[11] = (char)('0' + h / 10);
	p[12] = (char)('0' + h % 10);
	p[13] = ':';
	p[14] = (char)('0' + mi / 10);
	p[15] = (char)('0' + mi % 10);
	p[16] = ':';
	p[17] = (char)('0' + s / 10);
	p[18] = (char)('0' + s % 10);
	p[19] = '.';
	p[20] = (char)('0' + f / 100);
	p[21] = (char)('0' + f / 10 % 10);
	p[22] = (char)('0' + f % 10);
	p[23] = '\0';
	return 23;
}
