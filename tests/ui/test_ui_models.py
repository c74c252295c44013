"""The models pages in a real Chromium: the registry list, a model's versions, aliases and
alias history, and the Promote / Force / Rollback buttons with their gates and roles.

The writes run on a copy of the shared world's store, so the shared world keeps its aliases
and its alias history for every other test.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from ui_world import World

from conftest import serve, shot, sign_in

MODEL = "diabetes"


def _aliases(world: World) -> dict[str, int]:
    client = world.client()
    try:
        return dict(client.model_aliases(MODEL))
    finally:
        client.close()


def _version_count(world: World) -> int:
    client = world.client()
    try:
        return len(client.model_versions(MODEL))
    finally:
        client.close()


def _csrf(page: Any) -> str:
    """This browser's form token, as every page's forms carry it (the sign-out form has it)."""
    return str(page.locator("input[name=csrf]").first.get_attribute("value"))


def _post_form(page: Any, action: str, fields: dict[str, str]) -> Any:
    """Submit a form the page does not offer, as a person with the browser's tools could."""
    with page.expect_navigation() as navigation:
        page.evaluate(
            """([action, fields]) => {
                const form = document.createElement("form");
                form.method = "post";
                form.action = action;
                for (const [name, value] of Object.entries(fields)) {
                    const input = document.createElement("input");
                    input.type = "hidden";
                    input.name = name;
                    input.value = value;
                    form.appendChild(input);
                }
                document.body.appendChild(form);
                form.submit();
            }""",
            [action, fields],
        )
    return navigation.value


def test_models_page_lists_every_model_with_versions_aliases_and_metrics(
    page: Any, server: str, world: World
) -> None:
    page.goto(f"{server}/models")
    row = page.locator("table.models tbody tr", has_text=MODEL)
    assert row.count() == 1
    count = _version_count(world)
    assert count >= 2
    cells = row.locator("td").all_inner_texts()
    assert cells[0].strip() == MODEL and cells[1].strip() == str(count)
    assert f"@{count}" in cells[2]
    assert "none" in cells[3]  # no alias holds a version in the example project
    assert "rmse" in cells[6] and "mae" in cells[6]
    assert row.locator("time").count() == 1
    shot(page, "models")
    page.click(f"table.models a[href='/models/{MODEL}']")
    page.wait_for_url(f"{server}/models/{MODEL}")


def test_model_page_shows_versions_with_run_data_metrics_and_schema(
    page: Any, server: str, world: World
) -> None:
    page.goto(f"{server}/models/{MODEL}")
    assert page.locator("h1").inner_text() == f"Model {MODEL}"
    versions = page.locator("table.versions tbody tr")
    assert versions.count() == _version_count(world)
    first = page.locator("#v1")
    assert first.locator(f"a[href='/runs/{world.runs['train#1']}']").inner_text() == "train#1"
    assert first.locator("a[href='/datasets/diabetes']").count() == 1
    text = first.inner_text()
    assert "rmse 56.88" in text and "10 columns" in text  # the rmse of alpha=0.5; 10 features
    assert first.locator("a[href*='/evaluations/diabetes']").count() >= 1
    # Not signed in (auth off): reading is open, moving aliases is not offered.
    assert page.locator("form.promote").count() == 0
    assert "No alias of diabetes has moved yet" in page.locator("main").inner_text()
    shot(page, "model")


def test_a_reader_sees_no_buttons_and_cannot_promote(
    page: Any, auth_server: str, world: World, watch: Any
) -> None:
    sign_in(page, auth_server, world.tokens["reader"], f"/models/{MODEL}")
    assert page.locator("table.versions tbody tr").count() == _version_count(world)
    assert page.locator("form.promote").count() == 0
    assert page.locator("button", has_text="Roll back").count() == 0
    response = page.request.post(
        f"{auth_server}/models/{MODEL}/promote",
        form={"csrf": _csrf(page), "version": "2", "alias": "production"},
    )
    assert response.status == 403 and "reader" in response.text()
    page.goto(f"{auth_server}/models/{MODEL}/promote?version=2")
    watch.console_errors.clear()  # the 403 status of the page itself is logged by Chromium
    assert "403" in page.locator("h1").inner_text()
    assert _aliases(world) == {}


def _own_copy(world: World, parent: Path) -> World:
    """A copy of the shared world's project and store (tokens included): writes to it leave
    the shared world's aliases and alias history as every other test expects them."""
    root = parent / world.root.name
    shutil.copytree(world.root, root)
    return World(root=root, runs=dict(world.runs), tokens=dict(world.tokens))


