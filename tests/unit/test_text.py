import math

import pytest

from liger_core.data.text import render_item_text, text_hash


def test_renders_fields_in_fixed_order():
    text = render_item_text(price="5.99", title="Red Polish", brand="OPI", categories="Beauty > Nails")
    assert text == (
        "This item is called 'Red Polish'. It is manufactured by 'OPI'. "
        "It belongs to the categories of Beauty > Nails. It is priced at 5.99."
    )


@pytest.mark.parametrize("missing", [None, "", "   ", math.nan])
def test_missing_fields_are_skipped_never_rendered_as_none(missing):
    text = render_item_text(title="Mascara", brand=missing, price=missing)
    assert text == "This item is called 'Mascara'."
    assert "None" not in text and "nan" not in text


def test_whitespace_is_collapsed():
    assert render_item_text(title="Crabtree  and\tEvelyn\n") == "This item is called 'Crabtree and Evelyn'."


def test_empty_title_uses_other_fields_and_all_missing_gives_empty():
    assert render_item_text(title="", categories="Beauty > Skin Care") == "It belongs to the categories of Beauty > Skin Care."
    assert render_item_text(title=None) == ""


def test_description_is_rendered_last():
    assert render_item_text(description="Long lasting.", title="Gel").endswith("Its description: Long lasting.")


def test_unknown_field_is_an_error():
    with pytest.raises(ValueError, match="colour"):
        render_item_text(colour="red")


def test_hash_is_stable_and_content_sensitive():
    assert text_hash("abc") == text_hash("abc")
    assert text_hash("abc") != text_hash("abd")
    assert len(text_hash("abc")) == 32
