"""Exporting trained runs to other runtimes: `triptych export RUN_DIR --format onnx`.

- `onnx.py`: vision and video classifiers as one graph each; the dispatch by domain.
- `seq2seq.py`: the text Transformer as an encoder graph and a one-step decoder graph.
- `ort_greedy.py`: greedy summaries from those two graphs with onnxruntime alone (no torch).
"""
