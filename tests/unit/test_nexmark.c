/* The Nexmark generator (connectors/nexmark_gen.h): kinds and proportions, ids, event time,
 * out-of-order groups, determinism from the position alone, configuration checks. The
 * expected values come from the nexmark repository's rules, written out here. */
#include <criterion/criterion.h>

#include "../../connectors/nexmark_gen.h"

#include <stdlib.h>
#include <string.h>

static nexmark_conf conf(uint64_t seed)
{
	nexmark_conf c;
	nexmark_conf_init(&c, seed);
	cr_assert_null(nexmark_conf_check(&c));
	return c;
}

/* the event's strings as one line, to compare two events */
static size_t text(const nexmark_event *e, char *out)
{
	const nexmark_str *s[6];
	int n = 0;
	if (e->kind == NEXMARK_PERSON) {
		s[n++] = &e->person.name, s[n++] = &e->person.email_address;
		s[n++] = &e->person.credit_card, s[n++] = &e->person.city,
		s[n++] = &e->person.state;
		s[n++] = &e->person.extra;
	} else if (e->kind == NEXMARK_AUCTION) {
		s[n++] = &e->auction.item_name, s[n++] = &e->auction.description;
		s[n++] = &e->auction.extra;
	} else {
		s[n++] = &e->bid.channel, s[n++] = &e->bid.url, s[n++] = &e->bid.extra;
	}
	size_t len = 0;
	for (int i = 0; i < n; i++) {
		memcpy(out + len, s[i]->p, s[i]->len);
		len += s[i]->len;
		out[len++] = '|';
	}
	/* only the part of the event's kind is set */
	int64_t v[5] = {e->date_time, (int64_t)e->id, 0, 0, 0};
	if (e->kind == NEXMARK_PERSON) {
		v[2] = e->person.id;
	} else if (e->kind == NEXMARK_AUCTION) {
		v[2] = e->auction.id, v[3] = e->auction.seller ^ e->auction.category << 40;
		v[4] = e->auction.expires ^ e->auction.reserve ^ e->auction.initial_bid << 20;
	} else {
		v[2] = e->bid.auction, v[3] = e->bid.bidder, v[4] = e->bid.price;
	}
	memcpy(out + len, v, sizeof(v));
	return len + sizeof(v);
}

Test(nexmark, proportions_1_3_46_in_every_50_events)
{
	nexmark_conf c = conf(1);
	for (uint64_t block = 0; block < 2000; block++) {
		int k[3] = {0, 0, 0};
		for (uint64_t i = 0; i < 50; i++)
			k[nexmark_kind_of(&c, nexmark_event_id(&c, block * 50 + i))]++;
		cr_assert(k[0] == 1 && k[1] == 3 && k[2] == 46, "block %llu: %d %d %d",
		          (unsigned long long)block, k[0], k[1], k[2]);
	}
	/* id % 50: 0 person, 1-3 auctions, 4-49 bids */
	cr_assert_eq(nexmark_kind_of(&c, 100), NEXMARK_PERSON);
	cr_assert_eq(nexmark_kind_of(&c, 103), NEXMARK_AUCTION);
	cr_assert_eq(nexmark_kind_of(&c, 104), NEXMARK_BID);
}

Test(nexmark, ids_time_and_references)
{
	nexmark_conf c = conf(7);
	nexmark_event *e = malloc(sizeof(*e));
	int64_t persons = 0, auctions = 0;
	for (uint64_t n = 0; n < 50000; n++) {
		nexmark_gen(&c, n, e);
		cr_assert_eq(e->id, n);
		/* 10,000 events/s from the base time: event n at n / 10 ms */
		cr_assert_eq(e->date_time, NEXMARK_BASE_TIME_MS + (int64_t)(n / 10));
		if (e->kind == NEXMARK_PERSON) {
			cr_assert_eq(e->person.id, 1000 + persons);
			persons++;
		} else if (e->kind == NEXMARK_AUCTION) {
			cr_assert_eq(e->auction.id, 1000 + auctions);
			auctions++;
			/* a seller generated already, or at most 10 ahead */
			cr_assert(e->auction.seller >= 1000 &&
			          e->auction.seller < 1000 + persons + 10);
			cr_assert(e->auction.category >= 10 && e->auction.category <= 14);
			cr_assert(e->auction.expires > e->date_time);
			cr_assert(e->auction.reserve > e->auction.initial_bid);
		} else {
			cr_assert(e->bid.auction >= 1000 && e->bid.auction < 1000 + auctions + 10);
			cr_assert(e->bid.auction >= 1000 + auctions - 1 - 100);
			cr_assert(e->bid.bidder >= 1000 && e->bid.bidder < 1000 + persons + 10);
			cr_assert(e->bid.price >= 100 && e->bid.price <= 100000000);
			cr_assert(e->bid.extra.len >= 54 && e->bid.extra.len <= 81);
		}
	}
	cr_assert_eq(persons, 1000);
	cr_assert_eq(auctions, 3000);
	free(e);
}

