"""The training engine: optimisation, schedules, the loop, checkpoints and distributed launch."""
