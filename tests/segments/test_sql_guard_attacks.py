"""What a security review found after the first lock-down, kept as regressions: a CTE name that
stands for a catalog table where no WITH defines it, expressions nested past Python's recursion
limit (a 422, never a 500), memory-amplifying functions, and NUL characters."""

from __future__ import annotations

import pytest

from app.segments.sql_guard import check_segment_sql
from app.validation import ValidationError


def refusal(sql: str) -> str:
    with pytest.raises(ValidationError) as caught:
        check_segment_sql(sql)
    assert caught.value.field == "raw_sql"
    return caught.value.message


@pytest.mark.parametrize(
    "sql",
    [
        # A CTE's own body does not see its name: this reads the catalog's pg_settings.
        "WITH pg_settings AS (SELECT * FROM pg_settings) SELECT phone AS phone_number "
        "FROM contacts WHERE EXISTS (SELECT 1 FROM pg_settings AS s(name, setting) "
        "WHERE name = 'server_version')",
        # Any other name that belongs to PostgreSQL.
        "WITH pg_roles AS (SELECT 1 AS rolname) SELECT phone AS phone_number FROM contacts",
    ],
)
def test_a_cte_may_not_take_a_catalog_name(sql):
    assert "names starting with pg_ belong to PostgreSQL" in refusal(sql)


def test_a_cte_defined_in_one_subquery_does_not_excuse_the_name_elsewhere():
    sql = (
        "SELECT phone AS phone_number FROM contacts WHERE EXISTS "
        "(WITH users AS (SELECT 1 AS x) SELECT 1 FROM users) "
        "AND EXISTS (SELECT 1 FROM users AS u(email) WHERE email = 'a@b.c')"
    )
    assert "reads the table" in refusal(sql) and "users" in refusal(sql)


def test_a_non_recursive_cte_does_not_see_itself_but_a_recursive_one_does():
    assert "reads the table" in refusal(
        "WITH users AS (SELECT * FROM users) SELECT phone AS phone_number FROM contacts"
    )
    check_segment_sql(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3) "
        "SELECT phone AS phone_number FROM contacts WHERE id IN (SELECT i FROM n)"
    )
    # A later CTE sees an earlier one; the main query sees both.
    check_segment_sql(
        "WITH a AS (SELECT id FROM contacts), b AS (SELECT id FROM a) "
        "SELECT phone AS phone_number FROM contacts WHERE id IN (SELECT id FROM b)"
    )


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT phone AS phone_number FROM contacts WHERE id = 1" + "+1" * 400,
        "SELECT phone AS phone_number FROM contacts WHERE " + "NOT " * 600 + "true",
        "SELECT phone AS phone_number FROM contacts WHERE name = "
        + "coalesce(" * 300
        + "name"
        + ")" * 300,
        "SELECT phone AS phone_number FROM contacts WHERE attributes" + "->'a'" * 3000 + " IS NULL",
    ],
)
def test_deeply_nested_expressions_are_a_clear_refusal_not_a_crash(sql):
    message = refusal(sql)
    assert "nested too deeply" in message or "does not parse" in message


@pytest.mark.parametrize("function", ["lpad", "rpad", "repeat"])
def test_functions_that_blow_strings_up_are_refused(function):
    sql = f"SELECT phone AS phone_number FROM contacts WHERE length({function}('x', 100000000)) > 0"
    assert function in refusal(sql)


def test_a_nul_character_is_refused_whatever_follows_it():
    assert "NUL" in refusal("SELECT phone AS phone_number FROM contacts;\x00 DELETE FROM contacts")


def test_text_that_is_not_valid_unicode_is_refused():
    assert "not valid text" in refusal("SELECT '\ud800' AS phone_number")
