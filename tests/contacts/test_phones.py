"""The compiled per-region validity check against phonenumbers itself."""

from __future__ import annotations

import random

import phonenumbers
import pytest

from app.contacts.phones import _valid_for_region


@pytest.mark.parametrize("region", ["US", "CA", "JM", "GB", "DE", "FR", "IN", "BR", "AU"])
def test_the_compiled_region_check_agrees_with_phonenumbers(region):
    rng = random.Random(region)
    valid = _valid_for_region(region)
    code = phonenumbers.country_code_for_region(region)
    samples = [str(rng.randrange(10 ** (n - 1), 10**n)) for n in range(4, 14) for _ in range(400)]
    examples = [phonenumbers.example_number_for_type(region, t) for t in range(12)]
    samples += [str(e.national_number) for e in examples if e is not None]
    assert any(valid(nsn) for nsn in samples)  # the sample has valid numbers, not only junk
    for nsn in samples:
        number = phonenumbers.PhoneNumber(country_code=code, national_number=int(nsn))
        assert valid(nsn) == phonenumbers.is_valid_number_for_region(number, region), nsn


def test_an_unknown_region_has_no_valid_number():
    assert not _valid_for_region("ZZ")("3135551234")
