"""The screen's runs as a Markdown table: one row per knob (seeds pooled), its mean ± standard
deviation over seeds, and its difference from the base recipe's mean, marked adopted only when
that gain exceeds the larger of the two spreads.

    python studies/recipe-screen/tabulate.py studies/recipe-screen
"""

from __future__ import annotations

import json
import re
import statistics as st
import sys
from pathlib import Path

SEED = re.compile(r"-s(\d+)$")


def main(root: Path) -> None:
    runs: dict[str, list[dict]] = {}
    for path in sorted(root.glob("*/metrics.json")):
        runs.setdefault(SEED.sub("", path.parent.name), []).append(json.loads(path.read_text()))
    if "base" not in runs:
        sys.exit(f"no finished base runs in {root}")

    def summary(rows: list[dict]) -> tuple[float, float]:
        acc = [m["accuracy"] * 100 for m in rows]
        return st.mean(acc), (st.stdev(acc) if len(acc) > 1 else float("nan"))

    base_mean, base_sd = summary(runs["base"])
    print("| knob | seeds | val accuracy % | mean ± sd | vs base | flip-TTA mean | min per run | adopted |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, rows in sorted(runs.items(), key=lambda kv: -summary(kv[1])[0]):
        mean, sd = summary(rows)
        gain = mean - base_mean
        adopted = name != "base" and len(rows) >= 3 and gain > max(sd, base_sd)
        each = " ".join(f"{m['accuracy'] * 100:.2f}" for m in rows)
        print(f"| {name} | {len(rows)} | {each} "
              f"| **{mean:.2f}** ± {sd:.2f} | {gain:+.2f} "
              f"| {st.mean(m['accuracy_flip_tta'] * 100 for m in rows):.2f} "
              f"| {st.mean(m['wall_seconds'] for m in rows) / 60:.1f} | {'yes' if adopted else ''} |")
    cpu = {m["machine"]["cpu"] for rows in runs.values() for m in rows}
    print(f"\nMachine: {', '.join(sorted(cpu))}.")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
