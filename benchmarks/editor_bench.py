"""Editor speed, offscreen, printed as one JSON line.

- build_layout_s: 300 layers and 300 wires created through the editor's commands (each one undoable, each drawn),
  then shapes and parameter counts from the engine, then auto-layout (goal < 1 s);
- repaint_ms: one full repaint of that scene fitted in a 1400x900 window's canvas (goal < 16 ms), with the items'
  cached pictures warm as when panning or selecting; repaint_uncached_ms: the same with every item painting itself;
- property_change_ms: on a 100-layer model, a Dense's units changed through the command stack until the wires'
  shapes, the nodes' counts, the summary table and the inspector are current (goal < 50 ms);
- stall_ms: the longest the event loop went without running (a 2 ms timer's late ticks) while the LSTM example is
  exported in each format and then imported back from its `.h5`, from the menu action to the "Exported"/"Opened"
  message (goal < 50 ms: the window keeps answering the user). One line per format, then the largest; "idle" is the
  same wait for a second with nothing running, the control on a loaded machine.

A second line, "editor_training": the seed LSTM classifier (Embedding(1000, 64) -> LSTM(128) -> Dense(10), sequences
of 100, batch 32) trained by the window's Train button, and the same run headless (`execute_run`, as
`python main.py train` does), taking turns, `--training-rounds` times each. It gives the event loop's longest stall
while the app trains (a 5 ms timer's longest gap less its interval: over the whole run, from the click on Train
to 0.3 s after its end, and over the epochs after the first, once the step graph is built, to the end), and the
training steps per second in the app against headless from the epochs after the first (median and range over the
rounds). idle_stall_ms is the control: the longest gap of a 2 ms timer over 2 s with the window idle, before each
round. Goals: no stall over 50 ms; the app at least 0.9x headless.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from app.launcher import limit_blas_threads  # noqa: E402  (before numpy loads, as `python main.py` does)

limit_blas_threads()


def build(window, n_nodes: int, merge_at: int | None) -> list[str]:
    """An input, then a chain of Dense(16); one Add joins the chain with an earlier layer (one extra wire)."""
    editor = window.editor
    ids = [editor.add_layer("InputLayer", (0, 0), {"shape": [16]})]
    for k in range(1, n_nodes):
        cls = "Add" if k == merge_at else "Dense"
        ids.append(editor.add_layer(cls, (0, 0), {"units": 16} if cls == "Dense" else {}))
        editor.request_wire(ids[k - 1], 0, ids[k], -1)
        if k == merge_at:
            editor.request_wire(ids[k // 2], 0, ids[k], -1)
    return ids


def training_responsiveness(app, rounds: int = 3, epochs: int = 3, samples: int = 1024) -> dict:
    """The app's event-loop stalls and steps/s while it trains, against the same run headless (see the docstring)."""
    import tempfile

    import numpy as np
    from PySide6.QtCore import QTimer

    from app.main_window import EXAMPLES, MainWindow
    from core import commands
    from core.training_run import TrainingRun, build_model, check_settings, execute_run
    from exporters.datasets import load_dataset

    folder = Path(tempfile.mkdtemp(prefix="netweaver-bench-"))
    rng = np.random.default_rng(0)
    np.savez(folder / "seed_lstm.npz", x=rng.integers(1, 1000, (samples, 100)).astype(np.int32),
             y=rng.integers(0, 10, samples).astype(np.int32))
    spec = {"kind": "npz", "name": "seed lstm", "path": str(folder / "seed_lstm.npz"), "x": ["x"], "y": ["y"]}
    settings = {"optimizer": "adam", "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"],
                "epochs": epochs, "batch_size": 32, "shuffle": True, "seed": 0, "validation_split": 0.0}
    steps = -(-samples // 32)
    app_rates, headless_rates, stalls, steady_stalls, idle_stalls = [], [], [], [], []
    for _ in range(rounds):
        # -- the control: the same timer for 2 s with the window idle (a loaded machine stalls on its own) --------
        with StallMeter() as meter:
            deadline = time.perf_counter() + 2.0
            while time.perf_counter() < deadline:
                app.processEvents()
                time.sleep(0.001)
        idle_stalls.append(meter.worst_ms)
        # -- in the app ----------------------------------------------------------------------------------------
        window = MainWindow()
        window.resize(1400, 900)
        window.show()
        window.open_path(str(EXAMPLES / "lstm_text_classifier.nwproj"), wait=True, as_example=True)
        doc = window.editor.doc
        window.editor.push(commands.SetDataset(doc, spec))
        window.editor.push(commands.SetTrainingSettings(doc, settings))
        window.editor.refresh()
        window.load_training_data()
        while window.data_panel.busy() or window.data_panel.loaded() is None:
            app.processEvents()
        settled = time.perf_counter() + 0.5  # what loading the data left to draw is drawn before the user clicks
        while time.perf_counter() < settled:
            app.processEvents()
            time.sleep(0.005)
        ticks: list[tuple[float, int]] = []  # (time, epochs finished by then)
        timer = QTimer()
        timer.setInterval(5)
        timer.timeout.connect(lambda: ticks.append((time.perf_counter(), len(window.training.runs[-1].epoch_seconds)
                                                    if window.training.runs else 0)))
        timer.start()
        time.sleep(0.3)  # as train_bench: the other side's spinning threads settle first
        app.processEvents()  # a tick just before the click, so the click's own work counts as a stall
        window.training_panel.train_button.click()
        ended = None
        while ended is None or time.perf_counter() < ended + 0.3:  # and what the window does as the run ends
            app.processEvents()
            time.sleep(0.001)
            if ended is None and not window.training.is_running():
                ended = time.perf_counter()
        timer.stop()
        run = window.training.runs[-1]
        assert run.outcome == "finished", run.message
        gaps = [(b[0] - a[0], b[1], a[0] < ended) for a, b in zip(ticks, ticks[1:])]
        stalls.append(max(g for g, _, _ in gaps) * 1000 - 5)
        steady_stalls.append(max((g for g, done, running in gaps if done >= 1 and running), default=0.0) * 1000 - 5)
        app_rates.append(steps / float(np.median(run.epoch_seconds[1:])))
        window.editor.stack.set_clean()
        window.close()
        window.deleteLater()
        app.processEvents()
        # -- headless ------------------------------------------------------------------------------------------
        time.sleep(0.3)
        data = load_dataset(spec)
        model = build_model(doc, check_settings(settings))
        headless = TrainingRun(settings=settings)
        execute_run(model, headless, data.x, data.y)
        headless_rates.append(steps / float(np.median(headless.epoch_seconds[1:])))
    ratios = [a / h for a, h in zip(app_rates, headless_rates)]
    return {"benchmark": "editor_training", "model": "seed LSTM classifier", "rounds": rounds,
            "longest_stall_ms": round(float(np.median(stalls)), 1),
            "longest_stall_ms_range": [round(min(stalls), 1), round(max(stalls), 1)],
            "steady_stall_ms": round(float(np.median(steady_stalls)), 1),
            "steady_stall_ms_range": [round(min(steady_stalls), 1), round(max(steady_stalls), 1)],
            "idle_stall_ms": round(float(np.median(idle_stalls)), 1),
            "idle_stall_ms_range": [round(min(idle_stalls), 1), round(max(idle_stalls), 1)],
            "stall_goal_ms": 50,
            "app_steps_per_s": round(float(np.median(app_rates)), 2),
            "headless_steps_per_s": round(float(np.median(headless_rates)), 2),
            "app_over_headless": round(float(np.median(ratios)), 3),
            "app_over_headless_range": [round(min(ratios), 3), round(max(ratios), 3)], "ratio_goal": 0.9}


class StallMeter:
    """A 2 ms repeating timer on the GUI thread; the longest gap between its ticks (less the 2 ms) is the longest
    time the event loop could not answer the user."""

    def __init__(self):
        from PySide6.QtCore import QTimer

        self.timer = QTimer()
        self.timer.setInterval(2)
        self.timer.timeout.connect(self._tick)
        self.worst_ms = 0.0
        self._last = None

    def _tick(self) -> None:
        now = time.perf_counter()
        if self._last is not None:
            self.worst_ms = max(self.worst_ms, (now - self._last) * 1000 - 2)
        self._last = now

    def __enter__(self):
        self._last = time.perf_counter()
        self.timer.start()
        return self

    def __exit__(self, *exc):
        self._tick()
        self.timer.stop()


def wait_for_status(app, window, prefix: str, timeout_s: float = 120.0) -> None:
    deadline = time.perf_counter() + timeout_s
    while not window.statusBar().currentMessage().startswith(prefix):
        if time.perf_counter() > deadline:
            raise TimeoutError(f"no '{prefix}' message; status: {window.statusBar().currentMessage()!r}")
        app.processEvents()
        time.sleep(0.001)


def export_import_stalls(app, window) -> dict:
    """Longest event-loop stall (ms) per export format of the LSTM example, and for importing its .h5 back."""
    from app.main_window import EXAMPLES, available_exports

    window.open_path(str(EXAMPLES / "lstm_text_classifier.nwproj"), wait=True, as_example=True)
    app.processEvents()
    stalls = {}
    with StallMeter() as meter:  # the control: the same wait with nothing running (a loaded machine stalls too)
        deadline = time.perf_counter() + 1.0
        while time.perf_counter() < deadline:
            app.processEvents()
            time.sleep(0.001)
    stalls["idle"] = round(meter.worst_ms, 1)
    with tempfile.TemporaryDirectory() as tmp:
        for fmt, _, _ in available_exports():
            out = Path(tmp) / f"lstm_{fmt}.{fmt.partition('_')[0]}"
            with StallMeter() as meter:
                window.export(str(out), fmt)
                wait_for_status(app, window, f"Exported {out.name}")
            stalls[fmt] = round(meter.worst_ms, 1)
        window.editor.stack.set_clean()
        with StallMeter() as meter:
            window.open_path(str(Path(tmp) / "lstm_h5.h5"))
            wait_for_status(app, window, "Opened lstm_h5.h5")
        stalls["import_h5"] = round(meter.worst_ms, 1)
    return stalls


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--training-rounds", type=int, default=3, help="turns of app and headless training")
    parser.add_argument("--skip-editor", action="store_true", help="only the training line")
    args = parser.parse_args()
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    if not args.skip_editor:
        editor_speed(app)
    if args.training_rounds > 0:
        print(json.dumps(training_responsiveness(app, args.training_rounds)), flush=True)


def editor_speed(app) -> None:
    from PySide6.QtWidgets import QApplication

    from app.main_window import MainWindow

    app = QApplication.instance() or QApplication([])  # noqa: F841 - the caller's
    window = MainWindow()
    window.resize(1400, 900)
    window.show()
    app.processEvents()

    t0 = time.perf_counter()
    ids = build(window, 300, merge_at=150)
    window.editor.refresh()
    window.editor.auto_layout()
    window.editor.refresh()
    app.processEvents()
    build_layout_s = time.perf_counter() - t0
    doc = window.editor.doc
    assert len(doc.nodes) == 300 and len(doc.wires) == 300 and not doc.errors(), doc.errors()[:1]

    window.view.fit()
    app.processEvents()
    viewport = window.view.viewport()
    times = []
    for _ in range(15):
        t = time.perf_counter()
        viewport.repaint()
        times.append((time.perf_counter() - t) * 1000)
    repaint_ms = statistics.median(times)
    uncached = []
    for _ in range(5):  # every item repaints itself in Python (its cached picture dropped), as after a theme change
        for item in window.editor.scene.items():
            item.update()
        t = time.perf_counter()
        viewport.repaint()
        uncached.append((time.perf_counter() - t) * 1000)
    repaint_uncached_ms = statistics.median(uncached)

    window.editor.stack.set_clean()  # no "save changes?" dialog
    window.new_document()
    app.processEvents()
    ids = build(window, 100, merge_at=None)
    window.editor.refresh()
    target = ids[50]
    window.editor.scene.select_nodes([target])
    app.processEvents()
    changes = []
    for units in (20, 24, 28, 32, 36, 40, 44, 48):
        config = dict(window.editor.doc.nodes[target].config, units=units)
        t = time.perf_counter()
        window.editor.set_config(target, config)
        window.editor.refresh()
        changes.append((time.perf_counter() - t) * 1000)
        row = next(r for r in window.summary.row_texts() if r[0].startswith(window.editor.doc.nodes[target].name + " "))
        assert row[1] == f"(None, {units})", row
    property_change_ms = statistics.median(changes)

    window.editor.stack.set_clean()
    stalls = export_import_stalls(app, window)
    for what, ms in stalls.items():
        print(json.dumps({"benchmark": "editor_stall", "while": what, "stall_ms": ms, "goal_ms": 50}))
    window.editor.stack.set_clean()
    window.close()
    print(json.dumps({"benchmark": "editor", "stall_ms": max(v for k, v in stalls.items() if k != "idle"),
                      "stall_idle_ms": stalls["idle"], "stall_goal_ms": 50, "build_layout_s": round(build_layout_s, 3),
                      "build_goal_s": 1.0, "repaint_ms": round(repaint_ms, 2), "repaint_goal_ms": 16,
                      "repaint_uncached_ms": round(repaint_uncached_ms, 2),
                      "property_change_ms": round(property_change_ms, 2), "property_change_goal_ms": 50,
                      "nodes": 300, "wires": 300}))


if __name__ == "__main__":
    main()
