"""Datasets for training and evaluation: image folders, torchvision datasets and the built-in shapes set."""
