"""One format per quantity (ghostlab.fmt): the forms the reports promise, and the table cells built from them."""

import math

import pytest

from ghostlab import fmt

M = "\u2212"


@pytest.mark.parametrize("fn, args, expected", [
    (fmt.accuracy, (93.62,), "93.6 %"),
    (fmt.accuracy, (100.0,), "100.0 %"),
    (fmt.drop, (-0.4,), f"{M}0.40 pp"),
    (fmt.drop, (0.4,), "+0.40 pp"),
    (fmt.drop, (0.0,), "0.00 pp"),
    (fmt.drop, (-0.001,), "0.00 pp"),  # no signed zero
    (fmt.interval, (-1.2, 0.4), f"[{M}1.20, +0.40]"),
    (fmt.drop_ci, (-0.4, -1.2, 0.4), f"{M}0.40 pp [{M}1.20, +0.40]"),
    (fmt.drop_ci, (0.2, None, None), "+0.20 pp"),
    (fmt.size_mb, (1_829_100,), "1.83 MB"),  # 10^6 bytes, not MiB
    (fmt.ratio, (1.136,), "1.14×"),
    (fmt.faster, (1.32, "fp32"), "1.32× faster than fp32"),
    (fmt.faster, (0.76, "fp32"), "slower than fp32 (0.76×)"),
    (fmt.faster, (1.001, "fp32"), "as fast as fp32 (1.00×)"),
    (fmt.p_value, (0.0312,), "0.031"),
    (fmt.p_value, (0.5,), "0.50"),
    (fmt.p_value, (1.0,), "1.0"),
    (fmt.p_value, (2.67e-6,), f"2.7e{M}06"),
    (fmt.count, (41.0,), "41"),
    (fmt.count, (50000,), "50,000"),
    (fmt.db, (44.5137,), "44.5 dB"),
    (fmt.db, (math.inf,), "∞"),
    (fmt.ms, (0.7123,), "0.712 ms"),
    (fmt.ms, (2.4,), "2.40 ms"),
    (fmt.ms, (1234.5,), "1,234 ms"),  # no exponent at or above 1
    (fmt.img_s, (397.54,), "398 img/s"),
    (fmt.img_s, (397.50,), "398 img/s"),  # the two forms the issue saw read the same
    (fmt.img_s, (9.996,), "10.0 img/s"),
    (fmt.millions, (4.3e6, "MACs"), "4.30M MACs"),
    (fmt.seconds, (185,), "3 min 05 s"),
])
def test_one_form_per_quantity(fn, args, expected):
    assert fn(*args) == expected


@pytest.mark.parametrize("fn", [fmt.accuracy, fmt.drop, fmt.ratio, fmt.p_value, fmt.count, fmt.ms, fmt.img_s,
                                fmt.size_mb])
def test_missing_values_show_a_dash(fn):
    assert fn(None) == fmt.MISSING
    assert fn(float("nan")) == fmt.MISSING


def test_units_can_be_left_to_the_column_header():
    assert fmt.accuracy(93.62, unit=False) == "93.6"
    assert fmt.drop(0.4, unit=False) == "+0.40"
    assert fmt.db(44.51, unit=False) == "44.5"


@pytest.mark.parametrize("column, value, text", [
    ("top-1 %", 93.621, "93.6"),
    ("agreement %", 99.2, "99.2"),
    ("top-1 drop (pp)", 0.4, "+0.40"),
    ("95% CI (pp)", [-1.2, 0.4], f"[{M}1.20, +0.40]"),
    ("McNemar p", 0.00312, "0.0031"),
    ("size (MB)", 1.8291, "1.83"),
    ("× faster than fp32", 0.7612, "0.76×"),
    ("img/s", 397.54, "398"),
    ("p50 ms", 0.71, "0.710"),
    ("channels", 41.0, "41"),
    ("local SQNR (dB)", 44.5137, "44.5"),
    ("images", 500, "500"),
])
def test_table_cells_take_the_format_of_their_column(column, value, text):
    assert fmt.cell(value, column) == (text, True)


def test_text_cells_are_left_aligned_unless_they_are_numbers():
    assert fmt.cell("int8_minmax", "model") == ("int8_minmax", False)
    assert fmt.cell("1.14×", "speed")[1] and fmt.cell(f"[{M}1.20, +0.40]", "x")[1]
    assert fmt.cell(None, "top-1 %") == (fmt.MISSING, False)
    assert fmt.cell(True, "reached")[0] == "yes"


def test_summary_keys_read_as_words():
    assert fmt.label("fp32_top1") == "fp32 top-1 (%)"
    assert fmt.label("int8_minmax_mcnemar_p") == "int8_minmax McNemar p"
    assert fmt.label("projected_50k_images") == "time for 50,000 images"
    assert "_" not in fmt.label("some_new_key")
    assert fmt.label("int8_entropy") == "int8_entropy"  # candidate names stay as the tables name them
    assert fmt.value(93.62, "fp32_top1") == "93.6 %"
    assert fmt.value(0.7612, "best int8 (int8_entropy) × fp32") == "0.76×"


def test_each_candidate_keeps_its_colour():
    names = ["fp32", "int8_minmax", "int8_percentile", "int8_entropy", "int8_auto", "torch", "ov_fp32", "ov_int8",
             "ov_bf16", "ov_int8_minmax", "ov_int8_percentile", "ov_int8_entropy", "ov_nncf", "ov_nncf_nodw"]
    colors = fmt.candidate_colors(names)
    assert len(set(colors.values())) == len(names)  # distinct
    assert fmt.candidate_colors(list(reversed(names))) == colors  # independent of order and of the others
    assert fmt.candidate_color("int8_custom") == fmt.candidate_color("int8_custom")  # stable for new names
    assert fmt.candidate_color("ov_int8_nncf").startswith("#")


def test_raw_agreement_keys_hold_fractions_and_show_percent():
    assert fmt.cell(0.992, "top1_agreement") == ("99.2", True)
    assert fmt.value(1.0, "parity_top1_agreement") == "100.0 %"
    assert fmt.label("top1_agreement") == "top-1 agreement with fp32 (%)"


def test_other_numbers_keep_significant_digits_without_padding():
    assert fmt.number(0.05) == "0.05"
    assert fmt.number(-0.0) == "0"
    assert fmt.number(0.1234) == "0.123"
    assert fmt.number(41.0) == "41"


def test_only_text_that_is_a_number_is_right_aligned():
    assert fmt.cell("3 min 05 s", "time")[1] and fmt.cell("12.3 ms", "x")[1]
    assert not fmt.cell("0: red plain circle; 1: red plain square", "class names")[1]
