"""Moving weights between the official, timm, Hugging Face and torchvision layouts and ours.

Our layout *is* the official one (patch merging at the end of a stage, ``head.*``), so every other
layout is a set of renames; each lives in its own module, pure functions over state dicts.
"""
