"""lic_core: the LIC Studio learned image codec engine (no Qt, ever).

Public entry points (see docs/ARCHITECTURE.md):

* :func:`lic_core.codecs.get_codec` / :func:`lic_core.codecs.list_codecs`: any codec by name;
* the ``lic`` command line (:mod:`lic_core.cli`).
"""
__version__ = "0.1.0"

FORMAT_VERSION = 2
