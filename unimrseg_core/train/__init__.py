"""Training by hierarchical self-supervised compensation (UniMRSeg), and the two baselines.

- ``config``: the YAML schema (one place), validated on load.
- ``masking``: hybrid shuffled masking and modality dropout of input batches.
- ``losses``: reconstruction, contrastive, supervised and consistency losses.
- ``batches``: training batches from the procedural world (cached pool or on the fly).
- ``pool``: the cached pool decoded once into tensors; batches cut from it on the training device.
- ``devices``: the small per-step tensors moved to the device without making the host wait.
- ``stages``: what one optimisation step computes in each stage / baseline.
- ``trainer``: the loop: stages in order, resumable checkpoints, DDP, logs and plots.
"""
