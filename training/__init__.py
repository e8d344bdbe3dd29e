"""Training for tase-search encoders: data loaders, vocabulary changes and the staged trainer.

Installed with the package as ``tase_search.training`` (this folder, mapped in setup.py; the
configs ship as package data). Run it with ``tase-search train CONFIG`` from any directory, or
from a checkout with ``python -m training.pipeline CONFIG``. The search package never imports it,
so searching never pays for the training dependencies (the ``train`` extra).
"""
