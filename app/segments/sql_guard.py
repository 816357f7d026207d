"""Raw SQL segments (SPEC 3.3): check an admin's query with PostgreSQL's own parser (pglast).

`check_segment_sql` parses the text exactly as the server would, refuses anything but one
plain SELECT over an allow list of tables, columns, functions and types, and returns the query
printed back from its syntax tree (comments and formatting gone), which is what runs. It is
pure: no database, no app. The database role the query runs as (migration 0005) can read only
the same columns, so a check that misses something still cannot read more. Messages name the
problem (a table, a column, a function, a clause) and never quote data.
"""

from __future__ import annotations

from collections.abc import Iterator

from pglast import ast, parse_sql
from pglast.enums import SQLValueFunctionOp
from pglast.parser import ParseError
from pglast.stream import RawStream

from app.validation import ValidationError

FIELD = "raw_sql"
MAX_LENGTH = 20_000

# What a segment may read: contacts without free-text reasons, message metadata (no bodies,
# provider ids or error texts), the Missive mirror and upload memberships (no CSV content).
# Migration 0005 creates one view per table in the `segment_data` schema with these columns.
ALLOWED_COLUMNS: dict[str, tuple[str, ...]] = {
    "contacts": (
        "id",
        "phone",
        "name",
        "email",
        "zip_code",
        "time_zone",
        "attributes",
        "unsubscribed",
        "unsubscribed_at",
        "excluded",
        "excluded_at",
        "exclude_reason",
        "source",
        "created_at",
        "updated_at",
    ),
    "outbound_messages": (
        "id",
        "broadcast_id",
        "campaign_id",
        "contact_id",
        "step",
        "segment_id",
        "status",
        "transport",
        "error_code",
        "sms_segments",
        "scheduled_for",
        "sent_at",
        "delivered_at",
        "failed_at",
        "created_at",
        "updated_at",
    ),
    "inbound_messages": (
        "id",
        "phone",
        "received_at",
        "contact_id",
        "reply_to_id",
        "keyword",
        "provider",
        "created_at",
    ),
    "missive_conversations": ("id", "contact_id", "phone", "closed", "created_at", "updated_at"),
    "missive_labels": ("id", "missive_id", "name", "parent_missive_id"),
    "missive_conversation_labels": (
        "id",
        "conversation_id",
        "label_id",
        "first_applied_at",
        "last_applied_at",
        "removed",
        "removed_at",
    ),
    "upload_contacts": ("upload_id", "contact_id", "row_number"),
}
_ALL_COLUMNS = frozenset(c for columns in ALLOWED_COLUMNS.values() for c in columns)

# Functions by name (with or without `pg_catalog.`). Some SQL syntax is a function call in
# PostgreSQL's tree: EXTRACT, AT TIME ZONE (timezone), POSITION, TRIM (btrim...), SUBSTRING,
# OVERLAPS, LIKE/SIMILAR ... ESCAPE. Nothing here reads files, settings, other tables or the
# server's state, sleeps, signals other sessions, or runs SQL given as text.
ALLOWED_FUNCTIONS = frozenset(
    """
    count sum min max avg bool_and bool_or every array_agg string_agg
    row_number rank dense_rank percent_rank cume_dist ntile lag lead first_value last_value
    nth_value
    lower upper initcap length char_length character_length octet_length substr substring
    left right position strpos starts_with replace translate btrim ltrim rtrim 
    concat concat_ws split_part reverse regexp_replace regexp_match regexp_like like_escape
    similar_to_escape
    abs round floor ceil ceiling trunc mod sign
    now statement_timestamp transaction_timestamp date_trunc date_part extract age date_bin
    make_date make_interval make_timestamp make_timestamptz to_char to_date to_timestamp
    timezone isfinite overlaps
    jsonb_extract_path jsonb_extract_path_text jsonb_typeof jsonb_array_length
    jsonb_array_elements jsonb_array_elements_text jsonb_object_keys jsonb_path_exists
    json_extract_path json_extract_path_text json_typeof json_array_length
    array_length cardinality array_position array_to_string string_to_array unnest
    generate_series
    """.split()
)

# Types a value may be cast to (the parser spells int as int4, boolean as bool, and so on).
ALLOWED_TYPES = frozenset(
    """
    text varchar bpchar char int2 int4 int8 smallint integer int bigint numeric decimal float4
    float8 real bool boolean date time timetz timestamp timestamptz interval json jsonb
    """.split()
)

_TIME_FUNCTIONS = frozenset(
    op
    for op in SQLValueFunctionOp
    if op.name.startswith(("SVFOP_CURRENT_DATE", "SVFOP_CURRENT_TIME", "SVFOP_LOCALTIME"))
)

