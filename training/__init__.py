"""Training for tase-search encoders: data loaders, vocabulary extension and the staged trainer.

Run from the repository root (``python -m training.pipeline CONFIG.yaml``) or through
``tase-search train CONFIG.yaml``. Nothing here is imported by the search package itself, so the
runtime never pays for the training dependencies.
"""
