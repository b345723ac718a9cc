#!/usr/bin/env python3
"""Markdown tables from criterion's saved results, the format docs/benchmarks.md uses.

Usage:

    python3 benches/table.py                       # every group under the criterion directory
    python3 benches/table.py DIR                   # results in DIR instead
    python3 benches/table.py DIR timeouts fire     # only these groups

DIR defaults to where criterion writes: $CRITERION_HOME, else $CARGO_TARGET_DIR/criterion, else
target/criterion in this workspace. Results are read from
DIR/<group>/<implementation>/<N>/new/estimates.json (the median) and sample.json (the samples
the spread is taken from), so the tables show the last run of each benchmark.

One table per group: implementations as rows (the wheel first), N as columns. Each cell is
criterion's median time per iteration in ns, in brackets the interquartile range (Q1-Q3) of
criterion's samples, each sample's time over its iterations, then the median over the wheel's
median at that N: 2.00x is twice as slow as the wheel, 0.50x twice as fast.
"""
import json
import os
import sys

ORDER = ["wheel", "lazy_heap", "indexed_heap", "btree", "nexus_timer", "tokio_delay_queue",
         "hash_wheel_timer", "floor", "floor_work1", "floor_work2", "floor_work4", "floor_work8"]
GROUPS = ["timeouts", "reschedule", "idle", "insert", "fire", "spread", "budget"]
WHEEL = "wheel"


def default_root():
    if os.environ.get("CRITERION_HOME"):
        return os.environ["CRITERION_HOME"]
    if os.environ.get("CARGO_TARGET_DIR"):
        return os.path.join(os.environ["CARGO_TARGET_DIR"], "criterion")
    workspace = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.path.join(workspace, "target", "criterion")


def size(label):
    """N as a number for sorting and printing; criterion keeps it as a string ("10000", "1e5")."""
    try:
        return int(label)
    except ValueError:
        try:
            return int(float(label))
        except ValueError:
            return None


def quartiles(values):
    """Q1 and Q3 by linear interpolation between closest ranks."""
    ordered = sorted(values)

    def at(q):
        position = q * (len(ordered) - 1)
        low = int(position)
        high = min(low + 1, len(ordered) - 1)
        return ordered[low] + (ordered[high] - ordered[low]) * (position - low)

    return at(0.25), at(0.75)


def load(result):
    """(median, (q1, q3) or None) of one benchmark's last run, or None if there is none."""
    estimates = os.path.join(result, "new", "estimates.json")
    if not os.path.exists(estimates):
        return None
    with open(estimates) as f:
        median = json.load(f)["median"]["point_estimate"]
    spread = None
    samples = os.path.join(result, "new", "sample.json")
    if os.path.exists(samples):
        with open(samples) as f:
            sample = json.load(f)
        per_iteration = [t / i for t, i in zip(sample["times"], sample["iters"]) if i > 0]
        if per_iteration:
            spread = quartiles(per_iteration)
    return median, spread


def ns(value):
    """One decimal below 100 ns, none above, so that wide cells stay narrow."""
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def group_results(root, group):
    """{(implementation, N label): (median, spread)} for one group."""
    results = {}
    gdir = os.path.join(root, group)
    for name in os.listdir(gdir):
        ndir = os.path.join(gdir, name)
        if name == "report" or not os.path.isdir(ndir):
            continue
        for label in os.listdir(ndir):
            loaded = load(os.path.join(ndir, label))
            if loaded is not None:
                results[(name, label)] = loaded
    return results


def table(group, results):
    labels = sorted({label for _, label in results}, key=lambda l: (size(l) is None, size(l) or 0, l))
    present = {name for name, _ in results}
    names = [n for n in ORDER if n in present] + sorted(present - set(ORDER))
    lines = [f"#### {group}", "",
             "Median ns per iteration [interquartile range of the samples], then the median over "
             "the wheel's (2.00x: twice as slow as the wheel, 0.50x: twice as fast).", ""]
    header = [f"{size(l):,}" if size(l) is not None else l for l in labels]
    lines.append("| implementation | " + " | ".join(header) + " |")
    lines.append("|---|" + "---:|" * len(labels))
    for name in names:
        cells = []
        for label in labels:
            result = results.get((name, label))
            if result is None:
                cells.append("-")
                continue
            median, spread = result
            cell = ns(median)
            if spread is not None:
                cell += f" [{ns(spread[0])}-{ns(spread[1])}]"
            wheel = results.get((WHEEL, label))
            if wheel is not None:
                cell += f" {median / wheel[0]:.2f}x"
            cells.append(cell)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv):
    root = argv[1] if len(argv) > 1 else default_root()
    if not os.path.isdir(root):
        sys.exit(f"table.py: no criterion results in {root} (run cargo bench first)")
    wanted = argv[2:]
    found = [g for g in os.listdir(root) if g != "report" and os.path.isdir(os.path.join(root, g))]
    groups = [g for g in GROUPS if g in found] + sorted(set(found) - set(GROUPS))
    if wanted:
        missing = [g for g in wanted if g not in found]
        if missing:
            sys.exit(f"table.py: no group {', '.join(missing)} in {root}")
        groups = [g for g in groups if g in wanted]
    tables = [table(g, r) for g in groups if (r := group_results(root, g))]
    print("\n\n".join(tables))


if __name__ == "__main__":
    main(sys.argv)
