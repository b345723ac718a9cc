#!/usr/bin/env python3
"""Markdown tables from criterion's results: median ns per operation and the ratio to the wheel.

    python3 benches/table.py [target/criterion]
"""
import json
import os
import sys

root = sys.argv[1] if len(sys.argv) > 1 else "target/criterion"
order = ["wheel", "lazy_heap", "indexed_heap", "btree", "nexus_timer", "tokio_delay_queue", "hash_wheel_timer", "floor",
         "floor_work1", "floor_work2", "floor_work4", "floor_work8"]
for workload in ["timeouts", "fire", "insert", "reschedule", "spread", "budget"]:
    wdir = os.path.join(root, workload)
    if not os.path.isdir(wdir):
        continue
    medians = {}
    for name in os.listdir(wdir):
        ndir = os.path.join(wdir, name)
        if not os.path.isdir(ndir) or name == "report":
            continue
        for n in os.listdir(ndir):
            est = os.path.join(ndir, n, "new", "estimates.json")
            if os.path.exists(est):
                with open(est) as f:
                    medians[(name, int(n))] = json.load(f)["median"]["point_estimate"]
    sizes = sorted({n for _, n in medians})
    names = [i for i in order if any(k[0] == i for k in medians)]
    print(f"\n#### {workload} (median ns per op; in brackets: x the wheel's time)\n")
    print("| implementation | " + " | ".join(f"{n:,}" for n in sizes) + " |")
    print("|---|" + "---:|" * len(sizes))
    for name in names:
        cells = []
        for n in sizes:
            t = medians.get((name, n))
            w = medians.get(("wheel", n))
            if t is None:
                cells.append("-")
            elif name == "wheel" or w is None:
                cells.append(f"{t:.1f}")
            else:
                cells.append(f"{t:.1f} ({t / w:.2f}x)")
        print(f"| {name} | " + " | ".join(cells) + " |")
