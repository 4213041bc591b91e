"""DACNO2 (deep-learning a-priori NO2): the network, its configuration and presets.

The data pipeline, training phases, generation and evaluation live in sibling modules.
"""

from aprior.models.dacno2.config import DACNO2Config
from aprior.models.dacno2.model import DACNO2, INPUT_KEYS, PARTS, example_inputs, summary

__all__ = ["DACNO2", "DACNO2Config", "INPUT_KEYS", "PARTS", "example_inputs", "summary"]
