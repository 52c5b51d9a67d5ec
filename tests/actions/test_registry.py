"""Every action a token can name has one handler, registered by its name."""

from bot.actions.service import HANDLERS
from bot.actions.tokens import ACTIONS


def test_each_action_has_its_handler() -> None:
    # "open" only opens the H5 page; it changes nothing, so nothing handles it.
    assert set(HANDLERS) == set(ACTIONS) - {"open"}
