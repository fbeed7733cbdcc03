"""Package data: ImageNet class lists and the official 22k -> 1k head mapping."""
