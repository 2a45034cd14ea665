"""Autoregressive generation: one loop, any sampler, any model with the `next` contract.

The contract (keras-hub's `next`, with the conditioning input of a Seq2Seq
model added): a decodable model provides

    generation_cache(batch_size, context=None) -> cache
    generation_step(prompt, cache, index) -> (logits, hidden, cache)

and optionally `generation_static_keys` (dict-cache entries that never
change, shared by the beams of a row) and `vocabulary_size`. See
`kzoo.generation.decoding` for the full statement.

- `generate_ids(model, token_ids, prompt_mask, sampler, context, stop_token_ids,
  pad_token_id, seed, **sampler_options) -> (token_ids, scores)`: the one
  loop, compiled with the model's `predict` machinery (`jax.jit`,
  `tf.function`; eager under `torch.no_grad` on PyTorch, where
  `torch.compile` recompiles for every shape and pays off only after about a
  thousand calls: `benchmarks/generation_speed.py`, docs/language_models.md).
- `get_sampler(name, seed, **options)`: `"greedy"`, `"random"`, `"top_k"`,
  `"top_p"` (keras-hub's samplers, imported when first built) and `"beam"`
  (`BeamSampler`: GNMT length penalty, n-best); `check_sampler(sampler,
  vocabulary_size)` rejects unusable settings.
- `length_penalty(lengths, alpha)`: the GNMT penalty; `mask_after_stop`.
"""

from kzoo.generation.beam import BeamSampler, length_penalty
from kzoo.generation.decoding import GenerationLoop, generate_ids, mask_after_stop, resolve_sampler
from kzoo.generation.samplers import SAMPLER_NAMES, check_sampler, get_sampler

__all__ = [
    "SAMPLER_NAMES",
    "BeamSampler",
    "GenerationLoop",
    "check_sampler",
    "generate_ids",
    "get_sampler",
    "length_penalty",
    "mask_after_stop",
    "resolve_sampler",
]
