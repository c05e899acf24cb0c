"""Training: `semclip-train` and `semclip_train.train`, from the config and the losses to the loop,
its checkpoints, logs and model card.

Evaluation (`semclip_train.evaluation`) is imported only inside the functions that run `--eval`
during training, so a run without it never loads the benchmarks.
"""