def test_promote_force_and_rollback_with_their_gates_roles_and_audit(
    page: Any, world: World, tmp_path: Path, watch: Any
) -> None:
    own = _own_copy(world, tmp_path)
    with serve(own) as background:
        _writer_promotes(page, own, background.url, watch)
        _admin_forces_and_rolls_back(page, own, background.url, watch)


def _writer_promotes(page: Any, world: World, base: str, watch: Any) -> None:
    sign_in(page, base, world.tokens["writer"], f"/models/{MODEL}")

    # Version 1 (rmse 56.88) against `rmse <= 56.5`: the gate table says FAIL, no Confirm.
    page.locator("#v1 form.promote button").click()
    page.wait_for_url(f"{base}/models/{MODEL}/promote?version=1&alias=production")
    rmse = page.locator("table.gates tbody tr", has_text="rmse")
    assert rmse.locator("td").nth(1).inner_text() == "<= 56.5"
    assert rmse.locator("td").nth(2).inner_text() == "56.88"
    assert rmse.locator("td").nth(3).inner_text() == "FAIL"
    assert page.locator("button", has_text="Confirm").count() == 0
    assert page.locator("form[action$='/force']").count() == 0  # forcing is for admins

    # Posting it anyway: the server checks the gates again, answers 409, and nothing moves.
    refused = _post_form(
        page,
        f"/models/{MODEL}/promote",
        {"csrf": _csrf(page), "version": "1", "alias": "production"},
    )
    watch.console_errors.clear()  # the 409 status of the page itself is logged by Chromium
    assert refused.status == 409
    assert "Nothing moved" in page.locator("main").inner_text()
    assert page.locator("table.gates tbody tr.fail", has_text="rmse").count() == 1
    assert _aliases(world) == {}
    shot(page, "promote-refused")
    forced = page.request.post(
        f"{base}/models/{MODEL}/force",
        form={"csrf": _csrf(page), "version": "1", "alias": "production", "reason": "now"},
    )
    assert forced.status == 403 and "admin" in forced.text()
    assert _aliases(world) == {}

    # Version 2 (rmse 55.79) passes: Confirm moves the alias, audited as the writer's token.
    page.goto(f"{base}/models/{MODEL}")
    page.locator("#v2 form.promote button").click()
    page.wait_for_url(f"{base}/models/{MODEL}/promote?version=2&alias=production")
    assert page.locator("table.gates tbody tr.fail").count() == 0
    page.fill("form[action$='/promote'] input[name=reason]", "better rmse")
    page.locator("button", has_text="Confirm").click()
    page.wait_for_url(f"{base}/models/{MODEL}?done=promoted*")
    assert _aliases(world) == {"production": 2}
    assert "Moved diabetes@production to diabetes@2" in page.locator(".notice").inner_text()
    assert page.locator("#v2 .badge-alias").inner_text() == "production"
    event = page.locator("table.history tbody tr").first.inner_text()
    assert "token:ui-writer" in event and "promote" in event and "better rmse" in event
    shot(page, "promote-ok")

    # Nothing held production before: rolling back is refused with the reason.
    page.click("button:has-text('Roll back production')")
    watch.console_errors.clear()
    assert "no earlier version" in page.locator(".problem").inner_text()
    assert _aliases(world) == {"production": 2}


def _admin_forces_and_rolls_back(page: Any, world: World, base: str, watch: Any) -> None:
    page.click("header .who button:has-text('Sign out')")
    page.wait_for_url(f"{base}/")
    watch.console_errors.clear()  # (while the home page is a placeholder, "/" is a 404)
    sign_in(page, base, world.tokens["admin"], f"/models/{MODEL}")
    page.goto(f"{base}/models/{MODEL}/promote?version=1&alias=production")
    assert page.locator("button", has_text="Confirm").count() == 0
    page.fill("form[action$='/force'] input[name=reason]", "hotfix for the outage")
    shot(page, "promote-force")
    page.locator("button", has_text="Force").click()
    page.wait_for_url(f"{base}/models/{MODEL}?done=forced*")
    assert _aliases(world) == {"production": 1}
    event = page.locator("table.history tbody tr").first
    assert event.locator(".badge", has_text="forced").count() == 1
    assert "token:ui-admin" in event.inner_text() and "hotfix" in event.inner_text()

    page.fill("table.aliases input[name=reason]", "forced by mistake")
    page.click("button:has-text('Roll back production')")
    page.wait_for_url(f"{base}/models/{MODEL}?done=rolledback*")
    assert _aliases(world) == {"production": 2}
    event = page.locator("table.history tbody tr").first.inner_text()
    assert "rollback" in event and "token:ui-admin" in event and "forced by mistake" in event
