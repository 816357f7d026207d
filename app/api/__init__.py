"""The JSON API under /api/ (SPEC 8b): per-user tokens, problem+json errors, and an OpenAPI 3.1
document generated from the views' pydantic models (spectree). Views call the same services
as the dashboard; nothing here repeats a rule of theirs."""
