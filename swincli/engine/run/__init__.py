"""One training run on disk and in time, apart from the optimisation itself.

- ``settings``: the run's settings before anything is built (a resumed run's own, or recipe-filled);
- ``setup``: everything before the first step, which builds the ``state``;
- ``state``: one run's state between steps, and the sums of the epoch in progress;
- ``resume_flags``: which flags a resumed run may change;
- ``directory``: the run directory: ``expN`` naming, refusing to overwrite, the lock while it runs;
- ``outputs``: what a run writes there besides the resume state (weights, metrics, curves, adapter);
- ``resume_state``: the resume file, written at step boundaries and read back bit for bit;
- ``interrupt``: Ctrl-C and SIGTERM, acted on at the next step boundary;
"""
