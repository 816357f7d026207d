"""The API's blueprint: token authentication before every call, problem+json for every error,
`/api/openapi.json`, the reference page `/api/docs`, and `GET /api/v1/me`.

The resources register their views on `bp` from their own modules (imported at the bottom)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, render_template, request
from sqlalchemy.exc import IntegrityError, OperationalError
from werkzeug.exceptions import HTTPException

from app.api.auth import api_token, api_user, authenticate
from app.api.common import check_json_body
from app.api.problems import ApiProblem, problem_response
from app.api.schemas import Me, TokenInfo
from app.api.spec import api, openapi_document, responses
from app.audit.services import audit_via
from app.extensions import csrf, db
from app.security import public
from app.validation import ValidationError

bp = Blueprint("api", __name__, url_prefix="/api")
# A token authenticates the API, never the session cookie, so there is no cross-site request
# to forge: CSRF does not apply here.
csrf.exempt(bp)

# Endpoints anyone may read: the document and its page.
OPEN = {"api.openapi", "api.docs"}
_VIA = "_api_audit_via"


@bp.before_request
def _authenticate() -> None:
    if request.endpoint in OPEN:
        return
    authenticate()
    check_json_body()
    # Every audit entry of this request says which token made it.
    context = audit_via(f"API token {api_token().name}")
    context.__enter__()
    setattr(request, _VIA, context)


@bp.teardown_request
def _end_audit(error: BaseException | None) -> None:
    context = getattr(request, _VIA, None)
    if context is not None:
        context.__exit__(None, None, None)


@bp.after_request
def _no_store(response: Response) -> Response:
    if request.method == "OPTIONS" and response.status_code == 200 and not response.data:
        # Flask's automatic answer (an empty text/html 200): a 204 with its Allow header.
        response.status_code = 204
        del response.headers["Content-Type"]
    if request.endpoint not in OPEN:
        response.headers.setdefault("Cache-Control", "no-store")
    return response


@bp.errorhandler(ApiProblem)
def _problem(error: ApiProblem) -> Response:
    db.session.rollback()
    return error.response()


@bp.errorhandler(ValidationError)
def _refused(error: ValidationError) -> Response:
    """A service refused the input (nothing written): 422 naming the field."""
    db.session.rollback()
    return problem_response(422, error.message, field=error.field)


@bp.errorhandler(IntegrityError)
def _conflict(error: IntegrityError) -> Response:
    db.session.rollback()
    return problem_response(
        409, "Someone changed this at the same moment: read it again and retry."
    )


@bp.errorhandler(OperationalError)
def _unavailable(error: OperationalError) -> Response:
    db.session.rollback()
    current_app.logger.exception("database unavailable on %s", request.path)
    return problem_response(503, "The database did not answer: try again in a minute.")


@bp.errorhandler(HTTPException)
def _http(error: HTTPException) -> Response:
    from app.errors import handle_http_error

    return handle_http_error(error)


# -- the document and its page ---------------------------------------------------------------
@bp.get("/openapi.json")
@public
def openapi():
    """The OpenAPI 3.1 document, generated from the views and their models."""
    return current_app.json.response(openapi_document())


@bp.get("/docs")
@public
def docs():
    """A readable reference of the API (Swagger UI, vendored; no inline script)."""
    response = current_app.make_response(render_template("api/docs.html"))
    # Swagger UI injects <style> elements at run time: this page alone allows inline styles.
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; "
        "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    )
    return response


# -- who am I ----------------------------------------------------------------------------------
@bp.get("/v1/me")
@public
@api.validate(resp=responses(Me), tags=["me"], operation_id="getMe")
def me():
    """The token's owner and the token itself."""
    user, token = api_user(), api_token()
    return Me(
        id=user.id,
        email=user.email,
        name=user.name,
        role=user.role.value,
        token=TokenInfo(
            id=token.id,
            name=token.name,
            prefix=token.prefix,
            created_at=token.created_at,
            expires_at=token.expires_at,
            last_used_at=token.last_used_at,
        ),
    )


from app.api import audience, broadcasts, campaigns, uploads  # noqa: E402, F401  (resources register on bp)
