"""Evaluation: one checkpoint scored on every modality combination, per condition and under
the robustness protocols of the missing-modality literature (``unimrseg eval``).

Modules, import-light first (this package imports none of them, so the CLI parser
stays fast):

- ``formats``: real-dataset names accepted by ``--format``.
- ``metrics``: accumulators; mIoU / per-class IoU (torchmetrics) and S-measure, max F,
  mean E, MAE (pysodmetrics), with the averaging choices documented there.
- ``protocols``: EMM / RMM / NM as pure, seeded damage of model input dicts.
- ``sources``: the held-out procedural split (balanced condition cycle) and real
  datasets resized to the model input size.
- ``evaluate``: the one-pass evaluation loop and its JSON-ready result.
- ``plots``: ``combinations.png`` and ``conditions.png``.
- ``cli``: the ``eval`` subcommand.
"""
