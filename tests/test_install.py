"""The install contract: torch and torchvision must be a working pair (a CPU-only torch next to the
registry's torchvision fails with "operator torchvision::nms does not exist")."""

import torch


def test_torchvision_operators_load():
    import torchvision

    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 11.0, 11.0], [50.0, 50.0, 60.0, 60.0]])
    keep = torchvision.ops.nms(boxes, torch.tensor([0.9, 0.8, 0.7]), iou_threshold=0.5)
    assert keep.tolist() == [0, 2]


def test_runtime_dependencies_import():
    import PIL  # noqa: F401
    import rich  # noqa: F401
    import safetensors  # noqa: F401
    import typer  # noqa: F401
