"""The dev default: the upload pipeline and segment counts work on SQLite too."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app import create_app
from app.extensions import db
from app.jobs.imports import import_upload, validate_upload
from app.models import Contact, ContactSource, UploadContact, UploadStatus
from app.segments.services import Audience, count_rule_contacts
from app.uploads.services import create_upload, start_import
from tests.support import make_test_config, run_flask, test_env

pytestmark = pytest.mark.slow


def test_upload_validate_import_and_count_on_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path / 'dev.db'}"
    assert run_flask(["db", "upgrade"], test_env(DATABASE_URL=url)).returncode == 0
    app = create_app(make_test_config(database_url=url))
    with app.app_context():
        db.session.add(Contact(phone="+13135550102", name=None, attributes={"lang": "en"}))
        db.session.commit()
        content = b"phone;name;team\n3135550101;Ava;blue\n3135550102;Ben;red\nnope;x;y\n"
        upload = create_upload("list.csv", content, user=None)
        db.session.commit()
        validate_upload(upload.id)
        start_import(db.session.get(type(upload), upload.id), user=None)
        db.session.commit()
        assert import_upload(upload.id)["status"] == "done"
        db.session.expire_all()
        upload = db.session.get(type(upload), upload.id)
        assert upload.status == UploadStatus.DONE
        assert (upload.created_count, upload.updated_count, upload.invalid_rows) == (1, 1, 1)
        ben = db.session.scalar(sa.select(Contact).where(Contact.phone == "+13135550102"))
        assert ben.name == "Ben" and ben.attributes == {"lang": "en", "team": "red"}
        assert ben.source == ContactSource.CONVERSATION
        assert db.session.scalar(sa.select(sa.func.count()).select_from(UploadContact)) == 2
        rule = {
            "all": [
                {"type": "attribute", "key": "team", "op": "contains", "value": "E"},
                {"type": "in_upload", "upload_id": upload.id},
                {"type": "not_replied_within_days", "days": 7},
            ]
        }
        assert count_rule_contacts(rule, purpose=Audience.CAMPAIGN) == 2
        assert count_rule_contacts(rule, purpose=Audience.BROADCAST) == 1
