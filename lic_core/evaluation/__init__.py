"""lic_core.evaluation: RD evaluation, target-bpp search, BD-rate, plots, published anchors.

Public API (import from the submodules; nothing heavy is imported here):

* :func:`.target_bpp.encode_at_target_bpp` ``(codec, image, target_bpp, params_template, tol,
  max_iter) -> (EncodeResult, reached_bpp)``
* :func:`.run_eval.run_eval` ``(folder, codecs, out_dir, rates, target_bpp, metrics, jobs,
  limit, params) -> {codec: json path}`` (``lic eval``), :data:`.run_eval.DEFAULT_RATES`
* :class:`.anchors.Curve`, :func:`.anchors.load_anchors` ``(dataset, metric, names)``,
  :func:`.anchors.load_curve` ``(path)``
* :func:`.plot.render_rd` / :func:`.plot.save_rd_plot` (``lic plot``; Pillow only)
* :func:`.compare.bd_rate_curves`, :func:`.compare.bd_rate_vs_anchor` (over ``.bdrate``)
"""
