"""Books and pages through the API: the look, the pages' order, manuscripts, and bad input."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.imagegen import png, upload

STORY = """Mia finds a map in the attic.
---
Rex sniffs the map. MIA laughs.

---

---
The sea is far away (Miami is further)."""


def make_book(client: TestClient, auth: dict[str, str], **fields: Any) -> dict[str, Any]:
    response = client.post("/books", headers=auth, json={"title": "The Map", **fields})
    assert response.status_code == 201, response.text
    return response.json()


def make_character(client: TestClient, auth: dict[str, str], name: str, description: str) -> int:
    response = client.post("/characters", headers=auth, json={"name": name, "description": description})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def paste(
    client: TestClient, auth: dict[str, str], book_id: int, text: str, **extra: Any
) -> list[dict[str, Any]]:
    response = client.post(f"/books/{book_id}/manuscript", headers=auth, json={"text": text, **extra})
    assert response.status_code == 201, response.text
    return response.json()["pages"]


def page_ids(client: TestClient, auth: dict[str, str], book_id: int) -> list[int]:
    return [p["id"] for p in client.get(f"/books/{book_id}", headers=auth).json()["pages"]]


def texts(client: TestClient, auth: dict[str, str], book_id: int) -> list[str]:
    pages = client.get(f"/books/{book_id}", headers=auth).json()["pages"]
    assert [p["number"] for p in pages] == list(range(1, len(pages) + 1))
    return [p["text"] for p in pages]


def test_a_new_book_knows_its_print_pixels_and_the_size_it_asks_for(
    client: TestClient, auth: dict[str, str]
) -> None:
    book = make_book(client, auth)
    assert book["trim"] == "8.5x8.5" and book["trim_in"] == [8.5, 8.5] and book["bleed_in"] == 0.125
    assert book["print_px"] == [2588, 2625]  # 8.625 x 8.75 in at 300 DPI
    assert book["generate_size"] == "2592x2624"  # nearest multiple-of-16 size, same aspect
    assert book["chain"] == "first" and book["text_position"] == "bottom"
    assert book["pages"] == [] and book["progress"]["pages"] == 0
    standard = make_book(client, auth, trim="6x9", model="gpt-image-2.6-flare")
    assert standard["generate_size"] == "1024x1536"  # only standard sizes: the nearest aspect
    listed = client.get("/books", headers=auth).json()
    assert listed["total"] == 2 and listed["items"][0]["pages"] is None


def test_manuscript_makes_one_page_per_block_and_finds_the_cast_by_whole_word(
    client: TestClient, auth: dict[str, str]
) -> None:
    mia = make_character(client, auth, "Mia", "a girl with curly red hair")
    rex = make_character(client, auth, "Rex", "a scruffy terrier")
    book = make_book(client, auth, cast=["mia", rex])
    assert [c["name"] for c in book["cast"]] == ["Mia", "Rex"]
    pages = paste(client, auth, book["id"], STORY)
    assert [p["number"] for p in pages] == [1, 2, 3]
    assert [[c["id"] for c in p["characters"]] for p in pages] == [[mia], [mia, rex], []]
    assert pages[1]["text"] == "Rex sniffs the map. MIA laughs."
    assert all(p["status"] == "empty" and p["image"] is None for p in pages)


def test_without_page_breaks_blank_lines_split_and_replace_starts_over(
    client: TestClient, auth: dict[str, str]
) -> None:
    book = make_book(client, auth)
    paste(client, auth, book["id"], "One.\n\n\nTwo,\nstill two.\n\nThree.")
    assert texts(client, auth, book["id"]) == ["One.", "Two,\nstill two.", "Three."]
    paste(client, auth, book["id"], "Four.")
    assert texts(client, auth, book["id"])[-1] == "Four."
    paste(client, auth, book["id"], "Only.", replace=True)
    assert texts(client, auth, book["id"]) == ["Only."]


def test_an_empty_or_too_long_manuscript_is_422(client: TestClient, auth: dict[str, str]) -> None:
    book = make_book(client, auth)
    empty = client.post(f"/books/{book['id']}/manuscript", headers=auth, json={"text": " \n---\n  "})
    assert empty.status_code == 422 and empty.json()["error"]["field"] == "text"
    long = client.post(
        f"/books/{book['id']}/manuscript", headers=auth, json={"text": "\n\n".join(["p"] * 201)}
    )
    assert long.status_code == 422 and "201 pages" in long.json()["error"]["message"]
    assert texts(client, auth, book["id"]) == []


def test_pages_insert_move_and_delete_keep_numbers_in_order(client: TestClient, auth: dict[str, str]) -> None:
    book = make_book(client, auth)
    paste(client, auth, book["id"], "A\n\nB\n\nC")
    inserted = client.post(f"/books/{book['id']}/pages", headers=auth, json={"text": "X", "position": 2})
    assert inserted.status_code == 201 and inserted.json()["number"] == 2
    assert texts(client, auth, book["id"]) == ["A", "X", "B", "C"]
    moved = client.patch(
        f"/books/{book['id']}/pages/{inserted.json()['id']}", headers=auth, json={"position": 4}
    )
    assert moved.status_code == 200 and moved.json()["number"] == 4
    assert texts(client, auth, book["id"]) == ["A", "B", "C", "X"]
    first = page_ids(client, auth, book["id"])[0]
    assert client.delete(f"/books/{book['id']}/pages/{first}", headers=auth).status_code == 204
    assert texts(client, auth, book["id"]) == ["B", "C", "X"]
    ids = page_ids(client, auth, book["id"])
    reordered = client.put(f"/books/{book['id']}/pages/order", headers=auth, json={"page_ids": ids[::-1]})
    assert reordered.status_code == 200
    assert [p["text"] for p in reordered.json()["pages"]] == ["X", "C", "B"]


def test_an_order_that_is_not_every_page_once_is_422_naming_the_id(
    client: TestClient, auth: dict[str, str]
) -> None:
    book = make_book(client, auth)
    paste(client, auth, book["id"], "A\n\nB\n\nC")
    a, b, c = page_ids(client, auth, book["id"])
    url = f"/books/{book['id']}/pages/order"
    for ids, named in (([a, b, c, 999], "999"), ([a, b, b], str(b)), ([a, b], str(c))):
        response = client.put(url, headers=auth, json={"page_ids": ids})
        assert response.status_code == 422, response.text
        assert named in response.json()["error"]["message"] and response.json()["error"]["field"].startswith(
            "page_ids"
        )
    assert texts(client, auth, book["id"]) == ["A", "B", "C"]


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [("trim", "9x9", "8.5x8.5"), ("chain", "next", "previous"), ("text_position", "left", "bottom")],
)
def test_unknown_trim_chain_or_text_position_is_422_listing_the_allowed_values(
    client: TestClient, auth: dict[str, str], field: str, value: str, allowed: str
) -> None:
    response = client.post("/books", headers=auth, json={"title": "T", field: value})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["field"] == field and allowed in error["message"]
    book = make_book(client, auth)
    patched = client.patch(f"/books/{book['id']}", headers=auth, json={field: value})
    assert patched.status_code == 422 and patched.json()["error"]["field"] == field


def test_unknown_or_other_workspaces_things_are_404(
    client: TestClient, auth: dict[str, str], other_auth: dict[str, str]
) -> None:
    theirs = make_book(client, other_auth)
    their_page = paste(client, other_auth, theirs["id"], "Theirs.")[0]
    their_character = make_character(client, other_auth, "Zed", "someone else's")
    upload(client, other_auth, png(9))  # their image 0; ours has none
    assert client.get(f"/books/{theirs['id']}", headers=auth).status_code == 404
    assert client.delete(f"/books/{theirs['id']}", headers=auth).status_code == 404
    mine = make_book(client, auth)
    paste(client, auth, mine["id"], "Mine.")
    assert (
        client.patch(
            f"/books/{mine['id']}/pages/{their_page['id']}", headers=auth, json={"text": "x"}
        ).status_code
        == 404
    )
    for body, field in (
        ({"title": "T", "cast": [their_character]}, "cast.0"),
        ({"title": "T", "cast": ["Nobody"]}, "cast.0"),
        ({"title": "T", "style_images": [0]}, "style_images.0"),
    ):
        response = client.post("/books", headers=auth, json=body)
        assert response.status_code == 404, response.text
        assert response.json()["error"]["field"] == field
    page = page_ids(client, auth, mine["id"])[0]
    chosen = client.patch(f"/books/{mine['id']}/pages/{page}", headers=auth, json={"image": 0})
    assert chosen.status_code == 404 and chosen.json()["error"]["field"] == "image.0"


def test_illustrating_a_book_with_no_pages_is_422(client: TestClient, auth: dict[str, str]) -> None:
    book = make_book(client, auth)
    for body in ({}, {"dry_run": True}):
        response = client.post(f"/books/{book['id']}/illustrate", headers=auth, json=body)
        assert response.status_code == 422 and response.json()["error"]["field"] == "pages"


def test_a_page_may_choose_any_library_picture_and_deleting_the_book_keeps_it(
    client: TestClient, auth: dict[str, str]
) -> None:
    number = upload(client, auth, png(3)).json()["images"][0]["number"]
    book = make_book(client, auth, style="linocut", style_images=[number])
    page = paste(client, auth, book["id"], "A page.")[0]
    chosen = client.patch(f"/books/{book['id']}/pages/{page['id']}", headers=auth, json={"image": number})
    assert chosen.status_code == 200
    assert chosen.json()["image"] == number and chosen.json()["status"] == "illustrated"
    assert chosen.json()["effective_dpi"] == 5  # a 64x48 picture over an 8.625 x 8.75 in page
    assert client.delete(f"/books/{book['id']}", headers=auth).status_code == 204
    assert client.get(f"/books/{book['id']}", headers=auth).status_code == 404
    assert client.get(f"/images/{number}", headers=auth).status_code == 200


def test_a_book_style_is_stated_once_and_characters_own_styles_are_left_out(
    client: TestClient, auth: dict[str, str]
) -> None:
    response = client.post(
        "/characters",
        headers=auth,
        json={"name": "Mia", "description": "curly red hair", "style": "anime cel"},
    )
    assert response.status_code == 201
    book = make_book(client, auth, style="loose watercolour, muted palette", cast=["Mia"])
    paste(client, auth, book["id"], "Mia walks.\n\nThe rain.")
    plan = client.post(f"/books/{book['id']}/illustrate", headers=auth, json={"dry_run": True})
    assert plan.status_code == 200, plan.text
    pages = plan.json()["pages"]
    assert [p["page"] for p in pages] == [1, 2] and pages[1]["waits_for"] == "page 1"
    for page in pages:
        assert page["prompt"].count("loose watercolour, muted palette") == 1
        assert "anime cel" not in page["prompt"]
        assert page["parameters"]["size"] == "2592x2624"
    assert "curly red hair" in pages[0]["prompt"] and "curly red hair" not in pages[1]["prompt"]
    assert client.get(f"/generations?book_id={book['id']}", headers=auth).json()["total"] == 0


def test_over_sixteen_inputs_drop_style_then_continuity_then_each_characters_last(
    client: TestClient, auth: dict[str, str]
) -> None:
    numbers = [i["number"] for i in upload(client, auth, *(png(40 + i) for i in range(12))).json()["images"]]
    numbers += [i["number"] for i in upload(client, auth, *(png(60 + i) for i in range(10))).json()["images"]]
    mia = make_character(client, auth, "Mia", "curly red hair")
    rex = make_character(client, auth, "Rex", "scruffy terrier")
    client.put(f"/characters/{mia}/references", headers=auth, json={"numbers": numbers[:10]})
    client.put(f"/characters/{rex}/references", headers=auth, json={"numbers": numbers[10:15]})
    style = numbers[15:17]
    book = make_book(client, auth, cast=["Mia", "Rex"], style="ink", style_images=style)
    pages = paste(client, auth, book["id"], "The map.\n\nMia alone.\n\nMia and Rex.")
    chosen = client.patch(
        f"/books/{book['id']}/pages/{pages[0]['id']}", headers=auth, json={"image": numbers[20]}
    )
    assert chosen.status_code == 200
    extra = client.patch(
        f"/books/{book['id']}/pages/{pages[2]['id']}", headers=auth, json={"reference_images": [numbers[17]]}
    )
    assert extra.status_code == 200
    plan = client.post(f"/books/{book['id']}/illustrate", headers=auth, json={"dry_run": True}).json()
    assert plan["skipped"] == [1]
    alone, both = plan["pages"]
    # Page 2: Mia's 10, page 1's picture, the 2 style images: 13 inputs, nothing dropped.
    assert alone["reference_images"] == [*numbers[:10], numbers[20], *style] and alone["dropped"] == []
    assert "is page 1 of this book, for continuity" in alone["prompt"]
    assert "is a style reference, for the art style only" in alone["prompt"]
    # Page 3: 10 + 5 + 1 extra + continuity + 2 style = 19: the style images go, then continuity.
    assert both["reference_images"] == [*numbers[:15], numbers[17]]
    assert [(d["number"], d["role"]) for d in both["dropped"]] == [
        (style[1], "style"),
        (style[0], "style"),
        (numbers[20], "continuity"),
    ]
    more = client.put(f"/characters/{rex}/references", headers=auth, json={"numbers": numbers[10:17]})
    assert more.status_code == 200
    plan = client.post(f"/books/{book['id']}/illustrate", headers=auth, json={"dry_run": True, "pages": [3]})
    both = plan.json()["pages"][0]
    # 10 + 7 + 1 extra = 18 once style (Rex's now) and continuity are out: then the extra, then
    # the last of the longest list (Mia's).
    assert len(both["reference_images"]) == 16
    assert [(d["role"], d.get("character")) for d in both["dropped"]][-2:] == [
        ("page", None),
        ("character", "Mia"),
    ]
