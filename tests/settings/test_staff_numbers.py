"""Staff test numbers on the Settings page: saved normalised and audited, refused when bad,
changed by admins only. The test send that texts them is tested in tests/broadcasts."""

from __future__ import annotations

import sqlalchemy as sa

from app.extensions import db
from app.models import AuditLog, Setting
from app.settings.services import STAFF_NUMBERS_SETTING, staff_numbers
from tests.support import by_id


def test_admin_saves_staff_numbers_normalised_and_audited(admin_client):
    response = admin_client.post(
        "/settings/staff-numbers",
        data={"staff_numbers": "(313) 555-0101\n+1 313 555 0102, 313-555-0101"},
    )
    assert response.status_code == 302
    assert staff_numbers() == ["+13135550101", "+13135550102"]
    entry = db.session.scalar(
        sa.select(AuditLog).where(AuditLog.action == "settings.staff_numbers")
    )
    assert entry is not None and "+13135550102" in entry.summary
    html = admin_client.get("/settings/").get_data(as_text=True)
    # Shown as people read them; saved again as shown, they stay the same numbers.
    assert "(313) 555-0101\n(313) 555-0102" in by_id(html, "settings-staff-numbers")
    admin_client.post(
        "/settings/staff-numbers", data={"staff_numbers": "(313) 555-0101\n(313) 555-0102"}
    )
    assert staff_numbers() == ["+13135550101", "+13135550102"]


def test_bad_staff_numbers_are_named_and_nothing_is_saved(admin_client):
    db.session.add(Setting(key=STAFF_NUMBERS_SETTING, value=["+13135550101"]))
    db.session.commit()
    response = admin_client.post(
        "/settings/staff-numbers", data={"staff_numbers": "313 555 0199\n<b>call me</b>\n12"}
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    error = by_id(html, "settings-staff-error")
    assert "Not phone numbers: &lt;b&gt;call me&lt;/b&gt;, 12. Nothing was saved." in error
    assert 'aria-invalid="true"' in by_id(html, "settings-staff-numbers")
    assert staff_numbers() == ["+13135550101"]


def test_staff_numbers_are_for_admins_to_change(operator_client):
    response = operator_client.post("/settings/staff-numbers", data={"staff_numbers": ""})
    assert response.status_code == 403
    html = operator_client.get("/settings/").get_data(as_text=True)
    assert "settings-staff-numbers" not in by_id(html, "settings-staff")  # shown, not editable
    assert "settings-staff-form" not in html
