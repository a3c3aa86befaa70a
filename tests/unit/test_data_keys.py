"""The encrypt rule's data keys: a value opens only for its recipient and field, nonces never
repeat under a key, windows end by count and by time, and any change to a value is caught."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from consent.core.sealed import DataKeys, seal
from services.agency.sealed import DataKeyCache, open_sealed
from services.backbone.sealed import NONCE_BYTES, SealError, unb64
from tests.clock import Clock

A, B = X25519PrivateKey.generate(), X25519PrivateKey.generate()
PUBLIC = {"a": A.public_key(), "b": B.public_key()}


def test_a_value_opens_for_its_recipient_and_field_only() -> None:
    keys = DataKeys(PUBLIC)
    value = keys.seal(recipient="a", path="subject.postcode", value="NS1 4AP")
    assert value.startswith("env1.") and "NS1" not in value
    assert open_sealed(A, recipient="a", path="subject.postcode", sealed=value) == "NS1 4AP"
    for private, recipient, path in (
        (B, "b", "subject.postcode"),  # another recipient, with its own key
        (A, "b", "subject.postcode"),  # the right key, claimed for another recipient
        (A, "a", "subject.name"),  # moved to another field
    ):
        with pytest.raises(SealError):
            open_sealed(private, recipient=recipient, path=path, sealed=value)


def test_one_wrapping_per_window_and_nonces_never_repeat() -> None:
    keys = DataKeys(PUBLIC, window_values=1000)
    values = [keys.seal(recipient="a", path="p", value="same") for _ in range(1000)]
    assert keys.wrapped == 1
    assert len({v.split(".")[1] for v in values}) == 1  # one key id for the window
    nonces = [unb64(v.split(".")[3])[:NONCE_BYTES] for v in values]
    assert len(set(nonces)) == len(nonces)
    assert len(set(values)) == len(values)  # the same value never seals the same way


def test_a_window_ends_by_count() -> None:
    keys = DataKeys(PUBLIC, window_values=3)
    ids = [keys.seal(recipient="a", path="p", value="v").split(".")[1] for _ in range(7)]
    assert keys.wrapped == 3
    assert ids[0] == ids[2] != ids[3] == ids[5] != ids[6]


def test_a_window_ends_by_time() -> None:
    clock = Clock()
    keys = DataKeys(PUBLIC, window_seconds=60, clock=clock)
    first = keys.seal(recipient="a", path="p", value="v").split(".")[1]
    clock.now = 59.9
    assert keys.seal(recipient="a", path="p", value="v").split(".")[1] == first
    clock.now = 60.0
    assert keys.seal(recipient="a", path="p", value="v").split(".")[1] != first
    assert keys.wrapped == 2


def test_recipients_never_share_a_data_key() -> None:
    keys = DataKeys(PUBLIC)
    a = keys.seal(recipient="a", path="p", value="v").split(".")
    b = keys.seal(recipient="b", path="p", value="v").split(".")
    assert a[1] != b[1] and a[2] != b[2]


@pytest.mark.parametrize("window_values", [0, -1])
def test_a_window_must_hold_a_value(window_values: int) -> None:
    with pytest.raises(ValueError, match="window"):
        DataKeys(PUBLIC, window_values=window_values)


def test_the_recipient_unwraps_once_per_window() -> None:
    keys = DataKeys(PUBLIC)
    cache = DataKeyCache()
    values = [keys.seal(recipient="a", path="p", value=str(i)) for i in range(50)]
    opened = [open_sealed(A, recipient="a", path="p", sealed=v, cache=cache) for v in values]
    assert opened == [str(i) for i in range(50)]
    assert len(cache) == 1


def test_a_known_key_id_with_another_wrapped_key_borrows_nothing() -> None:
    """Anyone can wrap a data key to a recipient's public key. A value naming a key id the
    recipient has cached, with a wrapped key of the forger's, opens under the forger's key
    or not at all: never under the hub's, and the hub's entry stays."""
    hub = DataKeys(PUBLIC)
    cache = DataKeyCache()
    real = hub.seal(recipient="a", path="p", value="real")
    assert open_sealed(A, recipient="a", path="p", sealed=real, cache=cache) == "real"
    forger = DataKeys(PUBLIC)
    forged = forger.seal(recipient="a", path="p", value="forged").split(".")
    real_parts = real.split(".")
    spliced = ".".join([forged[0], real_parts[1], forged[2], forged[3]])
    with pytest.raises(SealError):  # the forger's wrapped key is bound to its own key id
        open_sealed(A, recipient="a", path="p", sealed=spliced, cache=cache)
    assert open_sealed(A, recipient="a", path="p", sealed=real, cache=cache) == "real"


def test_values_sealed_one_at_a_time_with_hpke_still_open() -> None:
    old = seal(PUBLIC["a"], recipient="a", path="p", value="from before")
    assert open_sealed(A, recipient="a", path="p", sealed=old) == "from before"


SEALED = DataKeys(PUBLIC).seal(recipient="a", path="p", value="a value worth keeping")


@settings(max_examples=300, deadline=None)
@given(position=st.integers(0, len(SEALED) - 1), replacement=st.sampled_from("AQgw_-.x="))
def test_any_change_to_a_value_is_caught(position: int, replacement: str) -> None:
    changed = SEALED[:position] + replacement + SEALED[position + 1 :]
    if changed == SEALED:
        return
    try:
        clear = open_sealed(A, recipient="a", path="p", sealed=changed)
    except SealError:
        return
    # base64 ignores a padding bit's change: the bytes, and so the value, are the same
    assert clear == "a value worth keeping"
