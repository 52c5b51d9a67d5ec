from datetime import datetime, timedelta, timezone

import pytest

from bot.actions.tokens import ActionSigner, TokenError

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)


def test_round_trip_and_binding() -> None:
    s = ActionSigner(b"k" * 32)
    key = s.key("claim", 42, "rep:7", NOW + timedelta(hours=1), {"stage": "痛点诊断"})
    assert key.startswith("claim:")
    assert len(key.encode()) < 200
    claims = s.parse_key(key, NOW)
    assert (claims.action, claims.lead_id, claims.rep_id, claims.team_id) == ("claim", 42, 7, None)
    assert claims.args == {"stage": "痛点诊断"}


@pytest.mark.parametrize("mutate, kind", [
    (lambda k: k[:-2] + ("AA" if not k.endswith("AA") else "BB"), "forged"),
    (lambda k: "claim:" + "x" * 10, "malformed"),
    (lambda k: k.replace("claim:", "merge:", 1), "wrong_action"),
    (lambda k: "claim", "malformed"),
])
def test_tampering_is_refused(mutate, kind) -> None:
    s = ActionSigner(b"k" * 32)
    key = s.key("claim", 1, "team:3", NOW + timedelta(hours=1))
    with pytest.raises(TokenError) as e:
        s.parse_key(mutate(key), NOW)
    assert e.value.kind == kind


def test_another_secret_cannot_forge() -> None:
    key = ActionSigner(b"a" * 32).key("claim", 1, "rep:1", NOW + timedelta(hours=1))
    with pytest.raises(TokenError) as e:
        ActionSigner(b"b" * 32).parse_key(key, NOW)
    assert e.value.kind == "forged"


def test_expiry() -> None:
    s = ActionSigner(b"k" * 32)
    key = s.key("advance", 1, "rep:1", NOW + timedelta(minutes=5))
    s.parse_key(key, NOW + timedelta(minutes=4))
    with pytest.raises(TokenError) as e:
        s.parse_key(key, NOW + timedelta(minutes=5))
    assert e.value.kind == "expired"
