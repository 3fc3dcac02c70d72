#!/usr/bin/env python3
"""Inputs of the join tests (tests/integration/join.sh), deterministic for a seed.

  gen.py two   --rows N --keys K --seed S --out DIR   left.csv and right.csv: two streams
      k (int, 2% empty = null), ts (whole seconds, each at most --disorder seconds behind
      the largest before it), v / w, tag (strings, some with a comma or a quote)
  gen.py late  --rows N --keys K --seed S --out DIR   events.csv: one stream of kinds A and
      B (seq, kind, k, ts, v) where about 15% of the events arrive up to 3 minutes late

Timestamps are whole seconds, so no two differ by a duration that is not a whole number
of seconds (the session join's gap is 45500ms: no two elements are exactly a gap apart,
the one case where Flink's touching sessions depend on arrival order).
"""
import argparse
import random
import sys

BASE = 1704067200  # 2024-01-01 00:00:00 UTC
TAGS = ["red", "green", "blue", "a,b", 'say "hi"', "x"]  # no "": DuckDB reads it as null


def ts_text(sec):
    import datetime
    return datetime.datetime.fromtimestamp(sec, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def csv_str(s):
    if any(c in s for c in ',"\n'):
        return '"' + s.replace('"', '""') + '"'
    return s


def stream(rnd, n, keys, span, disorder):
    """n (key, ts) with ts over [0, span) seconds, at most `disorder` s behind the max."""
    out = []
    for i in range(n):
        t = i * span // n
        t = max(0, t - rnd.randint(0, disorder))
        k = "" if rnd.random() < 0.02 else str(rnd.randint(1, keys))
        out.append((k, BASE + t))
    return out


def two(a):
    rnd = random.Random(a.seed)
    span = a.span
    with open(f"{a.out}/left.csv", "w") as f:
        f.write("k,ts,v,tag\n")
        for k, t in stream(rnd, a.rows, a.keys, span, a.disorder):
            f.write(f"{k},{ts_text(t)},{rnd.randint(-50, 1000)},{csv_str(rnd.choice(TAGS))}\n")
    with open(f"{a.out}/right.csv", "w") as f:
        f.write("k,ts,w,tag\n")
        for k, t in stream(rnd, a.rows, a.keys, span, a.disorder):
            f.write(f"{k},{ts_text(t)},{rnd.randint(0, 100000) / 100},{csv_str(rnd.choice(TAGS))}\n")


def late(a):
    rnd = random.Random(a.seed)
    with open(f"{a.out}/events.csv", "w") as f:
        f.write("seq,kind,k,ts,v\n")
        for i in range(a.rows):
            t = i * a.span // a.rows
            if rnd.random() < 0.15:
                t = max(0, t - rnd.randint(1, 180))
            k = "" if rnd.random() < 0.02 else str(rnd.randint(1, a.keys))
            f.write(f"{i},{rnd.choice('AB')},{k},{ts_text(BASE + t)},{rnd.randint(0, 99)}\n")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["two", "late"])
    p.add_argument("--rows", type=int, default=1000)
    p.add_argument("--keys", type=int, default=40)
    p.add_argument("--span", type=int, default=3600, help="seconds of event time")
    p.add_argument("--disorder", type=int, default=20, help="seconds (two)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", default=".")
    a = p.parse_args()
    two(a) if a.what == "two" else late(a)


if __name__ == "__main__":
    sys.exit(main())
