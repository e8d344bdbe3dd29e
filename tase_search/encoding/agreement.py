"""How closely a converted model or graph must agree with the model's own PyTorch path: every cosine
threshold of those checks, in one place, each named for what it compares.

Each check encodes probe texts both ways and takes the worst cosine between the two vectors of a text.
The thresholds differ because the arithmetic being compared differs: the same fp32 graph in another
runtime agrees to float noise; int8 weights lose a little more on every layer. A wrong artefact (baked
shapes, other pooling, another model's weights) falls far below all of them.

=========================  =======  ==========================================================
name                       value    compares
=========================  =======  ==========================================================
MIN_EXPORT_COSINE          0.995    a fresh fp32 ONNX export of the query path vs PyTorch
                                    (bf16 weights computed in fp32 vs in bf16 agree to ~0.9999)
MIN_BACKEND_COSINE         0.98     a document backend's runner (CTranslate2, OpenVINO: int8
                                    weights) vs PyTorch; int8 puts sentences at >= 0.993 on
                                    real text
MIN_INT8_COSINE            0.97     the int8 query graph vs PyTorch, to store it in a query
                                    bundle (the shipped model's scores ~0.98); below it the
                                    fp32 graph is stored instead
MIN_OPEN_COSINE            0.995    a query bundle opened on another machine vs the probe
                                    vectors stored with it (int8 kernels round differently)
MIN_BUNDLE_COSINE          0.9999   the bundle's light path vs its stored probe vectors on the
                                    machine that wrote it (same graph, same tokenizer)
=========================  =======  ==========================================================

The old import path ``tase_search.onnx_query.MIN_PROBE_COSINE`` is :data:`MIN_EXPORT_COSINE`.
"""

from __future__ import annotations

#: A fresh fp32 ONNX export of the query path against PyTorch (the same arithmetic in another runtime).
MIN_EXPORT_COSINE = 0.995
#: A document backend's runner (int8 weights) against PyTorch.
MIN_BACKEND_COSINE = 0.98
#: The int8 query graph against PyTorch, for it to be stored in a query bundle.
MIN_INT8_COSINE = 0.97
#: A query bundle opened on another machine against the probe vectors stored with it.
MIN_OPEN_COSINE = 0.995
#: A query bundle's light path against its stored probe vectors on the machine that wrote it.
MIN_BUNDLE_COSINE = 0.9999
