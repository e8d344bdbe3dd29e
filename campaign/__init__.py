"""Fault, concurrency, corruption and bad-input campaign for tase-search ("nothing lost, nothing let in").

``python -m campaign.run --kills 200 --readers 4 --bad-inputs 500 --out runs/campaign.json``

The pieces are importable so the test suite (tests/store/test_faults.py and friends) runs small
versions of the same checks: :mod:`campaign.common` (corpora, index snapshots, the
"exactly old or exactly new" check), :mod:`campaign.apiwriter` (a fast writer process using the
Python API and a fake encoder), :mod:`campaign.faults`, :mod:`campaign.concurrency`,
:mod:`campaign.corruption` and :mod:`campaign.badinput`.
"""
