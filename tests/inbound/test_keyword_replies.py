"""Keywords set under Settings act on real webhooks: an admin's extra opt-out word unsubscribes,
the opt-out confirmation answers the STOP that unsubscribed (once), and the HELP reply saved
in Settings wins over the environment's."""

from __future__ import annotations

from app.extensions import db
from app.models import Contact, Setting
from app.settings.services import HELP_REPLY_SETTING, KEYWORDS_SETTING, OPT_OUT_REPLY_SETTING
from tests.factories import ContactFactory
from tests.webhooks.signing import HOOK_SETTINGS, inbound_params, post_twilio

INBOUND = "/webhooks/twilio/inbound"
PHONE = "+13135550142"


def test_an_extra_opt_out_word_unsubscribes_and_the_confirmation_answers_once(make_app):
    app = make_app(**HOOK_SETTINGS)
    client = app.test_client()
    contact = ContactFactory(phone=PHONE)
    db.session.add_all(
        [
            Setting(key=KEYWORDS_SETTING, value={"opt_out": ["REMOVE ME"]}),
            Setting(key=OPT_OUT_REPLY_SETTING, value="You won't get more texts <from us>."),
        ]
    )
    db.session.commit()
    params = inbound_params("SMx1", PHONE, "Remove me!")
    first = post_twilio(client, INBOUND, params).get_data(as_text=True)
    assert "<Message>You won't get more texts &lt;from us&gt;.</Message>" in first
    assert db.session.get(Contact, contact.id).unsubscribed
    assert "<Message>" not in post_twilio(client, INBOUND, params).get_data(as_text=True)
    # Already unsubscribed: a second STOP confirms nothing again.
    again = post_twilio(client, INBOUND, inbound_params("SMx2", PHONE, "opt-out"))
    assert "<Message>" not in again.get_data(as_text=True)


def test_the_help_reply_saved_in_settings_wins_over_the_environment(make_app):
    app = make_app(**{**HOOK_SETTINGS, "HELP_REPLY": "From the environment"})
    client = app.test_client()
    db.session.add(Setting(key=HELP_REPLY_SETTING, value="From Settings"))
    db.session.commit()
    body = post_twilio(client, INBOUND, inbound_params("SMh1", PHONE, "help")).get_data(
        as_text=True
    )
    assert "<Message>From Settings</Message>" in body
