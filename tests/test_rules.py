"""The verdict: every rule measured and reported, not just the first failure."""

from __future__ import annotations

import json

import nas
from nas.cli.main import main
from tests.conftest import REFERENCE


def test_reference_verdict(reference_dict) -> None:
    verdict = nas.check(nas.config_from_dict(reference_dict))
    assert (verdict.params, verdict.flops, verdict.receptive_field) == (197_472, 19_984_000, 105)
    # strict definition: the reference's depthwise conv has no pointwise 1×1 after it
    assert verdict.broken == ["depthwise_separable"]
    rule = next(r for r in verdict.rules if r.name == "depthwise_separable")
    assert "c2.conv2 is depthwise only" in rule.note


def test_separable_reference_passes_everything(reference_dict) -> None:
    reference_dict["blocks"][1]["convs"][1]["kind"] = "separable"
    verdict = nas.check(nas.config_from_dict(reference_dict))
    assert verdict.passed and verdict.params == 198_496


def test_every_broken_rule_is_listed(reference_dict) -> None:
    for block in reference_dict["blocks"]:
        block["channels"] = 64
        block["convs"] = [{"kind": "standard"}] * 2 + [{"kind": "standard", "stride": 2}]
    reference_dict["blocks"][3]["convs"] = [{"kind": "standard"}] * 3
    verdict = nas.check(nas.config_from_dict(reference_dict))
    assert verdict.broken == ["params", "flops", "depthwise_separable", "dilated"]
    assert len(verdict.rules) == 8


def test_params_limit_is_strict_and_limits_override(reference_dict) -> None:
    config = nas.config_from_dict(reference_dict)
    assert "params" in nas.check(config, nas.Limits(max_params=197_472)).broken
    assert "params" not in nas.check(config, nas.Limits(max_params=197_473)).broken
    assert "receptive_field" in nas.check(config, nas.Limits(min_rf=105)).broken
    assert "flops" in nas.check(config, nas.Limits(max_flops=19_983_999)).broken


def test_shallow_design_fails_receptive_field_and_shape(reference_dict) -> None:
    reference_dict["blocks"] = reference_dict["blocks"][:1]
    verdict = nas.check(nas.config_from_dict(reference_dict))
    assert verdict.receptive_field == 9
    assert {"receptive_field", "macro_shape"} <= set(verdict.broken)


def test_show_json(capsys) -> None:
    assert main(["show", str(REFERENCE), "--json", "--max-params", "150000"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["params"] == 197_472 and data["receptive_field"] == 105
    assert {r["name"] for r in data["rules"] if not r["passed"]} == {"params", "depthwise_separable"}


def test_show_table(capsys) -> None:
    assert main(["show", str(REFERENCE)]) == 0
    out = capsys.readouterr().out
    assert "197,472" in out and "c2.shortcut" in out and "depthwise_separable" in out
