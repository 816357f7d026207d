"""axe-core in the browser tests: inject the vendored file into a page and fail on every serious or
critical violation, naming its rule, what it asks and the elements at fault."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from playwright.sync_api import Page

AXE_VERSION = "4.14.1"
AXE_PATH = Path(__file__).resolve().parents[1] / "vendor" / f"axe-core-{AXE_VERSION}.min.js"
# The impacts that fail a test; "minor" and "moderate" are listed only when asked for.
FAILING_IMPACTS = ("serious", "critical")

# axe.run on the whole document, every rule of WCAG 2.x A/AA plus axe's best practices.
_RUN = """async () => {
  const result = await window.axe.run(document, {
    resultTypes: ["violations"],
    runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"] },
  });
  return result.violations.map((v) => ({
    id: v.id,
    impact: v.impact,
    help: v.help,
    nodes: v.nodes.map((n) => ({ target: n.target.join(" "), impact: n.impact, summary: n.failureSummary })),
  }));
}"""


@cache
def _source() -> str:
    return AXE_PATH.read_text()


def inject(page: Page) -> None:
    """Load axe into the page unless it is there already. The app's CSP allows no inline script,
    so no <script> tag is added: the source is evaluated through the DevTools protocol, which a
    page's CSP does not govern (the app's policy stays on for the test)."""
    if page.evaluate("() => typeof window.axe === 'object'"):
        return
    page.evaluate(f"() => {{ {_source()}\n}}")
    if not page.evaluate("() => typeof window.axe === 'object'"):
        raise RuntimeError(f"axe-core did not load from {AXE_PATH}")


def violations(page: Page, impacts: tuple[str, ...] = FAILING_IMPACTS) -> list[dict]:
    """The page's axe violations of the given impacts, as axe reports them."""
    inject(page)
    found = page.evaluate(_RUN)
    return [v for v in found if v["impact"] in impacts]


def describe(found: list[dict], context: str) -> str:
    lines = []
    for violation in found:
        lines.append(f"{context}: {violation['id']} ({violation['impact']}): {violation['help']}")
        for node in violation["nodes"]:
            lines.append(f"    {node['target']}")
            detail = (node.get("summary") or "").replace("\n", " ").strip()
            if detail:
                lines.append(f"      {detail[:300]}")
    return "\n".join(lines)


def assert_accessible(page: Page, context: str) -> None:
    """Fail listing every serious or critical axe violation on the page as it is now."""
    found = violations(page)
    assert not found, "axe-core found violations:\n" + describe(found, context)
