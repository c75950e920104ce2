"""The shared number and table formatting the steps print with."""

import pytest

from hfscratch.core.formatting import dollars, duration, format_table, human, num, sci


@pytest.mark.parametrize(
    "fn, value, text",
    [
        (human, 1.2e9, "1.2B"),
        (human, 2.09e12, "2.09T"),
        (human, 125e6, "125M"),
        (human, 4096, "4.1K"),
        (human, 12, "12"),
        (dollars, 27_464.2, "$27,464"),
        (dollars, 2_795_025, "$2.80M"),
        (num, 0.1594, "0.159"),
        (num, 53.31, "53.3"),
        (num, 1234.5, "1,234"),
        (sci, 1.2345e20, "1.23e20"),
        (sci, 3.14e-5, "3.14e-05"),
        (duration, 5.25, "5.25 h"),
        (duration, 300, "12.5 days"),
    ],
)
def test_numbers(fn, value, text):
    assert fn(value) == text


def test_plain_table_aligns_columns():
    text = format_table([("A100", 270), ("H100-PCIe", 111)], ["GPU", "hours"])
    assert text.splitlines() == [
        "GPU        hours",
        "---------  -----",
        "A100         270",
        "H100-PCIe    111",
    ]
    left = format_table([("a", "x"), ("bb", "yy")], ["k", "v"], align="ll")
    assert left.splitlines()[2:] == ["a   x", "bb  yy"]


def test_markdown_table_marks_right_aligned_columns_and_escapes_pipes():
    text = format_table([("1B", "$270 - $540"), ("a|b", 3)], ["params", "rent"], markdown=True)
    assert text.splitlines() == [
        "| params | rent |",
        "| --- | ---: |",
        "| 1B | $270 - $540 |",
        "| a\\|b | 3 |",
    ]


@pytest.mark.parametrize(
    "rows, headers, align, message",
    [
        ([("a", 1, 2)], ["k", "v"], None, "every row must have 2 cells"),
        ([("a",)], ["k", "v"], None, "every row must have 2 cells"),
        ([("a", 1)], ["k", "v"], "lrl", "one letter l or r per column"),
        ([("a", 1)], ["k", "v"], "lc", "one letter l or r per column"),
    ],
)
def test_table_rejects_a_shape_it_would_garble(rows, headers, align, message):
    """A short row used to raise IndexError and a long one lost its extra cells without a word."""
    with pytest.raises(ValueError, match=message):
        format_table(rows, headers, align=align)
