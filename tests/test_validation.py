"""fnn.validation: the one set of argument checks, and the one message shape."""
import math

import numpy as np
import pytest

from fnn import validation as v


def test_positive_int_accepts_ints_and_refuses_bools_floats_and_zero():
    assert v.positive_int("Dense", "units", np.int64(3)) == 3
    assert v.positive_int("fit", "epochs_per_call", None, none_ok=True) is None
    for bad in (0, -1, 2.0, True, "3", None):
        with pytest.raises(ValueError, match=r"Dense: units must be a positive int, got "):
            v.positive_int("Dense", "units", bad)


def test_number_checks_finiteness_and_the_interval_and_names_it():
    assert v.number("Dropout", "rate", 0.5, low=0, high=1, high_open=True) == 0.5
    with pytest.raises(ValueError, match=r"Dropout: rate must be a finite number in \[0, 1\), "
                                         r"got 1"):
        v.number("Dropout", "rate", 1, low=0, high=1, high_open=True)
    with pytest.raises(ValueError, match=r"sgd: learning_rate must be a finite number > 0, "
                                         r"got nan"):
        v.number("sgd", "learning_rate", math.nan, low=0, low_open=True)
    with pytest.raises(ValueError, match="got True"):
        v.number("x", "y", True)


def test_flag_one_of_and_function():
    assert v.flag("fit", "resume", np.bool_(True)) is True
    with pytest.raises(TypeError, match="fit: resume must be True or False, got 1"):
        v.flag("fit", "resume", 1)
    assert v.one_of("fit", "on_nonfinite", None, (None, "raise", "skip")) is None
    with pytest.raises(ValueError, match=r"one of None, 'raise', 'skip', got 'rasie'; did you "
                                         r"mean 'raise'\?"):
        v.one_of("fit", "on_nonfinite", "rasie", (None, "raise", "skip"))
    with pytest.raises(TypeError, match=r"fit: objective must be a function \(p\) -> l, got 3"):
        v.function("fit", "objective", 3, "(p) -> l")


def test_string_refuses_empty_and_non_strings():
    assert v.string("value_and_grad", "platform", "cpu") == "cpu"
    assert v.string("value_and_grad", "platform", None, none_ok=True) is None
    for bad in ("", 3, None, b"cpu"):
        with pytest.raises(TypeError, match="value_and_grad: platform must be a non-empty "
                                            "string, got "):
            v.string("value_and_grad", "platform", bad)
