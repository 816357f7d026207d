"""The fake provider servers, driven by the real clients: twilio-python and requests."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl

import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator

from tests.fakes import FakeControl, FakeMissive, FakeTwilio, start_fake_process
from tests.fakes.server import ROOT, RecordingServer
from tests.fakes.twilio import DEFAULT_ACCOUNT_SID, count_segments, twilio_client

SENDER = "+15550000000"
ALICE = "+15551110001"
BOB = "+15551110002"


@pytest.fixture
def fake_twilio():
    with FakeTwilio(seed=7) as fake:
        yield fake


@pytest.fixture
def twilio(fake_twilio):
    return fake_twilio.client(timeout=5)


@pytest.fixture
def receiver():
    with RecordingServer() as server:
        yield server


def send(client, to=ALICE, body="Hello", **kwargs):
    return client.messages.create(to=to, from_=SENDER, body=body, **kwargs)


# -- Twilio ---------------------------------------------------------------------------------------
def test_twilio_create_answers_a_message_resource_and_records_it(fake_twilio, twilio):
    message = send(twilio, body="Hello there", status_callback="https://app.test/cb/1")

    assert message.sid.startswith("SM") and len(message.sid) == 34
    assert message.status == "queued"
    assert message.to == ALICE and message.from_ == SENDER
    assert message.num_segments == "1"
    assert message.direction == "outbound-api"
    assert message.error_code is None and message.price is None
    assert message.date_created.tzinfo is not None
    [record] = fake_twilio.messages()
    assert record["sid"] == message.sid
    assert record["status_callback"] == "https://app.test/cb/1"
    assert record["date_created"].tzinfo is UTC
    assert record["date_created_rfc2822"].endswith("+0000")
    assert fake_twilio.stats()["accepted"] == 1
    assert fake_twilio.stats()["responses_by_status"] == {"201": 1}


def test_twilio_messaging_service_messages_start_accepted(fake_twilio, twilio):
    service = "MG" + "1" * 32
    message = twilio.messages.create(to=ALICE, messaging_service_sid=service, body="Hi")
    assert message.status == "accepted"
    assert message.messaging_service_sid == service
    assert fake_twilio.messages()[0]["from"] is None


def test_twilio_fetch_finds_a_message_and_404s_an_unknown_one(twilio):
    message = send(twilio)
    assert twilio.messages(message.sid).fetch().body == "Hello"
    with pytest.raises(TwilioRestException) as error:
        twilio.messages("SM" + "0" * 32).fetch()
    assert error.value.status == 404 and error.value.code == 20404


def test_twilio_list_filters_by_recipient_and_date_and_pages_through_the_client(
    fake_twilio, twilio
):
    for n in range(7):
        send(twilio, to=ALICE, body=f"to alice {n}")
    send(twilio, to=BOB, body="to bob")
    since = datetime.now(UTC) - timedelta(minutes=1)
    requests_before = fake_twilio.stats()["requests"]

    found = twilio.messages.list(to=ALICE, date_sent_after=since, page_size=3)

    assert [m.body for m in found] == [f"to alice {n}" for n in reversed(range(7))]
    assert fake_twilio.stats()["requests"] - requests_before == 3  # pages of 3, 3 and 1
    assert twilio.messages.list(to=ALICE, date_sent_after=datetime.now(UTC) + timedelta(1)) == []
    assert len(twilio.messages.list(date_sent_before=datetime.now(UTC) + timedelta(1))) == 8
    assert [m.body for m in twilio.messages.list(to=BOB, from_=SENDER)] == ["to bob"]


def test_twilio_list_page_carries_twilio_paging_fields_and_accepts_plain_dates(fake_twilio, twilio):
    for n in range(3):
        send(twilio, body=f"n{n}")
    page = twilio.messages.page(to=ALICE, page_size=2)
    assert page.next_page_url.startswith("https://api.twilio.com/2010-04-01/Accounts/")
    assert [m.body for m in page.next_page()] == ["n0"]

    today = datetime.now(UTC).date().isoformat()
    response = requests.get(
        f"{fake_twilio.url}/2010-04-01/Accounts/{DEFAULT_ACCOUNT_SID}/Messages.json",
        params={"To": ALICE, "DateSent>": today, "PageSize": 2},
        auth=(fake_twilio.account_sid, fake_twilio.auth_token),
        timeout=5,
    )
    payload = response.json()
    assert response.status_code == 200
    assert (payload["page"], payload["page_size"], payload["start"], payload["end"]) == (0, 2, 0, 1)
    assert payload["previous_page_uri"] is None
    next_query = dict(parse_qsl(payload["next_page_uri"].partition("?")[2]))
    assert next_query["To"] == ALICE and next_query["DateSent>"] == today
    assert next_query["Page"] == "1" and next_query["PageToken"].startswith("PASM")


def test_twilio_wrong_credentials_get_401_with_code_20003(fake_twilio):
    client = twilio_client(fake_twilio.url, auth_token="wrong", timeout=5)
    with pytest.raises(TwilioRestException) as error:
        send(client)
    assert error.value.status == 401 and error.value.code == 20003
    assert fake_twilio.stats()["accepted"] == 0


@pytest.mark.parametrize(
    ("to", "body", "code"),
    [
        (ALICE, "", 21602),
        ("", "Hello", 21604),
        ("12345", "Hello", 21211),
        (ALICE, "x" * 1601, 21617),
    ],
)
def test_twilio_bad_parameters_get_400_with_twilio_codes(fake_twilio, twilio, to, body, code):
    with pytest.raises(TwilioRestException) as error:
        send(twilio, to=to, body=body)
    assert error.value.status == 400 and error.value.code == code
    assert fake_twilio.stats()["accepted"] == 0


def test_twilio_error_numbers_are_refused_with_their_code_and_not_accepted(fake_twilio, twilio):
    fake_twilio.configure(error_numbers={BOB: 21610, "+15551110003": 21614})
    with pytest.raises(TwilioRestException) as error:
        send(twilio, to=BOB)
    assert error.value.status == 400 and error.value.code == 21610
    send(twilio, to=ALICE)
    assert [m["to"] for m in fake_twilio.messages()] == [ALICE]
    assert fake_twilio.stats()["errors_by_code"] == {"21610": 1}


def test_twilio_injected_429_and_500_are_not_accepted(fake_twilio, twilio):
    fake_twilio.configure(rate_429=1.0)
    with pytest.raises(TwilioRestException) as error:
        send(twilio)
    assert error.value.status == 429 and error.value.code == 20429

    fake_twilio.configure(rate_429=0.0, rate_500=1.0)
    with pytest.raises(TwilioRestException) as error:
        send(twilio)
    assert error.value.status == 500

    stats = fake_twilio.stats()
    assert stats["accepted"] == 0
    assert stats["responses_by_status"] == {"429": 1, "500": 1}


def test_twilio_injected_rates_follow_the_seed(fake_twilio, twilio):
    fake_twilio.configure(rate_429=0.5, seed=1)
    outcomes = []
    for _ in range(40):
        try:
            send(twilio)
            outcomes.append(201)
        except TwilioRestException as exc:
            outcomes.append(exc.status)
    assert 10 < outcomes.count(429) < 30
    assert fake_twilio.stats()["accepted"] == outcomes.count(201)


@pytest.mark.parametrize("accepts", [1.0, 0.0])
def test_twilio_read_timeout_records_the_message_per_timeout_accepts(fake_twilio, accepts):
    fake_twilio.configure(rate_timeout=1.0, timeout_seconds=10, timeout_accepts=accepts)
    client = fake_twilio.client(timeout=0.3)
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        send(client)
    assert time.monotonic() - started < 2
    stats = fake_twilio.stats()
    assert stats["timeouts"] == 1
    assert stats["accepted"] == int(accepts)
    # The engine's recovery asks the provider: listing shows what was recorded.
    fake_twilio.configure(rate_timeout=0.0)
    assert len(fake_twilio.client().messages.list(to=ALICE)) == int(accepts)


def test_twilio_counts_duplicates_by_recipient_and_body_and_by_callback_url(fake_twilio, twilio):
    send(twilio, body="One", status_callback="https://app.test/cb/1")
    send(twilio, body="One", status_callback="https://app.test/cb/2")
    send(twilio, body="Two", status_callback="https://app.test/cb/2")
    send(twilio, to=BOB, body="One")
    stats = fake_twilio.stats()
    assert (stats["accepted"], stats["duplicates"], stats["duplicates_by_callback"]) == (4, 1, 1)


def test_twilio_status_callbacks_arrive_signed_in_order(fake_twilio, twilio, receiver):
    fake_twilio.configure(
        status_callbacks=True,
        callback_delay_ms=10,
        callback_final_by_number={BOB: ("undelivered", 30007)},
    )
    alice = send(twilio, to=ALICE, status_callback=f"{receiver.url}/webhooks/twilio/status/1")
    bob = send(twilio, to=BOB, status_callback=f"{receiver.url}/webhooks/twilio/status/2")
    send(twilio, to=ALICE, body="no callback url")

    fake_twilio.control.wait_for(lambda s: s["callbacks_sent"] == 6 and not s["callbacks_pending"])

    validator = RequestValidator(fake_twilio.auth_token)
    by_sid: dict[str, list[dict[str, str]]] = {}
    for call in receiver.messages():
        params = dict(parse_qsl(call["body"]))
        url = f"{receiver.url}{call['path']}"
        assert validator.validate(url, params, call["headers"]["x-twilio-signature"])
        assert not validator.validate(url, {**params, "MessageStatus": "x"}, "bad")
        by_sid.setdefault(params["MessageSid"], []).append(params)
    assert [p["MessageStatus"] for p in by_sid[alice.sid]] == ["sending", "sent", "delivered"]
    assert [p["SmsStatus"] for p in by_sid[bob.sid]] == ["sending", "sent", "undelivered"]
    assert "ErrorCode" not in by_sid[alice.sid][-1]
    assert by_sid[bob.sid][-1]["ErrorCode"] == "30007"
    first = by_sid[alice.sid][0]
    assert (first["AccountSid"], first["From"], first["To"]) == (DEFAULT_ACCOUNT_SID, SENDER, ALICE)
    assert first["ApiVersion"] == "2010-04-01" and first["SmsSid"] == alice.sid
    assert twilio.messages(bob.sid).fetch().status == "undelivered"
    assert twilio.messages(bob.sid).fetch().error_code == 30007
    assert fake_twilio.stats()["callback_errors"] == 0


def test_twilio_callbacks_can_repeat_and_come_out_of_order_and_failures_are_counted(
    fake_twilio, twilio, receiver
):
    fake_twilio.configure(
        status_callbacks=True,
        callback_delay_ms=5,
        callback_duplicate_rate=1.0,
        callback_shuffle=True,
    )
    messages = [send(twilio, body=f"m{n}", status_callback=f"{receiver.url}/cb") for n in range(5)]
    fake_twilio.control.wait_for(lambda s: s["callbacks_sent"] == 30 and not s["callbacks_pending"])
    statuses = [dict(parse_qsl(call["body"]))["MessageStatus"] for call in receiver.messages()]
    assert sorted(set(statuses)) == ["delivered", "sending", "sent"]
    assert statuses.count("delivered") == 10
    # Whatever order the callbacks went out in, the message itself ends delivered.
    assert {twilio.messages(m.sid).fetch().status for m in messages} == {"delivered"}

    fake_twilio.reset()
    fake_twilio.configure(callback_duplicate_rate=0.0)
    send(twilio, status_callback="http://127.0.0.1:9/unreachable")  # port 9: nothing listens
    stats = fake_twilio.control.wait_for(lambda s: s["callbacks_sent"] == 3, timeout=10)
    assert stats["callback_errors"] == 3
    assert send(twilio).status == "queued"  # still serving


def test_twilio_max_mps_refuses_sends_faster_than_the_cap_with_20429(fake_twilio, twilio):
    fake_twilio.configure(max_mps=2)  # a burst of one, then one every 500 ms
    outcomes = []
    for _ in range(4):
        try:
            send(twilio)
            outcomes.append(201)
        except TwilioRestException as exc:
            outcomes.append(exc.code)
    assert outcomes == [201, 20429, 20429, 20429]
    time.sleep(0.55)
    assert send(twilio).status == "queued"
    stats = fake_twilio.stats()
    assert (stats["accepted"], stats["over_max_mps"], stats["errors_by_code"]) == (
        2,
        3,
        {"20429": 3},
    )


def test_twilio_latency_is_applied(fake_twilio, twilio):
    fake_twilio.configure(latency_ms=150)
    started = time.monotonic()
    send(twilio)
    assert time.monotonic() - started >= 0.15


def test_twilio_fake_in_another_process_is_driven_through_the_control_api():
    with start_fake_process("twilio", latency_ms=1, error_numbers={BOB: 21211}) as fake:
        client = twilio_client(fake.url, timeout=5)
        sent = [send(client, body=f"n{n}") for n in range(3)]
        with pytest.raises(TwilioRestException) as error:
            send(client, to=BOB)
        assert error.value.code == 21211

        control = FakeControl(fake.url)
        stats = control.stats()
        assert stats["accepted"] == 3 and stats["requests"] == 4
        assert stats["responses_by_status"] == {"201": 3, "400": 1}
        assert [m["sid"] for m in control.messages()] == [m.sid for m in sent]
        assert control.messages()[0]["date_created"].endswith("+00:00")

        assert control.config(rate_429=1.0)["rate_429"] == 1.0
        with pytest.raises(TwilioRestException) as error:
            send(client)
        assert error.value.code == 20429
        with pytest.raises(ValueError, match="unknown option"):
            control.config(no_such_option=1)

        control.reset()
        assert control.stats()["accepted"] == 0 and control.messages() == []
    assert fake.process.returncode is not None


def test_segments_are_counted_like_twilio():
    assert count_segments("a" * 160) == 1
    assert count_segments("a" * 161) == 2
    assert count_segments("a" * 306) == 2
    assert count_segments("€" * 80) == 1  # GSM-7 extension characters count twice
    assert count_segments("€" * 81) == 2
    assert count_segments("é" * 160) == 1  # é is in the GSM-7 alphabet
    assert count_segments("ś" * 70) == 1  # not GSM-7: UCS-2
    assert count_segments("ś" * 71) == 2
    assert count_segments("🙂" * 35) == 1  # two UTF-16 units each


# -- Missive --------------------------------------------------------------------------------------
ORGANIZATION = "org-1"


@pytest.fixture
def fake_missive():
    with FakeMissive(seed=3) as fake:
        yield fake


@pytest.fixture
def missive(fake_missive):
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {fake_missive.token}"
    base = f"{fake_missive.url}/v1"

    class Api:
        def post(self, path, payload):
            return session.post(f"{base}{path}", json=payload, timeout=5)

        def get(self, path, **params):
            return session.get(f"{base}{path}", params=params, timeout=5)

    yield Api()
    session.close()


def draft(to=ALICE, body="Hello", **extra):
    return {
        "drafts": {
            "body": body,
            "to_fields": [{"phone_number": to}],
            "from_field": {"phone_number": SENDER, "type": "twilio"},
            "send": True,
            **extra,
        }
    }


def test_missive_drafts_are_sent_in_one_conversation_per_number(fake_missive, missive):
    label = missive.post(
        "/shared_labels", {"shared_labels": {"name": "Broadcast", "organization": ORGANIZATION}}
    ).json()["shared_labels"]

    first = missive.post(
        "/drafts", draft(add_shared_labels=[label["id"]], organization=ORGANIZATION)
    )
    second = missive.post("/drafts", draft(body="Again"))
    other = missive.post("/drafts", draft(to=BOB))
    missive.post("/drafts", draft(body="Hello"))  # the same text to the same number again

    assert first.status_code == 201
    conversation = first.json()["drafts"]["conversation"]
    assert second.json()["drafts"]["conversation"] == conversation
    assert other.json()["drafts"]["conversation"] != conversation
    stats = fake_missive.stats()
    assert (stats["accepted"], stats["duplicates"], stats["conversations"]) == (4, 1, 2)

    [shown] = missive.get(f"/conversations/{conversation}").json()["conversations"]
    assert shown["shared_labels"] == [{"id": label["id"], "name": "Broadcast"}]
    assert shown["web_url"].endswith(conversation)
    bodies = [
        m["body"] for m in missive.get(f"/conversations/{conversation}/messages").json()["messages"]
    ]
    assert bodies == ["Hello", "Again", "Hello"]
    assert fake_missive.messages()[0]["to"] == ALICE


def test_missive_unsent_drafts_are_recorded_but_not_sent(fake_missive, missive):
    assert missive.post("/drafts", draft(send=False)).status_code == 201
    assert fake_missive.stats()["drafts"] == 1
    assert fake_missive.messages() == []


def test_missive_posts_are_recorded_and_can_label_and_close(fake_missive, missive):
    conversation = missive.post("/drafts", draft()).json()["drafts"]["conversation"]
    response = missive.post(
        "/posts",
        {
            "posts": {
                "conversation": conversation,
                "text": "Alice unsubscribed",
                "username": "Broadcaster",
                "notification": {"title": "Opt-out", "body": "Alice unsubscribed"},
                "add_shared_labels": ["label-x"],
                "close": True,
            }
        },
    )
    assert response.status_code == 201
    assert response.json()["posts"]["conversation"] == conversation
    [post] = fake_missive.posts()
    assert post["text"] == "Alice unsubscribed" and post["username"] == "Broadcaster"
    [shown] = missive.get(f"/conversations/{conversation}").json()["conversations"]
    assert shown["closed"] is True
    assert shown["shared_labels"] == [{"id": "label-x", "name": None}]
    # A conversation the fake never saw (e.g. from a webhook) is taken as it comes.
    assert (
        missive.post("/posts", {"posts": {"conversation": "c-9", "text": "x"}}).status_code == 201
    )


def test_missive_shared_labels_are_created_and_listed(missive):
    created = missive.post(
        "/shared_labels",
        {"shared_labels": [{"name": "Broadcasts", "organization": ORGANIZATION}]},
    )
    assert created.status_code == 201
    [parent] = created.json()["shared_labels"]
    child = missive.post(
        "/shared_labels",
        {
            "shared_labels": {
                "name": "Replied",
                "organization": ORGANIZATION,
                "parent": parent["id"],
            }
        },
    ).json()["shared_labels"]
    assert child["parent"] == parent["id"]
    assert child["name_with_parent_names"] == "Broadcasts/Replied"
    missive.post("/shared_labels", {"shared_labels": {"name": "Other", "organization": "org-2"}})

    listed = missive.get("/shared_labels", organization=ORGANIZATION).json()["shared_labels"]
    assert [label["name"] for label in listed] == ["Broadcasts", "Replied"]
    assert len(missive.get("/shared_labels").json()["shared_labels"]) == 3


def test_missive_rejects_a_wrong_token(fake_missive):
    response = requests.post(
        f"{fake_missive.url}/v1/drafts",
        json=draft(),
        headers={"Authorization": "Bearer wrong"},
        timeout=5,
    )
    assert response.status_code == 401 and "error" in response.json()
    assert fake_missive.stats()["drafts"] == 0


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (
            {
                "drafts": {
                    "to_fields": [{"phone_number": ALICE}],
                    "from_field": {"phone_number": SENDER},
                }
            },
            "body",
        ),
        ({"drafts": {"body": "x", "from_field": {"phone_number": SENDER}}}, "to_fields"),
        ({"drafts": {"body": "x", "to_fields": [{"phone_number": ALICE}]}}, "from_field"),
        (draft(add_shared_labels=["l"]), "organization"),
        ({"posts": {"conversation": "c", "text": ""}}, "text"),
        ({"posts": {"text": "x"}}, "conversation"),
        ({"shared_labels": {"organization": ORGANIZATION}}, "name"),
    ],
)
def test_missive_validation_errors_are_400_naming_the_field(fake_missive, missive, payload, field):
    path = "/" + next(iter(payload))
    response = missive.post(path, payload)
    assert response.status_code == 400
    assert field in response.json()["error"]
    assert fake_missive.stats()["drafts"] == 0


def test_missive_unknown_conversation_is_404(missive):
    assert missive.get("/conversations/nope").status_code == 404
    assert missive.get("/conversations/nope/messages").status_code == 404


def test_missive_incoming_messages_can_be_planted_over_the_control_api(fake_missive, missive):
    control = fake_missive.control
    planted = control.post("incoming", {"phone_number": ALICE, "body": "STOP"})
    sent = missive.post("/drafts", draft()).json()["drafts"]
    assert sent["conversation"] == planted["conversation"]
    messages = missive.get(f"/conversations/{planted['conversation']}/messages").json()["messages"]
    assert [(m["body"], m["incoming"]) for m in messages] == [("Hello", False), ("STOP", True)]
    assert [c["id"] for c in control.get("conversations")] == [planted["conversation"]]


def test_missive_more_than_five_concurrent_requests_get_429_with_retry_after(fake_missive):
    fake_missive.configure(latency_ms=300, retry_after_seconds=2)
    barrier = threading.Barrier(10)

    def one(n: int) -> requests.Response:
        with requests.Session() as session:
            session.headers["Authorization"] = f"Bearer {fake_missive.token}"
            barrier.wait()
            return session.post(f"{fake_missive.url}/v1/drafts", json=draft(body=f"{n}"), timeout=5)

    with ThreadPoolExecutor(10) as pool:
        responses = list(pool.map(one, range(10)))

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] * 5 + [429] * 5
    assert all(r.headers["Retry-After"] == "2" for r in responses if r.status_code == 429)
    stats = fake_missive.stats()
    assert stats["max_concurrency_seen"] > 5
    assert stats["rate_limited_by_reason"] == {"concurrency": 5}


def test_missive_a_client_holding_five_slots_is_never_limited(fake_missive):
    fake_missive.configure(latency_ms=30)
    slots = threading.Semaphore(5)

    def one(n: int) -> int:
        with slots, requests.Session() as session:
            session.headers["Authorization"] = f"Bearer {fake_missive.token}"
            return session.post(
                f"{fake_missive.url}/v1/drafts", json=draft(body=f"{n}"), timeout=5
            ).status_code

    with ThreadPoolExecutor(10) as pool:
        assert set(pool.map(one, range(30))) == {201}
    stats = fake_missive.stats()
    assert stats["max_concurrency_seen"] <= 5
    assert stats["rate_limited"] == 0


def test_missive_per_minute_limit_and_injected_429s(fake_missive, missive):
    fake_missive.configure(per_minute=3)
    statuses = [missive.get("/shared_labels").status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    assert fake_missive.stats()["rate_limited_by_reason"] == {"per_minute": 2}

    fake_missive.reset()
    fake_missive.configure(per_minute=300, rate_429=1.0)
    response = missive.get("/shared_labels")
    assert response.status_code == 429 and response.headers["Retry-After"] == "1"


def test_missive_fake_runs_as_a_command_with_option_flags():
    command = [sys.executable, "-m", "tests.fakes.missive", "--port", "0"]
    command += ["--max-concurrent", "2", "--latency-ms", "1.5", "--options-json", '{"seed": 4}']
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        url = process.stdout.readline().strip()
        control = FakeControl(url)
        config = control.config()
        assert (config["max_concurrent"], config["latency_ms"], config["seed"]) == (2, 1.5, 4)
        response = requests.get(
            f"{url}/v1/shared_labels", headers={"Authorization": "Bearer fake-missive-token"}
        )
        assert response.json() == {"shared_labels": []}
        assert control.stats()["responses_by_status"] == {"200": 1}
    finally:
        process.terminate()
        assert process.wait(10) == 0
        process.stdout.close()
