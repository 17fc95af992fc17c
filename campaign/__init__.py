"""The CPU training campaign (docs/training.md "The campaign"): a tool of this repository, beside
``tools/`` and ``benchmarks/``, not part of the installed ``lic_core`` package.

``tools/campaign.sh [--stage NAME] start|status|stop|export [--install]|seed|handoff|adopt``
trains the codec and its decoders a little in every session, in the background of the machine
(``runs/campaign/<stage>/``), and installs what earns it into ``lic_core/assets/weights/``.

* :mod:`.stages` — the registry: one :class:`.base.Stage` per stage, chosen by name;
* :mod:`.base` — the campaign folder, launching a trainer (``python -m lic_core.train STAGE``)
  niced in the background, the :class:`~.base.Stage` interface (start / status / stop / export /
  release / seed) and the decoder stages bound to the shipped codec weights;
* :mod:`.codec`, :mod:`.generative` (diffusion, hific), :mod:`.gan`, :mod:`.finetune` — the stages;
* :mod:`.seeds` — committed seeds (``campaign/seeds/``) that outlive a lost ``runs/``;
* :mod:`.device` — the GPU path (handoff / adopt, what a device run can carry);
* :mod:`.learning_curve` — validation records → RD figures of merit → a PNG;
* :mod:`.cli` — the command line.
"""
