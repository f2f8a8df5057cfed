"""A run records, per epoch, how far each weight has moved from its value at the run's start (the weights panel's
curve), and the record survives the project file's JSON."""

import json

import numpy as np

import core as keras
from core import layers
from core.training_run import RunControl, TrainingRun, compile_model, execute_run


def test_each_epoch_records_each_weights_distance_from_the_start():
    x_in = keras.Input((3,), name="x")
    model = keras.Model(x_in, layers.Dense(2, name="out")(layers.Dense(4, name="hidden")(x_in)))
    settings = {"optimizer": "sgd", "learning_rate": 0.1, "loss": "mse", "epochs": 3, "batch_size": 4,
                "shuffle": False}
    compile_model(model, settings)
    start = {name: model.get_layer(name).get_weights() for name in ("hidden", "out")}
    rng = np.random.default_rng(0)
    x, y = rng.random((8, 3)).astype("float32"), rng.random((8, 2)).astype("float32")
    run = execute_run(model, TrainingRun(settings), [x], [y], control=RunControl())
    assert sorted(run.weight_distances) == ["hidden", "out"]
    for name, per_epoch in run.weight_distances.items():
        assert len(per_epoch) == 3 and all(len(ds) == 2 for ds in per_epoch)  # kernel and bias, each epoch
        now = model.get_layer(name).get_weights()
        expected = [np.linalg.norm(w.astype(np.float64) - s) for w, s in zip(now, start[name])]
        np.testing.assert_allclose(per_epoch[-1], expected, rtol=1e-6)
        assert per_epoch[0][0] > 0
    again = TrainingRun.from_dict(json.loads(json.dumps(run.to_dict())))
    assert again.weight_distances == run.weight_distances
    assert again.start_weights == {}  # the start values stay in memory, out of the project file
