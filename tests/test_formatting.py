"""The screen formatting helper: explicit expected strings, written by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from sparse_demo.formatting import EMPTY_HEADER, display_frame, fmt_number, fmt_p, fmt_percent, round_sig


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1.5869765281677246, "1.587"),
        (2.5022067420482636, "2.502"),
        (11.0489, "11.05"),
        (115.2512, "115.3"),
        (9.3405, "9.341"),
        (0.646036, "0.646"),
        (0.0072, "0.0072"),
        (0.5, "0.5"),
        (1.0, "1"),
        (9.99996, "10"),
        (-0.7109, "-0.7109"),
        (-1.586977, "-1.587"),
        (0.0, "0"),
        (123456.7, "123,457"),
        (0.0000123, "1.230e-05"),
        (17980, "17,980"),
        (np.int64(313), "313"),
        (np.float32(0.25), "0.25"),
        (None, "—"),
        (float("nan"), "—"),
        ("med-001", "med-001"),
    ],
)
def test_fmt_number(value, expected):
    assert fmt_number(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.006999, "0.007"),
        (0.0004, "< 0.001"),
        (0.000999, "< 0.001"),
        (0.001, "0.001"),
        (0.5222, "0.522"),
        (1.0, "1.000"),
        (None, "—"),
        (float("nan"), "—"),
    ],
)
def test_fmt_p(value, expected):
    assert fmt_p(value) == expected


def test_fmt_percent():
    assert fmt_percent(0.15123) == "15.1%"
    assert fmt_percent(0.0) == "0.0%"
    assert fmt_percent(1) == "100.0%"
    assert fmt_percent(0.0072, 2) == "0.72%"
    assert fmt_percent(None) == "—"


def test_round_sig_keeps_numbers():
    assert round_sig(1.5869765281677246) == 1.587
    assert round_sig(0.006999) == 0.006999
    assert round_sig(115.2512) == 115.3
    assert round_sig(0.0) == 0.0
    assert math.isnan(round_sig(float("nan")))


def test_display_frame_rounds_renames_and_leaves_the_input_alone():
    frame = pd.DataFrame(
        {
            "token": ["▁당", "수"],
            "query_weight": [1.5818597078323364, 0.123456789],
            "rank": [1, 2],
            "share": [0.15123, 0.5],
            "p": [0.0004, 0.0312],
            "raw": ["▁당", "수"],
        }
    )
    shown = display_frame(
        frame, "unused", rename={"query_weight": "q weight"}, drop=["raw"], percent=["share"], p_values=["p"]
    )
    assert list(shown.columns) == ["token", "q weight", "rank", "share", "p"]
    assert shown["q weight"].tolist() == [1.582, 0.1235]
    assert shown["rank"].tolist() == [1, 2]
    assert shown["share"].tolist() == ["15.1%", "50.0%"]
    assert shown["p"].tolist() == ["< 0.001", "0.031"]
    assert frame["query_weight"].iloc[0] == 1.5818597078323364  # the export keeps full precision


def test_display_frame_empty_state_says_what_to_do():
    for frame in (None, pd.DataFrame(), pd.DataFrame(columns=["rank", "token"])):
        shown = display_frame(frame, "Press Search to see results.")
        assert list(shown.columns) == [EMPTY_HEADER]
        assert shown.iloc[0, 0] == "Press Search to see results."