Test(nexmark, an_event_depends_on_its_position_and_seed_only)
{
	nexmark_conf c = conf(42), other = conf(43);
	nexmark_event *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
	static char ta[4096], tb[4096];
	memset(b, 0xa5, sizeof(*b));
	for (uint64_t n = 0; n < 5000; n++) {
		nexmark_gen(&c, n, a);
		/* b holds an unrelated event from before */
		nexmark_gen(&c, (n * 7919) % 100000, b);
		nexmark_gen(&c, n, b);
		size_t la = text(a, ta), lb = text(b, tb);
		cr_assert(la == lb && memcmp(ta, tb, la) == 0, "event %llu differs",
		          (unsigned long long)n);
	}
	int same = 0;
	for (uint64_t n = 0; n < 1000; n++) {
		nexmark_gen(&c, n, a);
		nexmark_gen(&other, n, b);
		size_t la = text(a, ta), lb = text(b, tb);
		same += la == lb && memcmp(ta, tb, la) == 0;
	}
	cr_assert_eq(same, 0, "%d events of seeds 42 and 43 are equal", same);
	free(a);
	free(b);
}

Test(nexmark, strings_have_no_comma_quote_or_edge_space)
{
	nexmark_conf c = conf(3);
	nexmark_event *e = malloc(sizeof(*e));
	static char t[4096];
	for (uint64_t n = 0; n < 100000; n++) {
		nexmark_gen(&c, n, e);
		size_t len = text(e, t) - 5 * sizeof(int64_t);
		for (size_t i = 0; i < len; i++)
			cr_assert(t[i] != ',' && t[i] != '"' && t[i] != '\r' && t[i] != '\n');
		const nexmark_str *s = e->kind == NEXMARK_AUCTION  ? &e->auction.description
		                       : e->kind == NEXMARK_PERSON ? &e->person.email_address
		                                                   : &e->bid.url;
		cr_assert(s->len > 0 && s->p[0] != ' ' && s->p[s->len - 1] != ' ');
	}
	free(e);
}

Test(nexmark, out_of_order_groups_permute_ids)
{
	nexmark_conf c = conf(1);
	c.ooo_group_size = 1000;
	cr_assert_null(nexmark_conf_check(&c));
	static unsigned char seen[5000];
	int moved = 0;
	for (uint64_t n = 0; n < 5000; n++) {
		uint64_t id = nexmark_event_id(&c, n);
		cr_assert_lt(id, 5000);
		cr_assert_eq(id / 1000, n / 1000, "position %llu left its group",
		             (unsigned long long)n);
		cr_assert_eq(seen[id], 0, "id %llu twice", (unsigned long long)id);
		seen[id] = 1;
		moved += id != n;
	}
	cr_assert_gt(moved, 4000);
	c.ooo_group_size = 953 * 2;
	cr_assert_not_null(nexmark_conf_check(&c));
}

Test(nexmark, event_time_from_tps)
{
	nexmark_conf c = conf(1);
	c.tps = 3; /* a third of a second apart, in whole ms rounded down */
	cr_assert_null(nexmark_conf_check(&c));
	nexmark_event *e = malloc(sizeof(*e));
	int64_t want[] = {0, 333, 666, 1000, 1333};
	for (uint64_t n = 0; n < 5; n++) {
		nexmark_gen(&c, n, e);
		cr_assert_eq(e->date_time - NEXMARK_BASE_TIME_MS, want[n]);
	}
	free(e);
	char buf[32];
	cr_assert_eq(nexmark_ts_format(NEXMARK_BASE_TIME_MS, buf), 23);
	cr_assert_str_eq(buf, "2015-07-15 00:00:00.000");
	nexmark_ts_format(951782400123LL, buf);
	cr_assert_str_eq(buf, "2000-02-29 00:00:00.123");
	nexmark_ts_format(86399999, buf);
	cr_assert_str_eq(buf, "1970-01-01 23:59:59.999");
}

Test(nexmark, bad_configurations)
{
	nexmark_conf c = conf(1);
	c.tps = 0;
	cr_assert_not_null(nexmark_conf_check(&c));
	c = conf(1);
	c.delayed_fraction = 1.5;
	cr_assert_not_null(nexmark_conf_check(&c));
	c = conf(1);
	c.events = 4000000000000000000ull; /* past the year 9999 at 10,000 events/s */
	cr_assert_not_null(nexmark_conf_check(&c));
	c = conf(1);
	c.events = 1000000000;
	cr_assert_null(nexmark_conf_check(&c));
}
