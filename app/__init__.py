"""The desktop app: the only Qt code. It edits the Qt-free document in `core` through undoable commands."""
