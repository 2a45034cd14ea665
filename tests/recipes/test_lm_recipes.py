"""recipes/char_lm.py and recipes/word_lm.py: killed mid-epoch, resumed, and they learn.

Each test runs a tiny `--quick` variant three times in one fresh process
(`check_kill_and_resume`: uninterrupted, killed in the middle of the second
epoch, resumed) with TensorFlow unimportable on JAX and PyTorch, compares the
final metrics, and checks that the model beat the uniform distribution.
"""

import json
import math

from tests.recipes.kill_resume import check_kill_and_resume
from tests.recipes.recipe_module import set_flags


def test_char_lm_resumes_after_a_kill_and_learns(offline_data, tmp_path):
    # 6,000 characters: 5,400 for training = 6 windows of 16 x 50 per epoch.
    argv = [
        "--quick",
        *set_flags(max_chars=6000, units=32, epochs=2, sample_length=20, temperatures=1.0),
    ]
    metrics, output = check_kill_and_resume("char_lm.py", argv, tmp_path, kill_after_batches=9)
    assert "Smoke run (--quick)" in output
    assert metrics["valid_characters"] > 500
    assert metrics["valid_bits_per_char"] < metrics["uniform_bits_per_char"] - 0.5
    assert math.isclose(metrics["uniform_bits_per_char"], math.log2(metrics["vocabulary_size"]))


def test_word_lm_resumes_after_a_kill_and_learns(offline_data, tmp_path):
    # 4,000 training tokens = 25 windows of 8 x 20 per epoch; AWD's pieces on.
    argv = [
        "--quick",
        "--config",
        "awd-small",
        *set_flags(
            units=16,
            batch_size=8,
            train_tokens=4000,
            eval_tokens=400,
            epochs=2,
            sequence_length=20,
            learning_rate=5.0,
            sample_length=5,
            temperatures=0.7,
        ),
    ]
    metrics, output = check_kill_and_resume("word_lm.py", argv, tmp_path, kill_after_batches=37)
    assert "Temperature 0.7 (prompt 'the company said')" in output
    assert metrics["test_tokens"] == 400  # every token, <eos> included
    assert metrics["test_perplexity"] < metrics["uniform_perplexity"] / 5
    assert metrics["valid_perplexity"] < metrics["uniform_perplexity"] / 5
    # The resumed run's timings cover the epochs of both processes.
    with open(tmp_path / "resumed" / "timings.json") as f:
        timings = json.load(f)
    assert timings["epochs_trained"] == 2 and timings["train_seconds"] > 0