# The syntax a segment query may contain; anything else (XML, JSON constructors, TABLESAMPLE,
# column definition lists, parameters, ...) is refused by name.
_ALLOWED_NODES = frozenset(
    {
        ast.RawStmt,
        ast.SelectStmt,
        ast.ResTarget,
        ast.ColumnRef,
        ast.A_Star,
        ast.A_Const,
        ast.A_Expr,
        ast.A_ArrayExpr,
        ast.A_Indirection,
        ast.A_Indices,
        ast.BoolExpr,
        ast.NullTest,
        ast.BooleanTest,
        ast.FuncCall,
        ast.NamedArgExpr,
        ast.TypeCast,
        ast.TypeName,
        ast.CollateClause,
        ast.RangeVar,
        ast.RangeSubselect,
        ast.RangeFunction,
        ast.JoinExpr,
        ast.Alias,
        ast.SubLink,
        ast.CoalesceExpr,
        ast.MinMaxExpr,
        ast.CaseExpr,
        ast.CaseWhen,
        ast.SortBy,
        ast.WindowDef,
        ast.GroupingSet,
        ast.RowExpr,
        ast.WithClause,
        ast.CommonTableExpr,
        ast.CTESearchClause,
        ast.CTECycleClause,
        ast.SQLValueFunction,
        ast.String,
        ast.Integer,
        ast.Float,
        ast.Boolean,
        ast.BitString,
    }
)

_STATEMENT_WORDS = {
    "InsertStmt": "an INSERT",
    "UpdateStmt": "an UPDATE",
    "DeleteStmt": "a DELETE",
    "MergeStmt": "a MERGE",
    "CopyStmt": "a COPY",
    "VariableSetStmt": "a SET",
    "TruncateStmt": "a TRUNCATE",
    "ExplainStmt": "an EXPLAIN",
    "CallStmt": "a CALL",
    "DoStmt": "a DO block",
    "CreateTableAsStmt": "a CREATE TABLE AS",
    "TransactionStmt": "a transaction command",
}


def _problem(message: str) -> ValidationError:
    return ValidationError(message, field=FIELD)


def _name(text: str) -> str:
    """An identifier from the query, shortened for a message (it is the admin's text, not data)."""
    return text if len(text) <= 63 else text[:60] + "…"


def _strings(nodes) -> list[str]:
    return [n.sval for n in nodes or () if isinstance(n, ast.String)]


def _children(value) -> Iterator[ast.Node]:
    if isinstance(value, ast.Node):
        yield value
    elif isinstance(value, tuple | list):
        for item in value:
            yield from _children(item)


def _walk(node: ast.Node) -> Iterator[ast.Node]:
    yield node
    for slot in node.__slots__:
        for child in _children(getattr(node, slot, None)):
            yield from _walk(child)


def _statement_word(node: ast.Node) -> str:
    kind = type(node).__name__
    return _STATEMENT_WORDS.get(kind, "a " + kind.removesuffix("Stmt").upper() + " statement")


def _parse(sql: str) -> ast.SelectStmt:
    text = (sql or "").strip()
    if not text.rstrip(";").strip():
        raise _problem("Enter a query that returns a phone_number column.")
    if len(text) > MAX_LENGTH:
        raise _problem(f"The query is too long ({MAX_LENGTH:,} characters at most).")
    try:
        statements = parse_sql(text)
    except ParseError as exc:
        # PostgreSQL's own words ("syntax error at or near "FORM""): they quote the admin's
        # query, never data.
        message, where = (list(exc.args) + [None, None])[:2]
        at = f" (character {where + 1})" if isinstance(where, int) else ""
        raise _problem(f"The query does not parse: {message}{at}.") from None
    if len(statements) != 1:
        raise _problem("Use a single statement: remove the inner semicolons.")
    statement = statements[0].stmt
    if not isinstance(statement, ast.SelectStmt):
        raise _problem(f"Only a SELECT can define a segment; this is {_statement_word(statement)}.")
    return statement


def _cte_references(root: ast.SelectStmt) -> set[int]:
    """The table references (by node id) that name a CTE in scope where they stand, as
    PostgreSQL resolves them: a WITH's names are seen by the SELECT it belongs to and what is
    nested in it, each CTE by the ones after it (all of them with RECURSIVE), never by its own
    body otherwise. Any other bare name is a real table and must be on the allow list."""
    found: set[int] = set()
    stack: list[tuple[ast.Node, frozenset[str]]] = [(root, frozenset())]
    while stack:
        node, scope = stack.pop()
        if isinstance(node, ast.RangeVar):
            if not node.schemaname and not node.catalogname and node.relname in scope:
                found.add(id(node))
            continue
        inner = scope
        with_clause = node.withClause if isinstance(node, ast.SelectStmt) else None
        if with_clause is not None:
            ctes = [c for c in with_clause.ctes or () if isinstance(c, ast.CommonTableExpr)]
            if with_clause.recursive:
                inner = scope | {c.ctename for c in ctes}
                stack.extend((c.ctequery, inner) for c in ctes)
            else:
                seen = set(scope)
                for cte in ctes:
                    stack.append((cte.ctequery, frozenset(seen)))
                    seen.add(cte.ctename)
                inner = frozenset(seen)
        for slot in node.__slots__:
            if slot == "withClause" and with_clause is not None:
                continue
            for child in _children(getattr(node, slot, None)):
                stack.append((child, inner))
    return found


