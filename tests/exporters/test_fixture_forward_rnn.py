"""Recurrent models read from real Keras's files (tf.keras 2 and Keras 3): they reproduce Keras's predictions within
1e-5, report Keras's parameter counts and output shapes. Covers LSTM, GRU + SimpleRNN, the encoder-decoder with
initial states, Bidirectional, masks from Embedding(mask_zero=True) and Masking, and TimeDistributed."""

import numpy as np
import pytest

from tests.fixture_utils import assert_matches_fixture, fixture_io, fixture_manifest, load_fixture_model

RNN_FIXTURES = ["seed_lstm", "seed_gru_simplernn", "seed_seq2seq", "seed_bidirectional", "seed_mask_zero",
                "seed_masking", "seed_timedistributed"]


@pytest.mark.parametrize("generation", ["keras2", "keras3"])
@pytest.mark.parametrize("name", RNN_FIXTURES)
def test_recurrent_fixture_matches_keras(fixtures_dir, generation, name):
    model = load_fixture_model(fixtures_dir, generation, name)
    assert_matches_fixture(model, fixtures_dir, generation, name)
    manifest = fixture_manifest(fixtures_dir, generation)[name]
    outputs = model.outputs if hasattr(model, "outputs") else []
    assert [list(t.shape[1:]) for t in outputs] == [list(s[1:]) for s in manifest["outputs"]]


@pytest.mark.parametrize("generation", ["keras2", "keras3"])
def test_masked_fixtures_really_are_masked(fixtures_dir, generation):
    """The masked fixtures' inputs contain padding, so matching them exercises the masked recurrence."""
    inputs, _ = fixture_io(fixtures_dir, generation, "seed_mask_zero")
    assert (inputs[0] == 0).any() and (inputs[0] != 0).any()
    inputs, _ = fixture_io(fixtures_dir, generation, "seed_masking")
    assert np.all(inputs[0] == 0, axis=-1).any()
