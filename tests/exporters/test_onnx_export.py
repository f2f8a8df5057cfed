"""ONNX export: checked files whose fresh ONNX Runtime session computes what predict (and Keras) computes."""

import json

import numpy as np
import onnx
import pytest

import core as keras
from core import layers
from exporters.onnx_export import export_onnx, run_onnx
from tests.fixture_utils import FIXTURE_ARCHITECTURES, fixture_io, load_fixture_model, predict_list

NAMES = FIXTURE_ARCHITECTURES


@pytest.mark.parametrize("name", NAMES)
def test_fixture_models_export_and_run_like_predict(fixtures_dir, tmp_path, name):
    model = load_fixture_model(fixtures_dir, "keras3", name)
    inputs, keras_outputs = fixture_io(fixtures_dir, "keras3", name)
    proto = export_onnx(model, tmp_path / f"{name}.onnx")
    assert max(o.version for o in proto.opset_import if o.domain == "") >= 18
    onnx.checker.check_model(onnx.load(str(tmp_path / f"{name}.onnx")), full_check=True)
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta["keras_config"])["config"]["name"] == model.name
    assert meta["netweaver_version"] == keras.__version__
    assert [i.name for i in proto.graph.input] == [n for n, _, _ in model.input_specs()]
    assert [o.name for o in proto.graph.output] == model.output_names
    for vi in list(proto.graph.input) + list(proto.graph.output):
        assert vi.type.tensor_type.shape.dim[0].dim_param == "batch"
    ours = predict_list(model, inputs)
    for batch in (len(inputs[0]), 3):  # the batch axis is dynamic
        got = run_onnx(tmp_path / f"{name}.onnx", [a[:batch] for a in inputs])
        for g, o, k in zip(got, ours, keras_outputs):
            np.testing.assert_allclose(g, o[:batch], atol=1e-5, rtol=0)
            np.testing.assert_allclose(g, k[:batch], atol=1e-5, rtol=0)


def test_unknown_time_axis_is_named_and_dynamic(tmp_path):
    x = keras.Input((None, 4), name="seq")
    model = keras.Model(x, layers.Dense(3, name="proj")(x))
    proto = export_onnx(model, tmp_path / "m.onnx")
    assert [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim] == \
        ["batch", "time", 4]
    for steps in (2, 7):
        data = np.random.default_rng(steps).random((5, steps, 4)).astype("float32")
        np.testing.assert_allclose(run_onnx(tmp_path / "m.onnx", data)[0], model.predict(data), atol=1e-5)


def test_two_sequence_inputs_get_their_own_time_axes(tmp_path):
    a, b = keras.Input((None, 4), name="enc"), keras.Input((None, 4), name="dec")
    model = keras.Model([a, b], [layers.Dense(2, name="da")(a), layers.Dense(2, name="db")(b)])
    proto = export_onnx(model, tmp_path / "m.onnx")
    assert [i.type.tensor_type.shape.dim[1].dim_param for i in proto.graph.input] == ["enc_time", "dec_time"]