class _Scope:
    """Every name the query defines, gathered before checking: which aliases stand for which
    allowed tables, and the names of CTEs, subquery aliases and output columns."""

    def __init__(self, root: ast.SelectStmt) -> None:
        self.cte_refs = _cte_references(root)
        self.ctes: set[str] = set()
        self.derived: set[str] = set()  # aliases of CTEs, subqueries, functions; output names
        self.tables: dict[str, set[str]] = {}  # alias or table name -> allowed tables
        for node in _walk(root):
            if isinstance(node, ast.CommonTableExpr):
                self.ctes.add(node.ctename)
                self.derived.add(node.ctename)
                self.derived.update(_strings(node.aliascolnames))
            elif isinstance(node, ast.Alias):
                self.derived.update(_strings(node.colnames))
            elif isinstance(node, ast.RangeSubselect | ast.RangeFunction) and node.alias:
                self.derived.add(node.alias.aliasname)
            elif isinstance(node, ast.ResTarget) and node.name:
                self.derived.add(node.name)
            elif isinstance(node, ast.CTESearchClause):
                self.derived.add(node.search_seq_column)
            elif isinstance(node, ast.CTECycleClause):
                self.derived.update({node.cycle_mark_column, node.cycle_path_column})
        for node in _walk(root):
            if isinstance(node, ast.RangeFunction):
                for call in _walk(node):
                    if isinstance(call, ast.FuncCall):  # unnest(x) without an alias: "unnest"
                        self.derived.update(_strings(call.funcname)[-1:])
            if isinstance(node, ast.RangeVar) and node.relname in ALLOWED_COLUMNS:
                if id(node) in self.cte_refs:
                    continue
                key = node.alias.aliasname if node.alias else node.relname
                self.tables.setdefault(key, set()).add(node.relname)
                if node.alias:
                    self.derived.update(_strings(node.alias.colnames))


