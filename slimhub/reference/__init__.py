"""Reference and test support: the raw Slim net as the baseline of parity
checks (net_graph), deterministic untrained checkpoints and test images
(deterministic, untrained, quant_calibration), and golden layouts built
without weights (layouts)."""
