#!/usr/bin/env python3
"""Writes the fraud example's input: transactions "time,account_id,amount", one per
event-time second or three (strictly increasing, whole seconds, from 2024-01-01), for
random accounts, with hand-made edge cases woven in (see CASES). Deterministic for a
given --seed and --rows.

    examples/fraud/gen_transactions.py > examples/fraud/transactions.csv
    examples/fraud/gen_transactions.py --rows 200000 --seed 2 > big.csv

Amounts below 1.00 are small, above 500.00 large (the job's params). The generator
keeps the result independent of how the engine cuts the stream into batches: a large
transaction that comes more than 60 s after a small one of its account has at least two
other transactions between the flag's expiry (small + 60 s) and it, so the watermark has
passed the expiry first (a random one that would not is made medium); it checks that on
what it wrote and fails otherwise. Within 60 s (inclusive) the flag is still set.
"""
import argparse
import random
import sys
from datetime import datetime, timedelta, timezone

START = datetime(2024, 1, 1, tzinfo=timezone.utc)

# Edge cases: (account, [(seconds after the previous transaction of the case, amount)]).
# Expected alerts are marked; accounts 9001.. are used by nothing else.
CASES = [
    (9001, [(0, 0.50), (30, 600.00)]),              # alert
    (9002, [(0, 1.00), (30, 600.00)]),              # 1.00 is not small: none
    (9003, [(0, 0.50), (30, 500.00)]),              # 500.00 is not large: none
    (9004, [(0, 0.50), (60, 600.00)]),              # exactly 60 s: alert (timer fires after)
    (9005, [(0, 0.50), (90, 600.00)]),              # 90 s: the timer cleared the flag: none
    (9006, [(0, 0.50), (10, 50.00), (10, 600.00)]), # small, medium, large: none
    (9007, [(0, 0.50), (20, 0.30), (20, 700.00)]),  # small, small, large: alert (0.30, 700)
    (9008, [(0, 0.99), (5, 500.01)]),               # just small, just large: alert
    (9009, [(0, 0.20), (59, 0.40), (59, 800.00)]),  # the 2nd small re-arms: alert (0.40, 800)
    (9010, [(0, 900.00), (10, 0.10)]),              # large then small: none
    (9011, [(0, 0.10), (120, 0.20), (30, 999.99)]), # expired, small again, large: alert
    (9012, [(0, 0.05)]),                            # a small at the end: none
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=4000, help="random transactions")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--accounts", type=int, default=40)
    a = ap.parse_args()
    rnd = random.Random(a.seed)

    # the random stream: (account, amount) per slot
    rows = []
    for _ in range(a.rows):
        acct = rnd.randint(1, a.accounts)
        x = rnd.random()
        if x < 0.08:
            amount = rnd.randint(1, 99) / 100.0          # small
        elif x < 0.18:
            amount = rnd.randint(50001, 100000) / 100.0  # large
        elif x < 0.19:
            amount = 1.00
        elif x < 0.20:
            amount = 500.00
        else:
            amount = rnd.randint(100, 50000) / 100.0
        rows.append([acct, amount, None])

    # time: 1 to 3 s between transactions; the edge cases are placed on the time line
    # at fixed offsets and the random stream fills the seconds around them
    t = 0
    times = []
    for _ in rows:
        t += rnd.randint(1, 3)
        times.append(t)
    events = [(times[i], rows[i][0], rows[i][1]) for i in range(len(rows))]
    span = times[-1] if times else 1000
    cases = []
    for k, (acct, steps) in enumerate(CASES):
        at = int(span * (k + 1) / (len(CASES) + 2))
        for gap, amount in steps:
            at += gap
            cases.append((at, acct, amount))
    case_times = {c[0] for c in cases}
    events = [e for e in events if e[0] not in case_times] + cases
    events.sort()
    settle(events)
    check(events)
    out = sys.stdout
    out.write("time,account_id,amount\n")
    for sec, acct, amount in events:
        ts = START + timedelta(seconds=sec)
        out.write(f"{ts:%Y-%m-%d %H:%M:%S},{acct},{amount:.2f}\n")


def ambiguous(events, j, i):
    """Whether a large transaction i after the small one j (same account) could alert or
    not depending on batching: fewer than two transactions lie after the flag's expiry
    (small + 60 s) and before it."""
    expiry = events[j][0] + 60
    if events[i][0] <= expiry:
        return False
    return sum(1 for e in events[j + 1:i] if e[0] > expiry) < 2


def settle(events):
    """Makes the large transactions of random accounts that would be ambiguous medium."""
    last = {}
    for i, (sec, acct, amount) in enumerate(events):
        j = last.get(acct)
        if j is not None and acct < 9000 and events[j][2] < 1.00 and amount > 500.00 and \
                ambiguous(events, j, i):
            events[i] = (sec, acct, 250.00)
        last[acct] = i


def check(events):
    """Times are unique; no small transaction is followed (same account) by a large one
    whose alert would depend on batching (see ambiguous)."""
    times = [e[0] for e in events]
    assert len(set(times)) == len(times), "times must be unique"
    last = {}
    for i, (sec, acct, amount) in enumerate(events):
        if acct in last:
            j = last[acct]
            psec, _, pamount = events[j]
            if pamount < 1.00 and amount > 500.00 and ambiguous(events, j, i):
                sys.exit(f"ambiguous: account {acct} small at {psec}, large at {sec}")
        last[acct] = i


if __name__ == "__main__":
    main()
