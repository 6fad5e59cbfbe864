"""`nas show`: a model summary (every layer with shape, parameters, FLOPs, receptive field) and
the verdict, rule by rule. Rows are plain strings so the report can print them as Markdown too.
"""

from __future__ import annotations

from rich.console import Group
from rich.table import Table

from nas.design.config import ArchConfig
from nas.design.geometry import trace
from nas.design.rules import Verdict

LAYER_COLUMNS = ("layer", "kind", "output shape", "params", "FLOPs (MACs)", "RF")
RULE_COLUMNS = ("rule", "value", "limit", "verdict", "note")


def layer_rows(config: ArchConfig, verdict: Verdict) -> list[tuple[str, ...]]:
    """One row per conv unit, shortcut and the output block, then the totals."""
    rows = []
    for layer in trace(config):
        rows.append((layer.name, layer.kind,
                     f"{layer.out_channels}×{layer.size}×{layer.size}",
                     f"{verdict.params_by_module.get(layer.name, 0):,}",
                     f"{verdict.flops_by_module.get(layer.name, 0):,}",
                     str(layer.receptive_field)))
    rows.append(("output", f"GAP + {config.output.head}", str(config.num_classes),
                 f"{verdict.params_by_module.get('output', 0):,}",
                 f"{verdict.flops_by_module.get('output', 0):,}", ""))
    rows.append(("total", "", "", f"{verdict.params:,}", f"{verdict.flops:,}",
                 str(verdict.receptive_field)))
    return rows


def rule_rows(verdict: Verdict) -> list[tuple[str, ...]]:
    """One row per rule of the verdict."""
    return [(r.name, f"{r.value:,}" if isinstance(r.value, int) else r.value, r.limit,
             "pass" if r.passed else "FAIL", r.note) for r in verdict.rules]


def markdown_table(columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(lines)


def render(config: ArchConfig, verdict: Verdict) -> Group:
    """The layer table and the verdict table, for a rich console."""
    layers = Table(title=f"{config.name}: layers (input 3×{config.input_size}×{config.input_size})")
    for col in LAYER_COLUMNS:
        layers.add_column(col, justify="right" if col in ("params", "FLOPs (MACs)", "RF") else "left")
    rows = layer_rows(config, verdict)
    for row in rows[:-1]:
        layers.add_row(*row)
    layers.add_row(*rows[-1], style="bold")
    status = "[green]PASSES every rule" if verdict.passed else \
        f"[red]FAILS {len(verdict.broken)} rule(s): {', '.join(verdict.broken)}"
    rules = Table(title=f"verdict: {status}")
    for col in RULE_COLUMNS:
        rules.add_column(col, no_wrap=col != "note")
    for row in rule_rows(verdict):
        rules.add_row(*row, style=None if row[3] == "pass" else "red")
    return Group(layers, rules)
