"""The front ends: the desktop app (the only Qt code; it edits the Qt-free document in `core` through undoable
commands) and the headless command line (`cli.py`, `train_command.py`: no Qt). Both carry out training runs with
`core.training_run`, so the same project gives the same History from either."""
