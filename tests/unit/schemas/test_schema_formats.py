"""The custom format checkers in ``federation.formats``."""

from __future__ import annotations

import pytest

from federation.formats import CUSTOM_FORMATS, is_orcid, is_pic, is_ror, ror_checksum

# Real ROR ids (checksums as published by ror.org).
REAL_ROR_IDS = ["05dxps055", "02mhbdp94", "01ggx4157", "00f54p054", "03yrm5c26", "04wxnsj81"]


def test_custom_formats_are_the_three_checkers() -> None:
    assert {"orcid": is_orcid, "ror": is_ror, "pic": is_pic} == CUSTOM_FORMATS


@pytest.mark.parametrize("value", ["0000-0002-1825-0097", "0000-0001-5109-3700", "0000-0002-1694-233X"])
def test_orcid_valid(value: str) -> None:
    assert is_orcid(value)


@pytest.mark.parametrize(
    "value",
    [
        "0000-0002-1825-0098",
        "0000-0002-1694-2339",
        "0000-0002-1825-009",
        "0000-0002-1825-0097 ",
        "0000 0002 1825 0097",
        "0000-0002-1694-233x",
        "\u0660\u0660\u0660\u0660-0002-1825-0097",  # Arabic-Indic digits
    ],
)
def test_orcid_invalid(value: str) -> None:
    assert not is_orcid(value)


@pytest.mark.parametrize("body", REAL_ROR_IDS)
def test_ror_checksum_matches_real_ids(body: str) -> None:
    assert ror_checksum(body[1:7]) == body[7:]
    assert is_ror(body)
    assert is_ror("https://ror.org/" + body)


@pytest.mark.parametrize(
    "value",
    [
        "https://ror.org/05dxps056",
        "http://ror.org/05dxps055",
        "https://ror.org/15dxps055",
        "https://ror.org/05dxpl055",
        "https://ror.org/05DXPS055",
        "05dxps05",
        "https://ror.org/05dxps055/",
    ],
)
def test_ror_invalid(value: str) -> None:
    assert not is_ror(value)


def test_ror_checksum_rejects_non_crockford() -> None:
    with pytest.raises(ValueError):
        ror_checksum("5dxpu0")


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("999999999", True),
        ("12345678", False),
        ("12345678a", False),
        ("\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669", False),
        ("123456789\n", False),
    ],
)
def test_pic(value: str, valid: bool) -> None:
    assert is_pic(value) is valid
