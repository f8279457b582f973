"""files.ranges.client_range: what reaches an origin of the client's Range header."""

import pytest

from tidegate.files.ranges import RangeNotSatisfiableError, client_range


@pytest.mark.parametrize(("header", "sent"), [
    (None, None),
    ("", None),
    ("bytes=0-99", "bytes=0-99"),
    ("bytes=-100", "bytes=-100"),
    ("bytes=100-", "bytes=100-"),
    (" Bytes = 0-1 , 5-9 ", "bytes=0-1,5-9"),  # whitespace dropped, unit case-insensitive
    ("bytes=5-1", None),  # last before first: the whole set is ignored
    ("bytes=0-1,9-3", None),
    ("bytes=abc", None),
    ("bytes=-", None),
    ("bytes=", None),
    ("bytes=0-1,", None),
    ("items=0-1", None),
    ("bytes=²-3", None),  # a Unicode digit is not a digit here
    ("bytes=0-1\r\nX-Injected: 1", None),
    ("bytes=" + ",".join(["0-1"] * 17), None),  # more than 16 ranges
    ("bytes=" + ",".join(["0-1"] * 16), "bytes=" + ",".join(["0-1"] * 16)),
    ("bytes=9223372036854775807-", "bytes=9223372036854775807-"),
])
def test_client_range(header: str | None, sent: str | None) -> None:
    assert client_range(header) == sent


@pytest.mark.parametrize("header", ["bytes=" + "1" * 20 + "-", "bytes=-" + "9" * 5000,
                                    "bytes=0-" + "1" * 25])
def test_positions_no_file_can_have_are_unsatisfiable(header: str) -> None:
    with pytest.raises(RangeNotSatisfiableError):
        client_range(header)
