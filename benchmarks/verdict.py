"""How long one verdict (build + fvcore counts + every rule) takes, against building alone.

    python benchmarks/verdict.py
"""

from __future__ import annotations

import time
from pathlib import Path

import nas

REFERENCE = Path(__file__).resolve().parents[1] / "search_spaces" / "reference.toml"


def best_of(fn, repeats: int = 20) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    config = nas.load_config(REFERENCE)
    nas.check(config)  # warm-up: first trace pays for imports
    build = best_of(lambda: nas.build_model(config))
    verdict = best_of(lambda: nas.check(config))
    print(f"build only: {build * 1e3:.1f} ms; full verdict: {verdict * 1e3:.1f} ms "
          f"(ratio {verdict / build:.1f}×); budget: well under 1,000 ms")


if __name__ == "__main__":
    main()
