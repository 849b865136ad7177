"""Deployment: ONNX export with the I/O contract, and (next) the backends and the Segmenter API."""
