"""Training: data pipeline, fit loop with checkpoints and resume, model card.

:func:`train` takes a :class:`TrainConfig` and writes into ``config.out``:

* ``model.keras`` and ``model.json`` (the best weights and their model card),
* ``checkpoint_best.keras`` / ``checkpoint_last.keras`` and ``state.json``
  (written atomically after every epoch; ``resume=True`` continues from them),
* ``history.csv`` and TensorBoard logs under ``logs/``.

Whoever listens (the CLI's progress bar, the dashboard's training process)
passes a :class:`TrainingListener`; a ``should_stop`` callable ends a run
cleanly between batches, keeping the best checkpoint.

=============  ==============================================================
module         what it holds
=============  ==============================================================
``config``     :class:`TrainConfig` and its checks
``data``       the dataset split, training arrays, augmentation, ``tf.data``
``precision``  float32 or mixed bfloat16 for this machine; the float32 export
``state``      the run's progress between epochs (``state.json``)
``finetune``   a short run from a trained model's weights on a few images
``callbacks``  learning rate, checkpoints, stopping, progress (imports Keras)
``run``        :func:`train` and its steps, the model card
=============  ==============================================================

Importing this package does not import TensorFlow.
"""

from nuclei_core.training.config import TrainConfig
from nuclei_core.training.data import check_dataset
from nuclei_core.training.finetune import finetune_config
from nuclei_core.training.listener import TrainingListener
from nuclei_core.training.run import train
from nuclei_core.training.session import TrainResult

__all__ = [
    "TrainConfig",
    "TrainResult",
    "TrainingListener",
    "check_dataset",
    "finetune_config",
    "train",
]
