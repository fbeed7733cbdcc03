"""`swin profile`: parameters, MACs, speed and memory of a model, and the paper's attention comparison."""
