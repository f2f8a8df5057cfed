"""Models read from real Keras's files (both generations) reproduce Keras's predictions and parameter counts."""

import pytest

from tests.fixture_utils import assert_matches_fixture, load_fixture_model


@pytest.mark.parametrize("generation", ["keras2", "keras3"])
@pytest.mark.parametrize("name", ["seed_mlp", "seed_functional"])
def test_fixture_forward_matches_keras(fixtures_dir, generation, name):
    model = load_fixture_model(fixtures_dir, generation, name)
    assert_matches_fixture(model, fixtures_dir, generation, name)
