"""Autoregressive generation: keras-hub samplers driven over a recurrent state.

- `get_sampler(name, temperature, k, p, seed)`: a checked keras-hub sampler.
- `check_sampler(sampler, vocabulary_size)`: rejects unusable settings.
- `decode(model, token_ids, prompt_mask, sampler, seed)`: the compiled
  token-by-token loop for any model with `generation_cache` and
  `generation_step` (the keras-hub `next(prompt, cache, index)` contract).

keras-hub itself is imported only when a sampler is built.
"""

from kzoo.generation.decoding import DecodingLoop, decode
from kzoo.generation.samplers import SAMPLER_NAMES, check_sampler, get_sampler

__all__ = ["SAMPLER_NAMES", "DecodingLoop", "check_sampler", "decode", "get_sampler"]
