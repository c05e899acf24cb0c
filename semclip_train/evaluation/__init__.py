"""Evaluation: `semclip-eval` and the benchmarks it runs (CC-Neg, SugarCrepe++, NegBench, zero-shot,
retrieval, the synthetic shapes worlds), their readers, metrics and plots.

It knows nothing of training: the model (`semclip_train.model`) and the triples reader
(`semclip_train.triples`) it shares with training sit at the top of `semclip_train`.
"""
