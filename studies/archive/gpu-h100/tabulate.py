"""Print this folder's runs as a Markdown table, one row per recipe (seeds pooled).

    python studies/archive/gpu-h100/tabulate.py studies/archive/gpu-h100
"""

import json
import re
import statistics as st
import sys
from pathlib import Path

SEED = re.compile(r"-s(\d+)$")


def main(root: Path) -> None:
    groups: dict[tuple[str, str], list[tuple[float, float, dict]]] = {}
    for path in sorted(root.glob("*/*/metrics.json")):
        metrics = json.loads(path.read_text())
        recipe = json.loads((path.parent / "recipe.json").read_text())
        key = (metrics["eval_split"], SEED.sub("", path.parent.name))
        groups.setdefault(key, []).append((metrics["accuracy"] * 100,
                                           metrics["accuracy_flip_tta"] * 100, recipe))
    print("| split | p affine/cutout | wd | lr | batch | label sm. | seeds | accuracy % | mean ± sd | flip-TTA mean (min) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for (split, _), rows in sorted(groups.items(), key=lambda kv: (kv[0][0] == "test",
                                                                    -st.mean(r[0] for r in kv[1]))):
        acc, tta, r = [a for a, _, _ in rows], [t for _, t, _ in rows], rows[0][2]
        sd = f"{st.stdev(acc):.2f}" if len(acc) > 1 else "–"
        print(f"| {split} | {r['augment']['p_affine']}/{r['augment']['p_cutout']} | {r['weight_decay']} "
              f"| {r['lr']} | {r['batch_size']} | {r['label_smoothing']} "
              f"| {','.join(str(x[2]['seed']) for x in rows)} | {' '.join(f'{a:.2f}' for a in acc)} "
              f"| **{st.mean(acc):.2f}** ± {sd} | {st.mean(tta):.2f} ({min(tta):.2f}) |")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
