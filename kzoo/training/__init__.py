"""Fine-tuning tools for `fit` on every backend (ULMFiT, Howard & Ruder 2018).

* `DiscriminativeOptimizer`: one learning-rate factor per layer group.
* `GradualUnfreezing`: a callback that unfreezes one layer group per epoch,
  from the top.
* `SlantedTriangularLearningRate`: the STLR schedule.
* `layer_groups(model)`: the embedding / each recurrent layer / head split.
* `transfer_language_model_weights(lm, classifier)`: pretrained embedding and
  recurrent weights into a classifier with the same vocabulary.
* `thresholded_binary_accuracy`: accuracy on a teacher's soft targets.
"""

from kzoo.training.discriminative import DiscriminativeOptimizer
from kzoo.training.schedules import SlantedTriangularLearningRate
from kzoo.training.soft_targets import thresholded_binary_accuracy
from kzoo.training.transfer import transfer_language_model_weights
from kzoo.training.unfreezing import GradualUnfreezing, layer_groups

__all__ = [
    "DiscriminativeOptimizer",
    "GradualUnfreezing",
    "SlantedTriangularLearningRate",
    "layer_groups",
    "thresholded_binary_accuracy",
    "transfer_language_model_weights",
]
