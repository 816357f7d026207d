"""factory_boy factories for the models, bound to the test session."""

from __future__ import annotations

import factory
from werkzeug.security import generate_password_hash

from app.extensions import db
from app.models import Broadcast, BroadcastStatus, Contact, ContactSource, Role, Segment, User

PASSWORD = "correct-horse-battery"
# Hash once: the default scrypt cost is paid per call and tests create many users.
_PASSWORD_HASH = generate_password_hash(PASSWORD)


class BaseFactory(factory.alchemy.SQLAlchemyModelFactory):
    class Meta:
        abstract = True
        sqlalchemy_session_factory = lambda: db.session  # noqa: E731
        sqlalchemy_session_persistence = "flush"


class UserFactory(BaseFactory):
    class Meta:
        model = User

    email = factory.Sequence(lambda n: f"user{n}@example.org")
    name = factory.Faker("name")
    role = Role.VIEWER
    active = True
    password_hash = _PASSWORD_HASH


class ContactFactory(BaseFactory):
    class Meta:
        model = Contact

    phone = factory.Sequence(lambda n: f"+1313555{n:04d}")
    name = factory.Faker("first_name")
    zip_code = "48201"
    source = ContactSource.CONVERSATION
    attributes = factory.LazyFunction(dict)


class SegmentFactory(BaseFactory):
    class Meta:
        model = Segment

    name = factory.Sequence(lambda n: f"Segment {n}")
    rule = factory.LazyFunction(lambda: {"all": []})


class BroadcastFactory(BaseFactory):
    class Meta:
        model = Broadcast

    first_message = "Hello from the newsroom"
    second_message = "Did you see our note?"
    status = BroadcastStatus.UPCOMING
    batch_size = 100
