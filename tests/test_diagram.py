"""The design diagram of the report: what it shows is what the config builds."""

from __future__ import annotations

import re

import optuna

from nas.design.diagram import mermaid
from nas.design.files import DEFAULT_SPACE, REFERENCE, load_config
from nas.search.space import load_space


def nodes_and_edges(text: str) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """The flowchart's node labels by id, and its edges, from the Mermaid source."""
    nodes = dict(re.findall(r'^\s+(\w+)\[\"(.*)\"\]$', text, re.M))
    nodes |= {n: "+" for n in re.findall(r'^\s+(\w+)\(\("\+"\)\)$', text, re.M)}
    edges = []
    for line in text.splitlines():
        if "-->" in line or ".->" in line:
            ids = re.findall(r"\b(\w+)\b", re.sub(r"-\..*?\.->", "-->", line))
            edges += list(zip(ids, ids[1:]))
    return nodes, edges


def test_the_reference_diagram_shows_its_convs_sizes_and_shortcuts() -> None:
    text = mermaid(load_config(REFERENCE))
    assert text.startswith("```mermaid\nflowchart TB") and text.endswith("```")
    nodes, edges = nodes_and_edges(text)
    assert all(a in nodes and b in nodes for a, b in edges)  # no edge to an undefined node
    convs = [label for node, label in nodes.items() if re.fullmatch(r"c\d_\d", node)]
    assert len(convs) == 12
    assert nodes["c2_2"] == "depthwise 3×3 (no pointwise) → 32 × 16×16"  # the reference's flaw
    assert [nodes[f"c{b}_3"] for b in (1, 2, 3)] == [
        f"conv 3×3, dilation 2, stride 2 → 32 × {s}×{s}" for s in (16, 8, 4)]
    assert nodes["c4_3"] == "conv 3×3 → 64 × 4×4"
    assert text.count("conv3x3 shortcut") == 4 and ("c1_3", "c1_add") in edges
    assert "global average pooling, 1×1 conv → 10 classes" in nodes["out"]


def test_a_sampled_design_diagram_follows_its_config() -> None:
    space = load_space(DEFAULT_SPACE)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    for _ in range(10):
        config = space.suggest(trial := study.ask())
        study.tell(trial, 0.0)
        nodes, edges = nodes_and_edges(mermaid(config))
        assert all(a in nodes and b in nodes for a, b in edges)
        with_shortcut = [b for b, block in enumerate(config.blocks, 1) if block.shortcut != "none"]
        assert sorted(n for n in nodes if n.endswith("_add")) == [f"c{b}_add" for b in with_shortcut]
        separable = sum(c.kind == "separable" for block in config.blocks for c in block.convs)
        assert sum("depthwise-separable" in label for label in nodes.values()) == separable
        for b, block in enumerate(config.blocks, 1):
            assert all(f"→ {block.channels} ×" in nodes[f"c{b}_{c}"] for c in (1, 2, 3))
