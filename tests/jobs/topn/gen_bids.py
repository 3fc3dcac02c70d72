#!/usr/bin/env python3
"""Bids for the top_n tests (tests/integration/topn.sh), written in arrival order.

Four bids per second of event time from 2024-01-01 00:00:00 (whole seconds), on 8
auctions (auction 3 hot), 20 bidders, prices 1..30 (many ties), 3% without a price.
Each bid arrives up to 3 s after its event time and 2% arrive 6-15 s late, so with a
2 s bounded out-of-orderness some bids are late for their windows.

usage: gen_bids.py [--rows N] [--seed S] > bids.csv
"""
import argparse
import random
import time

ap = argparse.ArgumentParser()
ap.add_argument("--rows", type=int, default=400)
ap.add_argument("--seed", type=int, default=1)
a = ap.parse_args()
rnd = random.Random(a.seed)
start = 1704067200  # 2024-01-01 00:00:00 UTC
channels = ["apple", "Google", "facebook", "baidu"]
words = ["item", "deal", "lot", "buy", "x"]
rows = []
for k in range(a.rows):
    ts = start + k // 4
    arrival = ts + rnd.uniform(0, 3)
    if rnd.random() < 0.02:
        arrival += rnd.uniform(6, 15)
    auction = 3 if rnd.random() < 0.3 else rnd.randint(1, 8)
    price = "" if rnd.random() < 0.03 else str(rnd.randint(1, 30))
    url = "https://shop.example/%s/%d" % (rnd.choice(words), rnd.randint(1, 99))
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))
    rows.append((arrival, k, "%s,%d,%d,%s,%s,%s" % (stamp, auction, rnd.randint(1, 20), price,
                                                    rnd.choice(channels), url)))
rows.sort()
print("date_time,auction,bidder,price,channel,url")
for _, _, line in rows:
    print(line)
