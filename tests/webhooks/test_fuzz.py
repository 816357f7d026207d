"""Property test: whatever a correctly signed (or unsigned) request carries, a webhook answers
2xx, 400 or 403, never a 500."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.webhooks.signing import (
    PUBLIC_BASE_URL,
    hook_signature,
    post_missive,
    post_twilio,
    twilio_signature,
)

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
TWILIO_KEYS = [
    "MessageSid",
    "SmsSid",
    "From",
    "To",
    "Body",
    "MessageStatus",
    "SmsStatus",
    "ErrorCode",
    "ErrorMessage",
    "AccountSid",
]
MISSIVE_KEYS = [
    "rule",
    "type",
    "conversation",
    "id",
    "message",
    "comment",
    "author",
    "name",
    "email",
    "shared_labels",
    "parent",
    "authors",
    "phone_number",
    "from_field",
    "to_fields",
    "body",
    "preview",
    "external_id",
    "delivered_at",
    "created_at",
    "web_url",
    "app_url",
]
RULE_TYPES = [
    "incoming_sms_message",
    "incoming_twilio_message",
    "outgoing_sms_message",
    "label_change",
    "conversation_closed",
    "conversation_reopened",
    "new_comment",
    "x",
]

texts = st.one_of(
    st.text(max_size=80),
    st.sampled_from(
        [
            "STOP",
            " stop! ",
            "+13135550123",
            "(313) 555-0199",
            "SM" + "a" * 32,
            "",
            "0",
            "-1",
            "9" * 30,
        ]
    ),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    texts,
    st.sampled_from(RULE_TYPES),
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.one_of(st.sampled_from(MISSIVE_KEYS), st.text(max_size=8)), children, max_size=6
        ),
    ),
    max_leaves=30,
)
missive_like = st.fixed_dictionaries(
    {},
    optional={
        "rule": st.one_of(
            json_values, st.fixed_dictionaries({"type": st.sampled_from(RULE_TYPES)})
        ),
        "conversation": st.one_of(
            json_values,
            st.fixed_dictionaries(
                {"id": st.one_of(texts, st.integers())},
                optional={
                    "shared_labels": st.one_of(
                        json_values,
                        st.lists(
                            st.fixed_dictionaries(
                                {"id": scalars}, optional={"name": scalars, "parent": json_values}
                            ),
                            max_size=3,
                        ),
                    ),
                    "authors": st.one_of(
                        json_values,
                        st.lists(st.fixed_dictionaries({"phone_number": texts}), max_size=3),
                    ),
                    "web_url": scalars,
                },
            ),
        ),
        "message": st.one_of(
            json_values,
            st.fixed_dictionaries(
                {"id": scalars},
                optional={
                    "body": scalars,
                    "preview": scalars,
                    "from_field": st.one_of(json_values, st.fixed_dictionaries({"id": texts})),
                    "to_fields": json_values,
                    "external_id": scalars,
                    "delivered_at": scalars,
                },
            ),
        ),
        "comment": json_values,
    },
)
forms = st.dictionaries(
    st.one_of(st.sampled_from(TWILIO_KEYS), st.text(max_size=10)), texts, max_size=8
)


@FUZZ
@given(
    params=forms,
    query=st.one_of(st.just(""), st.text(max_size=12).map(lambda m: "?" + urlencode({"m": m}))),
    signed=st.booleans(),
)
def test_twilio_webhooks_never_answer_500(hooks, params, query, signed):
    for path in ("/webhooks/twilio/inbound", "/webhooks/twilio/status" + query):
        signature = twilio_signature(PUBLIC_BASE_URL + path, params) if signed else "bogus"
        response = post_twilio(hooks, path, params, signature=signature)
        assert response.status_code in (200, 204, 400, 403), (path, params, response.get_data())


@FUZZ
@given(
    payload=st.one_of(missive_like, json_values),
    action=st.sampled_from(["unsubscribe", "resubscribe", "", "x"]),
)
def test_missive_webhooks_never_answer_500(hooks, payload, action):
    body = json.dumps(payload).encode()
    for path in ("/webhooks/missive", f"/webhooks/missive/admin-action?action={action}"):
        response = post_missive(hooks, body, path=path, signature=hook_signature(body))
        assert response.status_code in (200, 400), (path, payload, response.get_data())


@FUZZ
@given(raw=st.binary(max_size=300))
def test_missive_webhooks_take_any_bytes_without_a_500(hooks, raw):
    response = post_missive(hooks, raw, signature=hook_signature(raw))
    assert response.status_code in (200, 400)
