"""The desktop app: PySide6 + pyqtgraph widgets around the engine pipeline.

The UI never computes: every step of a merge runs in the engine (`reasonany_gui.engine`), on a worker
thread (`worker.JobRunner`); the widgets only collect choices, show events and draw results.
"""