class _Checker:
    def __init__(self, root: ast.SelectStmt) -> None:
        self.scope = _Scope(root)
        self.root = root

    def run(self) -> None:
        nodes = list(_walk(self.root))
        # What the statement does first (INTO, FOR UPDATE, a DELETE in WITH), then what it
        # reads: "reads the table users" says more than "unknown column password_hash".
        for node in nodes:
            if isinstance(node, ast.SelectStmt | ast.CommonTableExpr):
                getattr(self, "_check_" + type(node).__name__)(node)
            elif type(node).__name__.endswith("Stmt") and type(node) not in _ALLOWED_NODES:
                self._refuse_node(node)
        for node in nodes:
            if isinstance(node, ast.RangeVar):
                self._check_RangeVar(node)
        for node in nodes:
            kind = type(node)
            if kind not in _ALLOWED_NODES:
                self._refuse_node(node)
            check = getattr(self, "_check_" + kind.__name__, None)
            if check is not None:
                check(node)

    # --- statements and clauses ------------------------------------------------------------

    def _refuse_node(self, node: ast.Node) -> None:
        name = type(node).__name__
        if name.endswith("Stmt"):
            raise _problem(f"A segment may only read: the query contains {_statement_word(node)}.")
        if isinstance(node, ast.ParamRef):
            raise _problem("Parameters ($1, $2, ...) are not allowed: write the values in.")
        if isinstance(node, ast.RangeTableSample):
            raise _problem("TABLESAMPLE is not allowed in a segment query.")
        if isinstance(node, ast.ColumnDef):
            raise _problem("Column definition lists are not allowed in a segment query.")
        if name.startswith("Xml"):
            raise _problem("XML functions are not allowed in a segment query.")
        if name.startswith("Json"):
            raise _problem("SQL/JSON constructors are not allowed: use the jsonb operators.")
        raise _problem(f"This kind of expression ({name}) is not allowed in a segment query.")

    def _check_SelectStmt(self, node: ast.SelectStmt) -> None:
        if node.intoClause is not None:
            raise _problem("SELECT … INTO creates a table: a segment may only read.")
        if node.lockingClause:
            raise _problem("FOR UPDATE / FOR SHARE locks rows: a segment may only read.")

    def _check_CommonTableExpr(self, node: ast.CommonTableExpr) -> None:
        if node.ctename.startswith("pg_"):
            raise _problem(
                f"Name the WITH query something else than {_name(node.ctename)}: names "
                "starting with pg_ belong to PostgreSQL."
            )
        if not isinstance(node.ctequery, ast.SelectStmt):
            raise _problem(
                f"A segment may only read: the WITH clause holds {_statement_word(node.ctequery)}."
            )

    # --- what is read ----------------------------------------------------------------------

    def _check_RangeVar(self, node: ast.RangeVar) -> None:
        if node.catalogname or node.schemaname:
            qualified = ".".join(p for p in (node.catalogname, node.schemaname, node.relname) if p)
            raise _problem(
                f"Name tables without a schema ({_name(qualified)}): a segment reads only "
                f"{_table_list()}."
            )
        if id(node) in self.scope.cte_refs or node.relname in ALLOWED_COLUMNS:
            return
        raise _problem(
            f"The query reads the table {_name(node.relname)}, which segments may not read. "
            f"Tables a segment may read: {_table_list()}."
        )

    def _check_ColumnRef(self, node: ast.ColumnRef) -> None:
        fields = node.fields
        names = [f.sval if isinstance(f, ast.String) else "*" for f in fields]
        if len(names) > 2:
            raise _problem(f"Name columns as table.column ({_name('.'.join(names))}).")
        if len(names) == 1:
            column = names[0]
            if (
                column == "*"
                or column in _ALL_COLUMNS
                or column in self.scope.derived
                or column in self.scope.tables
            ):
                return
            raise _problem(
                f"Unknown column {_name(column)}: it is not one of the columns a segment may "
                "read (listed below the query)."
            )
        qualifier, column = names
        tables = self.scope.tables.get(qualifier)
        derived = qualifier in self.scope.derived
        if tables is None and not derived:
            where = f"{_name(qualifier)}.{_name(column)}"
            raise _problem(f"Unknown table or alias {_name(qualifier)} (in {where}).")
        if column == "*":
            return
        allowed = {c for t in tables or () for c in ALLOWED_COLUMNS[t]}
        if derived:
            allowed |= _ALL_COLUMNS | self.scope.derived
        if column not in allowed:
            table = " / ".join(sorted(tables or {qualifier}))
            raise _problem(
                f"Unknown column {_name(qualifier)}.{_name(column)}: {_name(table)} has no "
                "such column a segment may read (they are listed below the query)."
            )

    # --- what is called --------------------------------------------------------------------

    def _check_FuncCall(self, node: ast.FuncCall) -> None:
        parts = _strings(node.funcname)  # unquoted names come folded to lower case
        name = parts[-1] if parts else ""
        if len(parts) > 2 or (len(parts) == 2 and parts[0] != "pg_catalog"):
            raise _problem(
                f"The function {_name('.'.join(parts))} is not allowed in a segment query."
            )
        if name not in ALLOWED_FUNCTIONS:
            raise _problem(f"The function {_name(name)} is not allowed in a segment query.")

    def _check_TypeName(self, node: ast.TypeName) -> None:
        parts = _strings(node.names)
        name = parts[-1] if parts else ""
        if node.pct_type or node.setof:
            raise _problem("%TYPE and SETOF are not allowed in a segment query.")
        if (
            (len(parts) == 2 and parts[0] != "pg_catalog")
            or len(parts) > 2
            or (name not in ALLOWED_TYPES)
        ):
            raise _problem(
                f"Casting to {_name('.'.join(parts))} is not allowed in a segment query "
                "(use text, numbers, booleans, dates, times, intervals or json)."
            )

    def _check_A_Expr(self, node: ast.A_Expr) -> None:
        parts = _strings(node.name)
        if len(parts) > 1 and parts[0] != "pg_catalog":
            raise _problem(f"The operator {_name('.'.join(parts))} is not allowed.")

    def _check_SQLValueFunction(self, node: ast.SQLValueFunction) -> None:
        if node.op not in _TIME_FUNCTIONS:
            word = node.op.name.removeprefix("SVFOP_").split("_N")[0]
            raise _problem(f"{word} is not allowed in a segment query.")


def _table_list() -> str:
    return ", ".join(ALLOWED_COLUMNS)


def check_segment_sql(sql: str) -> str:
    """The query as it will run (one SELECT, printed back from PostgreSQL's syntax tree), or
    ValidationError(field="raw_sql") naming what is not allowed. A trailing semicolon is fine."""
    if "\x00" in (sql or ""):
        raise _problem("The query contains a NUL character: remove it.")
    try:
        (sql or "").encode("utf-8")
    except UnicodeEncodeError:
        raise _problem(
            "The query contains a character that is not valid text: remove it."
        ) from None
    try:
        statement = _parse(sql)
        _Checker(statement).run()
        return RawStream()(statement)
    except RecursionError:
        raise _problem(
            "The query is nested too deeply to check: simplify it (fewer nested expressions "
            "or subqueries)."
        ) from None
