"""Scoring a model on labelled images: ``swin eval`` and the validation of every training epoch.

- ``loop``: the batched accuracy loop (top-1/top-5, loss, per-class counts) shared by both;
- ``accuracy``: ``swin eval``: a checkpoint, its preprocessing and the data, scored;
- ``class_match``: matching the data's class folders to the checkpoint's classes by name;
- ``confusion``: the confusion matrix as data (the PNG is :mod:`swincli.drawing.confusion_plot`).
"""
