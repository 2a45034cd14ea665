"""A PyTorch LSTM classifier -> kzoo (Keras 3) -> a .tflite file, with measured differences.

The torch model is the classifier of many course notes: `nn.Embedding` ->
bidirectional `nn.LSTM` over packed (right-padded) sequences -> `nn.Linear`
on the concatenated final hidden states. It is trained for a few seconds on
a synthetic task, converted with `kzoo.convert.from_torch`, exported with
`kzoo.export` (float and dynamic-range int8) and every step is compared on
the same padded test batch.

Run (any Keras backend; under JAX or PyTorch the export runs TensorFlow in a
subprocess):

    KERAS_BACKEND=tensorflow python examples/torch_to_tflite.py --out /tmp/kzoo_export
"""

import argparse
import os

import numpy as np
import torch
from torch import nn

VOCAB, EMBED, HIDDEN, CLASSES, MAX_LEN = 200, 32, 48, 2, 40
POSITIVE, NEGATIVE = range(10, 20), range(20, 30)


class LSTMClassifier(nn.Module):
    def __init__(self, vocab_size, embed_dim, hidden_dim, num_classes):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.lstm = nn.LSTM(embed_dim, hidden_dim, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(2 * hidden_dim, num_classes)

    def forward(self, ids, lengths):
        packed = nn.utils.rnn.pack_padded_sequence(
            self.embedding(ids), lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        _, (hidden, _) = self.lstm(packed)
        return self.fc(torch.cat([hidden[-2], hidden[-1]], dim=1))  # forward, backward


def make_batch(rng, size):
    """Right-padded id sequences; label 1 when positive ids outnumber negative ones."""
    lengths = rng.integers(5, MAX_LEN + 1, size)
    ids = np.zeros((size, MAX_LEN), np.int64)
    labels = np.zeros(size, np.int64)
    for row, length in enumerate(lengths):
        ids[row, :length] = rng.integers(1, VOCAB, length)
        pos = np.isin(ids[row], POSITIVE).sum()
        neg = np.isin(ids[row], NEGATIVE).sum()
        labels[row] = int(pos > neg)
    return ids, lengths, labels


def train_torch(steps, seed):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = LSTMClassifier(VOCAB, EMBED, HIDDEN, CLASSES)
    optimizer = torch.optim.Adam(model.parameters(), 3e-3)
    for _ in range(steps):
        ids, lengths, labels = make_batch(rng, 64)
        loss = nn.functional.cross_entropy(
            model(torch.from_numpy(ids), torch.from_numpy(lengths)), torch.from_numpy(labels)
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def to_kzoo(torch_model):
    """The same network as a Keras functional model built from converted layers."""
    import keras

    import kzoo.convert

    ids = keras.Input(shape=(None,), dtype="int32", name="ids")
    embedding = kzoo.convert.from_torch(torch_model.embedding, mask_zero=True)
    lstm = kzoo.convert.from_torch(torch_model.lstm, return_sequences=False)
    dense = kzoo.convert.from_torch(torch_model.fc)
    return keras.Model(ids, dense(lstm(embedding(ids))))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="saved_models/torch_to_tflite")
    parser.add_argument("--steps", type=int, default=300, help="torch training steps")
    parser.add_argument("--test-rows", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)

    import keras

    import kzoo
    import kzoo.convert
    import kzoo.export

    torch_model = train_torch(args.steps, args.seed)
    ids, lengths, labels = make_batch(np.random.default_rng(args.seed + 1), args.test_rows)
    with torch.no_grad():
        torch_logits = torch_model(torch.from_numpy(ids), torch.from_numpy(lengths)).numpy()
    print(
        f"backend {keras.backend.backend()}; torch accuracy on {args.test_rows} test rows: "
        f"{np.mean(torch_logits.argmax(1) == labels):.3f}"
    )

    model = to_kzoo(torch_model)
    test_ids = ids.astype(np.int32)
    keras_logits = keras.ops.convert_to_numpy(model(test_ids, training=False))
    print(f"torch -> kzoo: max |keras - torch| = {np.abs(keras_logits - torch_logits).max():.3g}")

    for quantize in (None, "dynamic"):
        path = os.path.join(args.out, f"classifier{'_int8' if quantize else ''}.tflite")
        report = kzoo.export(model, path, quantize=quantize)
        print(report.summary())
        tflite_logits = np.concatenate(
            [
                kzoo.export.run_litert(path, {"ids": test_ids[i : i + 1]})["output_0"]
                for i in range(len(test_ids))
            ]
        )
        diff_keras = np.abs(tflite_logits - keras_logits).max()
        diff_torch = np.abs(tflite_logits - torch_logits).max()
        flips = int(np.sum(tflite_logits.argmax(1) != torch_logits.argmax(1)))
        print(
            f"{os.path.basename(path)}: {report.size_bytes / 1024:.1f} KiB; on {len(test_ids)} "
            f"padded test rows max |tflite - keras| = {diff_keras:.3g}, "
            f"max |tflite - torch| = {diff_torch:.3g}, label flips vs torch: {flips}"
        )


if __name__ == "__main__":
    main()
