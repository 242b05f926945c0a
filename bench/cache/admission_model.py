#!/usr/bin/env python3
"""A model of scripts/bench cache's store loads: LRU caches over the same Zipf(0.99) streams.

Not the benchmark: no group, no latency, no single flight; Python's generator, not the bench's
mt19937_64, so the streams are alike in law, not equal. It answers one question before the real
runs are spent on it: how many store loads do 3 cooperating members make against 3 members
caching alone, for a per-member capacity and an admission policy of peer-fetched values
(apps/cache/NOTES.md, "Choices"):

  inclusive  a value fetched from a peer is cached (and announced) at once
  second     it is cached on its second peer fetch while the key is still among the last G
             keys fetched from peers without being cached (the "ghost" window, G keys)
  never      never cached: the loader's copy is the group's only one

Members take turns, one operation each; an operation is a put with probability 5% (every cache
drops the key, as an invalidation does; the writer does not cache its value) or a get. An entry
costs key + value + 128 bytes, values 100..1000 bytes fixed per key (the bench's splitmix64).

  python3 bench/cache/admission_model.py [--mib 2,4,8,16,22] [--warmup 30000] [--ops 30000]
                                         [--ghost auto,0.1,1] [--seed 1]
"""
import argparse
import bisect
import random
from collections import OrderedDict

KEYS = 100_000
OVERHEAD = 128
MASK = (1 << 64) - 1


def splitmix64(x):
    x = (x + 0x9E3779B97F4A7C15) & MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK
    return x ^ (x >> 31)


COST = [len(f"k{r}") + 100 + splitmix64(r) % 901 + OVERHEAD for r in range(KEYS)]


class Lru:
    def __init__(self, capacity):
        self.cap, self.bytes, self.d = capacity, 0, OrderedDict()

    def touch(self, k):
        if k in self.d:
            self.d.move_to_end(k)
            return True
        return False

    def put(self, k):
        if k in self.d:
            self.d.move_to_end(k)
            return
        self.d[k] = None
        self.bytes += COST[k]
        while self.bytes > self.cap:
            old, _ = self.d.popitem(last=False)
            self.bytes -= COST[old]

    def drop(self, k):
        if self.d.pop(k, 1) is None:
            self.bytes -= COST[k]


def streams(members, n, seed):
    cdf, s = [], 0.0
    for r in range(KEYS):
        s += 1.0 / (r + 1) ** 0.99
        cdf.append(s)
    cdf = [c / s for c in cdf]
    out = []
    for m in range(members):
        rng = random.Random(seed * 1000 + m + 1)
        ops = []
        for _ in range(n):
            put = rng.random() < 0.05
            ops.append((put, min(bisect.bisect_right(cdf, rng.random()), KEYS - 1)))
        out.append(ops)
    return out


def run(ops, capacity, coop, policy, ghost_keys, warmup):
    members = len(ops)
    lru = [Lru(capacity) for _ in range(members)]
    ghost = [OrderedDict() for _ in range(members)]
    loads = gets = peer = 0
    for i in range(len(ops[0])):
        measured = i >= warmup
        for m in range(members):
            put, k = ops[m][i]
            if put:
                for c in lru if coop else [lru[m]]:
                    c.drop(k)
                continue
            gets += measured
            if lru[m].touch(k):
                continue
            holder = next((c for c in lru if c is not lru[m] and c.touch(k)), None) if coop else None
            if holder is None:
                loads += measured
                lru[m].put(k)
                continue
            peer += measured
            if policy == "inclusive":
                lru[m].put(k)
            elif policy == "second":
                if k in ghost[m]:
                    del ghost[m][k]
                    lru[m].put(k)
                else:
                    ghost[m][k] = None
                    if len(ghost[m]) > ghost_keys:
                        ghost[m].popitem(last=False)
    return 1000 * loads / gets, 1000 * peer / gets


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--mib", default="2,4,8,16,22")
    p.add_argument("--warmup", type=int, default=30000)
    p.add_argument("--ops", type=int, default=30000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--ghost", default="auto", help="windows to try, comma separated: 'auto' "
                   "(the service's default, capacity / 16 KiB keys, at least 64) or multiples of "
                   "the entries the cache holds (about capacity / 700 bytes)")
    a = p.parse_args()
    ops = streams(3, a.warmup + a.ops, a.seed)
    print("MiB/member  policy        ghost  ind/1k  coop/1k  peer/1k  ratio(ind/coop)")
    for mib in [float(x) for x in a.mib.split(",")]:
        cap = int(mib * (1 << 20))
        ind, _ = run(ops, cap, False, "inclusive", 0, a.warmup)
        entries = cap // 700
        cases = [("inclusive", 0), ("never", 0)]
        cases += [("second", max(cap >> 14, 64) if g == "auto" else int(float(g) * entries))
                  for g in a.ghost.split(",")]
        for policy, g in cases:
            coop, peer = run(ops, cap, True, policy, g, a.warmup)
            print(f"{mib:10g}  {policy:10s} {g:8d}  {ind:6.1f}  {coop:7.1f}  {peer:7.1f}  "
                  f"{ind / coop:6.2f}")


if __name__ == "__main__":
    main()
