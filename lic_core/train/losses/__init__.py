"""Training losses shared by the training stages: generic GAN helpers (:mod:`.gan`) and pluggable
perceptual losses (:mod:`.perceptual`).  The HiFiC objective is in :mod:`lic_core.train.hific.losses`
(docs/methods.md §8.2)."""
