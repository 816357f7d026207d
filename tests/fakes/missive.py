"""A fake of Missive's REST API (drafts, posts, conversations, shared labels) with its rate limits."""

from __future__ import annotations

import json
import random
import time
import uuid
from collections import deque
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from tests.fakes.server import FakeServer, Response, json_response, main

DEFAULT_TOKEN = "fake-missive-token"
DEFAULT_ORGANIZATION = "0d9bab85-a74f-4ece-9142-0f9b9f36ff92"
SMS_TYPES = ("twilio", "signalwire", "custom")


def missive_error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return json_response(status, {"error": message}, headers=headers)


class FakeMissive(FakeServer):
    """Missive's API under `/v1`: bearer token, 5 concurrent requests and 300 a minute per token.

    Lenient where a test would otherwise need set-up: a post or draft naming a conversation this
    fake never saw creates it, and unknown label ids are kept (their name is null).
    """

    kind = "missive"

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        latency_ms: float = 0,
        max_concurrent: int = 5,
        per_minute: int = 300,
        per_15_minutes: int = 900,
        rate_429: float = 0.0,
        retry_after_seconds: int = 1,
        seed: int | None = None,
        outage_status: int = 0,
        strict_label_parents: bool = False,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.token = token
        self.latency_ms = latency_ms
        self.max_concurrent = max_concurrent
        self.per_minute = per_minute
        self.per_15_minutes = per_15_minutes
        self.rate_429 = rate_429
        self.retry_after_seconds = retry_after_seconds
        self.seed = seed
        # Missive down: every API request answers this status (503, 502...) when non-zero.
        self.outage_status = outage_status
        # Creating a label under a parent this fake does not know answers 422 (as Missive does
        # for a mistyped parent id); off by default, where unknown parents are kept.
        self.strict_label_parents = strict_label_parents
        self._rng = random.Random(seed)
        super().__init__(host, port)
        self._options_changed()

    def configure(self, **options: Any) -> None:
        super().configure(**options)
        if "seed" in options:
            with self._lock:
                self._rng = random.Random(self.seed)

    def _options_changed(self) -> None:
        self._expected_auth = f"Bearer {self.token}"

    # -- records and stats ----------------------------------------------------------------------
    def _reset_counters(self) -> None:
        super()._reset_counters()
        self._admitted = 0
        self._windows: dict[str, tuple[deque[float], deque[float]]] = {}
        self._drafts: list[dict[str, Any]] = []
        self._posts: list[dict[str, Any]] = []
        self._labels: dict[str, dict[str, Any]] = {}
        self._conversations: dict[str, dict[str, Any]] = {}
        self._conversation_by_phone: dict[str, str] = {}
        self._pairs: set[tuple[str, str]] = set()
        self.accepted = 0
        self.duplicates = 0
        self.rate_limited = 0
        self.rate_limited_by_reason: dict[str, int] = {}
        self.outages = 0

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                **self.base_stats(),
                "accepted": self.accepted,
                "drafts": len(self._drafts),
                "posts": len(self._posts),
                "duplicates": self.duplicates,
                "rate_limited": self.rate_limited,
                "rate_limited_by_reason": dict(self.rate_limited_by_reason),
                "labels": len(self._labels),
                "conversations": len(self._conversations),
                "outages": self.outages,
            }

    def messages(self) -> list[dict[str, Any]]:
        """Drafts that were sent (`send: true`), oldest first."""
        with self._lock:
            return [dict(draft) for draft in self._drafts if draft["send"]]

    def drafts(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(draft) for draft in self._drafts]

    def posts(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(post) for post in self._posts]

    def labels(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(label) for label in self._labels.values()]

    def conversations(self) -> list[dict[str, Any]]:
        with self._lock:
            return [self._conversation_json(c) for c in self._conversations.values()]

    def control_views(self):
        return {
            "drafts": self.drafts,
            "posts": self.posts,
            "labels": self.labels,
            "conversations": self.conversations,
        }

    def control_actions(self):
        return {
            "incoming": lambda payload: self.add_incoming(**payload),
            "label": lambda payload: self.add_label(**payload),
        }

    def add_label(
        self, name: str, parent: str | None = None, organization: str = DEFAULT_ORGANIZATION
    ) -> dict[str, Any]:
        """A shared label that exists in Missive already (made in Missive's own app); returns it."""
        with self._lock:
            return dict(self._new_label({"name": name, "parent": parent}, organization))

    def add_incoming(self, phone_number: str, body: str, to_number: str | None = None) -> dict:
        """An inbound SMS lands in the phone's conversation (as Missive shows it); returns
        `{"conversation", "message"}` ids. Webhook payloads are the test's to build."""
        with self._lock:
            conversation = self._conversation_for(phone_number, None)
            message = self._message(
                body,
                {"phone_number": phone_number},
                [{"phone_number": to_number}] if to_number else [],
                incoming=True,
            )
            conversation["messages"].append(message)
            return {"conversation": conversation["id"], "message": message["id"]}

    # -- HTTP -----------------------------------------------------------------------------------
    def handle(self, request) -> Response | None:
        if self.outage_status:
            with self._lock:
                self.outages += 1
            return missive_error(self.outage_status, "Service unavailable")
        auth = request.headers.get("Authorization")
        if auth != self._expected_auth:
            return missive_error(401, "Unauthorized: missing or invalid API token")
        rejection = self._admit(self.token)
        if rejection is not None:
            return rejection
        try:
            if self.latency_ms:
                time.sleep(self.latency_ms / 1000)
            return self._route(request)
        finally:
            with self._lock:
                self._admitted -= 1  # before the answer is written: the slot is free by then

    def _admit(self, token: str) -> Response | None:
        now = time.monotonic()
        with self._lock:
            minute, quarter = self._windows.setdefault(token, (deque(), deque()))
            while minute and minute[0] <= now - 60:
                minute.popleft()
            while quarter and quarter[0] <= now - 900:
                quarter.popleft()
            if self._admitted >= self.max_concurrent:
                reason = "concurrency"
            elif len(minute) >= self.per_minute:
                reason = "per_minute"
            elif len(quarter) >= self.per_15_minutes:
                reason = "per_15_minutes"
            elif self.rate_429 and self._rng.random() < self.rate_429:
                reason = "injected"
            else:
                self._admitted += 1
                minute.append(now)
                quarter.append(now)
                return None
            self.rate_limited += 1
            self.rate_limited_by_reason[reason] = self.rate_limited_by_reason.get(reason, 0) + 1
        return missive_error(
            429,
            f"Too many requests ({reason.replace('_', ' ')})",
            headers={"Retry-After": str(self.retry_after_seconds)},
        )

    def _route(self, request) -> Response:
        method = request.command
        parts = request.path_only.rstrip("/").split("/")[1:]  # ["v1", "drafts"]
        if not parts or parts[0] != "v1":
            return missive_error(404, "Not found")
        parts = parts[1:]
        if method == "POST" and parts in (["drafts"], ["posts"], ["shared_labels"]):
            try:
                payload = json.loads(request.body or b"null")
            except ValueError:
                return missive_error(400, "Invalid JSON body")
            if not isinstance(payload, dict):
                return missive_error(400, "The body must be a JSON object")
            create = {
                "drafts": self._create_draft,
                "posts": self._create_post,
                "shared_labels": self._create_labels,
            }[parts[0]]
            return create(payload)
        if method == "GET" and parts == ["shared_labels"]:
            return self._list_labels(request.query)
        if method == "GET" and len(parts) == 2 and parts[0] == "conversations":
            return self._get_conversation(parts[1])
        if method == "GET" and len(parts) == 3 and parts[::2] == ["conversations", "messages"]:
            return self._conversation_messages(parts[1], request.query)
        return missive_error(404, "Not found")

    # -- drafts and posts -----------------------------------------------------------------------
    def _new_id(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def _conversation_for(self, phone: str | None, conversation_id: str | None) -> dict[str, Any]:
        """Called with the lock held: the conversation named, else the phone's, else a new one."""
        if conversation_id is None and phone is not None:
            conversation_id = self._conversation_by_phone.get(phone)
        conversation = self._conversations.get(conversation_id) if conversation_id else None
        if conversation is None:
            conversation_id = conversation_id or self._new_id()
            conversation = {
                "id": conversation_id,
                "phone_number": phone,
                "subject": None,
                "shared_labels": [],
                "closed": False,
                "messages": [],
                "created_at": int(time.time()),
            }
            self._conversations[conversation_id] = conversation
        if phone is not None:
            self._conversation_by_phone.setdefault(phone, conversation["id"])
        return conversation

    def _add_labels(self, conversation: dict[str, Any], label_ids: list[str]) -> None:
        for label_id in label_ids:
            if label_id not in conversation["shared_labels"]:
                conversation["shared_labels"].append(label_id)

    def _message(
        self, body: str, from_field: dict, to_fields: list, incoming: bool = False
    ) -> dict[str, Any]:
        now = int(time.time())
        return {
            "id": self._new_id(),
            "subject": None,
            "preview": body[:140],
            "type": "twilio",
            "body": body,
            "from_field": from_field,
            "to_fields": to_fields,
            "incoming": incoming,
            "delivered_at": now,
            "created_at": now,
            "updated_at": now,
            "references": [],
            "in_reply_to": [],
            "attachments": [],
        }

    def _create_draft(self, payload: dict[str, Any]) -> Response:
        draft = payload.get("drafts")
        if not isinstance(draft, dict):
            return missive_error(400, "drafts: an object is required")
        body = draft.get("body")
        if not isinstance(body, str) or not body.strip():
            return missive_error(400, "drafts.body: can't be blank")
        to_fields = draft.get("to_fields")
        if (
            not isinstance(to_fields, list)
            or not to_fields
            or not all(isinstance(f, dict) and f.get("phone_number") for f in to_fields)
        ):
            return missive_error(400, "drafts.to_fields: a list of {phone_number} is required")
        from_field = draft.get("from_field")
        if not isinstance(from_field, dict) or not from_field.get("phone_number"):
            return missive_error(400, "drafts.from_field: {phone_number, type} is required")
        if from_field.get("type", "twilio") not in SMS_TYPES:
            return missive_error(400, f"drafts.from_field.type must be one of {SMS_TYPES}")
        labels = draft.get("add_shared_labels") or []
        if not isinstance(labels, list):
            return missive_error(400, "drafts.add_shared_labels: a list of label ids is required")
        if labels and not draft.get("organization"):
            return missive_error(400, "drafts.organization: required to add shared labels")
        send = bool(draft.get("send"))
        phone = to_fields[0]["phone_number"]
        created = datetime.now(UTC)
        with self._lock:
            conversation = self._conversation_for(phone, draft.get("conversation"))
            self._add_labels(conversation, labels)
            message = self._message(body, from_field, to_fields)
            record = {
                "id": message["id"],
                "conversation": conversation["id"],
                "to": phone,
                "body": body,
                "to_fields": to_fields,
                "from_field": from_field,
                "send": send,
                "add_shared_labels": labels,
                "organization": draft.get("organization"),
                "created_at": created,
            }
            self._drafts.append(record)
            if send:
                conversation["messages"].append(message)
                self.accepted += 1
                pair = (phone, body)
                if pair in self._pairs:
                    self.duplicates += 1
                else:
                    self._pairs.add(pair)
        answer = {
            key: message[key]
            for key in ("id", "subject", "preview", "body", "from_field", "to_fields", "created_at")
        }
        answer["conversation"] = conversation["id"]
        answer["delivered_at"] = message["delivered_at"] if send else None
        return json_response(201, {"drafts": answer})

    def _create_post(self, payload: dict[str, Any]) -> Response:
        post = payload.get("posts")
        if not isinstance(post, dict):
            return missive_error(400, "posts: an object is required")
        conversation_id = post.get("conversation")
        if not isinstance(conversation_id, str) or not conversation_id:
            return missive_error(400, "posts.conversation: required")
        text = post.get("text") or post.get("markdown")
        if not isinstance(text, str) or not text.strip():
            return missive_error(400, "posts.text or posts.markdown: can't be blank")
        notification = post.get("notification")
        if notification is not None and not (
            isinstance(notification, dict) and "title" in notification and "body" in notification
        ):
            return missive_error(400, "posts.notification: {title, body} is required")
        labels = post.get("add_shared_labels") or []
        if not isinstance(labels, list):
            return missive_error(400, "posts.add_shared_labels: a list of label ids is required")
        with self._lock:
            conversation = self._conversation_for(None, conversation_id)
            self._add_labels(conversation, labels)
            if post.get("close"):
                conversation["closed"] = True
            if post.get("reopen"):
                conversation["closed"] = False
            record = {
                "id": self._new_id(),
                "conversation": conversation_id,
                "text": post.get("text"),
                "markdown": post.get("markdown"),
                "username": post.get("username"),
                "notification": notification,
                "add_shared_labels": labels,
                "close": bool(post.get("close")),
                "created_at": datetime.now(UTC),
            }
            self._posts.append(record)
        answer = {key: record[key] for key in ("id", "conversation", "text", "markdown")}
        return json_response(201, {"posts": answer})

    # -- conversations and labels ---------------------------------------------------------------
    def _conversation_json(self, conversation: dict[str, Any]) -> dict[str, Any]:
        conversation_id = conversation["id"]
        messages = conversation["messages"]
        return {
            "id": conversation_id,
            "subject": conversation["subject"],
            "latest_message_subject": None,
            "shared_labels": [
                {"id": label_id, "name": self._labels.get(label_id, {}).get("name")}
                for label_id in conversation["shared_labels"]
            ],
            "closed": conversation["closed"],
            "messages_count": len(messages),
            "last_activity_at": messages[-1]["delivered_at"] if messages else None,
            "created_at": conversation["created_at"],
            "assignees": [],
            "users": [],
            "authors": [],
            "web_url": f"https://mail.missiveapp.com/#inbox/conversations/{conversation_id}",
            "app_url": f"missive://mail.missiveapp.com/#inbox/conversations/{conversation_id}",
        }

    def _get_conversation(self, conversation_id: str) -> Response:
        with self._lock:
            conversation = self._conversations.get(conversation_id)
            if conversation is None:
                return missive_error(404, "Conversation not found")
            return json_response(200, {"conversations": [self._conversation_json(conversation)]})

    def _conversation_messages(self, conversation_id: str, query: str) -> Response:
        """Newest first, at most `limit` (≤ 10), those delivered at or before `until` if given."""
        params = dict(parse_qsl(query))
        try:
            limit = min(int(params.get("limit") or 10), 10)
            until = int(params["until"]) if params.get("until") else None
        except ValueError:
            return missive_error(400, "limit and until must be integers")
        with self._lock:
            conversation = self._conversations.get(conversation_id)
            if conversation is None:
                return missive_error(404, "Conversation not found")
            messages = [
                message
                for message in reversed(conversation["messages"])
                if until is None or message["delivered_at"] <= until
            ][:limit]
            return json_response(200, {"messages": messages})

    def _list_labels(self, query: str) -> Response:
        """Oldest first; `limit` (≤ 200) and `offset` page as Missive does (no limit: all)."""
        params = dict(parse_qsl(query))
        organization = params.get("organization")
        try:
            limit = min(int(params["limit"]), 200) if params.get("limit") else None
            offset = int(params.get("offset") or 0)
        except ValueError:
            return missive_error(400, "limit and offset must be integers")
        with self._lock:
            labels = [
                dict(label)
                for label in self._labels.values()
                if organization is None or label["organization"] == organization
            ]
        labels = labels[offset:] if limit is None else labels[offset : offset + limit]
        return json_response(200, {"shared_labels": labels})

    def _new_label(self, item: dict[str, Any], organization: str) -> dict[str, Any]:
        """Called with the lock held."""
        parent = item.get("parent")
        parent_name = self._labels.get(parent, {}).get("name") if parent else None
        label = {
            "id": self._new_id(),
            "name": item["name"],
            "name_with_parent_names": f"{parent_name}/{item['name']}"
            if parent_name
            else item["name"],
            "color": item.get("color"),
            "parent": parent,
            "share_with_organization": bool(item.get("share_with_organization")),
            "organization": organization,
        }
        self._labels[label["id"]] = label
        return label

    def _create_labels(self, payload: dict[str, Any]) -> Response:
        requested = payload.get("shared_labels")
        many = isinstance(requested, list)
        items = requested if many else [requested]
        if not items or not all(isinstance(item, dict) for item in items):
            return missive_error(400, "shared_labels: an object (or a list of them) is required")
        for item in items:
            if not isinstance(item.get("name"), str) or not item["name"].strip():
                return missive_error(400, "shared_labels.name: can't be blank")
            if not item.get("organization"):
                return missive_error(400, "shared_labels.organization: required")
        created = []
        with self._lock:
            if self.strict_label_parents:
                for item in items:
                    if item.get("parent") and item["parent"] not in self._labels:
                        return missive_error(422, "shared_labels.parent: not found")
            for item in items:
                created.append(dict(self._new_label(item, item["organization"])))
        return json_response(201, {"shared_labels": created if many else created[0]})


if __name__ == "__main__":
    main(FakeMissive)
