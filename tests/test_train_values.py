"""fit's small values: the keyword-only configuration (:class:`fnn.train.config.FitConfig`),
the objective value cast once (:func:`fnn.train.objective.objective_value`) and the input
source made in one place (:func:`fnn.train.inputs.input_source`)."""
import dataclasses

import pytest

from fnn.train.config import FitConfig


def test_fit_config_is_keyword_only_and_checked():
    config = FitConfig(epochs=3, batch_size=8, seed=1)
    assert (config.epochs, config.batch_size, config.seed, config.keep) == (3, 8, 1, 3)
    with pytest.raises(TypeError, match="positional"):
        FitConfig(3, 8)
    with pytest.raises(ValueError, match="fit: epochs"):
        FitConfig(epochs=0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.epochs = 4
