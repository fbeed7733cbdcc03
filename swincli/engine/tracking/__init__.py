"""``--log tensorboard|mlflow``: mirroring a run into the tools people watch runs in (see ``factory``)."""
