"""nas: neural-architecture search for small CIFAR-10 classifiers of the shape C1C2C3C4O.

The public API, for notebooks and scripts:

    import nas
    config = nas.load_config("search_spaces/reference.toml")
    model = nas.build_model(config)           # an nn.Module returning logits
    verdict = nas.check(config)               # every rule, measured
    print(verdict.params, verdict.passed, verdict.broken)

The names are imported on first use (PEP 562), so that `import nas` and the command line's help
do not pay for torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_HOMES = {"Limits": "nas.design.limits", "Verdict": "nas.design.rules", "check": "nas.design.rules",
          "ArchConfig": "nas.design.config", "BlockSpec": "nas.design.config",
          "ConvSpec": "nas.design.config", "OutputSpec": "nas.design.config",
          "config_from_dict": "nas.design.files", "load_config": "nas.design.files",
          "save_config": "nas.design.files", "param_count": "nas.design.geometry",
          "receptive_field": "nas.design.geometry", "trace": "nas.design.geometry",
          "build_model": "nas.design.model"}
__all__ = sorted(_HOMES)

if TYPE_CHECKING:
    from nas.design.config import ArchConfig, BlockSpec, ConvSpec, OutputSpec
    from nas.design.files import config_from_dict, load_config, save_config
    from nas.design.geometry import param_count, receptive_field, trace
    from nas.design.limits import Limits
    from nas.design.model import build_model
    from nas.design.rules import Verdict, check


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'nas' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
