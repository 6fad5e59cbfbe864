"""nas: neural-architecture search for small CIFAR-10 classifiers of the shape C1C2C3C4O.

The public API, for notebooks and scripts:

    import nas
    config = nas.load_config("search_spaces/reference.toml")
    model = nas.build_model(config)           # an nn.Module returning logits
    verdict = nas.check(config)               # every budget rule, measured
    print(verdict.params, verdict.passed, verdict.broken)
"""

from nas.budget import Limits, Verdict, check
from nas.config import ArchConfig, BlockSpec, ConvSpec, OutputSpec
from nas.designs import config_from_dict, load_config, save_config
from nas.geometry import param_count, receptive_field, trace
from nas.model import build_model

__all__ = ["ArchConfig", "BlockSpec", "ConvSpec", "Limits", "OutputSpec", "Verdict", "build_model",
           "check", "config_from_dict", "load_config", "param_count", "receptive_field", "save_config",
           "trace"]
